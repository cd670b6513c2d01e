//! One upstream with every layer around its calls, composed in one order so that a tool
//! handler writes `runtime.upstream("catalog")?.get_json("/items/42").await` and gets them all:
//!
//! ```text
//! fallback → cache (L1, then L2) → rate limit → bulkhead → adaptive limit → retry → breaker → timeout → pool (HTTP)
//! ```
//!
//! It is a preset of the [`crate::layer`]s, built from YAML: the part from the rate limit
//! down is a `tower::ServiceBuilder` stack over [`HttpUpstream`] ([`Upstream::service`] hands
//! it out, for requests of any method and headers); the cache and fallback around it add
//! what an item cache needs (stale serving levels, negative entries, a shared second layer).
//!
//! Why this order: the cache answers before anything is spent on the call (a hit costs no
//! token, slot or permit); the fallback wraps everything, so even a shed or rejected call gets
//! a stale value or the default. Throttles come before retry, so a retried call is admitted
//! once (its extra attempts are bounded by the retry budget instead); the breaker sits inside
//! retry, so every attempt is counted and an open breaker ends the retrying at once (Polly's
//! and Resilience4j's recommended nesting).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use serde_json::Value;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt};

use super::batch::{BatchError, Batcher};
use super::breaker::{CircuitBreaker, Outcome, Rejected};
use super::bulkhead::Bulkhead;
use super::cache::{Cache, SecondLayer};
use super::clock::SharedClock;
use super::config::{BatchEndpoint, ConfigError, UpstreamConfig};
use super::fallback::{Degradable, Fallback, Unavailable};
use super::http::{HttpReply, HttpUpstream, UpstreamError};
use super::layer::{
    AdaptiveLayer, BoxError, BreakerLayer, BulkheadLayer, RateLimitLayer, RetryLayer, TimedOut, TimeoutLayer, find,
};
use super::limiter::{AdaptiveLimit, RateLimit, SharedRate};
use super::overload::Overloaded;
use super::retry::{Retry, Retryable};

/// An upstream's call stack as one cloneable service: rate limit → bulkhead → adaptive limit
/// → retry → breaker → timeout → HTTP.
pub type UpstreamService = BoxCloneSyncService<Request<Bytes>, Response<Bytes>, BoxError>;

/// Why a call through the stack failed (before the fallback chain).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    /// A throttle shed the call.
    Overloaded(#[from] Overloaded),
    #[error(transparent)]
    /// The breaker rejected it.
    Open(#[from] Rejected),
    #[error(transparent)]
    /// The upstream failed.
    Upstream(#[from] UpstreamError),
    #[error("{upstream:?}: every attempt timed out ({attempts})")]
    /// Every attempt timed out.
    TimedOut {
        /// The upstream's name.
        upstream: String,
        /// Attempts that timed out.
        attempts: u32,
    },
    #[error("{upstream:?}: the batch call failed: {message}")]
    /// The batch call failed as a whole.
    Batch {
        /// The upstream's name.
        upstream: String,
        /// What went wrong.
        message: String,
    },
}

impl CallError {
    /// When to come back, where a layer knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Overloaded(o) => Some(o.retry_after()),
            CallError::Open(r) => r.retry_after(),
            // The upstream's own `Retry-After`, passed on to whoever asked.
            CallError::Upstream(e) => Retryable::retry_after(e),
            _ => None,
        }
    }
}

impl Retryable for CallError {
    fn is_retryable(&self) -> bool {
        // A timed-out attempt is worth another (the budget bounds how many).
        matches!(self, CallError::Upstream(e) if e.is_retryable()) || matches!(self, CallError::TimedOut { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Upstream(e) => Retryable::retry_after(e),
            _ => None,
        }
    }
}

/// The value served and the level of the fallback chain that served it.
pub type Reply = Degradable<Arc<Value>>;

type ItemCache = Cache<String, Arc<Value>, CallError>;

/// An upstream and its layers; cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    parts: Arc<Parts>,
}

