//! Each runtime layer as a tower service, beside tower's own middleware (or the `failsafe`
//! crate's breaker) doing the same job, in one run: `cargo bench -p mcp-runtime --bench
//! layers`. Every figure is one `ready().await` + `call().await` through the layer around a
//! service that answers at once, on a current-thread runtime; "baseline" is that service
//! alone, so a layer's own cost is its figure minus the baseline.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_runtime::layer::{
    BoxError, BreakerLayer, BulkheadLayer, CacheLayer, FallbackLayer, RateLimitLayer, RetryLayer, TimeoutLayer,
};
use mcp_runtime::{
    BreakerConfig, Bulkhead, BulkheadConfig, Cache, CacheConfig, CircuitBreaker, Idempotency, RateConfig, RateLimit,
    Retry, RetryConfig, tokio_clock,
};
use tower::{Service, ServiceBuilder, ServiceExt};

type Answer = Arc<str>;

/// The service every layer wraps: answers its request's item at once.
fn answering() -> impl Service<u64, Response = Answer, Error = BoxError, Future: Send> + Clone + Send + Sync + 'static {
    tower::service_fn(|_: u64| std::future::ready(Ok::<Answer, BoxError>(Arc::from("item"))))
}

/// `iters` calls through `service`, timed.
fn drive<S>(rt: &tokio::runtime::Runtime, service: &mut S, iters: u64) -> Duration
where
    S: Service<u64, Response = Answer>,
    S::Error: std::fmt::Debug,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let ready = service.ready().await.expect("ready");
            black_box(ready.call(i % 100).await.expect("answered"));
        }
        start.elapsed()
    })
}

