use super::*;

/// A timeline of `seconds` at 100 calls per bin, failing where `fails(t_s)` says, degraded where
/// `degraded(t_s)` says.
fn timeline(seconds: f64, fails: impl Fn(f64) -> bool, degraded: impl Fn(f64) -> bool) -> Timeline {
    let start = Instant::now();
    let mut t = Timeline::new(start);
    for bin in 0..(seconds / BIN.as_secs_f64()).round() as u32 {
        let t_s = f64::from(bin) * BIN.as_secs_f64();
        for call in 0..100u32 {
            let at = start + BIN * bin + BIN * call / 100;
            t.record(at, fails(t_s), degraded(t_s));
        }
    }
    t
}

fn outage(start_s: f64, end_s: f64) -> FaultWindow {
    FaultWindow { upstream: "catalog".into(), kind: "outage".into(), start_s, end_s, figures: None }
}

fn snapshot(name: &str, state: &str, transitions: &[(&str, f64)], start_ms: f64) -> RuntimeSnapshot {
    let recent = transitions
        .iter()
        .map(|(to, s)| TransitionAt { to: to.to_string(), at_unix_ms: (start_ms + s * 1e3) as u64 })
        .collect();
    RuntimeSnapshot {
        upstreams: vec![UpstreamSnapshot {
            name: name.into(),
            breaker: BreakerSnapshot { state: state.into(), recent },
            cache: CacheSnapshot::default(),
        }],
    }
}

#[test]
fn warm_up_calls_and_calls_past_the_last_bin_are_not_placed() {
    let start = Instant::now() + Duration::from_secs(1);
    let mut t = Timeline::new(start);
    t.record(start - Duration::from_millis(1), true, false);
    t.record(start + Duration::from_secs(3600), true, false);
    assert!(t.bins.is_empty());
    t.record(start + Duration::from_millis(250), false, true);
    assert_eq!(t.bins.len(), 3);
    assert_eq!(t.bins[2], Bin { calls: 1, errors: 0, degraded: 1 });
}

#[test]
fn an_outage_with_a_breaker_gives_every_figure() {
    // Errors from 2.0 s until 3.3 s (the breaker's probe closes it at 3.3 s, 0.3 s after the
    // outage); half the calls in the outage are served stale.
    let t =
        timeline(6.0, |s| (2.0..3.3).contains(&s) && s < 2.5 || (3.0..3.3).contains(&s), |s| (2.5..3.0).contains(&s));
    let start_ms = 1_700_000_000_000.0;
    let server = snapshot("catalog", "closed", &[("open", 2.2), ("half_open", 3.2), ("closed", 3.3)], start_ms);
    let mut faults = [outage(2.0, 3.0)];
    figures(&mut faults, &t, 6.0, Some((&server, start_ms)));
    let f = faults[0].figures.clone().unwrap();
    assert_eq!(f.calls, 1000);
    assert!((f.error_rate.unwrap() - 0.5).abs() < 1e-9, "{f:?}");
    assert!((f.degraded_share.unwrap() - 0.5).abs() < 1e-9, "{f:?}");
    assert!((f.breaker_opened_after_s.unwrap() - 0.2).abs() < 1e-3, "{f:?}");
    assert!((f.breaker_closed_after_s.unwrap() - 0.3).abs() < 1e-3, "{f:?}");
    assert!((f.recovery_s.unwrap() - 0.3).abs() < 1e-9, "{f:?}");
}

#[test]
fn recovery_waits_for_the_later_of_the_breaker_and_the_errors() {
    // The breaker closes at once, but errors go on for 0.8 s after the fault.
    let t = timeline(5.0, |s| (1.0..2.8).contains(&s), |_| false);
    let start_ms = 1_000.0;
    let server = snapshot("catalog", "closed", &[("open", 1.1), ("half_open", 1.9), ("closed", 1.95)], start_ms);
    let mut faults = [outage(1.0, 2.0)];
    figures(&mut faults, &t, 5.0, Some((&server, start_ms)));
    let f = faults[0].figures.clone().unwrap();
    assert_eq!(f.breaker_closed_after_s, Some(0.0), "closed before the fault ended");
    assert!((f.recovery_s.unwrap() - 0.8).abs() < 1e-9, "{f:?}");
}

