//! The throttles as layers: a bulkhead (bounded concurrency and queue) and rate limits, whole
//! or per key. Each sheds with [`crate::Overloaded`], carrying when to come back.

use std::hash::Hash;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service, ServiceExt};

use super::{BoxError, BoxFuture};
use crate::bulkhead::Bulkhead;
use crate::limiter::{KeyedRateLimit, RateLimit};

/// At most the [`Bulkhead`]'s calls at once; later calls wait in its bounded queue for at
/// most its queue wait, and beyond the queue are shed at once. A call holds its slot until its
/// service's future ends: around a streaming response (SSE) that is when the head is ready,
/// not when the stream ends, so bound streamed work where it runs.
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Arc<Bulkhead>,
}

impl BulkheadLayer {
    /// Calls share `bulkhead` (and its statistics).
    pub fn new(bulkhead: Arc<Bulkhead>) -> Self {
        BulkheadLayer { bulkhead }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = Bulkheaded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bulkheaded { inner, bulkhead: Arc::clone(&self.bulkhead) }
    }
}

/// The service [`BulkheadLayer`] makes.
#[derive(Debug, Clone)]
pub struct Bulkheaded<S> {
    inner: S,
    bulkhead: Arc<Bulkhead>,
}

impl<S, Req> Service<Req> for Bulkheaded<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The slot is awaited in the future (a queue wait), so the call goes to a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let bulkhead = Arc::clone(&self.bulkhead);
        Box::pin(async move {
            let _slot = bulkhead.acquire().await?;
            inner.ready().await.map_err(Into::into)?.call(request).await.map_err(Into::into)
        })
    }
}

/// Admits calls at the [`RateLimit`]'s rate and burst; the rest are shed at once.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limit: Arc<RateLimit>,
}

impl RateLimitLayer {
    /// Calls share `limit`.
    pub fn new(limit: Arc<RateLimit>) -> Self {
        RateLimitLayer { limit }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited { inner, limit: Arc::clone(&self.limit) }
    }
}

/// The service [`RateLimitLayer`] makes.
#[derive(Debug, Clone)]
pub struct RateLimited<S> {
    inner: S,
    limit: Arc<RateLimit>,
}

impl<S, Req> Service<Req> for RateLimited<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if !self.limit.is_shared() {
            if let Err(shed) = self.limit.check() {
                return Box::pin(std::future::ready(Err(shed.into())));
            }
            let call = self.inner.call(request);
            return Box::pin(async move { call.await.map_err(Into::into) });
        }
        // A shared budget answers later: the call goes to a clone, as in the bulkhead.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = Arc::clone(&self.limit);
        Box::pin(async move {
            limit.acquire().await?;
            inner.ready().await.map_err(Into::into)?.call(request).await.map_err(Into::into)
        })
    }
}

/// A rate limit per key (a tenant, a tool, a client address) read from each request by `key`;
/// the number of keys held is bounded by the [`KeyedRateLimit`].
pub struct KeyedRateLimitLayer<K: Hash + Eq + Clone + Send + Sync + 'static, F> {
    limit: Arc<KeyedRateLimit<K>>,
    key: F,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static, F: Clone> Clone for KeyedRateLimitLayer<K, F> {
    fn clone(&self) -> Self {
        KeyedRateLimitLayer { limit: Arc::clone(&self.limit), key: self.key.clone() }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static, F> KeyedRateLimitLayer<K, F> {
    /// Each request is admitted under the limit of `key(&request)`.
    pub fn new(limit: Arc<KeyedRateLimit<K>>, key: F) -> Self {
        KeyedRateLimitLayer { limit, key }
    }
}

impl<S, K: Hash + Eq + Clone + Send + Sync + 'static, F: Clone> Layer<S> for KeyedRateLimitLayer<K, F> {
    type Service = KeyedRateLimited<S, K, F>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimited { inner, limit: Arc::clone(&self.limit), key: self.key.clone() }
    }
}

/// The service [`KeyedRateLimitLayer`] makes.
pub struct KeyedRateLimited<S, K: Hash + Eq + Clone + Send + Sync + 'static, F> {
    inner: S,
    limit: Arc<KeyedRateLimit<K>>,
    key: F,
}

impl<S: Clone, K: Hash + Eq + Clone + Send + Sync + 'static, F: Clone> Clone for KeyedRateLimited<S, K, F> {
    fn clone(&self) -> Self {
        KeyedRateLimited { inner: self.inner.clone(), limit: Arc::clone(&self.limit), key: self.key.clone() }
    }
}

impl<S, K, F, Req> Service<Req> for KeyedRateLimited<S, K, F>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Fn(&Req) -> K,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Err(shed) = self.limit.check(&(self.key)(&request)) {
            return Box::pin(std::future::ready(Err(shed.into())));
        }
        let call = self.inner.call(request);
        Box::pin(async move { call.await.map_err(Into::into) })
    }
}
