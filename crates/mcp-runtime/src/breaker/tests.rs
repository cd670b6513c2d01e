//! The breaker on manual time: each trip rule, recovery, the half-open permit cap under
//! concurrency, the half-open deadline, backoff within its jitter, and the modes.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;

fn breaker(config: BreakerConfig) -> (CircuitBreaker, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (CircuitBreaker::new(config, clock.clone()), clock)
}

fn call(b: &CircuitBreaker, outcome: Outcome) {
    b.try_acquire().expect("closed").record(outcome);
}

/// Rules off unless a test turns one on.
fn quiet() -> BreakerConfig {
    BreakerConfig {
        window: Window::Count(10),
        minimum_calls: 10,
        failure_rate: 1.1,
        slow_call_rate: 1.1,
        consecutive_failures: None,
        jitter: 0.0,
        ..BreakerConfig::default()
    }
}

#[test]
fn the_failure_rate_trips_once_the_minimum_is_reached() {
    let (b, _) = breaker(BreakerConfig { failure_rate: 0.5, ..quiet() });
    for i in 0..9 {
        call(&b, if i % 2 == 0 { Outcome::Failure } else { Outcome::Success });
    }
    assert_eq!(b.state(), State::Closed, "5 of 9 failed, but 9 calls are below the minimum of 10");
    call(&b, Outcome::Success);
    assert_eq!(b.state(), State::Open, "5 of 10: 50%");
    assert!(matches!(b.try_acquire(), Err(Rejected::Open { retry_after }) if retry_after == Duration::from_secs(5)));
}

#[test]
fn the_slow_call_rate_trips_on_successful_but_slow_calls() {
    let (b, clock) =
        breaker(BreakerConfig { slow_call_rate: 0.5, slow_call_duration: Duration::from_secs(1), ..quiet() });
    for i in 0..10 {
        let p = b.try_acquire().unwrap();
        clock.advance(if i < 5 { Duration::from_millis(1500) } else { Duration::from_millis(10) });
        p.record(Outcome::Success);
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!((b.stats().slow, b.stats().failures), (5, 0));
}

#[test]
fn with_the_defaults_calls_slower_than_a_second_but_within_the_attempt_timeout_trip_it() {
    let (b, clock) = breaker(BreakerConfig::default());
    let attempt_timeout = crate::RetryConfig::default().per_attempt_timeout;
    assert!(BreakerConfig::default().slow_call_duration < attempt_timeout, "a slow call must be able to finish");
    // 20 calls (the minimum) answered in 1.5 s: successes, every one slow.
    for _ in 0..20 {
        let p = b.try_acquire().expect("closed");
        clock.advance(Duration::from_millis(1500));
        p.record(Outcome::Success);
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!((b.stats().slow, b.stats().failures), (20, 0));
}

#[test]
fn a_slow_half_open_probe_reopens_it() {
    let (b, clock) = breaker(BreakerConfig {
        consecutive_failures: Some(1),
        half_open_permits: 1,
        slow_call_duration: Duration::from_secs(1),
        ..quiet()
    });
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(5));
    let probe = b.try_acquire().expect("a probe");
    clock.advance(Duration::from_millis(1200));
    probe.record(Outcome::Success);
    assert_eq!(b.state(), State::Open, "an answer that slow is no recovery");
    let seen: Vec<State> = b.drain_transitions().iter().map(|t| t.to).collect();
    assert_eq!(seen, [State::Open, State::HalfOpen, State::Open]);
}

#[test]
fn consecutive_failures_trip_without_waiting_for_the_minimum() {
    let (b, _) = breaker(BreakerConfig { consecutive_failures: Some(3), minimum_calls: 100, ..quiet() });
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    call(&b, Outcome::Success); // breaks the run
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Closed);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn it_recovers_through_half_open_when_every_probe_succeeds() {
    let (b, clock) = breaker(BreakerConfig { consecutive_failures: Some(1), half_open_permits: 3, ..quiet() });
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    clock.advance(Duration::from_millis(4999));
    assert!(b.try_acquire().is_err(), "still open");
    clock.advance(Duration::from_millis(1));
    let probes: Vec<Permit> = (0..3).map(|_| b.try_acquire().expect("a probe")).collect();
    assert!(matches!(b.try_acquire(), Err(Rejected::HalfOpenFull { .. })));
    for p in probes {
        p.record(Outcome::Success);
    }
    assert_eq!(b.state(), State::Closed);
    let seen: Vec<(State, State)> = b.drain_transitions().iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(seen, [(State::Closed, State::Open), (State::Open, State::HalfOpen), (State::HalfOpen, State::Closed)]);
    // The window starts afresh: one failure trips again (consecutive 1), not leftovers.
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open);
    assert!(
        matches!(b.try_acquire(), Err(Rejected::Open { retry_after }) if retry_after == Duration::from_secs(5)),
        "a close resets the backoff"
    );
}

