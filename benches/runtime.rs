//! The runtime's hot paths. Run: `cargo bench --bench runtime`. Targets on the 2-core
//! development machine: breaker permit + record ≤ 100 ns uncontended, cache hit ≤ 250 ns (see
//! README, "Measured figures").

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

/// The floor under the breaker's figure: it reads the clock twice per call (start and end, for
/// the slow-call rule).
fn clock(c: &mut Criterion) {
    let clock = tokio_clock();
    c.bench_function("runtime clock now (one read)", |b| b.iter(|| black_box(clock.now())));
}

criterion_group!(benches, breaker, cache, clock);
criterion_main!(benches);