pub(super) struct Parts {
    pub(super) name: String,
    pub(super) health: Option<String>,
    pub(super) http: HttpUpstream,
    pub(super) stack: UpstreamService,
    pub(super) rate: Option<Arc<RateLimit>>,
    pub(super) bulkhead: Arc<Bulkhead>,
    pub(super) adaptive: Option<Arc<AdaptiveLimit>>,
    pub(super) retry: Arc<Retry>,
    pub(super) breaker: CircuitBreaker,
    pub(super) cache: ItemCache,
    pub(super) fallback: Fallback<Arc<Value>>,
    pub(super) batcher: Option<Batcher<String, Arc<Value>, CallError>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("name", &self.parts.name).finish_non_exhaustive()
    }
}

impl Upstream {
    /// Builds the stack for `name` (needs a tokio runtime when a batch endpoint is configured:
    /// the batcher runs a task). Fails when the HTTP client cannot be built (a header's
    /// variable unset, an unreadable `ca_file`).
    pub fn new(
        name: &str,
        config: &UpstreamConfig,
        clock: SharedClock,
        second: Option<Arc<dyn SecondLayer<String, Arc<Value>>>>,
        fleet_rate: Option<Arc<dyn SharedRate>>,
    ) -> Result<Upstream, ConfigError> {
        let http = HttpUpstream::new(name, &config.url, config.http.clone(), clock.clone())?;
        let breaker = CircuitBreaker::new(config.breaker.clone(), clock.clone());
        let batcher = config.batch.as_ref().map(|b| batcher(name, b, &http, &breaker, &clock));
        // By bytes when asked (key plus the value's JSON), else one per entry.
        let by_bytes = config.cache.max_bytes.is_some();
        let weigher = move |key: &String, value: &Arc<Value>| if by_bytes { json_bytes(key, value) } else { 1 };
        let cache = Cache::with_weigher_and_layer(config.cache.clone(), clock.clone(), weigher, second.clone());
        if let Some(second) = second {
            // Another instance's invalidation drops the entry from this one's first layer.
            let weak = cache.downgrade();
            second.on_removed(Arc::new(move |key: &str| {
                if let Some(cache) = weak.upgrade() {
                    cache.invalidate(&key.to_string());
                }
            }));
        }
        let rate = config.rate.map(|r| {
            Arc::new(match fleet_rate {
                Some(fleet) => RateLimit::shared(r, clock.clone(), fleet),
                None => RateLimit::new(r, clock.clone()),
            })
        });
        let bulkhead = Arc::new(Bulkhead::new(config.bulkhead.clone(), clock.clone()));
        let adaptive = config.adaptive.map(|a| Arc::new(AdaptiveLimit::new(a, clock.clone())));
        let retry = Arc::new(Retry::new(config.retry.clone(), clock.clone()));
        let stack = ServiceBuilder::new()
            .option_layer(rate.clone().map(RateLimitLayer::new))
            .layer(BulkheadLayer::new(Arc::clone(&bulkhead)))
            .option_layer(adaptive.clone().map(AdaptiveLayer::new))
            .layer(RetryLayer::new(Arc::clone(&retry)))
            .layer(BreakerLayer::new(breaker.clone()))
            // Each attempt ends itself at the retry's per-attempt timeout, so that the breaker
            // hears of it: a hung upstream is a failure (and a slow call), not a cancellation.
            .layer(TimeoutLayer::new(config.retry.per_attempt_timeout, clock.clone()))
            .service(http.clone());
        Ok(Upstream {
            parts: Arc::new(Parts {
                name: name.to_string(),
                health: config.health.clone(),
                stack: BoxCloneSyncService::new(stack),
                rate,
                bulkhead,
                adaptive,
                retry,
                fallback: Fallback::new(name, config.fallback.clone().map(Arc::new)),
                http,
                breaker,
                cache,
                batcher,
            }),
        })
    }

    /// This upstream's call stack (rate limit down to HTTP) as a tower service, for requests
    /// of any method, headers and body; a relative URI goes to the upstream's URL. Shares
    /// every component (and its statistics) with [`Upstream::get_json`]; nothing is cached.
    pub fn service(&self) -> UpstreamService {
        self.parts.stack.clone()
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.parts.name
    }

