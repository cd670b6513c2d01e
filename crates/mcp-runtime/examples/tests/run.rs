//! Both examples run as a user would run them, against the upstream simulator on loopback: the
//! rmcp tool over stdio, the axum endpoint over HTTP with its edge shedding.

use std::process::Stdio;
use std::time::Duration;

use mcp_perfcheck::upstream::{Behaviour, Latency, Simulator, SimulatorConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

async fn simulator(latency: Duration) -> Simulator {
    let behaviour = Behaviour { latency: Latency::Fixed(latency), ..Behaviour::default() };
    Simulator::start(SimulatorConfig { behaviour, ..SimulatorConfig::default() }).await.unwrap()
}

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "examples-test", "version": "1"}}})
}

fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

/// A line-delimited JSON-RPC client over a child's stdin and stdout.
struct JsonRpc {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl JsonRpc {
    async fn send(&mut self, message: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{message}\n").as_bytes()).await.unwrap();
    }

    /// The answer to request `id` (notifications and other answers skipped), within 10 s.
    async fn answer(&mut self, id: u64) -> Value {
        let wait = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                let message: Value = serde_json::from_str(&line).unwrap();
                if message["id"] == id {
                    return message;
                }
            }
            panic!("the server closed stdout before answering {id}");
        };
        tokio::time::timeout(Duration::from_secs(10), wait).await.expect("an answer within 10 s")
    }
}

#[tokio::test]
async fn the_rmcp_tool_reads_the_api_through_its_stack_and_caches_it() {
    let sim = simulator(Duration::from_millis(1)).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rmcp_https_tool"))
        .env("UPSTREAM_URL", sim.url())
        .env("UPSTREAM_TOKEN", "t0ken")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut mcp = JsonRpc { child, lines };
    mcp.send(initialize(1)).await;
    assert_eq!(mcp.answer(1).await["result"]["serverInfo"]["name"], "rmcp-https-tool");
    mcp.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;

    mcp.send(call(2, "item", json!({"id": "7"}))).await;
    let first = mcp.answer(2).await;
    assert_eq!(first["result"]["structuredContent"]["id"], "7", "{first}");
    assert_eq!(first["result"]["isError"], false, "{first}");
    mcp.send(call(3, "item", json!({"id": "7"}))).await;
    assert_eq!(mcp.answer(3).await["result"]["structuredContent"], first["result"]["structuredContent"]);
    assert_eq!(sim.stats().items, 1, "the second call was served by the cache layer");

    mcp.send(call(4, "item", json!({"id": "../admin"}))).await;
    assert_eq!(mcp.answer(4).await["error"]["code"], -32602, "untrusted ids never reach the URL");
    mcp.send(call(5, "item", json!({"id": "missing-1"}))).await;
    let missing = mcp.answer(5).await;
    assert_eq!(missing["result"]["isError"], true, "{missing}");
    assert_eq!(missing["result"]["structuredContent"]["error"], "the API answered 404 Not Found");
    drop(mcp.child.stdin.take());
    mcp.child.wait().await.unwrap();
}

/// The example started with `env`: its child and its MCP URL.
async fn edge(env: &[(&str, String)]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_axum_edge"));
    command.env("EDGE_LISTEN", "127.0.0.1:0").stdout(Stdio::piped()).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    let url = first.strip_prefix("listening on ").expect("the address line").to_string();
    (child, url)
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// The JSON-RPC message of an answer.
async fn message(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn the_axum_edge_sheds_past_its_rate_with_429_and_past_its_bulkhead_with_503() {
    let sim = simulator(Duration::from_millis(400)).await;
    let client = reqwest::Client::new();

    // Rate 1/s with bursts of 3: of ten calls at once, three are let through.
    let (_child, url) =
        edge(&[("UPSTREAM_URL", sim.url()), ("EDGE_RATE", "1".into()), ("EDGE_BURST", "3".into())]).await;
    let answers = ten_at_once(&client, &url).await;
    let admitted = answers.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert!((3..=4).contains(&admitted), "{answers:?}");
    assert_eq!(admitted + limited.len(), 10, "{answers:?}");
    assert!(
        limited.iter().all(|(_, retry_after)| retry_after.as_deref().is_some_and(|s| s.parse::<u64>().unwrap() >= 1))
    );

    // One call at a time, none queued: a second lookup while the first waits on the
    // upstream (400 ms) is shed with 503; the first answers with the item. (The endpoint is
    // stateless: each call stands alone.)
    let env = [("UPSTREAM_URL", sim.url()), ("EDGE_CONCURRENCY", "1".into()), ("EDGE_QUEUE", "0".into())];
    let (_child, url) = edge(&env).await;
    let opened = post(&client, &url, &initialize(1)).await;
    assert_eq!(message(opened).await["result"]["serverInfo"]["name"], "axum-edge");
    let first_call = call(2, "lookup", json!({"id": "7"}));
    let slow = post(&client, &url, &first_call);
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        post(&client, &url, &call(3, "lookup", json!({"id": "8"}))).await
    };
    let (slow, second) = tokio::join!(slow, second);
    assert_eq!(second.status(), 503);
    assert!(second.headers().contains_key("retry-after"));
    let answered = message(slow).await;
    assert_eq!(answered["result"]["structuredContent"]["item"]["id"], "7", "{answered}");
    assert_eq!(answered["result"]["structuredContent"]["served_by"], "fresh");
    sim.stop().await;
}

/// Ten initialize calls at once: each one's status and `Retry-After`.
async fn ten_at_once(client: &reqwest::Client, url: &str) -> Vec<(u16, Option<String>)> {
    let calls = (0..10).map(|i| {
        let (client, url) = (client.clone(), url.to_string());
        tokio::spawn(async move {
            let response = post(&client, &url, &initialize(i)).await;
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (response.status().as_u16(), retry_after)
        })
    });
    let mut answers = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        answers.push(call.await.unwrap());
    }
    answers
}
