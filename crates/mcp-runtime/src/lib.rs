//! The resilience runtime an MCP server's tools run on. It depends on nothing CI-related (no
//! octocrab, tera or statistics): a server author can use it alone.
//!
//! A tool handler holds a [`Runtime`] built from a [`RuntimeConfig`] and calls
//! `runtime.upstream("catalog")?.get_json("/items/42").await`: fallback → cache → rate limit →
//! bulkhead → adaptive limit → retry → breaker → timeout → pooled HTTP(S), in that order
//! ([`upstream`] says why). That stack is a preset of tower layers ([`layer`]), which compose
//! around any service with `tower::ServiceBuilder`. The pieces stand alone too:
//!
//! - [`clock`]: the one injectable clock (tokio's, or a manual one for tests), for reading the
//!   time and for waiting;
//! - [`breaker`]: circuit breakers; [`retry`]: backoff with jitter under a retry budget;
//! - [`cache`]: read-through cache (stale-while-revalidate, stale-if-error, negative entries,
//!   single flight, weights in bytes) with an optional second layer, [`redis`] (cargo feature
//!   `redis`), namespaced per upstream and invalidated across instances;
//! - [`limiter`], [`bulkhead`]: throttles shedding with one [`Overloaded`] error;
//! - [`http`], [`pool`]: the pooled HTTP(S) client of an upstream and a generic resource pool;
//! - [`coalesce`], [`batch`]: in-flight coalescing and the micro-batcher;
//! - [`fallback`]: the degradation chain; [`process`] and [`Runtime::prometheus`]: monitoring.
//!
//! Every time-dependent component takes a [`SharedClock`] and is tested on manual or paused
//! time.
//!
//! ```
//! use mcp_runtime::{Level, ManualClock, Runtime, RuntimeConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // An upstream nobody answers for (port 9 on loopback), with a static default to degrade to.
//! let yaml = r#"
//! upstreams:
//!   catalog:
//!     url: http://127.0.0.1:9
//!     retry: { max_attempts: 1 }
//!     fallback: { name: "unknown item" }
//! "#;
//! let config = RuntimeConfig::from_yaml(yaml, "example").unwrap();
//! let runtime = Runtime::new(&config, ManualClock::new()).unwrap();
//! let reply = runtime.upstream("catalog").unwrap().get_json("/items/42").await.unwrap();
//! assert_eq!(reply.level, Level::StaticDefault);
//! assert_eq!(reply.value.unwrap()["name"], "unknown item");
//! assert!(runtime.prometheus().contains("mcp_breaker_state"));
//! # }
//! ```

#![deny(missing_docs)]

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
    AdaptiveConfig, AdaptiveLimit, AdaptivePermit, KeyedRateConfig, KeyedRateLimit, LimiterStats, RateConfig,
    RateLimit, RateScope, SharedRate,
};
pub use overload::Overloaded;
pub use pool::{PoolConfig, PoolError, PoolStats, ResourcePool};
pub use retry::{Attempt, Idempotency, Retry, RetryConfig, RetryError, RetryStats, Retryable};
pub use stack::{DependencyHealth, Runtime, RuntimeStats, STATS_URI, UnknownUpstream, UpstreamStats};
pub use upstream::{CallError, Reply, Upstream};
