//! The open model against real servers: coordinated-omission correction, late sends, and the
//! `iterations` executor.

use predicates::prelude::*;

use crate::common::{
    assert_all_gone, bin, load_lock, read_json, read_pids, run_cmd, run_ok, scripted_config, write_config,
};

fn summary(op: &serde_json::Value, key: &str) -> u64 {
    op[key]["p99"].as_u64().unwrap_or_else(|| panic!("{key} missing in {op}"))
}

/// One repetition of echo at 100/s for `duration` against the scripted server, which stops
/// reading `stall_at` seconds in for `stall_for` seconds. Returns the results and the pid file.
fn stalled_run(
    dir: &std::path::Path,
    (duration, max_in_flight, timeout): (&str, u32, &str),
    (stall_at, stall_for): (u32, u32),
) -> (serde_json::Value, std::path::PathBuf) {
    let (pids, out) = (dir.join("pids"), dir.join("r.json"));
    let workload = format!(
        "
  repetitions: 1
  request_timeout: {timeout}
  scenarios:
    - name: stall
      executor: constant-arrival-rate
      rate: 100/s
      max_in_flight: {max_in_flight}
      duration: {duration}
      mix: [{{tool: echo, arguments: {{message: hi}}}}]
"
    );
    let env = format!("    SCRIPTED_STALL_AT: \"{stall_at}\"\n    SCRIPTED_STALL_FOR: \"{stall_for}\"");
    let cfg = write_config(dir, &scripted_config("normal", &pids, &env, &workload));
    run_cmd(&cfg, &out).assert().success();
    (read_json(&out), pids)
}

#[test]
fn a_server_stall_shows_in_the_corrected_p99_and_not_in_the_uncorrected_one() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let (r, pids) = stalled_run(dir.path(), ("10s", 4, "10s"), (5, 1));
    let scenario = &r["scenarios"][0];
    assert_eq!(scenario["executor"], "constant-arrival-rate");
    assert_eq!(scenario["rate_per_s"], 100.0);
    let rep = &scenario["repetitions"][0];
    let echo = &rep["operations"][0];
    let (corrected, uncorrected) = (summary(echo, "latency_us"), summary(echo, "latency_uncorrected_us"));
    // The stall: ~100 requests due during the stalled second wait up to a second each.
    assert!(corrected >= 300_000, "corrected p99 {corrected} µs should show the 1 s stall: {echo}");
    // A naive generator sees only the 4 requests in flight when it began.
    assert!(uncorrected < 100_000, "uncorrected p99 {uncorrected} µs should stay low: {echo}");
    assert!(rep["load"]["late_sends"].as_u64().unwrap() >= 50, "{}", rep["load"]);
    assert_eq!(rep["load"]["target_rate_per_s"], 100.0);
    let sent = rep["load"]["sent"].as_u64().unwrap() + rep["load"]["dropped_sends"].as_u64().unwrap();
    assert_eq!(sent, 1000, "every scheduled request is either sent or counted as dropped");
    // The time series: one point a second, the stall in one of them, the calls all accounted for.
    let series = rep["series"].as_array().unwrap();
    assert_eq!(series.len(), 10, "{series:?}");
    assert!(series.iter().any(|p| p["p99_us"].as_u64().unwrap() >= 500_000), "{series:?}");
    let calls: f64 = series.iter().map(|p| p["calls_per_s"].as_f64().unwrap()).sum();
    assert!((calls - 1000.0).abs() < 30.0, "{calls}");
    assert!(series.iter().all(|p| p["rss_bytes"].as_u64().unwrap() > 0));
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn a_stall_past_the_request_timeout_lands_at_the_tail_and_is_marked_censored() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    // The server reads nothing for 3 s, three times the request timeout.
    let (r, pids) = stalled_run(dir.path(), ("8s", 8, "1s"), (3, 3));
    let out = dir.path().join("r.json");
    let rep = &r["scenarios"][0]["repetitions"][0];
    let echo = &rep["operations"][0];
    let timeouts = echo["errors"]["timeout"].as_u64().unwrap_or(0);
    // The calls due in the stall's first two seconds cannot be answered within 1 s of their
    // intended send; every one of them is in the histogram at the timeout.
    assert!(timeouts >= 150, "{timeouts} timeouts: {echo}");
    let all_p99 = summary(echo, "latency_us");
    assert!(all_p99 >= 999_000, "p99 over every call {all_p99} µs must reach the 1 s timeout: {echo}");
    assert_eq!(echo["censored_at_us"], 1_000_000);
    // The successes alone show the rest: below the timeout.
    let ok_p99 = summary(echo, "latency_ok_us");
    assert!(ok_p99 < 1_000_000, "{echo}");
    let sent = rep["load"]["sent"].as_u64().unwrap() + rep["load"]["dropped_sends"].as_u64().unwrap();
    assert_eq!(sent, 800, "every scheduled request is either sent or counted as dropped");
    // The answers that came after their calls had timed out are counted as late, not lost.
    assert!(rep["connection"]["late_responses"].as_u64().unwrap() > 0, "{}", rep["connection"]);
    // The report marks the censored percentile.
    bin().arg("report").arg(&out).assert().success().stdout(predicate::str::contains("≥1.00s"));
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn the_iterations_executor_makes_exactly_that_many_calls() {
    let _turn = load_lock();
    let r = run_ok(
        r#"
server:
  command: ["@self", "serve"]
workload:
  repetitions: 2
  scenarios:
    - name: smoke
      executor: iterations
      iterations: 300
      concurrency: 3
      mix:
        - {tool: echo, arguments: {message: "hi"}, weight: 2}
        - {tool: compute, arguments: {iterations: 100}}
"#,
    );
    for rep in r["scenarios"][0]["repetitions"].as_array().unwrap() {
        let counts: Vec<u64> =
            rep["operations"].as_array().unwrap().iter().map(|o| o["count"].as_u64().unwrap()).collect();
        assert_eq!(counts, vec![200, 100], "{rep}");
        assert_eq!(rep["load"]["sent"], 300);
    }
}

