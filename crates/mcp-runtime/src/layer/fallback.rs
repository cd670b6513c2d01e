//! Graceful degradation as a layer: a failed call answered by a substitute.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::{BoxError, BoxFuture};

/// When the call fails, `substitute(&error)` may answer instead (a default, a degraded value,
/// a cached copy kept elsewhere); `None` lets the error through. Counts the substitutions.
pub struct FallbackLayer<F> {
    substitute: Arc<F>,
    served: Arc<AtomicU64>,
}

impl<F> Clone for FallbackLayer<F> {
    fn clone(&self) -> Self {
        FallbackLayer { substitute: Arc::clone(&self.substitute), served: Arc::clone(&self.served) }
    }
}

impl<F> FallbackLayer<F> {
    /// Failures are offered to `substitute`.
    pub fn new(substitute: F) -> Self {
        FallbackLayer { substitute: Arc::new(substitute), served: Arc::new(AtomicU64::new(0)) }
    }

    /// Calls answered by the substitute so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl<S, F> Layer<S> for FallbackLayer<F> {
    type Service = Fallback<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback { inner, substitute: Arc::clone(&self.substitute), served: Arc::clone(&self.served) }
    }
}

/// The service [`FallbackLayer`] makes.
pub struct Fallback<S, F> {
    inner: S,
    substitute: Arc<F>,
    served: Arc<AtomicU64>,
}

impl<S: Clone, F> Clone for Fallback<S, F> {
    fn clone(&self) -> Self {
        Fallback {
            inner: self.inner.clone(),
            substitute: Arc::clone(&self.substitute),
            served: Arc::clone(&self.served),
        }
    }
}

impl<S, F, Req> Service<Req> for Fallback<S, F>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    F: Fn(&BoxError) -> Option<S::Response> + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness errors are not substituted: the caller has not made a call yet.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let call = self.inner.call(request);
        let (substitute, served) = (Arc::clone(&self.substitute), Arc::clone(&self.served));
        Box::pin(async move {
            match call.await.map_err(Into::into) {
                Ok(answer) => Ok(answer),
                Err(e) => match substitute(&e) {
                    Some(answer) => {
                        served.fetch_add(1, Ordering::Relaxed);
                        Ok(answer)
                    }
                    None => Err(e),
                },
            }
        })
    }
}
