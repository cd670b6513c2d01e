//! `compare` of real runs: the same server twice passes; a server doing 4× the work per
//! `compute` call fails with the regression's size.

use predicates::prelude::*;

use crate::common::{bin, fixture, load_lock, read_json, run_cmd};

fn run(config: &str, out: &std::path::Path) {
    run_cmd(&fixture(config), out).assert().success();
}

#[test]
fn same_server_passes_and_a_slower_head_fails() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let (base, same, slow) = (dir.path().join("base.json"), dir.path().join("same.json"), dir.path().join("slow.json"));
    run("configs/reference-quick.yaml", &base);
    run("configs/reference-quick.yaml", &same);
    run("configs/reference-slow.yaml", &slow);

    let aa = bin().arg("compare").arg(&base).arg(&same).args(["--format", "json"]).assert().code(0);
    let aa: serde_json::Value = serde_json::from_slice(&aa.get_output().stdout).unwrap();
    assert_eq!(aa["verdict"], "pass", "{aa:#}");
    assert!(aa["metrics"].as_array().unwrap().iter().all(|m| m["verdict"] != "regression"));

    let ab = bin().arg("compare").arg(&base).arg(&slow).args(["--format", "json"]).assert().code(1);
    let ab: serde_json::Value = serde_json::from_slice(&ab.get_output().stdout).unwrap();
    assert_eq!(ab["verdict"], "fail");
    let p50 = ab["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["operation"] == "tools/call:compute" && m["metric"] == "p50")
        .unwrap();
    assert_eq!(p50["verdict"], "regression", "{p50:#}");
    // Four times the work per call: the slowdown is large, and its interval excludes zero.
    assert!(p50["change"].as_f64().unwrap() > 0.5, "{p50:#}");
    assert!(p50["ci_low"].as_f64().unwrap() > 0.0, "{p50:#}");
    assert!(p50["p_adjusted"].as_f64().unwrap() < 0.05);
    for key in ["scenario", "base", "head", "ci_high", "p_value", "base_values", "head_values"] {
        assert!(!p50[key].is_null(), "{key} missing in {p50:#}");
    }

    // The text form says it in one line, with the size.
    bin()
        .arg("compare")
        .arg(&base)
        .arg(&slow)
        .assert()
        .code(1)
        .stdout(predicate::str::is_match(r"^FAIL: \d+ significant regressions?").unwrap())
        .stdout(predicate::str::is_match(r"compute\s+p50\s+\S+\s+\S+\s+\+\d+\.\d%").unwrap());
    // The results files are untouched by the comparison and still identify the server.
    assert_eq!(read_json(&slow)["server"]["name"], "mcp-perfcheck-reference");
}

#[test]
fn comparing_with_a_broken_baseline_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("base.json");
    std::fs::write(&broken, "{\"schema\": \"mcp-perfcheck/results/v0\"}").unwrap();
    bin()
        .arg("compare")
        .arg(&broken)
        .arg(fixture("results/reference-small.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("schema is `mcp-perfcheck/results/v0`"));
}
