//! The pooled HTTP client of one named upstream: at most `max_connections` connections (a
//! caller beyond waits at most `max_wait`), connect and request timeouts, idle timeout,
//! keep-alive and TCP_NODELAY, with the pool statistics every pool reports. HTTP or HTTPS
//! (rustls; the system's roots plus a `ca_file`), any method, and configured headers on every
//! request (an `Authorization` read from the environment, say).
//!
//! It is a tower [`Service`](tower_service::Service) of `http::Request<Bytes>`, so the
//! [`crate::layer`]s stack on it; a 5xx or 429 answer is an [`UpstreamError::Status`] there,
//! so that the breaker and the retry see it as the upstream's failure.
//!
//! Built on hyper-util's pooled client (the pool inside reqwest) rather than on reqwest itself:
//! reqwest's connector hands back an opaque connection, so it can count connections opened but
//! never closed, and could not say how many are open or idle. Here the connector wraps each
//! socket, which counts itself out when the pool drops it.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::breaker::Outcome;
use super::clock::SharedClock;
use super::config::ConfigError;
use super::histogram::{Histogram, WAIT_SECONDS};
use super::pool::PoolStats;
use super::retry::Retryable;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
/// The pooled HTTP client's limits, timeouts, headers and trust.
pub struct HttpConfig {
    /// Connections open at most (each carries one request at a time: HTTP/1.1).
    pub max_connections: usize,
    /// The longest a call waits for a connection before [`UpstreamError::PoolTimeout`].
    #[serde(with = "super::config::duration")]
    pub max_wait: Duration,
    #[serde(with = "super::config::duration")]
    /// The longest a new connection may take to open (TCP, and TLS for HTTPS).
    pub connect_timeout: Duration,
    /// One request, from sending it to the end of its body.
    #[serde(with = "super::config::duration")]
    pub request_timeout: Duration,
    /// An unused connection is closed after this.
    #[serde(with = "super::config::duration")]
    pub idle_timeout: Duration,
    /// TCP keep-alive probes on idle connections (`None`: off).
    #[serde(with = "super::config::option_duration")]
    pub keep_alive: Option<Duration>,
    /// Bodies larger than this are an error rather than memory.
    pub max_body_bytes: usize,
    /// Headers sent with every request that does not set them itself: a value, or
    /// `{ env: NAME }` to read it from the environment when the client is built (a token
    /// kept out of the config file). Values are marked sensitive (never logged by hyper).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, HeaderSource>,
    /// Root certificates (PEM) trusted for HTTPS besides the system's: an upstream behind a
    /// private certificate authority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Where a configured header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum HeaderSource {
    /// The value itself.
    Value(String),
    /// The value of an environment variable, read when the client is built.
    Env {
        /// The variable's name.
        env: String,
    },
}

impl Default for HttpConfig {
    /// 32 connections, 1 s connect, 2 s per request, idle connections closed after 30 s
    /// (under most load balancers' 60 s, so the upstream never closes one we are about to use).
    fn default() -> Self {
        HttpConfig {
            max_connections: 32,
            max_wait: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Some(Duration::from_secs(30)),
            max_body_bytes: 8 << 20,
            headers: BTreeMap::new(),
            ca_file: None,
        }
    }
}

/// How a call to an upstream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {upstream:?}: no connection free within {waited:?} ({in_use} in use)")]
    /// No connection came free within `max_wait` (our own pool: says nothing of the upstream).
    PoolTimeout {
        /// The upstream's name.
        upstream: String,
        /// How long the call waited.
        waited: Duration,
        /// Connections busy meanwhile.
        in_use: u64,
    },
    #[error("upstream {upstream:?}: {message}")]
    /// The connection or the exchange failed (refused, reset, TLS, a bad URL).
    Transport {
        /// The upstream's name.
        upstream: String,
        /// What went wrong, with its causes.
        message: String,
    },
    #[error("upstream {upstream:?}: no answer within {after:?}")]
    /// No whole answer within `request_timeout`.
    Timeout {
        /// The upstream's name.
        upstream: String,
        /// The request timeout that passed.
        after: Duration,
    },
    #[error("upstream {upstream:?} answered {status}: {body}")]
    /// An answer with a status that is not success (404 aside, for JSON reads).
    Status {
        /// The upstream's name.
        upstream: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body (200 bytes at most), for the message.
        body: String,
        /// The answer's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    #[error("upstream {upstream:?}: the answer is not the expected JSON: {message}")]
    /// A 2xx answer whose body is not the JSON expected.
    Decode {
        /// The upstream's name.
        upstream: String,
        /// The decoder's complaint.
        message: String,
    },
}

