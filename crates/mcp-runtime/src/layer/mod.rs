//! Every policy of the runtime as a [tower] `Layer` + `Service`, to compose with
//! `tower::ServiceBuilder` around any service: an HTTP client, an rmcp or axum handler, a
//! database call. [`crate::Upstream`] is one such stack, preset from YAML.
//!
//! The order that works, outermost first (what `Upstream` builds, and why):
//!
//! ```text
//! FallbackLayer       a substitute for any failure below, even a shed call
//! CacheLayer          a hit spends nothing below (no token, no slot, no permit)
//! CoalesceLayer       (without a cache) identical calls in flight share one
//! RateLimitLayer      shed at once, before anything queues
//! BulkheadLayer       bounded concurrency, a bounded queue, then shedding
//! AdaptiveLayer       the concurrency limit the upstream's latency allows
//! RetryLayer          a retried call is admitted once; the budget bounds its extra attempts
//! BreakerLayer        counts every attempt; an open breaker ends the retrying at once
//! TimeoutLayer        a hung attempt ends as a failure the breaker hears of, not a cancellation
//! service             the call itself ([`crate::HttpUpstream`] for HTTP upstreams)
//! ```
//!
//! Errors cross layers boxed ([`BoxError`], tower's convention) and stay typed inside:
//! [`crate::Rejected`] (breaker), [`crate::Overloaded`] (throttles), [`TimedOut`],
//! [`crate::UpstreamError`] (HTTP) or the inner service's own. [`outcome_of`],
//! [`is_retryable`] and [`retry_after`] classify one by downcasting, looking through the
//! [`SharedError`] that coalescing and caching hand to every waiter.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use mcp_runtime::layer::{BreakerLayer, BulkheadLayer, RetryLayer, TimeoutLayer};
//! use mcp_runtime::{Bulkhead, BulkheadConfig, CircuitBreaker, BreakerConfig, Idempotency, Retry};
//! use mcp_runtime::{RetryConfig, tokio_clock};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let clock = tokio_clock();
//! let lookup = service_fn(|id: u32| async move { Ok::<_, std::io::Error>(format!("item {id}")) });
//! let stack = ServiceBuilder::new()
//!     .layer(BulkheadLayer::new(Arc::new(Bulkhead::new(BulkheadConfig::default(), clock.clone()))))
//!     .layer(RetryLayer::with_policy(Arc::new(Retry::new(RetryConfig::default(), clock.clone())), |_: &u32| {
//!         Idempotency::Idempotent
//!     }))
//!     .layer(BreakerLayer::new(CircuitBreaker::new(BreakerConfig::default(), clock.clone())))
//!     .layer(TimeoutLayer::new(Duration::from_secs(2), clock))
//!     .service(lookup);
//! assert_eq!(stack.oneshot(42).await?, "item 42");
//! # Ok(())
//! # }
//! ```
//!
//! [tower]: https://docs.rs/tower

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use tower::BoxError;

use crate::breaker::{Outcome, Rejected};
use crate::http::UpstreamError;
use crate::overload::Overloaded;
use crate::retry::Retryable;
use crate::upstream::CallError;

mod breaker;
mod cache;
mod fallback;
mod retry;
mod throttle;
mod timeout;

pub use breaker::{AdaptiveLayer, BreakerLayer, CircuitBreakerService, ConcurrencyAdapted};
pub use cache::{CacheLayer, Cached, Coalesce, CoalesceLayer};
pub use fallback::{Fallback, FallbackLayer};
pub use retry::{ByRequest, IdempotencyPolicy, Idempotent, RetryLayer, Retrying};
pub use throttle::{BulkheadLayer, Bulkheaded, KeyedRateLimitLayer, KeyedRateLimited, RateLimitLayer, RateLimited};
pub use timeout::{TimedOut, Timeout, TimeoutLayer};

/// The future every layer's service returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'static>>;

