//! The runtime's hot paths. Run: `cargo bench --bench runtime`. Targets on the 2-core
//! development machine: breaker permit + record ≤ 100 ns uncontended, cache hit ≤ 250 ns, the
//! whole stack on a cache hit ≤ 2 µs (see README, "Measured figures").

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_perfcheck::runtime::breaker::Window;
use mcp_perfcheck::runtime::{BreakerConfig, CircuitBreaker, Outcome, tokio_clock};

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
    let manual = CircuitBreaker::new(BreakerConfig::default(), mcp_perfcheck::runtime::ManualClock::new());
    c.bench_function("breaker permit + record (count window, manual clock)", |b| {
        b.iter(|| black_box(manual.try_acquire()).expect("closed").record(Outcome::Success))
    });
    let timed = CircuitBreaker::new(config, tokio_clock());
    c.bench_function("breaker permit + record (time window)", |b| {
        b.iter(|| black_box(timed.try_acquire()).expect("closed").record(Outcome::Success))
    });
}

fn cache(c: &mut Criterion) {
    use mcp_perfcheck::runtime::{Cache, CacheConfig};
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
    use mcp_perfcheck::runtime::{KeyedRateConfig, KeyedRateLimit, RateConfig, RateLimit};
    // Quotas far above the bench's rate: every check is admitted (the common case).
    let rate = RateConfig { per_second: 1e9, burst: 1_000_000 };
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
    use mcp_perfcheck::runtime::{Runtime, RuntimeConfig};
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

criterion_group!(benches, breaker, cache, limiter, whole_stack, clock);
criterion_main!(benches);
