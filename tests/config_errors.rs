//! A bad config fails with exit 2 and a message naming the file, the line and the field.

use predicates::prelude::*;

use crate::common::{bin, write_config};

#[test]
fn unknown_field_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "server:\n  command: [x]\nworkload:\n  repetitions: 1\n  scenarios:\n    - name: s\n      duration: 1s\n      concurrenci: 3\n      mix: [{tool: echo}]\n",
    );
    bin()
        .args(["run", "--config"])
        .arg(&cfg)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(cfg.display().to_string()))
        .stderr(predicate::str::contains("line 8 column 7"))
        .stderr(predicate::str::contains("workload.scenarios[0]"))
        .stderr(predicate::str::contains("unknown field `concurrenci`"));
}

#[test]
fn bad_duration_names_the_value_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "server:\n  command: [x]\nworkload:\n  scenarios:\n    - name: s\n      duration: 10 fortnights\n      mix: [{tool: echo}]\n",
    );
    bin()
        .args(["run", "--config"])
        .arg(&cfg)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("workload.scenarios[0].duration"))
        .stderr(predicate::str::contains("invalid duration `10 fortnights`"))
        .stderr(predicate::str::contains("line 6"));
}

#[test]
fn missing_config_file_is_named() {
    bin()
        .args(["run", "--config", "/nonexistent/perf.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/perf.yaml: cannot read config file"));
}

#[test]
fn an_invalid_value_names_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "server:\n  command: [x]\nworkload:\n  repetitions: 0\n  scenarios:\n    - name: s\n      duration: 1s\n      mix: [{tool: echo}]\n",
    );
    bin()
        .args(["run", "--config"])
        .arg(&cfg)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`workload.repetitions`"));
}

#[test]
fn a_gate_naming_no_metric_or_an_unknown_one_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let workload = "server:\n  command: [x]\nworkload:\n  scenarios:\n    - name: s\n      duration: 1s\n      mix: [{tool: echo}]\n";
    let with = |compare: &str| write_config(dir.path(), &format!("{workload}compare:\n{compare}"));
    let run = |cfg: &std::path::Path| bin().args(["run", "--config"]).arg(cfg).assert().code(2);
    run(&with("  gate: [p50, p90]\n"))
        .stderr(predicate::str::contains("compare.gate"))
        .stderr(predicate::str::contains("unknown variant `p90`"))
        .stderr(predicate::str::contains("cpu_per_call"));
    run(&with("  gate: []\n")).stderr(predicate::str::contains("`compare.gate`: name at least one metric"));
    run(&with("  min_effect: {error_ratio: 0.5}\n"))
        .stderr(predicate::str::contains("`compare.min_effect.error_ratio`: must be a number of at least 1"));
}
