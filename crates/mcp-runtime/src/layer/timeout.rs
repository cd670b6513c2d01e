//! A per-call deadline on the runtime's clock whose expiry is an error the breaker counts.

use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

use super::{BoxError, BoxFuture};
use crate::clock::{self, SharedClock};

/// The call did not finish within its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no answer within {after:?} ({attempts} attempt(s))")]
pub struct TimedOut {
    /// The time each attempt was given.
    pub after: Duration,
    /// Attempts that timed out in a row (set by [`super::RetryLayer`]; 1 from the timeout).
    pub attempts: u32,
}

/// Ends a call that outlasts `after` with [`TimedOut`] (a failure to the breaker, and
/// retryable), timed by the runtime's clock. Unlike `tower::timeout`, whose `Elapsed` the
/// breaker would not know, and whose timer a manual clock cannot move.
#[derive(Debug, Clone)]
pub struct TimeoutLayer {
    after: Duration,
    clock: SharedClock,
}

impl TimeoutLayer {
    /// Each call gets `after` on `clock`.
    pub fn new(after: Duration, clock: SharedClock) -> Self {
        TimeoutLayer { after, clock }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout { inner, after: self.after, clock: self.clock.clone() }
    }
}

/// The service [`TimeoutLayer`] makes.
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    after: Duration,
    clock: SharedClock,
}

impl<S, Req> Service<Req> for Timeout<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let call = self.inner.call(request);
        let (after, clock) = (self.after, self.clock.clone());
        Box::pin(async move {
            match clock::timeout(&*clock, after, call).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(TimedOut { after, attempts: 1 }.into()),
            }
        })
    }
}
