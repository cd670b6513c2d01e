//! Retries under a budget, honouring the upstream's `Retry-After`, for calls marked
//! idempotent.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service, ServiceExt};

use super::{BoxError, BoxFuture, TimedOut};
use crate::retry::{Idempotency, Retry, RetryError, Retryable};

/// A request that says whether repeating it is safe.
pub trait Idempotent {
    /// Whether [`RetryLayer`] may send it again.
    fn idempotency(&self) -> Idempotency;
}

/// An HTTP request is idempotent by its method (GET, HEAD, OPTIONS, TRACE, PUT, DELETE: RFC
/// 9110 §9.2.2), unless an [`Idempotency`] in its extensions says otherwise: insert
/// `Idempotency::MarkedSafe` on a POST that carries an idempotency key.
impl<B> Idempotent for http::Request<B> {
    fn idempotency(&self) -> Idempotency {
        if let Some(marked) = self.extensions().get::<Idempotency>() {
            return *marked;
        }
        use http::Method;
        match *self.method() {
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE => {
                Idempotency::Idempotent
            }
            _ => Idempotency::NotIdempotent,
        }
    }
}

/// Decides a request's [`Idempotency`] for [`RetryLayer`]: [`ByRequest`] asks the request
/// ([`Idempotent`]); any `Fn(&Req) -> Idempotency` decides for requests that cannot say.
pub trait IdempotencyPolicy<Req>: Clone + Send + Sync + 'static {
    /// Whether `request` may be sent again.
    fn idempotency(&self, request: &Req) -> Idempotency;
}

/// The request decides ([`Idempotent`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ByRequest;

impl<Req: Idempotent> IdempotencyPolicy<Req> for ByRequest {
    fn idempotency(&self, request: &Req) -> Idempotency {
        request.idempotency()
    }
}

impl<Req, F> IdempotencyPolicy<Req> for F
where
    F: Fn(&Req) -> Idempotency + Clone + Send + Sync + 'static,
{
    fn idempotency(&self, request: &Req) -> Idempotency {
        self(request)
    }
}

/// Retries a failed call with backoff and jitter while the error is retryable
/// ([`super::is_retryable`]), the request idempotent, and the [`Retry`]'s budget and deadline
/// allow; each wait is at least the error's `Retry-After`. The last error comes out as it
/// was, so that callers above classify it as they would without retries.
#[derive(Debug, Clone)]
pub struct RetryLayer<P = ByRequest> {
    retry: Arc<Retry>,
    policy: P,
}

impl RetryLayer {
    /// Retries requests that say they are idempotent ([`Idempotent`]).
    pub fn new(retry: Arc<Retry>) -> Self {
        RetryLayer { retry, policy: ByRequest }
    }
}

impl<P> RetryLayer<P> {
    /// Retries requests `policy` says are idempotent.
    pub fn with_policy(retry: Arc<Retry>, policy: P) -> Self {
        RetryLayer { retry, policy }
    }
}

impl<S, P: Clone> Layer<S> for RetryLayer<P> {
    type Service = Retrying<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Retrying { inner, retry: Arc::clone(&self.retry), policy: self.policy.clone() }
    }
}

/// The service [`RetryLayer`] makes.
#[derive(Debug, Clone)]
pub struct Retrying<S, P> {
    inner: S,
    retry: Arc<Retry>,
    policy: P,
}

/// An attempt's error, as the retry loop sees it.
struct Failed(BoxError);

impl Retryable for Failed {
    fn is_retryable(&self) -> bool {
        super::is_retryable(self.0.as_ref())
    }

    fn retry_after(&self) -> Option<Duration> {
        // Only the upstream's own ask delays a retry; a breaker's or throttle's hint is for
        // whoever called.
        super::find::<crate::UpstreamError>(self.0.as_ref()).and_then(Retryable::retry_after)
    }
}

impl<S, P, Req> Service<Req> for Retrying<S, P>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    Req: Clone + Send + 'static,
    P: IdempotencyPolicy<Req>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The readied service makes the first attempt; clones (made ready each time) the rest.
        let clone = self.inner.clone();
        let first = std::mem::replace(&mut self.inner, clone);
        let idempotency = self.policy.idempotency(&request);
        let retry = Arc::clone(&self.retry);
        Box::pin(async move {
            let template = first.clone();
            let mut first = Some(first);
            let attempt = move |_| {
                let mut service = first.take().unwrap_or_else(|| template.clone());
                let request = request.clone();
                async move {
                    let ready = service.ready().await.map_err(|e| Failed(e.into()))?;
                    ready.call(request).await.map_err(|e| Failed(e.into()))
                }
            };
            retry.run(idempotency, attempt).await.map_err(|e| match e {
                RetryError::Failed { attempts, last: Failed(last) }
                | RetryError::BudgetExhausted { attempts, last: Failed(last) } => with_attempts(last, attempts),
                RetryError::TimedOut { attempts } => {
                    TimedOut { after: retry.config().per_attempt_timeout, attempts }.into()
                }
            })
        })
    }
}

/// A timeout's error counting every attempt that timed out; any other error as it was.
fn with_attempts(error: BoxError, attempts: u32) -> BoxError {
    match error.downcast::<TimedOut>() {
        Ok(timed_out) => TimedOut { attempts, ..*timed_out }.into(),
        Err(other) => other,
    }
}