#[test]
fn a_breaker_still_open_or_errors_to_the_end_mean_no_recovery() {
    let start_ms = 1_000.0;
    let t = timeline(4.0, |s| (1.0..2.0).contains(&s), |_| false);
    let open = snapshot("catalog", "open", &[("open", 1.3)], start_ms);
    let mut faults = [outage(1.0, 2.0)];
    figures(&mut faults, &t, 4.0, Some((&open, start_ms)));
    let f = faults[0].figures.clone().unwrap();
    assert_eq!((f.breaker_closed_after_s, f.recovery_s), (None, None), "{f:?}");

    let t = timeline(4.0, |s| s >= 1.0, |_| false);
    let mut faults = [outage(1.0, 2.0)];
    figures(&mut faults, &t, 4.0, None);
    let f = faults[0].figures.clone().unwrap();
    assert_eq!((f.breaker_opened_after_s, f.recovery_s), (None, None), "{f:?}");
}

#[test]
fn the_normal_error_rate_is_the_one_before_the_first_fault() {
    // 5% errors all along, unevenly spread (0 to 10 a bin): the fault's end is recovered at
    // once, though errors never stop.
    let start = Instant::now();
    let mut t = Timeline::new(start);
    for bin in 0..40u32 {
        let errors = if (10..20).contains(&bin) { 100 } else { [0, 10, 5, 2, 8][bin as usize % 5] };
        for call in 0..100u32 {
            t.record(start + BIN * bin + BIN * call / 100, call < errors, false);
        }
    }
    let mut faults = [outage(1.0, 2.0)];
    figures(&mut faults, &t, 4.0, None);
    assert_eq!(faults[0].figures.as_ref().unwrap().recovery_s, Some(0.0));
}

#[test]
fn a_server_naming_its_upstreams_otherwise_is_timed_by_the_breaker_that_opened() {
    let start_ms = 5_000.0;
    let t = timeline(3.0, |s| (1.0..1.5).contains(&s), |_| false);
    let server = snapshot("items-api", "closed", &[("open", 1.25), ("half_open", 1.9), ("closed", 2.1)], start_ms);
    let mut faults = [outage(1.0, 2.0)];
    figures(&mut faults, &t, 3.0, Some((&server, start_ms)));
    let f = faults[0].figures.clone().unwrap();
    assert!((f.breaker_opened_after_s.unwrap() - 0.25).abs() < 1e-3, "{f:?}");
    assert!((f.breaker_closed_after_s.unwrap() - 0.1).abs() < 1e-3, "{f:?}");
}

#[test]
fn cache_and_breaker_figures_are_the_window_s_deltas() {
    let start_ms = 10_000.0;
    let mut a = snapshot("catalog", "closed", &[("open", -5.0), ("closed", -4.0)], start_ms);
    a.upstreams[0].cache = CacheSnapshot { hits: 10, misses: 5, stale: 0 };
    let mut b = snapshot("catalog", "open", &[("open", -5.0), ("closed", -4.0), ("open", 1.0)], start_ms);
    b.upstreams[0].cache = CacheSnapshot { hits: 100, misses: 15, stale: 10 };
    let r = runtime_figures(&a, &b, start_ms);
    assert_eq!((r.cache_hits, r.cache_stale, r.cache_misses, r.breaker_opens), (90, 10, 10, 1));
    assert!((r.cache_hit_ratio.unwrap() - 100.0 / 110.0).abs() < 1e-12);
    assert_eq!(r.breakers_open_at_end, ["catalog: open"]);
}
