//! `init`: a starter config from what a server answers, valid under the schema, runnable as
//! written, and never written over an existing file without --force.

use predicates::prelude::*;

use crate::common::{bin, load_lock, read_json, require_peer, spawn_http_server, stop_http_server, validate_configs};

/// A probe and a written config short enough for a test.
const SHORT: [&str; 8] = ["--probe", "1s", "--repetitions", "1", "--duration", "500ms", "--warmup", "0s"];

/// `run --config perf.yaml` in `dir` ran every scenario cleanly (exit 0, or 1 when a threshold
/// suggested from the short probe broke: that is the config working, not failing to run).
fn runs_as_written(dir: &std::path::Path) -> serde_json::Value {
    let out = dir.join("results.json");
    let status = bin()
        .current_dir(dir)
        .args(["run", "--config", "perf.yaml", "--out"])
        .arg(&out)
        .output()
        .unwrap()
        .status
        .code();
    assert!(matches!(status, Some(0 | 1)), "exit {status:?}");
    let r = read_json(&out);
    assert!(r["failure"].is_null(), "{}", r["failure"]);
    for rep in r["scenarios"][0]["repetitions"].as_array().unwrap() {
        for op in rep["operations"].as_array().unwrap() {
            assert!(op["count"].as_u64().unwrap() > 0, "{op}");
        }
    }
    r
}

#[test]
fn init_against_server_everything_writes_a_valid_config_that_runs() {
    let everything = require_peer(".peers/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    bin()
        .current_dir(dir.path())
        .arg("init")
        .args(SHORT)
        .args(["--", "node"])
        .arg(&everything)
        .arg("stdio")
        .assert()
        .success()
        .stderr(predicate::str::contains("wrote perf.yaml"));
    let config_path = dir.path().join("perf.yaml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    assert!(text.starts_with("# yaml-language-server: $schema="), "{text}");
    assert!(text.contains("- tool: \"echo\"") && text.contains("\"tools/call{tool:echo}\": [\"p(99)<"), "{text}");
    // The long-running demo is kept as a comment, with why.
    assert!(text.contains("# left out: \"trigger-long-running-operation\" (no answer within 2s"), "{text}");
    assert!(text.contains("# - name: breakpoint") && text.contains("# - name: spike"), "{text}");
    let (code, checked) = validate_configs(std::slice::from_ref(&config_path));
    assert_eq!(code, 0, "{checked}");
    let r = runs_as_written(dir.path());
    let ops: Vec<&str> = r["scenarios"][0]["repetitions"][0]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert!(
        ops.contains(&"tools/call:get-sum") && !ops.contains(&"tools/call:trigger-long-running-operation"),
        "{ops:?}"
    );
}

#[test]
fn init_against_the_reference_server_over_http_writes_config_and_workflow_and_never_overwrites() {
    let _turn = load_lock();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (child, url) = rt.block_on(spawn_http_server(&[], &[]));
    let dir = tempfile::tempdir().unwrap();
    let init = || {
        let mut cmd = bin();
        cmd.current_dir(dir.path()).arg("init").args(SHORT).args(["--workflow", "--url", &url]);
        cmd
    };
    init().assert().success().stderr(predicate::str::contains("wrote .github/workflows/perf.yml"));
    let config_path = dir.path().join("perf.yaml");
    let text = std::fs::read_to_string(&config_path).unwrap();
    assert!(text.contains("transport: http") && text.contains(&url), "{text}");
    // Without upstreams the reference server's upstream tools fail: left out, commented.
    assert!(text.contains("- tool: \"compute\"") && text.contains("# left out: \"lookup\""), "{text}");
    let (code, checked) = validate_configs(std::slice::from_ref(&config_path));
    assert_eq!(code, 0, "{checked}");
    let workflow = std::fs::read_to_string(dir.path().join(".github/workflows/perf.yml")).unwrap();
    assert!(workflow.contains("uses: mcp-perfcheck/mcp-perfcheck@v1") && workflow.contains("config: perf.yaml"));
    runs_as_written(dir.path());

    // A second init refuses, naming the file, and leaves it as it was; --force overwrites.
    std::fs::write(&config_path, "# mine\n").unwrap();
    init().assert().code(2).stderr(predicate::str::contains("perf.yaml exists: pass --force"));
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), "# mine\n");
    std::fs::remove_file(&config_path).unwrap();
    init().assert().code(2).stderr(predicate::str::contains("perf.yml exists"));
    init().arg("--force").assert().success();
    assert!(std::fs::read_to_string(&config_path).unwrap().contains("- tool: \"echo\""));
    rt.block_on(stop_http_server(child));
}

#[test]
fn init_needs_a_server_and_says_so() {
    bin().arg("init").assert().code(2).stderr(predicate::str::contains("--url").or(predicate::str::contains("CMD")));
    let dir = tempfile::tempdir().unwrap();
    bin()
        .current_dir(dir.path())
        .args(["init", "--probe", "1s", "--", "/nonexistent/server"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the probe run failed, nothing was written"));
    assert!(!dir.path().join("perf.yaml").exists());
}
