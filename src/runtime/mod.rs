//! The resilience runtime an MCP server's tools run on. It depends on nothing CI-related (no
//! octocrab, tera or statistics): a server author can use it alone.
//!
//! Built so far: [`clock`] (the one injectable clock), [`breaker`] (circuit breakers) and
//! [`cache`] (read-through cache with stale-while-revalidate, stale-if-error, negative entries
//! and single-flight loads), [`retry`] (backoff with jitter under a retry budget) and
//! [`bulkhead`] (a concurrency limit with a bounded queue that sheds load). Every
//! time-dependent component takes a [`SharedClock`] and is tested on manual time.

pub mod batch;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod clock;
pub mod coalesce;
pub mod fallback;
pub mod histogram;
pub mod http;
pub mod limiter;
pub mod overload;
pub mod pool;
pub mod process;
mod rand;
#[cfg(feature = "redis")]
pub mod redis;
pub mod retry;

pub use breaker::{BreakerConfig, CircuitBreaker, Outcome, Permit, Rejected, State};
pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadPermit};
pub use cache::{Cache, CacheConfig, CacheStats, Served};
pub use clock::{Clock, ManualClock, SharedClock, TokioClock, tokio_clock};
pub use http::{HttpConfig, HttpReply, HttpUpstream, UpstreamError};
pub use limiter::{
    AdaptiveConfig, AdaptiveLimit, AdaptivePermit, KeyedRateConfig, KeyedRateLimit, LimiterStats, RateConfig, RateLimit,
};
pub use overload::Overloaded;
pub use pool::{PoolConfig, PoolError, PoolStats, ResourcePool};
pub use retry::{Idempotency, Retry, RetryConfig, RetryError, RetryStats, Retryable};
