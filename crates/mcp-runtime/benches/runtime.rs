//! The runtime's hot paths, beside what a maintained crate does for the same job, in one run:
//! `cargo bench -p mcp-runtime --bench runtime`. Targets on the 2-core development machine:
//! breaker permit + record ≤ 100 ns uncontended, cache hit through the whole stack ≤ 1 µs (see
//! the README, "Measured figures"). Peers: the `failsafe` crate's breaker, moka alone under the
//! cache, tower's `ConcurrencyLimit` beside the bulkhead, governor alone under the rate limit.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_runtime::breaker::Window;
use mcp_runtime::{BreakerConfig, CircuitBreaker, Outcome, tokio_clock};

fn breaker(c: &mut Criterion) {
    let count = CircuitBreaker::new(BreakerConfig::default(), tokio_clock());
    c.bench_function("breaker permit + record (count window)", |b| {
        b.iter(|| black_box(count.try_acquire()).expect("closed").record(Outcome::Success))
    });
    let config = BreakerConfig {
        window: Window::Time { length: std::time::Duration::from_secs(10), buckets: 10 },
        ..BreakerConfig::default()
    };
    // The same on a manual clock (a read is one atomic load): what the breaker costs beyond
    // its two clock reads.
    let manual = CircuitBreaker::new(BreakerConfig::default(), mcp_runtime::ManualClock::new());
    c.bench_function("breaker permit + record (count window, manual clock)", |b| {
        b.iter(|| black_box(manual.try_acquire()).expect("closed").record(Outcome::Success))
    });
    let timed = CircuitBreaker::new(config, tokio_clock());
    c.bench_function("breaker permit + record (time window)", |b| {
        b.iter(|| black_box(timed.try_acquire()).expect("closed").record(Outcome::Success))
    });
}

/// The `failsafe` crate's breaker (consecutive failures, the closest it has to ours) on the same
/// call: a successful one.
fn failsafe_breaker(c: &mut Criterion) {
    use failsafe::{CircuitBreaker as _, Config, backoff, failure_policy};
    let policy = failure_policy::consecutive_failures(5, backoff::constant(std::time::Duration::from_secs(5)));
    let breaker = Config::new().failure_policy(policy).build();
    c.bench_function("peer: failsafe breaker call (consecutive failures)", |b| {
        b.iter(|| black_box(breaker.call(|| Ok::<(), ()>(()))).expect("closed"))
    });
    let default = Config::new().build();
    c.bench_function("peer: failsafe breaker call (its default: success rate over a time window)", |b| {
        b.iter(|| black_box(default.call(|| Ok::<(), ()>(()))).expect("closed"))
    });
}

/// The bulkhead's permit beside tower's `ConcurrencyLimit` around a service that answers at once.
fn bulkhead(c: &mut Criterion) {
    use mcp_runtime::{Bulkhead, BulkheadConfig};
    use tower::{Service, ServiceExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bulkhead = Bulkhead::new(BulkheadConfig::default(), tokio_clock());
    c.bench_function("bulkhead acquire + release", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    drop(black_box(bulkhead.acquire().await).expect("admitted"));
                }
                start.elapsed()
            })
        })
    });
    let inner = tower::service_fn(|()| std::future::ready(Ok::<_, std::convert::Infallible>(())));
    let mut limited = tower::limit::ConcurrencyLimit::new(inner, 32);
    c.bench_function("peer: tower ConcurrencyLimit ready + call", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let svc = limited.ready().await.expect("ready");
                    black_box(svc.call(()).await).expect("served");
                }
                start.elapsed()
            })
        })
    });
}

/// governor alone, under our per-upstream rate limit (which is governor on the runtime clock).
fn governor_alone(c: &mut Criterion) {
    use governor::{Quota, RateLimiter};
    let quota = Quota::per_second(std::num::NonZeroU32::new(1_000_000_000).unwrap())
        .allow_burst(std::num::NonZeroU32::new(1_000_000).unwrap());
    let limiter = RateLimiter::direct(quota);
    c.bench_function("peer: governor direct check", |b| b.iter(|| black_box(limiter.check()).expect("admitted")));
}

