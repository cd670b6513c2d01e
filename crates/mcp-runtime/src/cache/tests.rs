//! The cache on manual time: stale-while-revalidate with one refresh, single-flight loads,
//! shared uncached errors, negative entries on their own TTL, stale-if-error, invalidation and
//! the weight bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::*;
use crate::clock::ManualClock;

type TestCache = Cache<String, String, String>;

fn cache(config: CacheConfig) -> (TestCache, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (Cache::new(config, clock.clone()), clock)
}

fn config() -> CacheConfig {
    CacheConfig {
        ttl: Duration::from_secs(10),
        stale_while_revalidate: Duration::from_secs(10),
        stale_if_error: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(2),
        ..CacheConfig::default()
    }
}

/// A loader that counts its calls and answers `value`.
fn loader(
    calls: &Arc<AtomicUsize>,
    value: &str,
) -> impl FnOnce() -> std::future::Ready<Result<Option<String>, String>> + Send + 'static {
    let (calls, value) = (calls.clone(), value.to_string());
    move || {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Some(value)))
    }
}

#[tokio::test]
async fn a_stale_entry_is_served_while_exactly_one_refresh_runs() {
    let (c, clock) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    assert_eq!(c.get_or_load("k".into(), loader(&calls, "v1")).await.unwrap(), Served::Fresh("v1".into()));
    clock.advance(Duration::from_secs(5));
    assert_eq!(c.get_or_load("k".into(), loader(&calls, "x")).await.unwrap(), Served::Fresh("v1".into()));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "fresh: no load");

    // Past its TTL, within the stale window: ten readers get the old value; one refresh runs,
    // and it is held until all ten have read.
    clock.advance(Duration::from_secs(6));
    let gate = Arc::new(Notify::new());
    let refreshes = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let (gate, refreshes) = (gate.clone(), refreshes.clone());
        let served = c
            .get_or_load("k".into(), move || async move {
                refreshes.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                Ok(Some("v2".to_string()))
            })
            .await
            .unwrap();
        assert_eq!(served, Served::Stale("v1".into()));
    }
    // The refresh task runs while this one sleeps (one runtime thread, nothing else to wait on).
    gate.notify_one();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(refreshes.load(Ordering::SeqCst), 1, "one refresh for ten stale reads");
    assert_eq!(c.get_or_load("k".into(), loader(&calls, "x")).await.unwrap(), Served::Fresh("v2".into()));
    let s = c.stats();
    assert_eq!((s.stale, s.refreshes), (10, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_misses_of_one_key_make_one_load() {
    let (c, _) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let started = Arc::new(tokio::sync::Barrier::new(1001));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (c, calls, gate, started) = (c.clone(), calls.clone(), gate.clone(), started.clone());
            tokio::spawn(async move {
                started.wait().await;
                c.get_or_load("hot".into(), move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    Ok(Some("v".to_string()))
                })
                .await
            })
        })
        .collect();
    started.wait().await;
    // Let every caller reach the flight before the one load finishes: past the miss count,
    // joining is a few instructions under a lock.
    while c.stats().misses < 1000 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.notify_one();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Served::Fresh("v".into()));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_simultaneous_misses_make_exactly_one_load_even_when_it_lands_at_once() {
    // The load answers at once, so it can store its entry and retire its flight between one
    // caller's miss and its joining: that caller must find the entry, not load again.
    let (c, _) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    for round in 0..200 {
        let key = format!("key-{round}");
        let started = Arc::new(tokio::sync::Barrier::new(50));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let (c, calls, started, key) = (c.clone(), calls.clone(), started.clone(), key.clone());
                tokio::spawn(async move {
                    started.wait().await;
                    c.get_or_load(key, loader(&calls, "v")).await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Served::Fresh("v".into()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), round + 1, "round {round}: one load for 50 misses");
    }
}

#[tokio::test]
async fn a_load_error_goes_to_every_waiter_and_is_not_cached() {
    let (c, _) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (c, calls, gate) = (c.clone(), calls.clone(), gate.clone());
            tokio::spawn(async move {
                c.get_or_load("k".into(), move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    Err::<Option<String>, _>("upstream 503".to_string())
                })
                .await
            })
        })
        .collect();
    while c.stats().misses < 5 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();
    for w in waiters {
        assert_eq!(*w.await.unwrap().unwrap_err(), "upstream 503");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Not cached: the next lookup loads again.
    assert_eq!(c.get_or_load("k".into(), loader(&calls, "v")).await.unwrap(), Served::Fresh("v".into()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(c.stats().load_errors, 1);
}

#[tokio::test]
async fn not_found_is_cached_for_its_own_ttl() {
    let (c, clock) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let none = |calls: &Arc<AtomicUsize>| {
        let calls = calls.clone();
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok::<Option<String>, String>(None))
        }
    };
    assert_eq!(c.get_or_load("gone".into(), none(&calls)).await.unwrap(), Served::NotFound);
    clock.advance(Duration::from_millis(1999));
    assert_eq!(c.get_or_load("gone".into(), none(&calls)).await.unwrap(), Served::NotFound);
    assert_eq!((calls.load(Ordering::SeqCst), c.stats().negative), (1, 1), "served from the negative entry");
    clock.advance(Duration::from_millis(1));
    assert_eq!(c.get_or_load("gone".into(), loader(&calls, "back")).await.unwrap(), Served::Fresh("back".into()));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the negative entry expired at 2 s, not at the 10 s TTL");
}