#[test]
fn half_open_admits_exactly_its_permits_among_a_hundred_concurrent_callers() {
    let (b, clock) = breaker(BreakerConfig { consecutive_failures: Some(1), half_open_permits: 4, ..quiet() });
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(5));
    // Every caller tries at once and holds what it got until all have tried.
    let (start, tried) = (Arc::new(std::sync::Barrier::new(100)), Arc::new(std::sync::Barrier::new(100)));
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let (b, start, tried) = (b.clone(), start.clone(), tried.clone());
            std::thread::spawn(move || {
                start.wait();
                let permit = b.try_acquire();
                let admitted = permit.is_ok();
                tried.wait();
                if let Ok(p) = permit {
                    p.record(Outcome::Success);
                }
                admitted
            })
        })
        .collect();
    let admitted = handles.into_iter().map(|h| h.join().unwrap()).filter(|a| *a).count();
    assert_eq!(admitted, 4);
    assert_eq!(b.stats().rejected, 96);
    assert_eq!(b.state(), State::Closed, "the four probes succeeded");
}

#[test]
fn a_probe_given_up_frees_its_slot() {
    let (b, clock) = breaker(BreakerConfig { consecutive_failures: Some(1), half_open_permits: 2, ..quiet() });
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(5));
    let first = b.try_acquire().unwrap();
    let _second = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(first); // dropped unrecorded: cancelled
    let _third = b.try_acquire().expect("the freed slot");
    assert!(b.try_acquire().is_err());
}

#[test]
fn a_half_open_whose_probes_never_finish_reopens_at_its_deadline() {
    let (b, clock) = breaker(BreakerConfig {
        consecutive_failures: Some(1),
        half_open_deadline: Duration::from_secs(10),
        ..quiet()
    });
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(5));
    let stuck: Vec<Permit> = (0..3).map(|_| b.try_acquire().unwrap()).collect();
    clock.advance(Duration::from_secs(9));
    assert!(
        matches!(b.try_acquire(), Err(Rejected::HalfOpenFull { retry_after }) if retry_after == Duration::from_secs(1))
    );
    clock.advance(Duration::from_secs(1));
    assert!(matches!(b.try_acquire(), Err(Rejected::Open { .. })), "the deadline reopened it");
    assert_eq!(b.state(), State::Open);
    // The stuck probes finishing late change nothing.
    for p in stuck {
        p.record(Outcome::Success);
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn open_time_backs_off_within_its_jitter() {
    let config = BreakerConfig { consecutive_failures: Some(1), jitter: 0.2, seed: Some(11), ..quiet() };
    let (b, clock) = breaker(config.clone());
    call(&b, Outcome::Failure);
    let mut seen = Vec::new();
    for k in 0..8 {
        let Err(Rejected::Open { retry_after }) = b.try_acquire() else { panic!("open") };
        let center = (5.0 * 2f64.powi(k)).min(60.0);
        let s = retry_after.as_secs_f64();
        assert!(s >= center * 0.8 - 1e-9 && s <= center * 1.2 + 1e-9, "trip {k}: {s} s, center {center}");
        seen.push(s / center);
        // Half-open, and the probe fails: open again, longer.
        clock.advance(retry_after);
        b.try_acquire().unwrap().record(Outcome::Failure);
    }
    assert!(seen.iter().any(|f| (f - 1.0).abs() > 0.01), "jitter applied: {seen:?}");
    // Seeded: another breaker with the same seed opens for the same times.
    let (c, clock2) = breaker(config);
    call(&c, Outcome::Failure);
    let Err(Rejected::Open { retry_after }) = c.try_acquire() else { panic!() };
    assert!((retry_after.as_secs_f64() / 5.0 - seen[0]).abs() < 1e-9);
    drop(clock2);
}

#[test]
fn a_time_window_forgets_calls_older_than_it() {
    let (b, clock) = breaker(BreakerConfig {
        window: Window::Time { length: Duration::from_secs(10), buckets: 10 },
        minimum_calls: 4,
        failure_rate: 0.5,
        ..quiet()
    });
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(11));
    call(&b, Outcome::Success);
    call(&b, Outcome::Success);
    call(&b, Outcome::Success);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Closed, "1 of 4 in the window: the two old failures expired");
    call(&b, Outcome::Failure);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open, "3 of 6");
}

