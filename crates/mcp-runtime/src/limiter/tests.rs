use super::*;
use crate::clock::ManualClock;

fn rate(per_second: f64, burst: u32) -> RateConfig {
    RateConfig { per_second, burst, ..RateConfig::default() }
}

#[test]
fn a_rate_limit_admits_its_burst_then_sheds_with_the_time_to_the_next_cell() {
    let clock = ManualClock::new();
    let limit = RateLimit::new(rate(10.0, 5), clock.clone());
    for _ in 0..5 {
        limit.check().unwrap();
    }
    let shed = limit.check().unwrap_err();
    assert_eq!(shed, Overloaded::RateLimited { retry_after: Duration::from_millis(100) });
    assert_eq!(shed.reason(), "rate");
    clock.advance(Duration::from_millis(60));
    assert_eq!(limit.check().unwrap_err().retry_after(), Duration::from_millis(40));
    clock.advance(Duration::from_millis(40));
    limit.check().expect("one cell refilled after 100 ms");
    assert_eq!(limit.stats(), LimiterStats { allowed: 6, rejected: 2, keys: 1 });
}

#[test]
fn keys_are_limited_apart() {
    let clock = ManualClock::new();
    let limit = KeyedRateLimit::new(KeyedRateConfig { rate: rate(1.0, 2), max_keys: 100 }, clock.clone());
    for _ in 0..2 {
        limit.check(&"tenant-a").unwrap();
    }
    assert!(limit.check(&"tenant-a").is_err(), "tenant-a spent its burst");
    limit.check(&"tenant-b").expect("tenant-b has its own bucket");
    clock.advance(Duration::from_secs(1));
    limit.check(&"tenant-a").expect("a second later tenant-a has a cell again");
}

/// The churn test of the runtime issue: a million distinct keys, and the limiter holds at most
/// its configured number of states (while still limiting a key that keeps calling).
#[test]
fn a_million_distinct_keys_keep_at_most_max_keys_states() {
    let clock = ManualClock::new();
    let limit = KeyedRateLimit::new(KeyedRateConfig { rate: rate(1.0, 1), max_keys: 1_000 }, clock.clone());
    for key in 0..1_000_000u64 {
        limit.check(&key).expect("each new key has its burst");
        if key % 100_000 == 0 {
            assert!(limit.key_count() <= 1_000, "{} keys held at key {key}", limit.key_count());
        }
    }
    assert!(limit.key_count() <= 1_000, "{} keys held", limit.key_count());
    // The most recent key is still remembered and limited.
    assert!(limit.check(&999_999).is_err());
}

#[test]
fn the_adaptive_limit_grows_on_fast_successes_and_backs_off_on_failures() {
    let clock = ManualClock::new();
    let config =
        AdaptiveConfig { initial: 4, min: 2, max: 8, backoff_ratio: 0.5, slow_latency: Duration::from_secs(1) };
    let limit = AdaptiveLimit::new(config, clock.clone());
    // Four in flight: the fifth is shed with the smoothed latency as its retry-after.
    let permits: Vec<_> = (0..4).map(|_| limit.try_acquire().unwrap()).collect();
    let shed = limit.try_acquire().unwrap_err();
    assert!(matches!(shed, Overloaded::ConcurrencyLimited { limit: 4, .. }), "{shed:?}");
    clock.advance(Duration::from_millis(10));
    for p in permits {
        p.record(Outcome::Success);
    }
    // 4 fast successes add 1/limit each: 4 + 1/4 + ~1/4.06 + … just over 4.9.
    assert_eq!(limit.stats().limit, 4);
    for _ in 0..8 {
        limit.try_acquire().unwrap().record(Outcome::Success);
    }
    assert_eq!(limit.stats().limit, 6, "about one more per limit-worth of successes");
    // A failure halves it; so does a success slower than slow_latency; never below min.
    limit.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(limit.stats().limit, 3);
    let slow = limit.try_acquire().unwrap();
    clock.advance(Duration::from_secs(2));
    slow.record(Outcome::Success);
    assert_eq!(limit.stats().limit, 2);
    limit.try_acquire().unwrap().record(Outcome::Failure);
    assert_eq!(limit.stats().limit, 2, "floored at min");
    // Growth stops at max.
    for _ in 0..200 {
        limit.try_acquire().unwrap().record(Outcome::Success);
    }
    assert_eq!(limit.stats(), AdaptiveStats { limit: 8, in_flight: 0, rejected: 1 });
}

#[test]
fn a_dropped_adaptive_permit_frees_its_slot_without_moving_the_limit() {
    let limit = AdaptiveLimit::new(AdaptiveConfig { initial: 1, ..AdaptiveConfig::default() }, ManualClock::new());
    drop(limit.try_acquire().unwrap());
    let s = limit.stats();
    assert_eq!((s.limit, s.in_flight), (1, 0));
    let _again = limit.try_acquire().expect("the slot was freed");
}