/// How a layer that learns from outcomes (the breaker, the adaptive limit) reads a call's
/// result. Any `Fn(&Result<Res, BoxError>) -> Outcome` is one; [`ByError`] is the default.
pub trait Classify<Res>: Clone + Send + Sync + 'static {
    /// The outcome of one call.
    fn classify(&self, result: &Result<Res, BoxError>) -> Outcome;
}

/// Every answer is a success; an error is judged by [`outcome_of`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ByError;

impl<Res> Classify<Res> for ByError {
    fn classify(&self, result: &Result<Res, BoxError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => outcome_of(e.as_ref()),
        }
    }
}

impl<Res, F> Classify<Res> for F
where
    F: Fn(&Result<Res, BoxError>) -> Outcome + Clone + Send + Sync + 'static,
{
    fn classify(&self, result: &Result<Res, BoxError>) -> Outcome {
        self(result)
    }
}

/// An error shared by every caller that waited on one call (coalescing, a cache's single
/// flight): it reads, classifies and downcasts as the error it wraps.
#[derive(Debug, Clone)]
pub struct SharedError(pub Arc<BoxError>);

impl SharedError {
    /// The error every waiter got.
    pub fn inner(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.0.as_ref().as_ref()
    }
}

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.inner(), f)
    }
}

impl Error for SharedError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner().source()
    }
}

/// `error` as a `T`, looking through [`SharedError`]s.
pub fn find<'a, T: Error + 'static>(error: &'a (dyn Error + Send + Sync + 'static)) -> Option<&'a T> {
    match error.downcast_ref::<SharedError>() {
        Some(shared) => find(shared.inner()),
        None => error.downcast_ref::<T>(),
    }
}

/// How the breaker and the adaptive limit count an error: a timeout, a transport failure, a
/// 5xx or 429 is the upstream's fault; a 4xx or an undecodable answer says it is up; our own
/// shedding (an open breaker, a full queue, a pool timeout) says nothing of it. An error of
/// a type the runtime does not know is a failure.
pub fn outcome_of(error: &(dyn Error + Send + Sync + 'static)) -> Outcome {
    if let Some(e) = find::<UpstreamError>(error) {
        e.outcome()
    } else if find::<Rejected>(error).is_some() || find::<Overloaded>(error).is_some() {
        Outcome::Ignored
    } else if let Some(e) = find::<CallError>(error) {
        match e {
            CallError::Upstream(u) => u.outcome(),
            CallError::Overloaded(_) | CallError::Open(_) => Outcome::Ignored,
            CallError::TimedOut { .. } | CallError::Batch { .. } => Outcome::Failure,
        }
    } else {
        Outcome::Failure
    }
}

/// Whether another attempt is worth making: a timeout or a failure the upstream may recover
/// from (a 5xx, a 429, a reset connection). An error of a type the runtime does not know is
/// not retried: repeating a call is only safe when we know why it failed.
pub fn is_retryable(error: &(dyn Error + Send + Sync + 'static)) -> bool {
    if find::<TimedOut>(error).is_some() {
        true
    } else if let Some(e) = find::<UpstreamError>(error) {
        e.is_retryable()
    } else if let Some(e) = find::<CallError>(error) {
        e.is_retryable()
    } else {
        false
    }
}

/// When to come back, where the error says: an upstream's `Retry-After`, an open breaker's
/// remaining time, a throttle's hint.
pub fn retry_after(error: &(dyn Error + Send + Sync + 'static)) -> Option<Duration> {
    if let Some(e) = find::<UpstreamError>(error) {
        Retryable::retry_after(e)
    } else if let Some(e) = find::<Rejected>(error) {
        e.retry_after()
    } else if let Some(e) = find::<Overloaded>(error) {
        Some(e.retry_after())
    } else {
        find::<CallError>(error).and_then(CallError::retry_after)
    }
}

#[cfg(test)]
mod tests;