impl UpstreamError {
    /// How the breaker counts it: transport failures, timeouts, 5xx and 429 are the upstream's
    /// fault; a 4xx or an undecodable answer is not a sign it is down.
    pub fn outcome(&self) -> Outcome {
        match self {
            UpstreamError::Transport { .. } | UpstreamError::Timeout { .. } => Outcome::Failure,
            UpstreamError::Status { status, .. } => Outcome::of_status(*status),
            // Our own pool was full: says nothing of the upstream.
            UpstreamError::PoolTimeout { .. } => Outcome::Ignored,
            UpstreamError::Decode { .. } => Outcome::Success,
        }
    }
}

impl Retryable for UpstreamError {
    fn is_retryable(&self) -> bool {
        self.outcome() == Outcome::Failure
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// An answer: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The HTTP status.
    pub status: u16,
    /// The whole body (at most `max_body_bytes`).
    pub body: Bytes,
    /// The answer's `Retry-After`, in seconds (an HTTP date is not read), at most an hour.
    pub retry_after: Option<Duration>,
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    open: AtomicU64,
    in_use: AtomicU64,
    waiters: AtomicU64,
    timeouts: AtomicU64,
}

/// The HTTP client of one upstream; cheap to clone.
#[derive(Clone)]
pub struct HttpUpstream {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the headers: they may carry credentials.
        f.debug_struct("HttpUpstream").field("name", &self.shared.name).field("base", &self.shared.base).finish()
    }
}

struct Shared {
    name: String,
    base: String,
    config: HttpConfig,
    clock: SharedClock,
    client: Client<HttpsConnector<CountingConnector>, Full<Bytes>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    slots: Semaphore,
    counters: Arc<Counters>,
    wait: Histogram,
}

impl HttpUpstream {
    /// A client for the upstream called `name` at `base_url` (`http://host:port` or
    /// `https://…`, no trailing slash needed); paths are appended to it. Fails when a header is
    /// invalid or its variable unset, or when `ca_file` cannot be read.
    pub fn new(
        name: impl Into<String>,
        base_url: &str,
        config: HttpConfig,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        let headers = resolve_headers(&name, &config.headers)?;
        let tls = tls_config(config.ca_file.as_deref())
            .map_err(|e| ConfigError(format!("upstream {name:?}: http.ca_file: {e}")))?;
        let counters = Arc::new(Counters::default());
        let mut http = HttpConnector::new();
        // Nagle against delayed ACK turns a sub-millisecond call into a 40 ms one.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_keepalive(config.keep_alive);
        http.enforce_http(false); // https:// URIs go through the TLS wrapper below
        let counting = CountingConnector { inner: http, counters: Arc::clone(&counters) };
        let connector =
            HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(counting);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.idle_timeout)
            .pool_max_idle_per_host(config.max_connections)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(HttpUpstream {
            shared: Arc::new(Shared {
                name,
                base: base_url.trim_end_matches('/').to_string(),
                slots: Semaphore::new(config.max_connections),
                config,
                clock,
                client,
                headers,
                counters,
                wait: Histogram::new(WAIT_SECONDS),
            }),
        })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// GET `path`; any status is an answer (see [`HttpUpstream::get_json`] for one that is not).
    pub async fn get(&self, path: &str) -> Result<HttpReply, UpstreamError> {
        self.send(Method::GET, path, None).await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<HttpReply, UpstreamError> {
        self.send(Method::POST, path, Some(Bytes::from(body.to_string()))).await
    }

    /// GET `path` and decode a 2xx body; `Ok(None)` for a 404 (the item does not exist), an
    /// error for any other status.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Option<T>, UpstreamError> {
        let reply = self.get(path).await?;
        self.decode(reply)
    }

