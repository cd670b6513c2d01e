//! Calls answered without calling: coalescing of identical calls in flight, and a
//! read-through cache (with the cache's stale serving, single flight and second layer).

use std::hash::Hash;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service, ServiceExt};

use super::{BoxError, BoxFuture, SharedError};
use crate::cache::{Cache, Served};
use crate::coalesce::Coalescer;

/// While a call for a key runs, later requests with the same key (read by `key`; `None`:
/// never coalesced, a write say) wait for its answer instead of calling. Every waiter gets
/// the answer, or the error as a [`SharedError`].
pub struct CoalesceLayer<K, Res, F> {
    flights: Arc<Coalescer<K, Result<Res, SharedError>>>,
    key: F,
}

impl<K, Res, F: Clone> Clone for CoalesceLayer<K, Res, F> {
    fn clone(&self) -> Self {
        CoalesceLayer { flights: Arc::clone(&self.flights), key: self.key.clone() }
    }
}

impl<K: Hash + Eq + Clone, Res: Clone, F> CoalesceLayer<K, Res, F> {
    /// Requests coalesce by `key(&request)`.
    pub fn new(key: F) -> Self {
        CoalesceLayer { flights: Arc::new(Coalescer::default()), key }
    }

    /// Callers that joined a call already in flight, so far.
    pub fn joined(&self) -> u64 {
        self.flights.joined()
    }
}

impl<S, K, Res, F: Clone> Layer<S> for CoalesceLayer<K, Res, F> {
    type Service = Coalesce<S, K, Res, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Coalesce { inner, flights: Arc::clone(&self.flights), key: self.key.clone() }
    }
}

/// The service [`CoalesceLayer`] makes.
pub struct Coalesce<S, K, Res, F> {
    inner: S,
    flights: Arc<Coalescer<K, Result<Res, SharedError>>>,
    key: F,
}

impl<S: Clone, K, Res, F: Clone> Clone for Coalesce<S, K, Res, F> {
    fn clone(&self) -> Self {
        Coalesce { inner: self.inner.clone(), flights: Arc::clone(&self.flights), key: self.key.clone() }
    }
}

impl<S, K, F, Req> Service<Req> for Coalesce<S, K, S::Response, F>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Clone + Send + Sync + 'static,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Fn(&Req) -> Option<K>,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let Some(key) = (self.key)(&request) else {
            let call = self.inner.call(request);
            return Box::pin(async move { call.await.map_err(Into::into) });
        };
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let flights = Arc::clone(&self.flights);
        Box::pin(async move {
            let call = || async move {
                let answer = async { inner.ready().await.map_err(Into::into)?.call(request).await.map_err(Into::into) };
                answer.await.map_err(|e: BoxError| SharedError(Arc::new(e)))
            };
            flights.run(key, call).await.map_err(|e| Box::new(e) as BoxError)
        })
    }
}

/// Answers from a [`Cache`] keyed by `key(&request)` (`None`: not cached, a write say), and
/// calls the service on a miss: once for all concurrent misses, with the cache's stale serving
/// when the call fails. Its hits, misses and loads are the cache's statistics.
pub struct CacheLayer<K, Res, F> {
    cache: Cache<K, Res, BoxError>,
    key: F,
}

impl<K, Res, F: Clone> Clone for CacheLayer<K, Res, F> {
    fn clone(&self) -> Self {
        CacheLayer { cache: self.cache.clone(), key: self.key.clone() }
    }
}

impl<K, Res, F> CacheLayer<K, Res, F> {
    /// Answers from `cache` (build it with the config, clock and second layer it needs).
    pub fn new(cache: Cache<K, Res, BoxError>, key: F) -> Self {
        CacheLayer { cache, key }
    }
}

impl<S, K, Res, F: Clone> Layer<S> for CacheLayer<K, Res, F> {
    type Service = Cached<S, K, Res, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Cached { inner, cache: self.cache.clone(), key: self.key.clone() }
    }
}

/// The service [`CacheLayer`] makes.
pub struct Cached<S, K, Res, F> {
    inner: S,
    cache: Cache<K, Res, BoxError>,
    key: F,
}

impl<S: Clone, K, Res, F: Clone> Clone for Cached<S, K, Res, F> {
    fn clone(&self) -> Self {
        Cached { inner: self.inner.clone(), cache: self.cache.clone(), key: self.key.clone() }
    }
}

impl<S, K, F, Req> Service<Req> for Cached<S, K, S::Response, F>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Clone + Send + Sync + 'static,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Fn(&Req) -> Option<K>,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // A hit needs nothing of the inner service, but tower's contract is per call: ask.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let Some(key) = (self.key)(&request) else {
            let call = self.inner.call(request);
            return Box::pin(async move { call.await.map_err(Into::into) });
        };
        if let Some(Served::Fresh(hit) | Served::Stale(hit)) = self.cache.fresh(&key) {
            return Box::pin(std::future::ready(Ok(hit)));
        }
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let cache = self.cache.clone();
        Box::pin(async move {
            let load = move || async move {
                let answer = inner.ready().await.map_err(Into::into)?.call(request).await.map_err(Into::into);
                answer.map(Some)
            };
            match cache.get_or_load(key, load).await {
                Ok(Served::Fresh(v) | Served::Stale(v)) => Ok(v),
                // The load never answers "not found": only a service's own answer is cached.
                Ok(Served::NotFound) => unreachable!("a cache layer's loads always answer a value"),
                Err(e) => Err(Box::new(SharedError(e)) as BoxError),
            }
        })
    }
}