    /// [`Upstream::get_json`]'s answer when the cache holds `path` fresh, without a future: a
    /// tool handler can answer a hit without building the (large) load future, and await
    /// [`Upstream::load_json`] on `None`.
    pub fn cached_json(&self, path: &str) -> Option<Result<Reply, Unavailable>> {
        let served = self.parts.cache.fresh(path)?;
        Some(self.parts.fallback.serve(Ok::<_, CallError>(served), |e| e.retry_after()))
    }

    /// `GET path` through every layer: a cached answer if fresh (or stale while one refresh
    /// runs), else one load for all concurrent callers; on failure the stale entry, the static
    /// default, or [`Unavailable`] with a retry-after. A 404 is `value: None`.
    pub async fn get_json(&self, path: &str) -> Result<Reply, Unavailable> {
        match self.cached_json(path) {
            Some(reply) => reply,
            None => self.load_json(path).await,
        }
    }

    /// [`Upstream::get_json`] past its fresh-hit check, for a caller that has just had `None`
    /// from [`Upstream::cached_json`]: a stale entry, one shared load, or the fallback.
    pub async fn load_json(&self, path: &str) -> Result<Reply, Unavailable> {
        let this = self.clone();
        let owned = path.to_string();
        let served = self.parts.cache.get_or_load(owned.clone(), move || async move { this.load(&owned).await }).await;
        self.parts.fallback.serve(served, |e| e.retry_after())
    }

    /// The item `id` from the batch endpoint: cached like `get_json` (under `batch:{id}`), and
    /// on a miss fetched in the next batch call with other callers' ids.
    pub async fn batch_get(&self, id: &str) -> Result<Reply, Unavailable> {
        let Some(batcher) = self.parts.batcher.clone() else {
            let cause = "no batch endpoint is configured".to_string();
            return Err(Unavailable { upstream: self.parts.name.clone(), cause, retry_after: None });
        };
        let this = self.clone();
        let id_owned = id.to_string();
        let load = move || async move {
            this.throttled(|| async {
                batcher.load(id_owned).await.map_err(|e| match e {
                    BatchError::Failed(e) => e,
                    BatchError::Overloaded(o) => CallError::Overloaded(o),
                    BatchError::Stopped => {
                        CallError::Batch { upstream: this.parts.name.clone(), message: "the batcher stopped".into() }
                    }
                })
            })
            .await
        };
        let served = self.parts.cache.get_or_load(format!("batch:{id}"), load).await;
        self.parts.fallback.serve(served, |e| e.retry_after())
    }

    /// One load: `GET path` through the stack, decoded.
    async fn load(&self, path: &str) -> Result<Option<Arc<Value>>, CallError> {
        let p = &self.parts;
        let request = Request::get(path).body(Bytes::new()).map_err(|e| {
            CallError::Upstream(UpstreamError::Transport {
                upstream: p.name.clone(),
                message: format!("`{path}`: {e}"),
            })
        })?;
        let response = p.stack.clone().oneshot(request).await.map_err(|e| self.call_error(e))?;
        let status = response.status().as_u16();
        let reply = HttpReply { status, retry_after: None, body: response.into_body() };
        Ok(p.http.decode::<Value>(reply)?.map(Arc::new))
    }

    /// The stack's boxed error as the typed one callers match on.
    fn call_error(&self, error: BoxError) -> CallError {
        let e = error.as_ref();
        if let Some(t) = find::<TimedOut>(e) {
            CallError::TimedOut { upstream: self.parts.name.clone(), attempts: t.attempts }
        } else if let Some(u) = find::<UpstreamError>(e) {
            CallError::Upstream(u.clone())
        } else if let Some(r) = find::<Rejected>(e) {
            CallError::Open(*r)
        } else if let Some(o) = find::<Overloaded>(e) {
            CallError::Overloaded(*o)
        } else {
            let message = error.to_string();
            CallError::Upstream(UpstreamError::Transport { upstream: self.parts.name.clone(), message })
        }
    }

