//! The reference server's tools, called by a client no one here wrote: the official Python SDK
//! (`mcp` on PyPI, installed by scripts/setup-peers.sh), over stdio, with the upstream
//! simulator behind the runtime.

use mcp_perfcheck::upstream::{Simulator, SimulatorConfig};

use crate::common::{bin_path, fixture, require_peer};

fn call<'a>(out: &'a serde_json::Value, tool: &str) -> &'a serde_json::Value {
    out["calls"].as_array().unwrap().iter().find(|c| c["tool"] == tool).unwrap_or_else(|| panic!("no call of {tool}"))
}

#[tokio::test]
async fn the_python_sdk_calls_every_tool_over_stdio() {
    let python = require_peer(".peers/venv/bin/python");
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let output = tokio::process::Command::new(python)
        .arg(fixture("peers/sdk_client.py"))
        .args(["stdio"])
        .arg(bin_path())
        .args(["serve", "--upstream", &sim.url()])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let out: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        out["tools"],
        serde_json::json!(["aggregate", "batch_lookup", "compute", "echo", "lookup", "runtime_stats"])
    );
    assert_eq!(call(&out, "echo")["text"][0], "hello");

    let lookup = &out["calls"][2];
    assert_eq!((lookup["tool"].as_str(), lookup["is_error"].as_bool()), (Some("lookup"), Some(false)));
    assert_eq!(lookup["structured"]["item"]["id"], "42");
    assert_eq!(lookup["structured"]["served_by"], "fresh");
    let missing = &out["calls"][3];
    assert_eq!(missing["structured"]["found"], false, "a 404 upstream is a found: false answer, not an error");

    let batch = &call(&out, "batch_lookup")["structured"];
    let found: Vec<bool> = batch["items"].as_array().unwrap().iter().map(|i| i["found"].as_bool().unwrap()).collect();
    assert_eq!(found, [true, true, false, true]);
    let aggregate = &call(&out, "aggregate")["structured"];
    assert_eq!(aggregate["complete"], true);
    assert_eq!(aggregate["parts"].as_object().unwrap().len(), 3);

    // Misuse is a JSON-RPC error, not a tool result.
    let misuse = out["misuse"].as_array().unwrap();
    assert!(misuse[0]["error"].as_str().unwrap().contains("`id` must be"), "{misuse:?}");
    assert!(misuse[1]["error"].as_str().unwrap().contains("not found"), "{misuse:?}");

    // The statistics, as the tool and as the resource: three ids in one batch call.
    let stats = &call(&out, "runtime_stats")["structured"];
    let catalog = stats["upstreams"].as_array().unwrap().iter().find(|u| u["name"] == "catalog").unwrap();
    assert_eq!(catalog["batch"]["batches"], 1);
    assert_eq!(catalog["batch"]["items"], 3, "four ids, one asked twice");
    assert_eq!(out["resource"]["upstreams"].as_array().unwrap().len(), 3);
    assert!(sim.stats().batches >= 1);
}
