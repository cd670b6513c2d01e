//! One upstream with every layer around its calls, composed in one order so that a tool
//! handler writes `runtime.upstream("catalog")?.get_json("/items/42").await` and gets them all:
//!
//! ```text
//! fallback → cache (L1, then L2) → rate limit → bulkhead → adaptive limit → retry → breaker → pool (HTTP)
//! ```
//!
//! Why this order: the cache answers before anything is spent on the call (a hit costs no
//! token, slot or permit); the fallback wraps everything, so even a shed or rejected call gets
//! a stale value or the default. Throttles come before retry, so a retried call is admitted
//! once (its extra attempts are bounded by the retry budget instead); the breaker sits inside
//! retry, so every attempt is counted and an open breaker ends the retrying at once (Polly's
//! and Resilience4j's recommended nesting).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::batch::{BatchError, Batcher};
use super::breaker::{CircuitBreaker, Outcome, Rejected};
use super::bulkhead::Bulkhead;
use super::cache::{Cache, SecondLayer};
use super::clock::{self, SharedClock};
use super::config::{BatchEndpoint, UpstreamConfig};
use super::fallback::{Degradable, Fallback, Unavailable};
use super::http::{HttpUpstream, UpstreamError};
use super::limiter::{AdaptiveLimit, RateLimit};
use super::overload::Overloaded;
use super::retry::{Attempt, Idempotency, Retry, RetryError, Retryable};

/// Why a call through the stack failed (before the fallback chain).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    #[error(transparent)]
    Open(#[from] Rejected),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{upstream:?}: every attempt timed out ({attempts})")]
    TimedOut { upstream: String, attempts: u32 },
    #[error("{upstream:?}: the batch call failed: {message}")]
    Batch { upstream: String, message: String },
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
    pub(super) clock: SharedClock,
    pub(super) http: HttpUpstream,
    pub(super) rate: Option<RateLimit>,
    pub(super) bulkhead: Bulkhead,
    pub(super) adaptive: Option<AdaptiveLimit>,
    pub(super) retry: Retry,
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
    /// the batcher runs a task).
    pub fn new(
        name: &str,
        config: &UpstreamConfig,
        clock: SharedClock,
        second: Option<Arc<dyn SecondLayer<String, Arc<Value>>>>,
    ) -> Upstream {
        let http = HttpUpstream::new(name, &config.url, config.http.clone(), clock.clone());
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
        Upstream {
            parts: Arc::new(Parts {
                name: name.to_string(),
                clock: clock.clone(),
                rate: config.rate.map(|r| RateLimit::new(r, clock.clone())),
                bulkhead: Bulkhead::new(config.bulkhead.clone(), clock.clone()),
                adaptive: config.adaptive.map(|a| AdaptiveLimit::new(a, clock.clone())),
                retry: Retry::new(config.retry.clone(), clock.clone()),
                fallback: Fallback::new(name, config.fallback.clone().map(Arc::new)),
                http,
                breaker,
                cache,
                batcher,
            }),
        }
    }

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

    /// One load: the throttles, then retry around breaker + HTTP.
    async fn load(&self, path: &str) -> Result<Option<Arc<Value>>, CallError> {
        let p = &self.parts;
        self.throttled(|| async {
            let attempt = |a: Attempt| async move {
                let permit = p.breaker.try_acquire()?;
                // The attempt ends itself at its deadline, so that the breaker hears of the
                // timeout: a hung upstream is a failure (and a slow call), not a cancellation.
                let Ok(result) = clock::timeout_at(&*p.clock, a.deadline, p.http.get_json::<Value>(path)).await else {
                    permit.record(Outcome::Failure);
                    return Err(CallError::TimedOut { upstream: p.name.clone(), attempts: a.n });
                };
                permit.record(match &result {
                    Ok(_) => Outcome::Success,
                    Err(e) => e.outcome(),
                });
                Ok::<_, CallError>(result?.map(Arc::new))
            };
            p.retry.run(Idempotency::Idempotent, attempt).await.map_err(|e| self.unwrap_retry(e))
        })
        .await
    }

    /// Runs `call` once admitted by the rate limit, the bulkhead and the adaptive limit.
    async fn throttled<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let p = &self.parts;
        if let Some(rate) = &p.rate {
            rate.check()?;
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

    fn unwrap_retry(&self, e: RetryError<CallError>) -> CallError {
        match e {
            RetryError::Failed { attempts, last: CallError::TimedOut { upstream, .. } }
            | RetryError::BudgetExhausted { attempts, last: CallError::TimedOut { upstream, .. } } => {
                CallError::TimedOut { upstream, attempts }
            }
            RetryError::Failed { last, .. } | RetryError::BudgetExhausted { last, .. } => last,
            RetryError::TimedOut { attempts } => CallError::TimedOut { upstream: self.parts.name.clone(), attempts },
        }
    }

    /// Drops the cached answer for `path` here, from the cache's second layer and, through it,
    /// from every other instance sharing it (a write went to the upstream, say). An error is
    /// the second layer's: this instance's own entry is gone whatever it says.
    pub async fn invalidate(&self, path: &str) -> Result<(), crate::cache::LayerError> {
        self.parts.cache.invalidate_everywhere(&path.to_string()).await
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