/// moka's synchronous cache alone: the floor under the cache's hit.
fn moka_alone(c: &mut Criterion) {
    let cache: moka::sync::Cache<u64, std::sync::Arc<str>> = moka::sync::Cache::builder().max_capacity(10_000).build();
    for k in 0..1000u64 {
        cache.insert(k, format!("item {k}").into());
    }
    let mut i = 0u64;
    c.bench_function("peer: moka sync get (1,000 held)", |b| {
        b.iter(|| {
            i = (i + 1) % 1000;
            black_box(cache.get(&i)).expect("held")
        })
    });
    let paths: moka::sync::Cache<String, std::sync::Arc<str>> =
        moka::sync::Cache::builder().max_capacity(10_000).build();
    let keys: Vec<String> = (0..100).map(|k| format!("/items/{k}")).collect();
    for k in &keys {
        paths.insert(k.clone(), "item".into());
    }
    c.bench_function("peer: moka sync get by path (the whole stack's key)", |b| {
        b.iter(|| {
            i = (i + 1) % 100;
            black_box(paths.get(&keys[i as usize])).expect("held")
        })
    });
}

fn cache(c: &mut Criterion) {
    use mcp_runtime::{Cache, CacheConfig};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cache: Cache<u64, std::sync::Arc<str>, ()> = Cache::new(CacheConfig::default(), tokio_clock());
    rt.block_on(async {
        for k in 0..1000u64 {
            cache.get_or_load(k, move || async move { Ok(Some(format!("item {k}").into())) }).await.unwrap();
        }
    });
    c.bench_function("cache hit (fresh entry, 1,000 held)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for i in 0..iters {
                    let served = cache.get_or_load(i % 1000, || async { Ok(None) }).await;
                    black_box(served).unwrap();
                }
                start.elapsed()
            })
        })
    });
}

fn limiter(c: &mut Criterion) {
    use mcp_runtime::{KeyedRateConfig, KeyedRateLimit, RateConfig, RateLimit};
    // Quotas far above the bench's rate: every check is admitted (the common case).
    let rate = RateConfig { per_second: 1e9, burst: 1_000_000, ..RateConfig::default() };
    let direct = RateLimit::new(rate, tokio_clock());
    c.bench_function("limiter acquire (per upstream)", |b| b.iter(|| black_box(direct.check()).expect("admitted")));
    let keyed = KeyedRateLimit::new(KeyedRateConfig { rate, max_keys: 10_000 }, tokio_clock());
    let keys: Vec<String> = (0..1000).map(|i| format!("tenant-{i}")).collect();
    let mut i = 0;
    c.bench_function("limiter acquire (keyed, 1,000 tenants)", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(keyed.check(&keys[i])).expect("admitted")
        })
    });
}

/// `runtime.upstream("catalog")?.get_json(path)` answered from the cache: the fallback chain,
/// the cache lookup and the bookkeeping of every layer a hit passes.
fn whole_stack(c: &mut Criterion) {
    use mcp_runtime::{Runtime, RuntimeConfig};
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_server, runtime) = rt.block_on(async {
        let server = MockServer::start().await;
        let item = serde_json::json!({"id": 1, "name": "widget", "price": 9.5});
        Mock::given(any()).respond_with(ResponseTemplate::new(200).set_body_json(item)).mount(&server).await;
        let yaml = format!(
            "upstreams:\n  catalog:\n    url: {}\n    rate: {{ per_second: 1e9, burst: 1000000 }}\n    adaptive: {{}}\n    fallback: {{}}\n",
            server.uri()
        );
        let runtime = Runtime::new(&RuntimeConfig::from_yaml(&yaml, "bench").unwrap(), tokio_clock()).unwrap();
        let catalog = runtime.upstream("catalog").unwrap();
        for k in 0..100 {
            catalog.get_json(&format!("/items/{k}")).await.unwrap();
        }
        (server, runtime)
    });
    let paths: Vec<String> = (0..100).map(|k| format!("/items/{k}")).collect();
    c.bench_function("whole stack, cache hit (get_json)", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for i in 0..iters {
                    let catalog = runtime.upstream("catalog").unwrap();
                    black_box(catalog.get_json(&paths[i as usize % paths.len()]).await).unwrap();
                }
                start.elapsed()
            })
        })
    });
}

/// The floor under the breaker's figure: it reads the clock twice per call (start and end, for
/// the slow-call rule).
fn clock(c: &mut Criterion) {
    let clock = tokio_clock();
    c.bench_function("runtime clock now (one read)", |b| b.iter(|| black_box(clock.now())));
    c.bench_function("std Instant::now", |b| b.iter(|| black_box(std::time::Instant::now())));
}

criterion_group!(
    benches,
    breaker,
    failsafe_breaker,
    bulkhead,
    cache,
    moka_alone,
    limiter,
    governor_alone,
    whole_stack,
    clock
);
criterion_main!(benches);