#[tokio::test]
async fn a_failed_load_serves_the_stale_entry_within_stale_if_error() {
    let (c, clock) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    c.get_or_load("k".into(), loader(&calls, "old")).await.unwrap();
    let failing = || std::future::ready(Err::<Option<String>, _>("breaker open".to_string()));
    // Past fresh + stale-while-revalidate (20 s), within fresh + stale-if-error (70 s).
    clock.advance(Duration::from_secs(30));
    assert_eq!(c.get_or_load("k".into(), failing).await.unwrap(), Served::Stale("old".into()));
    clock.advance(Duration::from_secs(40));
    assert_eq!(*c.get_or_load("k".into(), failing).await.unwrap_err(), "breaker open", "too old even for that");
}

#[tokio::test]
async fn invalidation_by_key_predicate_and_all() {
    let (c, _) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    for k in ["a1", "a2", "b1"] {
        c.get_or_load(k.into(), loader(&calls, k)).await.unwrap();
    }
    c.invalidate(&"a1".to_string());
    c.invalidate_if(|k, _| k.starts_with('b'));
    assert_eq!(c.entry_count(), 1);
    c.invalidate_all();
    assert_eq!(c.entry_count(), 0);
    c.get_or_load("a2".into(), loader(&calls, "a2")).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4, "invalidated entries load again");
}

#[tokio::test]
async fn the_weight_bound_holds_under_many_distinct_keys() {
    let clock = ManualClock::new();
    let c: TestCache =
        Cache::with_weigher(CacheConfig { max_weight: 1_000, ..config() }, clock, |_, v: &String| v.len() as u32);
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..20_000 {
        c.get_or_load(format!("k{i}"), loader(&calls, "0123456789")).await.unwrap();
    }
    let held = c.weighted_size();
    assert!(held <= 1_000, "{held}");
    assert!(c.entry_count() <= 100);
}

/// A second layer that is down.
struct Down;

impl SecondLayer<String, String> for Down {
    fn get<'a>(&'a self, _: &'a String) -> LayerFuture<'a, Option<(String, Duration)>> {
        Box::pin(std::future::ready(Err(LayerError("connection refused".into()))))
    }
    fn put<'a>(&'a self, _: &'a String, _: &'a String, _: Duration) -> LayerFuture<'a, ()> {
        Box::pin(std::future::ready(Err(LayerError("connection refused".into()))))
    }
}

#[tokio::test]
async fn a_second_layer_outage_is_a_miss_not_an_error() {
    let clock = ManualClock::new();
    let cache: TestCache = Cache::with_second_layer(config(), clock.clone(), Arc::new(Down));
    let calls = Arc::new(AtomicUsize::new(0));
    let got = cache.get_or_load("k".into(), loader(&calls, "from upstream")).await;
    assert_eq!(got, Ok(Served::Fresh("from upstream".into())));
    let s = cache.stats();
    assert_eq!((s.misses, s.loads, s.l2_hits, s.l2_errors), (1, 1, 0, 2), "the get and the put failed: {s:?}");
    assert_eq!(cache.get_or_load("k".into(), loader(&calls, "x")).await, Ok(Served::Fresh("from upstream".into())));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the first layer still holds it");
}

/// The churn test of the runtime issue: a million distinct keys through a cache bounded at
/// 1,000 entries hold at most 1,000 (moka evicts as it goes; counted after its housekeeping).
#[tokio::test]
async fn a_million_distinct_keys_stay_within_the_weight_bound() {
    let (cache, _clock) = cache(CacheConfig { max_weight: 1_000, ..config() });
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..1_000_000u32 {
        let got = cache.get_or_load(i.to_string(), loader(&calls, "v")).await;
        assert_eq!(got, Ok(Served::Fresh("v".into())));
        if i % 100_000 == 0 {
            assert!(cache.entry_count() <= 1_000, "{} entries after {i} keys", cache.entry_count());
        }
    }
    assert!(cache.entry_count() <= 1_000, "{} entries", cache.entry_count());
    assert!(cache.weighted_size() <= 1_000);
    assert_eq!(calls.load(Ordering::SeqCst), 1_000_000, "every key was new");
}

#[tokio::test]
async fn an_entry_can_carry_its_own_ttl() {
    let (cache, clock) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    let short = |v| cache.get_or_load_with_ttl("short".into(), Duration::from_secs(1), loader(&calls, v));
    short("v1").await.unwrap();
    cache.get_or_load("default".into(), loader(&calls, "d1")).await.unwrap();
    clock.advance(Duration::from_secs(2));
    // Past its own 1 s, within the cache's 10 s: stale (with a refresh) for one, fresh for the other.
    assert_eq!(short("v2").await, Ok(Served::Stale("v1".into())));
    assert_eq!(cache.get_or_load("default".into(), loader(&calls, "d2")).await, Ok(Served::Fresh("d1".into())));
}

/// The synchronous hot path answers only what `get_or_load` would answer without loading:
/// a fresh entry or a cached "not found", counted once; anything else is left to it.
#[tokio::test]
async fn fresh_answers_fresh_and_negative_entries_and_leaves_the_rest_to_get_or_load() {
    let (c, clock) = cache(config());
    let calls = Arc::new(AtomicUsize::new(0));
    assert_eq!(c.fresh("k"), None, "nothing cached: no answer, no count");
    c.get_or_load("k".into(), loader(&calls, "v1")).await.unwrap();
    c.get_or_load("gone".into(), || std::future::ready(Ok(None))).await.unwrap();
    assert_eq!(c.fresh("k"), Some(Served::Fresh("v1".into())));
    assert_eq!(c.fresh("gone"), Some(Served::NotFound));
    clock.advance(Duration::from_secs(11));
    assert_eq!(c.fresh("k"), None, "stale: get_or_load decides (and refreshes)");
    assert_eq!(c.fresh("gone"), None, "the negative entry expired on its own TTL");
    let stats = c.stats();
    assert_eq!((stats.hits, stats.negative, stats.misses, stats.stale), (1, 1, 2, 0));
}
