//! The pooled HTTP client of one named upstream: at most `max_connections` connections (a
//! caller beyond waits at most `max_wait`), connect and request timeouts, idle timeout,
//! keep-alive and TCP_NODELAY, with the pool statistics every pool reports.
//!
//! Built on hyper-util's pooled client (the pool inside reqwest) rather than on reqwest itself:
//! reqwest's connector hands back an opaque connection, so it can count connections opened but
//! never closed, and could not say how many are open or idle. Here the connector wraps each
//! socket, which counts itself out when the pool drops it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::breaker::Outcome;
use super::clock::SharedClock;
use super::histogram::{Histogram, WAIT_SECONDS};
use super::pool::PoolStats;
use super::retry::Retryable;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Connections open at most (each carries one request at a time: HTTP/1.1).
    pub max_connections: usize,
    /// The longest a call waits for a connection before [`UpstreamError::PoolTimeout`].
    #[serde(with = "super::config::duration")]
    pub max_wait: Duration,
    #[serde(with = "super::config::duration")]
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
        }
    }
}

/// How a call to an upstream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {upstream:?}: no connection free within {waited:?} ({in_use} in use)")]
    PoolTimeout { upstream: String, waited: Duration, in_use: u64 },
    #[error("upstream {upstream:?}: {message}")]
    Transport { upstream: String, message: String },
    #[error("upstream {upstream:?}: no answer within {after:?}")]
    Timeout { upstream: String, after: Duration },
    #[error("upstream {upstream:?} answered {status}: {body}")]
    Status { upstream: String, status: u16, body: String, retry_after: Option<Duration> },
    #[error("upstream {upstream:?}: the answer is not the expected JSON: {message}")]
    Decode { upstream: String, message: String },
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
    pub status: u16,
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

struct Shared {
    name: String,
    base: String,
    config: HttpConfig,
    clock: SharedClock,
    client: Client<CountingConnector, Full<Bytes>>,
    slots: Semaphore,
    counters: Arc<Counters>,
    wait: Histogram,
}

impl HttpUpstream {
    /// A client for the upstream called `name` at `base_url` (`http://host:port`, no trailing
    /// slash needed); paths are appended to it.
    pub fn new(name: impl Into<String>, base_url: &str, config: HttpConfig, clock: SharedClock) -> Self {
        let counters = Arc::new(Counters::default());
        let mut http = HttpConnector::new();
        // Nagle against delayed ACK turns a sub-millisecond call into a 40 ms one.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_keepalive(config.keep_alive);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.idle_timeout)
            .pool_max_idle_per_host(config.max_connections)
            .pool_timer(TokioTimer::new())
            .build(CountingConnector { inner: http, counters: Arc::clone(&counters) });
        HttpUpstream {
            shared: Arc::new(Shared {
                name: name.into(),
                base: base_url.trim_end_matches('/').to_string(),
                slots: Semaphore::new(config.max_connections),
                config,
                clock,
                client,
                counters,
                wait: Histogram::new(WAIT_SECONDS),
            }),
        }
    }

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
        let s = &self.shared;
        let _slot = self.slot().await?;
        let uri: Uri = format!("{}{}", s.base, path).parse().map_err(|e| UpstreamError::Transport {
            upstream: s.name.clone(),
            message: format!("`{}{path}` is not a URL: {e}", s.base),
        })?;
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(body.unwrap_or_default())).expect("a valid request");
        let exchange = async {
            let response = s.client.request(request).await.map_err(|e| self.transport(&e))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(3600)));
            let body = Limited::new(response.into_body(), s.config.max_body_bytes)
                .collect()
                .await
                .map_err(|e| UpstreamError::Transport {
                    upstream: s.name.clone(),
                    message: format!("reading the body: {e}"),
                })?
                .to_bytes();
            Ok(HttpReply { status, body, retry_after })
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
