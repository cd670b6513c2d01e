//! The reference server over Streamable HTTP (`serve --http ADDR`): rmcp's Streamable HTTP
//! service at `/mcp` (sessions, JSON and SSE replies, DELETE; the stateless 2026-07-28 revision
//! as rmcp serves it), next to `/healthz`, `/readyz` and `/metrics`, on our own accept loop so
//! that every socket gets TCP_NODELAY and shutdown is graceful.
//!
//! Host and Origin are checked (loopback by default: DNS rebinding protection), request bodies
//! are bounded, and a session idle for `session_idle` ends, so clients that never send DELETE
//! leak nothing. On SIGTERM or Ctrl-C: stop accepting, let in-flight calls finish within
//! `shutdown_grace`, then end the sessions and return.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ready::{self, Probe, Readiness};
use super::{ConformanceServer, ReferenceServer, ServeOptions};
use crate::runtime::{Runtime, RuntimeConfig, tokio_clock};

/// How the HTTP server runs.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub listen: SocketAddr,
    /// A session with no request for this long is ended.
    pub session_idle: Duration,
    /// Larger POST bodies are answered 413.
    pub max_body_bytes: usize,
    /// In-flight calls get this long to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Host names accepted besides the loopback ones (a public deployment's own, a load
    /// balancer's): `name` for any port, `name:port` for one.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted besides the loopback ones.
    pub allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-Host` is the request's host; from others every
    /// `X-Forwarded-*` header is dropped before anything reads it.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Serve `POST /admin/breakers/{upstream}/{action}` (off unless asked for: it can stop
    /// every call to an upstream).
    pub admin: bool,
    /// How often `/readyz`'s dependencies are probed.
    pub ready_interval: Duration,
    /// After SIGTERM, how long `/readyz` answers 503 while calls are still served, so that a
    /// load balancer takes the instance out before it stops accepting.
    pub drain_delay: Duration,
    /// An event loop slower than this to wake a timer is unready.
    pub max_loop_lag: Duration,
    /// A Redis URL: handshake-era sessions are kept there, so that any instance serves them.
    pub session_store: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            session_idle: Duration::from_secs(60),
            max_body_bytes: super::DEFAULT_MAX_MESSAGE_BYTES,
            shutdown_grace: Duration::from_secs(10),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            admin: false,
            ready_interval: Duration::from_secs(1),
            drain_delay: Duration::ZERO,
            max_loop_lag: Duration::from_millis(500),
            session_store: None,
        }
    }
}

/// A bound server, not yet serving: its address is known (port 0 resolved).
pub struct HttpServer {
    listener: TcpListener,
    readiness: Arc<Readiness>,
    runtime: Arc<Runtime>,
    probe: Probe,
    trusted_proxies: Arc<[std::net::IpAddr]>,
    addr: SocketAddr,
    app: axum::Router,
    sessions: CancellationToken,
    grace: Duration,
}

impl HttpServer {
    pub async fn bind(options: ServeOptions, http: HttpOptions) -> std::io::Result<HttpServer> {
        let listener = TcpListener::bind(http.listen).await?;
        let addr = listener.local_addr()?;
        let sessions = CancellationToken::new();
        let mut config = StreamableHttpServerConfig::default();
        config.cancellation_token = sessions.clone();
        config.max_request_body_bytes = http.max_body_bytes;
        let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        hosts.extend(http.allowed_hosts.iter().cloned());
        let mut origins: Vec<String> =
            ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"].map(String::from).to_vec();
        origins.extend(http.allowed_origins.iter().cloned());
        config = config.with_allowed_hosts(hosts).with_allowed_origins(origins);
        if let Some(url) = &http.session_store {
            config.session_store = Some(session_store(url)?);
        }
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(http.session_idle);
        let manager = Arc::new(manager);
        // rmcp calls the factory on every request, not only per session: it hands out clones of
        // one server (an Arc'd router), which cost 27 µs of CPU per call when built each time.
        let prototype = ReferenceServer::new(options.clone());
        let mcp = if options.conformance {
            let factory = move || Ok(ConformanceServer::new(prototype.clone()));
            axum::Router::new().route_service("/mcp", StreamableHttpService::new(factory, Arc::clone(&manager), config))
        } else {
            let factory = move || Ok(prototype.clone());
            axum::Router::new().route_service("/mcp", StreamableHttpService::new(factory, Arc::clone(&manager), config))
        };
        let limit = http.max_body_bytes;
        let mcp = mcp.layer(axum::middleware::from_fn(move |r, next| judge(r, next, limit)));
        // /metrics and /readyz read a runtime even when the server has no upstreams.
        let runtime = match &options.runtime {
            Some(r) => Arc::clone(r),
            None => Arc::new(
                Runtime::new(&RuntimeConfig::default(), tokio_clock()).map_err(|e| std::io::Error::other(e.0))?,
            ),
        };
        let readiness = Arc::new(Readiness::default());
        let ready_state = Arc::clone(&readiness);
        let metrics_runtime = Arc::clone(&runtime);
        let admin_runtime = Arc::clone(&runtime);
        let app = mcp
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(move || std::future::ready(ready_state.answer())))
            .route(
                "/metrics",
                get(move || {
                    let (r, manager) = (Arc::clone(&metrics_runtime), Arc::clone(&manager));
                    async move {
                        let sessions = manager.sessions.read().await.len();
                        let text = format!(
                            "{}# HELP mcp_http_sessions Streamable HTTP sessions open.\n# TYPE mcp_http_sessions gauge\nmcp_http_sessions {sessions}\n",
                            r.prometheus()
                        );
                        ([("content-type", "text/plain; version=0.0.4")], text)
                    }
                }),
            );
        let app = if http.admin { app.merge(admin_routes(Arc::clone(&admin_runtime))) } else { app };
        let trusted_proxies = http.trusted_proxies.clone().into();
        let probe = Probe { interval: http.ready_interval, max_lag: http.max_loop_lag, drain: http.drain_delay };
        Ok(HttpServer {
            listener,
            readiness,
            runtime: admin_runtime,
            probe,
            trusted_proxies,
            addr,
            app,
            sessions,
            grace: http.shutdown_grace,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop` is cancelled, then shuts down gracefully.
    pub async fn serve(self, stop: CancellationToken) {
        let graceful = GracefulShutdown::new();
        // One probe before the first request, so that /readyz never answers from nothing.
        self.readiness.set(ready::probe(&self.runtime, &self.probe).await);
        let probing = tokio::spawn(ready::probe_forever(
            Arc::clone(&self.runtime),
            Arc::clone(&self.readiness),
            self.probe.clone(),
        ));
        // Stopping: readiness drops first; calls are still served for the drain delay.
        let mut drained: Option<tokio::time::Instant> = None;
        loop {
            let drain_over = async {
                match drained {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                accepted = self.listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    // Nagle against delayed ACK: 26 calls/s instead of thousands (DESIGN.md).
                    let _ = stream.set_nodelay(true);
                    let trusted = self.trusted_proxies.contains(&peer.ip());
                    let app = tower::ServiceExt::map_request(self.app.clone(), move |r| forwarded(r, trusted));
                    let service = TowerToHyperService::new(app);
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
                _ = stop.cancelled(), if drained.is_none() => {
                    self.readiness.drain();
                    if self.probe.drain.is_zero() {
                        break;
                    }
                    drained = Some(tokio::time::Instant::now() + self.probe.drain);
                }
                () = drain_over => break,
            }
        }
        probing.abort();
        drop(self.listener);
        // In-flight calls finish; open SSE streams end with the sessions after the grace.
        let _ = tokio::time::timeout(self.grace, graceful.shutdown()).await;
        self.sessions.cancel();
    }
}

