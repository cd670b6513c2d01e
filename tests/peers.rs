//! `run` against real third-party servers, installed by scripts/setup-peers.sh.

use predicates::prelude::*;

use crate::common::{fixture, load_lock, read_json, require_peer, run_cmd};

fn run_peer(config: &str, server_name: &str, operations: &[&str]) {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    run_cmd(&fixture(config), &out).assert().success().stdout(predicate::str::contains(server_name));
    let r = read_json(&out);
    assert_eq!(r["server"]["name"], server_name);
    for rep in r["scenarios"][0]["repetitions"].as_array().unwrap() {
        for name in operations {
            let op = rep["operations"].as_array().unwrap().iter().find(|o| o["name"] == *name).unwrap();
            assert!(op["count"].as_u64().unwrap() > 10, "{name}: {op}");
            assert_eq!(op["errors"], serde_json::json!({}), "{name}");
            assert!(op["latency_us"]["p50"].as_u64().unwrap() > 0);
        }
    }
}

#[test]
fn typescript_sdk_server_everything_over_stdio() {
    require_peer(".peers/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    run_peer("configs/everything-stdio.yaml", "mcp-servers/everything", &["tools/call:echo"]);
}

#[test]
fn fastmcp_server_over_stdio() {
    require_peer(".peers/venv/bin/python");
    run_peer("configs/fastmcp-stdio.yaml", "fastmcp-peer", &["tools/call:echo", "tools/call:compute"]);
}

#[test]
fn every_request_kind_and_argument_templates_against_server_everything() {
    require_peer(".peers/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    run_cmd(&fixture("configs/everything-methods.yaml"), &out).assert().success();
    let r = read_json(&out);
    let ops = r["scenarios"][0]["repetitions"][0]["operations"].as_array().unwrap().clone();
    let names: Vec<&str> = ops.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "tools/call:echo",
            "ping",
            "tools/list",
            "resources/read",
            "prompts/get:args-prompt",
            "prompts/get:simple-prompt"
        ]
    );
    for op in &ops {
        // echo has two entries: random messages, and the lines of echo-messages.jsonl.
        let expected = if op["name"] == "tools/call:echo" { 200 } else { 100 };
        assert_eq!(op["count"], expected, "{op}");
        assert_eq!(op["errors"], serde_json::json!({}), "{op}");
    }
}
