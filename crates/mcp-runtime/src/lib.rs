//! The resilience runtime an MCP server's tools run on. It depends on nothing CI-related (no
//! octocrab, tera or statistics): a server author can use it alone.
//!
//! A tool handler holds a [`Runtime`] built from a [`RuntimeConfig`] and calls
//! `runtime.upstream("catalog")?.get_json("/items/42").await`: fallback → cache → rate limit →
//! bulkhead → adaptive limit → retry → breaker → pooled HTTP, in that order ([`upstream`] says
//! why). The pieces stand alone too:
//!
//! - [`clock`]: the one injectable clock (tokio's, or a manual one for tests);
//! - [`breaker`]: circuit breakers; [`retry`]: backoff with jitter under a retry budget;
//! - [`cache`]: read-through cache (stale-while-revalidate, stale-if-error, negative entries,
//!   single flight) with an optional second layer, [`redis`] (cargo feature `redis`);
//! - [`limiter`], [`bulkhead`]: throttles shedding with one [`Overloaded`] error;
//! - [`http`], [`pool`]: the pooled client of an upstream and a generic resource pool;
//! - [`coalesce`], [`batch`]: in-flight coalescing and the micro-batcher;
//! - [`fallback`]: the degradation chain; [`process`] and [`Runtime::prometheus`]: monitoring.
//!
//! Every time-dependent component takes a [`SharedClock`] and is tested on manual or paused
//! time.

pub mod batch;
pub mod breaker;
pub mod bulkhead;
pub mod cache;
pub mod clock;
pub mod coalesce;
pub mod config;
pub mod fallback;
pub mod histogram;
pub mod http;
pub mod layer;
pub mod limiter;
mod monitor;
pub mod overload;
pub mod pool;
pub mod process;
mod rand;
#[cfg(feature = "redis")]
pub mod redis;
pub mod retry;
mod stack;
pub mod upstream;

pub use batch::{BatchConfig, BatchError, Batcher};
pub use breaker::{BreakerConfig, CircuitBreaker, Outcome, Permit, Rejected, State};
pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadPermit};
pub use cache::{Cache, CacheConfig, CacheStats, Served};
pub use cache::{LayerError, Namespaced, RemovedListener, SecondLayer, WeakCache};
pub use clock::{Clock, ManualClock, SharedClock, TokioClock, tokio_clock, unix_time};
pub use config::{ConfigError, RuntimeConfig, UpstreamConfig};
pub use fallback::{Degradable, Fallback, Level, Unavailable};
pub use http::{HttpConfig, HttpReply, HttpUpstream, UpstreamError};
pub use limiter::{
    AdaptiveConfig, AdaptiveLimit, AdaptivePermit, KeyedRateConfig, KeyedRateLimit, LimiterStats, RateConfig, RateLimit,
};
pub use overload::Overloaded;
pub use pool::{PoolConfig, PoolError, PoolStats, ResourcePool};
pub use retry::{Attempt, Idempotency, Retry, RetryConfig, RetryError, RetryStats, Retryable};
pub use stack::{Runtime, RuntimeStats, STATS_URI, UnknownUpstream, UpstreamStats};
pub use upstream::{CallError, Reply, Upstream};