#[cfg(feature = "redis")]
fn session_store(
    url: &str,
) -> std::io::Result<Arc<dyn rmcp::transport::streamable_http_server::session::SessionStore>> {
    Ok(Arc::new(super::sessions::RedisSessionStore::new(url).map_err(|e| std::io::Error::other(e.to_string()))?))
}

#[cfg(not(feature = "redis"))]
fn session_store(_: &str) -> std::io::Result<Arc<dyn rmcp::transport::streamable_http_server::session::SessionStore>> {
    Err(std::io::Error::other("--session-store: this build has no Redis support (the `redis` feature)"))
}

/// A POSTed JSON body is judged before rmcp reads it ([`super::jsonrpc`]): malformed JSON, an
/// invalid request or one over the size limit is answered 400 (413) with a JSON-RPC error body,
/// carrying the request's id when it can be read, where rmcp would answer 415 in plain text.
async fn judge(
    request: axum::extract::Request,
    next: axum::middleware::Next,
    limit: usize,
) -> axum::response::Response {
    use axum::http::{Method, StatusCode, header};
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if request.method() != Method::POST || !json {
        return next.run(request).await;
    }
    let (parts, mut body) = request.into_parts();
    let mut collected = Vec::new();
    let answer = |status: StatusCode, rejection: super::jsonrpc::Rejection| {
        (status, [(header::CONTENT_TYPE, "application/json")], rejection.to_bytes()).into_response()
    };
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map(|f| f.into_data()) else {
            return (StatusCode::BAD_REQUEST, "the request body could not be read\n").into_response();
        };
        let Ok(data) = data else { continue };
        let room = limit.saturating_sub(collected.len());
        collected.extend_from_slice(&data[..data.len().min(room)]);
        if data.len() > room {
            // Not read to its end: the connection closes after this answer.
            return answer(StatusCode::PAYLOAD_TOO_LARGE, super::jsonrpc::oversized(&collected, limit));
        }
    }
    match super::jsonrpc::classify(&collected) {
        super::jsonrpc::Verdict::Message(_) => {
            next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(collected))).await
        }
        super::jsonrpc::Verdict::Reply(rejection) => answer(StatusCode::BAD_REQUEST, rejection),
        // Over HTTP a broken notification can still be told why, without an id.
        super::jsonrpc::Verdict::Ignore(why) => answer(
            StatusCode::BAD_REQUEST,
            super::jsonrpc::Rejection {
                id: None,
                code: super::jsonrpc::INVALID_REQUEST,
                message: format!("Invalid Request: {why}"),
            },
        ),
    }
}

