//! The layers that learn from outcomes: the circuit breaker and the adaptive concurrency limit.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::{BoxError, BoxFuture, ByError, Classify};
use crate::breaker::CircuitBreaker;
use crate::limiter::AdaptiveLimit;

/// Puts a [`CircuitBreaker`] around a service: a call is made only with the breaker's permit
/// and its outcome (by the [`Classify`]) is recorded; an open breaker answers
/// [`crate::Rejected`] without calling. Put a [`super::TimeoutLayer`] inside it so that a hung
/// call ends as a failure (and a slow call) rather than a cancellation.
#[derive(Debug, Clone)]
pub struct BreakerLayer<C = ByError> {
    breaker: CircuitBreaker,
    classify: C,
}

impl BreakerLayer {
    /// Errors judged by [`super::outcome_of`], every answer a success.
    pub fn new(breaker: CircuitBreaker) -> Self {
        BreakerLayer { breaker, classify: ByError }
    }
}

impl<C> BreakerLayer<C> {
    /// The same breaker, judging results by `classify` (a 5xx answer as a failure, say).
    pub fn classify<C2>(self, classify: C2) -> BreakerLayer<C2> {
        BreakerLayer { breaker: self.breaker, classify }
    }
}

impl<S, C: Clone> Layer<S> for BreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService { inner, breaker: self.breaker.clone(), classify: self.classify.clone() }
    }
}

/// The service [`BreakerLayer`] makes.
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    breaker: CircuitBreaker,
    classify: C,
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    C: Classify<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let permit = match self.breaker.try_acquire_owned() {
            Ok(permit) => permit,
            Err(rejected) => return Box::pin(std::future::ready(Err(rejected.into()))),
        };
        let call = self.inner.call(request);
        let classify = self.classify.clone();
        Box::pin(async move {
            let result = call.await.map_err(Into::into);
            permit.record(classify.classify(&result));
            result
        })
    }
}

/// Puts an [`AdaptiveLimit`] around a service: calls beyond the limit are shed with
/// [`crate::Overloaded::ConcurrencyLimited`]; each call's outcome and latency move the limit.
#[derive(Debug, Clone)]
pub struct AdaptiveLayer<C = ByError> {
    limit: Arc<AdaptiveLimit>,
    classify: C,
}

impl AdaptiveLayer {
    /// Errors judged by [`super::outcome_of`].
    pub fn new(limit: Arc<AdaptiveLimit>) -> Self {
        AdaptiveLayer { limit, classify: ByError }
    }
}

impl<C> AdaptiveLayer<C> {
    /// The same limit, judging results by `classify`.
    pub fn classify<C2>(self, classify: C2) -> AdaptiveLayer<C2> {
        AdaptiveLayer { limit: self.limit, classify }
    }
}

impl<S, C: Clone> Layer<S> for AdaptiveLayer<C> {
    type Service = ConcurrencyAdapted<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyAdapted { inner, limit: Arc::clone(&self.limit), classify: self.classify.clone() }
    }
}

/// The service [`AdaptiveLayer`] makes.
#[derive(Debug, Clone)]
pub struct ConcurrencyAdapted<S, C> {
    inner: S,
    limit: Arc<AdaptiveLimit>,
    classify: C,
}

impl<S, C, Req> Service<Req> for ConcurrencyAdapted<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    C: Classify<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let permit = match self.limit.try_acquire_owned() {
            Ok(permit) => permit,
            Err(shed) => return Box::pin(std::future::ready(Err(shed.into()))),
        };
        let call = self.inner.call(request);
        let classify = self.classify.clone();
        Box::pin(async move {
            let result = call.await.map_err(Into::into);
            permit.record(classify.classify(&result));
            result
        })
    }
}
