//! A lean Streamable HTTP client for load: one POST per request over pooled keep-alive HTTP/1.1
//! connections (TCP_NODELAY on), answers read as JSON or as an SSE stream.
//!
//! Two protocol eras are spoken, and told apart when connecting:
//! - **modern** (2026-07-28, stateless): no handshake and no session; every request carries the
//!   protocol version and client capabilities in `params._meta` and the `MCP-Protocol-Version`,
//!   `Mcp-Method` and `Mcp-Name` headers. A `server/discover` probe that lists 2026-07-28 is the
//!   only evidence of this era;
//! - **legacy** (2025-11-25 and before): `initialize`, then the `Mcp-Session-Id` the server gave,
//!   and the negotiated version in `MCP-Protocol-Version`, on every request. A 404 on a request
//!   carrying the session means the session expired: one caller re-initializes while the others
//!   wait for it, then each retries once. The session is DELETEd when the client is done.
//!
//! Every other answer to the probe (405, 400, -32601, a result without 2026-07-28) means legacy,
//! as the official SDKs decide; only a broken connection fails the connect.
//!
//! `https://` endpoints are reached over rustls, trusting the system's roots and an optional
//! CA file (the runtime's TLS setup); configured headers (a bearer token) go on every request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;

use super::jsonrpc::{
    Counters, Kind, MODERN_META, MODERN_VERSION, Reply, classify, initialize_params, modern_server_info,
    parse_initialize, quote_bytes,
};
use super::sse::SseParser;
use super::{CallError, ClientStats, Request, ServerInfo, ToolOutcome, jsonrpc};

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Which protocol era the connection speaks, with what that era sends on every request.
#[derive(Debug, Clone)]
enum Era {
    Modern,
    Legacy { version: HeaderValue, session: Option<HeaderValue> },
}

#[derive(Debug)]
struct State {
    era: Era,
    /// Bumped on every re-initialization, so that concurrent 404s re-initialize once.
    generation: u64,
}

/// What a connection adds to plain HTTP.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Sent with every request; values resolved and marked sensitive by the caller.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `https://` endpoints: root certificates (PEM) trusted besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
}

/// A Streamable HTTP connection to one MCP endpoint.
pub struct HttpClient {
    client: Client<HttpsConnector<CountingConnector>, Full<Bytes>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    uri: Uri,
    state: RwLock<State>,
    reinit: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    counters: Counters,
    opened: Arc<AtomicU64>,
    closed: Mutex<Option<String>>,
}

/// How one POST ended, before it is turned into a call's outcome.
enum Exchange {
    Reply(Reply),
    /// 404 on a request that carried a session id.
    SessionExpired,
}