    /// Decodes a reply as [`HttpUpstream::get_json`] does.
    pub fn decode<T: serde::de::DeserializeOwned>(&self, reply: HttpReply) -> Result<Option<T>, UpstreamError> {
        let upstream = self.shared.name.clone();
        match reply.status {
            200..=299 => serde_json::from_slice(&reply.body)
                .map(Some)
                .map_err(|e| UpstreamError::Decode { upstream, message: e.to_string() }),
            404 => Ok(None),
            status => Err(UpstreamError::Status {
                upstream,
                status,
                body: String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]).into_owned(),
                retry_after: reply.retry_after,
            }),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<HttpReply, UpstreamError> {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(body.unwrap_or_default()).map_err(|e| UpstreamError::Transport {
            upstream: self.shared.name.clone(),
            message: format!("`{path}` is not a path: {e}"),
        })?;
        let response = self.request(request).await?;
        let retry_after = retry_after(response.headers());
        Ok(HttpReply { status: response.status().as_u16(), retry_after, body: response.into_body() })
    }

    /// Sends `request` and reads the whole answer, whatever its status: any method, any
    /// headers. A URI without a scheme and host (`/items/1`) goes to this upstream's base URL;
    /// the configured headers are added where the request has none of that name. Bounded by a
    /// connection slot (`max_wait`), `request_timeout` and `max_body_bytes`.
    pub async fn request(&self, request: Request<Bytes>) -> Result<Response<Bytes>, UpstreamError> {
        let s = &self.shared;
        let _slot = self.slot().await?;
        let (mut parts, body) = request.into_parts();
        if parts.uri.scheme().is_none() {
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = format!("{}{}", s.base, path).parse().map_err(|e| UpstreamError::Transport {
                upstream: s.name.clone(),
                message: format!("`{}{path}` is not a URL: {e}", s.base),
            })?;
        }
        for (name, value) in &s.headers {
            if !parts.headers.contains_key(name) {
                parts.headers.insert(name.clone(), value.clone());
            }
        }
        let request = Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let response = s.client.request(request).await.map_err(|e| self.transport(&e))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, s.config.max_body_bytes)
                .collect()
                .await
                .map_err(|e| UpstreamError::Transport {
                    upstream: s.name.clone(),
                    message: format!("reading the body: {e}"),
                })?
                .to_bytes();
            Ok(Response::from_parts(parts, body))
        };
        match tokio::time::timeout(s.config.request_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(UpstreamError::Timeout { upstream: s.name.clone(), after: s.config.request_timeout }),
        }
    }

    /// A connection slot: at most `max_connections` calls at once, each waiting at most
    /// `max_wait`.
    async fn slot(&self) -> Result<InUse<'_>, UpstreamError> {
        let s = &self.shared;
        let started = s.clock.now();
        s.counters.waiters.fetch_add(1, Ordering::Relaxed);
        let acquired = tokio::time::timeout(s.config.max_wait, s.slots.acquire()).await;
        s.counters.waiters.fetch_sub(1, Ordering::Relaxed);
        s.wait.record(s.clock.now().duration_since(started).as_secs_f64());
        match acquired {
            Ok(Ok(permit)) => {
                s.counters.in_use.fetch_add(1, Ordering::Relaxed);
                Ok(InUse { _permit: permit, counters: &s.counters })
            }
            _ => {
                s.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(UpstreamError::PoolTimeout {
                    upstream: s.name.clone(),
                    waited: s.config.max_wait,
                    in_use: s.counters.in_use.load(Ordering::Relaxed),
                })
            }
        }
    }

    fn transport(&self, e: &(dyn std::error::Error + 'static)) -> UpstreamError {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        UpstreamError::Transport { upstream: self.shared.name.clone(), message }
    }

    /// The pool's statistics now.
    pub fn stats(&self) -> PoolStats {
        let c = &self.shared.counters;
        let (open, in_use) = (c.open.load(Ordering::Relaxed), c.in_use.load(Ordering::Relaxed));
        PoolStats {
            opened: c.opened.load(Ordering::Relaxed),
            in_use,
            idle: open.saturating_sub(in_use),
            waiters: c.waiters.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            wait_seconds: self.shared.wait.snapshot(),
        }
    }
}