/// The request as the server should see it: from a trusted proxy, its `X-Forwarded-Host` (the
/// first, the client's) becomes the Host that the DNS-rebinding check reads; from anyone else,
/// `X-Forwarded-*` headers are dropped, so that nothing downstream can be told a host or an
/// address by a client.
fn forwarded<B>(mut request: axum::http::Request<B>, trusted: bool) -> axum::http::Request<B> {
    let headers = request.headers_mut();
    if trusted {
        let first = headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .and_then(|h| axum::http::HeaderValue::from_str(h).ok());
        if let Some(host) = first {
            headers.insert(axum::http::header::HOST, host);
        }
    } else {
        for name in ["x-forwarded-host", "x-forwarded-for", "x-forwarded-proto", "forwarded"] {
            headers.remove(name);
        }
    }
    request
}

/// The operator's breaker switches: `POST /admin/breakers/{upstream}/{action}` with action
/// `force_open`, `disable`, `metrics_only`, `normal` or `reset`; answers the breaker's state.
fn admin_routes(runtime: Arc<Runtime>) -> axum::Router {
    use crate::runtime::breaker::Mode;
    use axum::extract::Path;
    use axum::http::StatusCode;
    let switch = move |Path((upstream, action)): Path<(String, String)>| {
        let runtime = Arc::clone(&runtime);
        async move {
            let Ok(u) = runtime.upstream(&upstream) else {
                return (StatusCode::NOT_FOUND, format!("no upstream `{}`\n", upstream.escape_debug()));
            };
            let breaker = u.breaker();
            match action.as_str() {
                "force_open" => breaker.set_mode(Mode::ForcedOpen),
                "disable" => breaker.set_mode(Mode::Disabled),
                "metrics_only" => breaker.set_mode(Mode::MetricsOnly),
                "normal" => breaker.set_mode(Mode::Normal),
                "reset" => breaker.reset(),
                _ => {
                    let known = "force_open, disable, metrics_only, normal, reset";
                    return (StatusCode::BAD_REQUEST, format!("unknown action (one of {known})\n"));
                }
            }
            (
                StatusCode::OK,
                format!("{}\n", serde_json::json!({"upstream": upstream, "state": breaker.state().name()})),
            )
        }
    };
    axum::Router::new().route("/admin/breakers/{upstream}/{action}", axum::routing::post(switch))
}
