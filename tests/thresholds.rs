//! k6-style thresholds: a failed one makes `run` exit 1; `abort_on_fail` stops the run early.

use predicates::prelude::*;

use crate::common::{load_lock, read_json, run_cmd, write_config};

fn config(thresholds: &str) -> String {
    format!(
        r#"
server:
  command: ["@self", "serve"]
workload:
  repetitions: 3
  scenarios:
    - name: steady
      concurrency: 2
      duration: 400ms
      mix: [{{tool: echo, arguments: {{message: hi}}}}]
thresholds:
{thresholds}
"#
    )
}

#[test]
fn thresholds_that_hold_pass_and_a_failed_one_exits_1() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let held = "  \"tools/call{tool:echo}\": [\"p(99)<10s\", \"error_rate<1%\"]\n  server: [\"rss_peak<4GB\"]";
    run_cmd(&write_config(dir.path(), &config(held)), &out)
        .assert()
        .success()
        .stdout(predicate::str::contains("ok   tools/call{tool:echo}: p(99)<10s (observed"));
    let r = read_json(&out);
    assert_eq!(r["thresholds"].as_array().unwrap().len(), 3);
    assert!(r["thresholds"].as_array().unwrap().iter().all(|t| t["held"] == true), "{}", r["thresholds"]);

    let failing = format!("{held}\n  client: [\"cpu_per_op<1us\"]");
    run_cmd(&write_config(dir.path(), &config(&failing)), &out)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL client: cpu_per_op<1us (observed"));
    let r = read_json(&out);
    let client = r["thresholds"].as_array().unwrap().iter().find(|t| t["key"] == "client").unwrap().clone();
    assert_eq!(client["held"], false);
    assert_eq!(client["quantity"], "duration");
    assert!(client["observed"].as_f64().unwrap() > 1.0);
    assert_eq!(r["scenarios"][0]["repetitions"].as_array().unwrap().len(), 3, "no abort: the run completed");
}

#[test]
fn abort_on_fail_stops_the_run_after_the_failing_repetition() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let abort = "  server: [{threshold: \"cpu_per_op<1us\", abort_on_fail: true}]";
    run_cmd(&write_config(dir.path(), &config(abort)), &out)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("aborted: threshold `server: cpu_per_op<1us` failed"));
    let r = read_json(&out);
    assert_eq!(r["failure"]["kind"], "aborted");
    assert_eq!(r["scenarios"][0]["repetitions"].as_array().unwrap().len(), 1);
    assert_eq!(r["thresholds"][0]["held"], false);
}

#[test]
fn a_bad_threshold_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    run_cmd(&write_config(dir.path(), &config("  server: [\"p(95)<1ms\"]")), &dir.path().join("r.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("thresholds.\"server\"[0]"))
        .stderr(predicate::str::contains("does not apply to `server`"));
}