/// The client as a tower service: an answer whose status is the upstream's failure (5xx, 429)
/// is an [`UpstreamError::Status`], so that the layers above count and retry it; any other
/// status is an answer. Always ready: the wait for a connection is bounded in the call.
impl tower_service::Service<Request<Bytes>> for HttpUpstream {
    type Response = Response<Bytes>;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, UpstreamError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let response = this.request(request).await?;
            let status = response.status().as_u16();
            if Outcome::of_status(status) == Outcome::Failure {
                let body = response.body();
                return Err(UpstreamError::Status {
                    upstream: this.shared.name.clone(),
                    status,
                    body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                    retry_after: retry_after(response.headers()),
                });
            }
            Ok(response)
        })
    }
}

/// An answer's `Retry-After` in seconds (an HTTP date is not read), at most an hour.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let seconds = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// The configured headers, values read and checked (named in errors, values never shown).
fn resolve_headers(
    upstream: &str,
    headers: &BTreeMap<String, HeaderSource>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    headers
        .iter()
        .map(|(name, source)| {
            resolve_header(name, source)
                .map_err(|e| ConfigError(format!("upstream {upstream:?}: http.headers.{name}: {e}")))
        })
        .collect()
}

/// One configured header: its name checked, its value read (from the environment for
/// [`HeaderSource::Env`]) and marked sensitive, so that hyper never logs it. The error says
/// what is wrong without showing the value.
pub fn resolve_header(name: &str, source: &HeaderSource) -> Result<(HeaderName, HeaderValue), String> {
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "not a valid header name".to_string())?;
    let text = match source {
        HeaderSource::Value(v) => v.clone(),
        HeaderSource::Env { env } => {
            std::env::var(env).map_err(|_| format!("the environment variable {env} is not set"))?
        }
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| "the value is not a valid header value".to_string())?;
    value.set_sensitive(true);
    Ok((header, value))
}

/// The system's root certificates, read once per process.
fn native_roots() -> &'static [rustls_pki_types::CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<rustls_pki_types::CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// A TLS client configuration (rustls with ring) trusting the system's root certificates,
/// read once per process, and those in `ca_file` (PEM). The error names the file.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(native_roots().iter().cloned());
    if let Some(path) = ca_file {
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no PEM certificate in it", path.display()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A call holding a connection slot.
struct InUse<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
    counters: &'a Counters,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.counters.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Opens sockets that count themselves in and out.
#[derive(Clone)]
struct CountingConnector {
    inner: HttpConnector,
    counters: Arc<Counters>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for CountingConnector {
    type Response = CountedIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<CountedIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let counters = Arc::clone(&self.counters);
        Box::pin(async move {
            let io = connecting.await?;
            counters.opened.fetch_add(1, Ordering::Relaxed);
            counters.open.fetch_add(1, Ordering::Relaxed);
            Ok(CountedIo { io, counters })
        })
    }
}

/// A pooled socket; dropping it (the pool closing the connection) counts it out.
struct CountedIo {
    io: TokioIo<TcpStream>,
    counters: Arc<Counters>,
}

impl Drop for CountedIo {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection for CountedIo {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl Read for CountedIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for CountedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
