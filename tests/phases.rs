//! Spike, breakpoint and soak scenarios against the reference server.

use predicates::prelude::*;

use crate::common::{load_lock, read_json, run_cmd, write_config};

#[test]
fn spike_recovery_breakpoint_capacity_and_soak_slopes_are_reported() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    // `compute` at this size costs the (debug-built) server about a millisecond of CPU: on two
    // cores a hundred calls a second are easy, a few thousand are not.
    let yaml = r#"
server:
  command: ["@self", "serve"]
workload:
  repetitions: 1
  scenarios:
    - name: spike
      executor: constant-arrival-rate
      rate: 100/s
      max_in_flight: 64
      duration: 6s
      spike: {at: 1s, factor: 6, hold: 1s}
      mix: [{tool: compute, arguments: {iterations: 50000}}]
    - name: capacity
      executor: ramping-arrival-rate
      start_rate: 20/s
      stages: [{duration: 15s, target: 6000/s}]
      max_in_flight: 64
      breakpoint: {p99: 50ms, error_rate: 1%}
      mix: [{tool: compute, arguments: {iterations: 50000}}]
    - name: soak
      concurrency: 2
      duration: 1s
      soak: true
      mix: [{tool: echo, arguments: {message: hi}}]
"#;
    run_cmd(&write_config(dir.path(), yaml), &out)
        .assert()
        .success()
        .stdout(predicate::str::contains("spike #1: spike ×6 from 1.0s to 2.0s"))
        .stdout(predicate::str::contains("capacity #1: capacity"))
        .stdout(predicate::str::contains("soak: soak slopes: server RSS"));
    let r = read_json(&out);
    let rep = |i: usize| r["scenarios"][i]["repetitions"][0].clone();

    let spike = rep(0)["spike"].clone();
    assert_eq!(r["scenarios"][0]["phase"], "spike");
    // Whether the server suffers from it is the server's business; that it was applied is ours.
    assert!(spike["baseline_p99_us"].as_u64().unwrap() > 0 && spike["peak_p99_us"].as_u64().unwrap() > 0);
    let series = rep(0)["series"].as_array().unwrap().clone();
    let second = |t: f64| series.iter().find(|p| (p["t_s"].as_f64().unwrap() - t).abs() < 0.3).unwrap().clone();
    assert!(second(1.0)["calls_per_s"].as_f64().unwrap() < 150.0, "{series:?}");
    assert!(second(2.0)["calls_per_s"].as_f64().unwrap() > 400.0, "the spike second: {series:?}");
    let recovery = spike["recovery_s"].as_f64().expect("recovered within the 4 s left");
    assert!((0.0..=4.1).contains(&recovery), "{spike}");
    // Six times the rate for one of six seconds: 100 × 5 + 600 × 1 = 1,100 scheduled.
    let load = &rep(0)["load"];
    let scheduled = load["sent"].as_u64().unwrap() + load["dropped_sends"].as_u64().unwrap();
    assert!(scheduled.abs_diff(1100) <= 2, "{load}");

    let capacity = rep(1)["breakpoint"].clone();
    let broke_at = capacity["broke_at_s"].as_f64().expect("the ramp breaks the limits before 6000/s");
    assert!(broke_at < 15.0, "{capacity}");
    assert!(rep(1)["measured_s"].as_f64().unwrap() < 15.0, "the run stopped at the break");
    let cap = capacity["capacity_per_s"].as_f64().unwrap();
    let at_break = capacity["rate_at_break_per_s"].as_f64().unwrap();
    assert!(cap > 50.0 && cap < at_break, "capacity {cap}/s below the rate that broke it ({at_break}/s)");

    let soak = rep(2)["server_resources"].clone();
    assert_eq!(r["scenarios"][2]["phase"], "soak");
    assert!(soak["open_fds_slope_per_s"].is_f64() && soak["rss_slope_bytes_per_s"].is_f64(), "{soak}");
}