#[test]
fn ignored_outcomes_and_other_4xx_do_not_count_as_failures() {
    assert_eq!(Outcome::of_status(503), Outcome::Failure);
    assert_eq!(Outcome::of_status(429), Outcome::Failure);
    assert_eq!(Outcome::of_status(404), Outcome::Success);
    let (b, _) = breaker(BreakerConfig { consecutive_failures: Some(2), ..quiet() });
    call(&b, Outcome::Failure);
    drop(b.try_acquire().unwrap()); // cancelled by our caller
    call(&b, Outcome::Ignored);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open, "the ignored calls neither broke nor extended the run");
    assert_eq!(b.stats().ignored, 2);
}

#[test]
fn the_modes_override_the_rules() {
    let (b, _) = breaker(BreakerConfig { mode: Mode::Disabled, consecutive_failures: Some(1), ..quiet() });
    for _ in 0..10 {
        call(&b, Outcome::Failure);
    }
    assert_eq!((b.state(), b.stats().failures), (State::Disabled, 0), "disabled records nothing");
    let (b, _) = breaker(BreakerConfig { mode: Mode::ForcedOpen, ..quiet() });
    assert_eq!(b.try_acquire().err(), Some(Rejected::ForcedOpen));
    let (b, _) = breaker(BreakerConfig { mode: Mode::MetricsOnly, consecutive_failures: Some(1), ..quiet() });
    for _ in 0..10 {
        call(&b, Outcome::Failure);
    }
    assert_eq!((b.state(), b.stats().failures), (State::MetricsOnly, 10), "counts, never rejects");
}

#[test]
fn modes_switch_at_run_time_and_each_switch_is_a_transition() {
    let (b, _) = breaker(BreakerConfig { consecutive_failures: Some(1), ..quiet() });
    call(&b, Outcome::Success);
    b.set_mode(Mode::ForcedOpen);
    assert_eq!((b.state(), b.try_acquire().err()), (State::ForcedOpen, Some(Rejected::ForcedOpen)), "the kill switch");
    b.set_mode(Mode::Disabled);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Disabled, "a failure while disabled trips nothing");
    b.set_mode(Mode::Normal);
    assert_eq!(b.state(), State::Closed);
    call(&b, Outcome::Failure);
    assert_eq!(b.state(), State::Open, "enforcing again");
    let seen: Vec<(State, State)> = b.drain_transitions().iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        seen,
        [
            (State::Closed, State::ForcedOpen),
            (State::ForcedOpen, State::Disabled),
            (State::Disabled, State::Closed),
            (State::Closed, State::Open)
        ]
    );
}

#[test]
fn metrics_only_runs_the_rules_and_records_what_it_would_do_without_rejecting() {
    let (b, clock) = breaker(BreakerConfig {
        mode: Mode::MetricsOnly,
        consecutive_failures: Some(3),
        half_open_permits: 1,
        ..quiet()
    });
    for _ in 0..5 {
        call(&b, Outcome::Failure);
    }
    assert_eq!(b.stats().rejected, 0, "watching only: every call went through");
    clock.advance(Duration::from_secs(5));
    call(&b, Outcome::Success); // the shadow's half-open probe
    let seen: Vec<(State, State)> = b.drain_transitions().iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(seen, [(State::Closed, State::Open), (State::Open, State::HalfOpen), (State::HalfOpen, State::Closed)]);
    assert_eq!(b.state(), State::MetricsOnly);
}

#[test]
fn reset_closes_it_with_an_empty_window_and_no_backoff() {
    let (b, clock) = breaker(BreakerConfig { consecutive_failures: Some(1), half_open_permits: 1, ..quiet() });
    call(&b, Outcome::Failure);
    clock.advance(Duration::from_secs(5));
    b.try_acquire().unwrap().record(Outcome::Failure); // a failed probe: the next open is 10 s
    b.reset();
    assert_eq!(b.state(), State::Closed);
    call(&b, Outcome::Failure);
    assert!(matches!(b.try_acquire(), Err(Rejected::Open { retry_after }) if retry_after == Duration::from_secs(5)));
}

#[test]
fn unseeded_breakers_jitter_their_open_times_apart() {
    let config = BreakerConfig { consecutive_failures: Some(1), jitter: 0.2, ..quiet() };
    let opens: Vec<Duration> = (0..4)
        .map(|_| {
            let (b, _) = breaker(config.clone());
            call(&b, Outcome::Failure);
            match b.try_acquire() {
                Err(Rejected::Open { retry_after }) => retry_after,
                other => panic!("not open: {:?}", other.err()),
            }
        })
        .collect();
    assert!(opens.windows(2).any(|w| w[0] != w[1]), "a fleet must not reopen in step: {opens:?}");
    // A seed makes them reproducible again.
    let seeded = BreakerConfig { seed: Some(7), ..config };
    let open = |c: &BreakerConfig| {
        let (b, _) = breaker(c.clone());
        call(&b, Outcome::Failure);
        b.try_acquire().err()
    };
    assert_eq!(open(&seeded), open(&seeded));
}