#[test]
fn a_ramping_arrival_rate_follows_its_stages() {
    let _turn = load_lock();
    let r = run_ok(
        r#"
server:
  command: ["@self", "serve"]
workload:
  repetitions: 1
  scenarios:
    - name: ramp
      executor: ramping-arrival-rate
      start_rate: 0/s
      stages:
        - {duration: 3s, target: 300/s}
        - {duration: 1s, target: 300/s}
      mix: [{tool: echo, arguments: {message: hi}}]
"#,
    );
    let scenario = &r["scenarios"][0];
    assert_eq!(scenario["executor"], "ramping-arrival-rate");
    assert_eq!(scenario["duration_s"], 4.0);
    let rep = &scenario["repetitions"][0];
    // 0 → 300/s over 3 s is 450 sends, then 300 more: exactly as scheduled.
    let load = &rep["load"];
    assert_eq!(load["sent"].as_u64().unwrap() + load["dropped_sends"].as_u64().unwrap(), 750, "{load}");
    assert_eq!(load["target_rate_per_s"], 187.5);
    // The series climbs with the ramp: ~50/s in the first second, ~250/s in the third, 300/s after.
    let rates: Vec<f64> =
        rep["series"].as_array().unwrap().iter().map(|p| p["calls_per_s"].as_f64().unwrap()).collect();
    assert_eq!(rates.len(), 4, "{rates:?}");
    assert!(rates[0] < rates[1] && rates[1] < rates[2], "{rates:?}");
    assert!((rates[0] - 50.0).abs() < 15.0 && (rates[3] - 300.0).abs() < 30.0, "{rates:?}");
}

#[test]
fn ramping_vus_raise_concurrency_by_stage() {
    let _turn = load_lock();
    let r = run_ok(
        r#"
server:
  command: ["@self", "serve"]
workload:
  repetitions: 1
  scenarios:
    - name: vus
      executor: ramping-vus
      start_vus: 1
      stages: [{duration: 2s, target: 1}, {duration: 1s, target: 6}]
      mix: [{tool: compute, arguments: {iterations: 300000}}]
"#,
    );
    let scenario = &r["scenarios"][0];
    assert_eq!((scenario["executor"].as_str(), scenario["concurrency"].as_u64()), (Some("ramping-vus"), Some(6)));
    // One VU at a time first: only then does latency stay at the single-call cost.
    let series = scenario["repetitions"][0]["series"].as_array().unwrap();
    assert_eq!(series.len(), 3, "{series:?}");
    let p50 = |i: usize| series[i]["p50_us"].as_u64().unwrap();
    assert!(p50(2) > p50(0), "more VUs on 2 cores queue up: {series:?}");
}

/// An open-model run of the reference server at `rate`/s for `duration`, 16 calls in flight.
fn reference_at(rate: &str, duration: &str) -> (serde_json::Value, std::time::Duration) {
    let yaml = format!(
        r#"
server:
  command: ["{bin}", "serve"]
workload:
  repetitions: 1
  scenarios:
    - name: flood
      executor: constant-arrival-rate
      rate: {rate}
      max_in_flight: 16
      warmup: 0s
      duration: {duration}
      mix: [{{tool: echo, arguments: {{message: hi}}}}]
"#,
        bin = crate::common::bin_path().display()
    );
    let started = std::time::Instant::now();
    let r = run_ok(&yaml);
    (r, started.elapsed())
}

#[test]
fn a_rate_far_beyond_the_server_ends_on_time_in_flat_memory_and_counts_what_it_dropped() {
    let _turn = load_lock();
    // A million calls a second for two seconds: the server answers a few thousand; the rest are
    // due and never sent. A queue of them (as the engine once kept) grows by tens of MiB.
    let (flood, took) = reference_at("1000000/s", "2s");
    let rep = &flood["scenarios"][0]["repetitions"][0];
    let load = &rep["load"];
    let (sent, dropped) = (load["sent"].as_u64().unwrap(), load["dropped_sends"].as_u64().unwrap());
    assert_eq!(sent + dropped, 2_000_000, "{load}");
    assert!(dropped > 1_000_000, "{load}");
    assert!(rep["measured_s"].as_f64().unwrap() < 2.5, "the window ends on time: {}", rep["measured_s"]);
    assert!(took < std::time::Duration::from_secs(20), "the run stops by itself: {took:?}");
    // The same generator at a rate it keeps: the flood's peak RSS is no larger but for noise.
    let (calm, _) = reference_at("100/s", "2s");
    let rss = |r: &serde_json::Value| r["scenarios"][0]["repetitions"][0]["client"]["rss_peak_bytes"].as_u64().unwrap();
    let (flood_rss, calm_rss) = (rss(&flood), rss(&calm));
    assert!(flood_rss < calm_rss + (8 << 20), "flood {flood_rss} B against {calm_rss} B at 100/s");
}