    /// Runs `call` once admitted by the rate limit, the bulkhead and the adaptive limit.
    async fn throttled<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let p = &self.parts;
        if let Some(rate) = &p.rate {
            rate.acquire().await?;
        }
        let _slot = p.bulkhead.acquire().await?;
        let adaptive = p.adaptive.as_ref().map(|a| a.try_acquire()).transpose()?;
        let result = call().await;
        if let Some(permit) = adaptive {
            permit.record(match &result {
                Ok(_) => Outcome::Success,
                Err(CallError::Upstream(e)) => e.outcome(),
                Err(CallError::TimedOut { .. }) => Outcome::Failure,
                Err(_) => Outcome::Ignored,
            });
        }
        result
    }

    /// Drops the cached answer for `path` here, from the cache's second layer and, through it,
    /// from every other instance sharing it (a write went to the upstream, say). An error is
    /// the second layer's: this instance's own entry is gone whatever it says.
    pub async fn invalidate(&self, path: &str) -> Result<(), crate::cache::LayerError> {
        self.parts.cache.invalidate_everywhere(&path.to_string()).await
    }

    /// Drops every cached answer whose path satisfies `matches` (`|p| p.starts_with("/items/")`),
    /// here, from the second layer and from every other instance; answers how many the second
    /// layer held.
    pub async fn invalidate_where(
        &self,
        matches: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Result<u64, crate::cache::LayerError> {
        self.parts.cache.invalidate_where_everywhere(matches).await
    }

    /// Drops every cached answer of this upstream, everywhere ([`Upstream::invalidate_where`]).
    pub async fn invalidate_all(&self) -> Result<u64, crate::cache::LayerError> {
        self.parts.cache.invalidate_all_everywhere().await
    }

    /// `GET` of the configured `health` path straight to the upstream (no cache, retry or
    /// breaker), within `timeout`: `None` when no path is configured, else the 2xx status, or
    /// why it is not up.
    pub async fn health(&self, timeout: Duration) -> Option<Result<u16, String>> {
        let path = self.parts.health.as_deref()?;
        Some(match tokio::time::timeout(timeout, self.parts.http.get(path)).await {
            Ok(Ok(reply)) if (200..300).contains(&reply.status) => Ok(reply.status),
            Ok(Ok(reply)) => Err(format!("{path} answered {}", reply.status)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("{path}: no answer within {timeout:?}")),
        })
    }

    /// This upstream's circuit breaker: to read its state, or switch its mode at run time.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.parts.breaker
    }

    pub(super) fn parts(&self) -> &Parts {
        &self.parts
    }
}

/// An entry's weight in bytes: its key and its value as JSON (counted, not written out).
fn json_bytes(key: &str, value: &Value) -> u32 {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(key.len());
    let _ = serde_json::to_writer(&mut count, value);
    u32::try_from(count.0).unwrap_or(u32::MAX)
}

/// The batcher of an upstream's batch endpoint: each batch call goes through the breaker.
fn batcher(
    name: &str,
    endpoint: &BatchEndpoint,
    http: &HttpUpstream,
    breaker: &CircuitBreaker,
    clock: &SharedClock,
) -> Batcher<String, Arc<Value>, CallError> {
    let (http, breaker, path, name) = (http.clone(), breaker.clone(), endpoint.path.clone(), name.to_string());
    Batcher::new(endpoint.limits.clone(), clock.clone(), move |ids: Vec<String>| {
        let (http, breaker, path, name) = (http.clone(), breaker.clone(), path.clone(), name.clone());
        async move {
            let permit = breaker.try_acquire()?;
            let reply = http.post_json(&path, &serde_json::json!({ "ids": ids })).await;
            let decoded = reply.and_then(|r| http.decode::<BatchReply>(r));
            permit.record(match &decoded {
                Ok(_) => Outcome::Success,
                Err(e) => e.outcome(),
            });
            let items = decoded?
                .ok_or_else(|| CallError::Batch { upstream: name.clone(), message: format!("{path} answered 404") })?;
            Ok(items.items.into_iter().map(|(id, item)| (id, Ok(Arc::new(item)))).collect())
        }
    })
}

#[derive(serde::Deserialize)]
struct BatchReply {
    items: std::collections::HashMap<String, Value>,
}
