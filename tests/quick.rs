//! Quick mode: `run -- CMD` and `run --url URL`, no config file.

use predicates::prelude::*;

use crate::common::{
    bin, free_port, load_lock, read_json, require_peer, spawn_http_server, stop_http_server, validate_configs,
};

/// Short windows: what is under test is the path from flags to a table, not the defaults' length.
const SHORT: [&str; 6] = ["--repetitions", "2", "--duration", "1s", "--warmup", "300ms"];

/// The table (stdout up to the printed config) and the config `--print-config` ended it with.
fn table_and_config(stdout: &[u8]) -> (String, String) {
    let stdout = String::from_utf8(stdout.to_vec()).unwrap();
    let at = stdout.find("# yaml-language-server: $schema=").expect("--print-config printed the config");
    (stdout[..at].to_string(), stdout[at..].to_string())
}

fn operation<'a>(rep: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rep["operations"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap_or_else(|| panic!("{name}: {rep}"))
}

#[test]
fn a_stdio_server_given_after_the_flags_is_measured_on_every_tool_that_answers() {
    let everything = require_peer(".peers/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let assert = bin()
        .current_dir(dir.path())
        .args(["run", "--out"])
        .arg(&out)
        .args(SHORT)
        .args(["--print-config", "--", "node"])
        .arg(&everything)
        .arg("stdio")
        .assert()
        .success()
        // The long-running demo tool would hold the only worker for the whole timeout.
        .stderr(predicate::str::contains("left out `trigger-long-running-operation`: no answer within 2s"));
    let (table, config) = table_and_config(&assert.get_output().stdout);
    assert!(table.contains("mcp-servers/everything") && table.contains("tools/call:echo"), "{table}");
    assert!(config.contains("command:") && config.contains("stdio") && !config.contains("mix:"), "{config}");

    let r = read_json(&out);
    assert_eq!(r["config_source"], "<command line>");
    let reps = r["scenarios"][0]["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 2);
    for rep in reps {
        assert!(operation(rep, "tools/call:echo")["count"].as_u64().unwrap() > 10, "{rep}");
        assert!(operation(rep, "tools/call:get-sum")["count"].as_u64().unwrap() > 10, "{rep}");
        let names: Vec<&str> =
            rep["operations"].as_array().unwrap().iter().filter_map(|o| o["name"].as_str()).collect();
        assert!(!names.contains(&"tools/call:trigger-long-running-operation"), "{names:?}");
    }
    // Its results compare like any others: the run against itself is no regression (two
    // repetitions a side are too few to call it unchanged).
    bin()
        .arg("compare")
        .arg(&out)
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("tools/call:echo").and(predicate::str::contains("FAIL").not()));
}

#[test]
fn a_running_http_server_is_measured_by_url_and_the_printed_config_runs_as_written() {
    let _turn = load_lock();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (child, url) = rt.block_on(spawn_http_server(&[], &[]));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let assert = bin()
        .current_dir(dir.path())
        .args(["run", "--out"])
        .arg(&out)
        .args(["--url", &url])
        .args(SHORT)
        .args(["--tool", r#"echo={"message":"hi"}"#, "--tool", r#"compute={"iterations":100}"#, "--print-config"])
        .assert()
        .success();
    let (table, config) = table_and_config(&assert.get_output().stdout);
    assert!(table.contains("tools/call:echo") && table.contains("tools/call:compute"), "{table}");
    assert!(config.contains("transport: http") && config.contains(&url), "{config}");
    let r = read_json(&out);
    for rep in r["scenarios"][0]["repetitions"].as_array().unwrap() {
        assert_eq!(rep["operations"].as_array().unwrap().len(), 2, "{rep}");
        assert_eq!(operation(rep, "tools/call:echo")["errors"], serde_json::json!({}));
    }

    // Kept as perf.yaml, the printed config is an ordinary config: valid under the schema, and
    // it runs.
    std::fs::write(dir.path().join("perf.yaml"), &config).unwrap();
    let (code, checked) = validate_configs(&[dir.path().join("perf.yaml")]);
    assert_eq!(code, 0, "{checked}");
    let again = dir.path().join("again.json");
    bin()
        .current_dir(dir.path())
        .args(["run", "--config", "perf.yaml", "--out"])
        .arg(&again)
        .assert()
        .success()
        .stdout(predicate::str::contains("tools/call:compute"));
    assert_eq!(read_json(&again)["scenarios"][0]["name"], "quick");
    rt.block_on(stop_http_server(child));
}

#[test]
fn a_command_given_with_a_url_is_launched_and_waited_for() {
    let _turn = load_lock();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    bin()
        .current_dir(dir.path())
        .args(["run", "--out"])
        .arg(&out)
        .args(["--url", &url, "--repetitions", "1", "--duration", "500ms", "--warmup", "0s"])
        .args(["--tool", "echo={\"message\":\"hi\"}", "--", "@self", "serve", "--http", &format!("127.0.0.1:{port}")])
        .assert()
        .success()
        .stdout(predicate::str::contains("tools/call:echo"))
        .stderr(predicate::str::contains("add --print-config"));
    let r = read_json(&out);
    assert_eq!(r["server"]["transport"], "http");
    assert!(operation(&r["scenarios"][0]["repetitions"][0], "tools/call:echo")["count"].as_u64().unwrap() > 10);
}

#[test]
fn quick_mode_errors_name_the_flag_or_the_server() {
    // A quick-mode flag with no server to point it at.
    bin()
        .args(["run", "--duration", "5s"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--url").and(predicate::str::contains("CMD")));
    bin()
        .args(["run", "--tool", "echo=[1]", "--", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--tool").and(predicate::str::contains("must be a JSON object")));
    // A server that cannot start still leaves a results file and exits 2.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    bin()
        .args(["run", "--out"])
        .arg(&out)
        .args(["--repetitions", "1", "--", "/nonexistent/mcp-server"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("RUN FAILED (server_start)"));
    assert_eq!(read_json(&out)["failure"]["kind"], "server_start");
}
