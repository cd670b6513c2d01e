//! `run` against real third-party servers, installed by scripts/setup-peers.sh.

use predicates::prelude::*;

use crate::common::{fixture, load_lock, read_json, require_peer, run_cmd};

/// Runs `config` and checks every scenario's every repetition measured `operations` cleanly.
fn run_peer(config: &str, server_name: &str, operations: &[&str]) -> serde_json::Value {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    run_cmd(&fixture(config), &out).assert().success().stdout(predicate::str::contains(server_name));
    let r = read_json(&out);
    assert_eq!(r["server"]["name"], server_name);
    for scenario in r["scenarios"].as_array().unwrap() {
        for rep in scenario["repetitions"].as_array().unwrap() {
            for name in operations {
                let op = rep["operations"].as_array().unwrap().iter().find(|o| o["name"] == *name).unwrap();
                assert!(op["count"].as_u64().unwrap() > 10, "{name}: {op}");
                assert_eq!(op["errors"], serde_json::json!({}), "{name}");
                assert!(op["latency_us"]["p50"].as_u64().unwrap() > 0);
            }
        }
    }
    r
}

/// The open-model scenario of an HTTP run kept its rate.
fn assert_open_rate_kept(r: &serde_json::Value) {
    let open = r["scenarios"].as_array().unwrap().iter().find(|s| s["executor"] == "constant-arrival-rate").unwrap();
    for rep in open["repetitions"].as_array().unwrap() {
        let load = &rep["load"];
        let (target, achieved) =
            (load["target_rate_per_s"].as_f64().unwrap(), load["achieved_rate_per_s"].as_f64().unwrap());
        assert!((achieved - target).abs() / target < 0.02, "{load}");
        assert!(rep["operations"][0]["latency_uncorrected_us"].is_object());
    }
}

#[test]
fn typescript_sdk_server_everything_over_streamable_http() {
    require_peer(".peers/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let r = run_peer("configs/everything-http.yaml", "mcp-servers/everything", &["tools/call:echo"]);
    // The handshake era, with SSE answers, one session per repetition.
    assert_eq!(r["server"]["protocol_version"], "2025-11-25");
    assert_open_rate_kept(&r);
}

#[test]
fn fastmcp_server_over_streamable_http() {
    require_peer(".peers/venv/bin/python");
    let r = run_peer("configs/fastmcp-http.yaml", "fastmcp-peer", &["tools/call:echo"]);
    // FastMCP 4 speaks the stateless revision: detected through server/discover.
    assert_eq!(r["server"]["protocol_version"], "2026-07-28");
    assert_open_rate_kept(&r);
}

#[test]
fn typescript_sdk_server_everything_over_stdio() {
    require_peer(".peers/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let r = run_peer("configs/everything-stdio.yaml", "mcp-servers/everything", &["tools/call:echo"]);
    // A handshake-era server: `server/discover` is not what it lists, so `initialize` it is.
    assert_eq!(r["server"]["protocol_version"], "2025-11-25");
}

#[test]
fn fastmcp_server_over_stdio() {
    require_peer(".peers/venv/bin/python");
    let r = run_peer("configs/fastmcp-stdio.yaml", "fastmcp-peer", &["tools/call:echo", "tools/call:compute"]);
    // FastMCP 4 lists 2026-07-28 in `server/discover`: spoken to statelessly over stdio too
    // (every call carries `_meta`, which it requires; no call failed).
    assert_eq!(r["server"]["protocol_version"], "2026-07-28");
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