impl HttpClient {
    /// Connects to `url` and settles the era: `server/discover`, else the `initialize` handshake
    /// (at once when `handshake` is asked for).
    pub async fn connect(
        url: &str,
        timeout: Duration,
        handshake: bool,
        options: HttpOptions,
    ) -> Result<(HttpClient, ServerInfo), CallError> {
        let uri: Uri = url.parse().map_err(|e| CallError::Transport(format!("`{url}` is not a URL: {e}")))?;
        let opened = Arc::new(AtomicU64::new(0));
        let mut http = HttpConnector::new();
        // Nagle against delayed ACK turns a sub-millisecond call into a 40 ms one.
        http.set_nodelay(true);
        http.enforce_http(false); // https:// goes through the TLS wrapper
        // The system's roots are read only for an https:// endpoint.
        let tls = match uri.scheme_str() {
            Some("https") => crate::runtime::http::tls_config(options.ca_file.as_deref())
                .map_err(|e| CallError::Transport(format!("server.ca_file: {e}")))?,
            _ => plain_only(),
        };
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(CountingConnector { inner: http, opened: opened.clone() });
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector);
        let c = HttpClient {
            client,
            headers: options.headers,
            uri,
            // Until the era is settled, answers to server requests go out as a sessionless
            // handshake-era client's would.
            state: RwLock::new(State { era: legacy_without_session(), generation: 0 }),
            reinit: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            opened,
            closed: Mutex::new(None),
        };
        let settle = async { if handshake { c.handshake().await } else { c.settle_era().await } };
        let info = tokio::time::timeout(timeout, settle).await.map_err(|_| CallError::Timeout)??;
        Ok((c, info))
    }

    async fn settle_era(&self) -> Result<ServerInfo, CallError> {
        let id = self.next_id();
        match self.post(id, "server/discover", None, "{}", &Era::Modern).await {
            Ok(Exchange::Reply(Reply::Result(raw))) => {
                if let Some(info) = modern_server_info(&raw) {
                    self.state.write().expect("state lock").era = Era::Modern;
                    return Ok(info);
                }
            }
            Err(e @ (CallError::Transport(_) | CallError::Timeout)) => return Err(e),
            _ => {}
        }
        self.handshake().await
    }

    /// The legacy handshake on a fresh session: `initialize`, then `notifications/initialized`.
    async fn handshake(&self) -> Result<ServerInfo, CallError> {
        let era = legacy_without_session();
        let id = self.next_id();
        let body = envelope(id, "initialize", &initialize_params(), &era);
        let response = self.send(Method::POST, body, None, &era).await?;
        let session = response.headers().get(&SESSION_ID).cloned();
        let raw = self.read_reply(id, response).await?.into_result()?;
        let info = parse_initialize(&raw)?;
        let version = HeaderValue::from_str(&info.protocol_version)
            .map_err(|_| CallError::Protocol(format!("unusable protocol version {:?}", info.protocol_version)))?;
        let era = Era::Legacy { version, session };
        let note = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}".to_string();
        let response = self.send(Method::POST, note, Some(("notifications/initialized", None)), &era).await?;
        if !response.status().is_success() {
            return Err(CallError::Http {
                status: response.status().as_u16(),
                message: "the server refused notifications/initialized".into(),
            });
        }
        let mut state = self.state.write().expect("state lock");
        state.era = era;
        state.generation += 1;
        Ok(info)
    }

    /// Sends one request; a `tools/call` result is also checked for `isError`.
    pub async fn call(&self, req: Request<'_>, timeout: Duration) -> Result<ToolOutcome, CallError> {
        let raw = self.request(req, timeout).await?;
        if req.method == "tools/call" { jsonrpc::tool_outcome(&raw) } else { Ok(ToolOutcome::default()) }
    }

    /// Sends one request and returns its result.
    pub async fn request(&self, req: Request<'_>, timeout: Duration) -> Result<Box<RawValue>, CallError> {
        if let Some(reason) = self.closed() {
            return Err(CallError::Transport(reason));
        }
        let id = self.next_id();
        match tokio::time::timeout(timeout, self.exchange(id, req)).await {
            Ok(result) => result,
            Err(_) => {
                self.cancel(id);
                Err(CallError::Timeout)
            }
        }
    }

    async fn exchange(&self, id: u64, req: Request<'_>) -> Result<Box<RawValue>, CallError> {
        let (era, generation) = self.era();
        match self.post(id, req.method, req.name, req.params, &era).await? {
            Exchange::Reply(reply) => reply.into_result(),
            Exchange::SessionExpired => {
                self.renew_session(generation).await?;
                let (era, _) = self.era();
                match self.post(id, req.method, req.name, req.params, &era).await? {
                    Exchange::Reply(reply) => reply.into_result(),
                    Exchange::SessionExpired => {
                        Err(CallError::Http { status: 404, message: "the new session was not found either".into() })
                    }
                }
            }
        }
    }

    /// Re-initializes after a 404, unless another caller already has since `seen`.
    async fn renew_session(&self, seen: u64) -> Result<(), CallError> {
        let _one_at_a_time = self.reinit.lock().await;
        if self.era().1 != seen {
            return Ok(());
        }
        self.handshake().await?;
        self.counters.reinitializations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Ends the session (legacy): DELETE with its id. A server may answer 405: sessions it
    /// cannot end on request. Nothing to do in the stateless era.
    pub async fn disconnect(&self, timeout: Duration) {
        let (era, _) = self.era();
        if let Era::Legacy { session: Some(_), .. } = &era {
            let _ = tokio::time::timeout(timeout, self.send(Method::DELETE, String::new(), None, &era)).await;
        }
    }

    pub fn stats(&self) -> ClientStats {
        self.counters.snapshot(self.opened.load(Ordering::Relaxed))
    }

    /// Later requests fail at once with `reason` (the server process is gone).
    pub fn close(&self, reason: String) {
        self.closed.lock().expect("closed lock").get_or_insert(reason);
    }

    pub fn closed(&self) -> Option<String> {
        self.closed.lock().expect("closed lock").clone()
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn era(&self) -> (Era, u64) {
        let s = self.state.read().expect("state lock");
        (s.era.clone(), s.generation)
    }

    /// Tells a legacy server we gave up on `id` (MCP cancellation); in the stateless era,
    /// dropping the request's connection is the cancellation.
    fn cancel(&self, id: u64) {
        let (era, _) = self.era();
        if matches!(era, Era::Modern) {
            return;
        }
        let body = format!(
            r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{id},"reason":"timeout"}}}}"#
        );
        let request = self.build(Method::POST, body, Some(("notifications/cancelled", None)), &era);
        if let Ok(request) = request {
            let send = self.client.request(request);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), send).await;
            });
        }
    }

    /// POSTs request `id` and reads its answer.
    async fn post(
        &self,
        id: u64,
        method: &str,
        name: Option<&str>,
        params: &str,
        era: &Era,
    ) -> Result<Exchange, CallError> {
        let body = envelope(id, method, params, era);
        let response = self.send(Method::POST, body, Some((method, name)), era).await?;
        if response.status() == StatusCode::NOT_FOUND && matches!(era, Era::Legacy { session: Some(_), .. }) {
            // Read the body to its end, so that the connection goes back to the pool.
            let _ = response.into_body().collect().await;
            return Ok(Exchange::SessionExpired);
        }
        self.read_reply(id, response).await.map(Exchange::Reply)
    }

    async fn send(
        &self,
        method: Method,
        body: String,
        routing: Option<(&str, Option<&str>)>,
        era: &Era,
    ) -> Result<http::Response<Incoming>, CallError> {
        let request = self.build(method, body, routing, era)?;
        self.client.request(request).await.map_err(|e| {
            let reason = format!("{}: {}", self.uri, error_chain(&e));
            // A server that refuses connections after it accepted them has gone.
            if e.is_connect() && self.opened.load(Ordering::Relaxed) > 0 {
                self.close(format!("the server stopped accepting connections at {reason}"));
            }
            CallError::Transport(reason)
        })
    }

    fn build(
        &self,
        method: Method,
        body: String,
        routing: Option<(&str, Option<&str>)>,
        era: &Era,
    ) -> Result<http::Request<Full<Bytes>>, CallError> {
        self.counters.bytes_sent.fetch_add(body.len() as u64, Ordering::Relaxed);
        let mut b = http::Request::builder().method(method).uri(self.uri.clone()).header(ACCEPT, ACCEPT_BOTH);
        for (name, value) in &self.headers {
            b = b.header(name, value.clone());
        }
        if !body.is_empty() {
            b = b.header(CONTENT_TYPE, JSON);
        }
        match era {
            Era::Legacy { version, session } => {
                b = b.header(PROTOCOL_VERSION, version.clone());
                if let Some(s) = session {
                    b = b.header(SESSION_ID, s.clone());
                }
            }
            Era::Modern => {
                b = b.header(PROTOCOL_VERSION, HeaderValue::from_static(MODERN_VERSION));
                if let Some((method, name)) = routing {
                    b = b.header(MCP_METHOD, method);
                    if let Some(name) = name {
                        b = b.header(MCP_NAME, header_safe(name));
                    }
                }
            }
        }
        b.body(Full::new(Bytes::from(body))).map_err(|e| CallError::Protocol(format!("cannot build a request: {e}")))
    }

    /// Reads the answer to request `id`: a JSON body, or an SSE stream that may carry the
    /// server's notifications and requests before the response.
    async fn read_reply(&self, id: u64, response: http::Response<Incoming>) -> Result<Reply, CallError> {
        let status = response.status();
        let sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = response.into_body();
        if !sse || !status.is_success() {
            let bytes = body.collect().await.map_err(|e| CallError::Transport(error_chain(&e)))?.to_bytes();
            self.counters.bytes_received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            return self.json_reply(id, status, &bytes);
        }
        let mut parser = SseParser::default();
        let mut answer = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CallError::Transport(error_chain(&e)))?;
            let Ok(data) = frame.into_data() else { continue };
            self.counters.bytes_received.fetch_add(data.len() as u64, Ordering::Relaxed);
            parser.feed(&data, |event| {
                if let Some(reply) = self.on_message(id, event) {
                    answer = Some(reply);
                }
            });
            // The server should end the stream after the response; reading on to its end keeps
            // the connection reusable, and the end normally arrives with the response.
        }
        answer.ok_or_else(|| CallError::Protocol(format!("the SSE stream for request {id} ended without its response")))
    }

    /// A JSON body: the response to `id`, or for an error status, the error it carries.
    fn json_reply(&self, id: u64, status: StatusCode, bytes: &[u8]) -> Result<Reply, CallError> {
        match classify(bytes) {
            Kind::Response { id: got, reply } if got == id && status.is_success() => Ok(reply),
            Kind::Response { reply: Reply::Error { code, message }, .. } => Err(CallError::JsonRpc { code, message }),
            // -32000-style errors with `"id": null` classify as invalid; take their error anyway.
            _ if !status.is_success() => Err(match error_object(bytes) {
                Some((code, message)) => CallError::JsonRpc { code, message },
                None => CallError::Http { status: status.as_u16(), message: quote_bytes(bytes) },
            }),
            _ if status == StatusCode::ACCEPTED => {
                Err(CallError::Protocol(format!("HTTP 202 with no response to request {id}")))
            }
            _ => {
                self.counters.protocol_error(bytes);
                Err(CallError::Protocol(format!("not the response to request {id}: {}", quote_bytes(bytes))))
            }
        }
    }

    /// One message from an SSE stream; returns the reply when it answers `id`.
    fn on_message(&self, id: u64, event: &[u8]) -> Option<Reply> {
        match classify(event) {
            Kind::Response { id: got, reply } if got == id => return Some(reply),
            Kind::Response { id: got, .. } if got > 0 && got < self.next_id.load(Ordering::Relaxed) => {
                self.counters.late_responses.fetch_add(1, Ordering::Relaxed);
            }
            Kind::Response { .. } | Kind::Invalid => self.counters.protocol_error(event),
            Kind::Notification => {
                self.counters.notifications.fetch_add(1, Ordering::Relaxed);
            }
            Kind::Request { answer } => {
                self.counters.server_requests.fetch_add(1, Ordering::Relaxed);
                let (era, _) = self.era();
                if let Ok(request) = self.build(Method::POST, answer, None, &era) {
                    let send = self.client.request(request);
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(5), send).await;
                    });
                }
            }
        }
        None
    }
}