fn bench<S>(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, mut service: S)
where
    S: Service<u64, Response = Answer>,
    S::Error: std::fmt::Debug,
{
    c.bench_function(name, |b| b.iter_custom(|iters| drive(rt, &mut service, iters)));
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn breakers(c: &mut Criterion) {
    let rt = rt();
    bench(c, &rt, "baseline: service_fn ready + call", answering());
    let breaker = CircuitBreaker::new(BreakerConfig::default(), tokio_clock());
    bench(c, &rt, "layer: BreakerLayer", ServiceBuilder::new().layer(BreakerLayer::new(breaker)).service(answering()));
    // failsafe has no tower layer; its future API is the same job around the same call.
    use failsafe::futures::CircuitBreaker as _;
    let policy = failsafe::failure_policy::consecutive_failures(5, failsafe::backoff::constant(Duration::from_secs(5)));
    let failsafe = failsafe::Config::new().failure_policy(policy).build();
    let inner = answering();
    let peer = tower::service_fn(move |i: u64| {
        let (failsafe, mut inner) = (failsafe.clone(), inner.clone());
        async move { failsafe.call(inner.call(i)).await.map_err(|e| BoxError::from(format!("{e:?}"))) }
    });
    bench(c, &rt, "peer: failsafe breaker future around the call", peer);
}

fn timeouts(c: &mut Criterion) {
    let rt = rt();
    let ours =
        ServiceBuilder::new().layer(TimeoutLayer::new(Duration::from_secs(2), tokio_clock())).service(answering());
    bench(c, &rt, "layer: TimeoutLayer", ours);
    let tower_timeout = ServiceBuilder::new().timeout(Duration::from_secs(2)).service(answering());
    bench(c, &rt, "peer: tower Timeout", tower_timeout);
}

fn throttles(c: &mut Criterion) {
    let rt = rt();
    let bulkhead = Arc::new(Bulkhead::new(BulkheadConfig::default(), tokio_clock()));
    bench(
        c,
        &rt,
        "layer: BulkheadLayer",
        ServiceBuilder::new().layer(BulkheadLayer::new(bulkhead)).service(answering()),
    );
    bench(c, &rt, "peer: tower ConcurrencyLimit", ServiceBuilder::new().concurrency_limit(32).service(answering()));
    let rate = Arc::new(RateLimit::new(
        RateConfig { per_second: 1e9, burst: 1_000_000, ..RateConfig::default() },
        tokio_clock(),
    ));
    bench(c, &rt, "layer: RateLimitLayer", ServiceBuilder::new().layer(RateLimitLayer::new(rate)).service(answering()));
    // tower's limiter arms a timer when built: inside the runtime.
    let tower_rate = {
        let _in = rt.enter();
        ServiceBuilder::new().rate_limit(1_000_000_000, Duration::from_secs(1)).service(answering())
    };
    bench(c, &rt, "peer: tower RateLimit", tower_rate);
}

/// tower's retry with a policy that never retries: the cost of the layer on a call that works.
#[derive(Clone)]
struct NeverAgain;

impl tower::retry::Policy<u64, Answer, BoxError> for NeverAgain {
    type Future = std::future::Ready<()>;
    fn retry(&mut self, _: &mut u64, _: &mut Result<Answer, BoxError>) -> Option<Self::Future> {
        None
    }
    fn clone_request(&mut self, request: &u64) -> Option<u64> {
        Some(*request)
    }
}

fn retries(c: &mut Criterion) {
    let rt = rt();
    let retry = Arc::new(Retry::new(RetryConfig::default(), tokio_clock()));
    let ours = ServiceBuilder::new()
        .layer(RetryLayer::with_policy(retry, |_: &u64| Idempotency::Idempotent))
        .service(answering());
    bench(c, &rt, "layer: RetryLayer (call succeeds)", ours);
    bench(c, &rt, "peer: tower Retry (call succeeds)", ServiceBuilder::new().retry(NeverAgain).service(answering()));
}

fn caches(c: &mut Criterion) {
    let rt = rt();
    let cache: Cache<u64, Answer, BoxError> = Cache::new(CacheConfig::default(), tokio_clock());
    let mut ours = ServiceBuilder::new().layer(CacheLayer::new(cache, |i: &u64| Some(*i))).service(answering());
    drive(&rt, &mut ours, 100); // every key cached: each call after is a hit
    bench(c, &rt, "layer: CacheLayer hit", ours);

    // Every layer, in the documented order, answered from the cache.
    let clock = tokio_clock();
    let cache: Cache<u64, Answer, BoxError> = Cache::new(CacheConfig::default(), clock.clone());
    let mut stack = ServiceBuilder::new()
        .layer(FallbackLayer::new(|_: &BoxError| None::<Answer>))
        .layer(CacheLayer::new(cache, |i: &u64| Some(*i)))
        .layer(RateLimitLayer::new(Arc::new(RateLimit::new(
            RateConfig { per_second: 1e9, burst: 1_000_000, ..RateConfig::default() },
            clock.clone(),
        ))))
        .layer(BulkheadLayer::new(Arc::new(Bulkhead::new(BulkheadConfig::default(), clock.clone()))))
        .layer(RetryLayer::with_policy(Arc::new(Retry::new(RetryConfig::default(), clock.clone())), |_: &u64| {
            Idempotency::Idempotent
        }))
        .layer(BreakerLayer::new(CircuitBreaker::new(BreakerConfig::default(), clock.clone())))
        .layer(TimeoutLayer::new(Duration::from_secs(2), clock))
        .service(answering());
    drive(&rt, &mut stack, 100);
    bench(c, &rt, "stack: every layer (ServiceBuilder), cache hit", stack);

    let moka: moka::sync::Cache<u64, Answer> = moka::sync::Cache::builder().max_capacity(10_000).build();
    for k in 0..100 {
        moka.insert(k, Arc::from("item"));
    }
    let mut i = 0u64;
    c.bench_function("peer: moka sync get alone", |b| {
        b.iter(|| {
            i = (i + 1) % 100;
            black_box(moka.get(&i)).expect("held")
        })
    });
}

criterion_group!(benches, breakers, timeouts, throttles, retries, caches);
criterion_main!(benches);