fn legacy_without_session() -> Era {
    Era::Legacy { version: HeaderValue::from_static(jsonrpc::PROTOCOL_VERSION), session: None }
}

/// A request's body. In the stateless era the params carry the protocol version and client
/// capabilities in `_meta`, spliced in front of the (ready-made) params object.
fn envelope(id: u64, method: &str, params: &str, era: &Era) -> String {
    match era {
        Era::Legacy { .. } => format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#),
        Era::Modern => {
            let (sep, inner) = jsonrpc::after_meta(params);
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{{MODERN_META}{sep}{inner}}}"#)
        }
    }
}

/// The `error` of a JSON-RPC message whose id is not one of ours (`null` on transport errors).
fn error_object(bytes: &[u8]) -> Option<(i64, String)> {
    #[derive(Deserialize)]
    struct WithError {
        error: jsonrpc::ErrorObject,
    }
    serde_json::from_slice::<WithError>(bytes).ok().map(|w| (w.error.code, w.error.message))
}

/// `Mcp-Name`: verbatim when it is printable ASCII without edge whitespace, else base64 in the
/// `=?base64?…?=` sentinel, as the 2026-07-28 transport specifies.
fn header_safe(value: &str) -> HeaderValue {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain && let Ok(v) = HeaderValue::from_str(value) {
        return v;
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
    HeaderValue::from_str(&format!("=?base64?{encoded}?=")).expect("base64 is a valid header value")
}

/// An error with its causes: hyper's top-level messages ("client error (Connect)") say little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A TLS configuration for a plain `http://` endpoint, which never uses it: no roots to read.
fn plain_only() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

/// Counts the connections the pool opens (the results report them).
#[derive(Clone)]
struct CountingConnector {
    inner: HttpConnector,
    opened: Arc<AtomicU64>,
}

type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, Box<dyn std::error::Error + Send + Sync>>> + Send>>;

impl tower_service::Service<Uri> for CountingConnector {
    type Response = TokioIo<TcpStream>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let opened = self.opened.clone();
        Box::pin(async move {
            let io = connecting.await?;
            opened.fetch_add(1, Ordering::Relaxed);
            Ok(io)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stateless_envelope_carries_meta_in_front_of_the_params() {
        let body = envelope(3, "tools/call", r#"{"name":"echo","arguments":{"m":1}}"#, &Era::Modern);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], MODERN_VERSION);
        assert_eq!(v["params"]["name"], "echo");
        assert_eq!(v["params"]["arguments"]["m"], 1);
        let empty: serde_json::Value = serde_json::from_str(&envelope(4, "tools/list", "{}", &Era::Modern)).unwrap();
        assert_eq!(empty["params"].as_object().unwrap().len(), 1, "{empty}");
        let legacy = Era::Legacy { version: HeaderValue::from_static("2025-11-25"), session: None };
        assert_eq!(envelope(5, "ping", "{}", &legacy), r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":{}}"#);
    }

    #[test]
    fn discover_results_name_the_era_and_the_server() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        let fastmcp = r#"{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"f","version":"4"}},"supportedVersions":["2026-07-28"],"capabilities":{}}"#;
        let info = modern_server_info(&raw(fastmcp)).unwrap();
        assert_eq!((info.name.as_str(), info.version.as_str()), ("f", "4"));
        let plain = r#"{"supportedVersions":["2026-07-28"],"serverInfo":{"name":"p","version":"1"}}"#;
        assert_eq!(modern_server_info(&raw(plain)).unwrap().name, "p");
        // A server answering discover with only handshake-era versions is a legacy server.
        assert!(modern_server_info(&raw(r#"{"supportedVersions":["2025-11-25"]}"#)).is_none());
    }

    #[test]
    fn names_that_would_not_survive_a_header_are_base64_wrapped() {
        assert_eq!(header_safe("echo"), "echo");
        assert_eq!(header_safe("file:///a b"), "file:///a b");
        assert_eq!(header_safe("héllo"), "=?base64?aMOpbGxv?=");
        assert_eq!(header_safe(" x"), "=?base64?IHg=?=");
    }
}
