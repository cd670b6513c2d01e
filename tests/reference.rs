//! The reference server's tools, called by clients no one here wrote — the official Python SDK
//! (`mcp` on PyPI) and TypeScript SDK (`@modelcontextprotocol/sdk` on npm), both installed by
//! scripts/setup-peers.sh — over stdio and over Streamable HTTP, with the upstream simulator
//! behind the runtime.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{bin_path, fixture, require_peer, spawn_http_server, stop_http_server};
use mcp_perfcheck::upstream::{Simulator, SimulatorConfig};

enum Sdk {
    Python,
    TypeScript,
}

impl Sdk {
    /// The command that runs this SDK's client script.
    fn command(&self) -> tokio::process::Command {
        let (program, script) = match self {
            Sdk::Python => (require_peer(".peers/venv/bin/python"), fixture("peers/sdk_client.py")),
            Sdk::TypeScript => {
                require_peer(".peers/node/node_modules/@modelcontextprotocol/sdk/package.json");
                (PathBuf::from("node"), fixture("peers/sdk_client.mjs"))
            }
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.arg(script);
        cmd
    }
}

/// Runs the client script and returns what it printed.
async fn run_client(mut cmd: tokio::process::Command) -> serde_json::Value {
    let output =
        tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("the client finished").unwrap();
    assert!(output.status.success(), "client failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn call<'a>(out: &'a serde_json::Value, tool: &str) -> &'a serde_json::Value {
    out["calls"].as_array().unwrap().iter().find(|c| c["tool"] == tool).unwrap_or_else(|| panic!("no call of {tool}"))
}

/// What every client must have seen, whatever the SDK and transport.
fn assert_every_tool_answered(out: &serde_json::Value) {
    assert_eq!(
        out["tools"],
        serde_json::json!(["aggregate", "batch_lookup", "compute", "echo", "lookup", "runtime_stats"])
    );
    assert_eq!(call(out, "echo")["text"][0], "hello");
    assert_eq!(call(out, "compute")["is_error"], false);
    let lookup = &out["calls"][2];
    assert_eq!((lookup["tool"].as_str(), lookup["is_error"].as_bool()), (Some("lookup"), Some(false)));
    assert_eq!(lookup["structured"]["item"]["id"], "42");
    assert_eq!(lookup["structured"]["served_by"], "fresh");
    assert_eq!(out["calls"][3]["structured"]["found"], false, "an upstream 404 is `found: false`, not an error");
    let batch = &call(out, "batch_lookup")["structured"];
    let found: Vec<bool> = batch["items"].as_array().unwrap().iter().map(|i| i["found"].as_bool().unwrap()).collect();
    assert_eq!(found, [true, true, false, true]);
    let aggregate = &call(out, "aggregate")["structured"];
    assert_eq!(aggregate["complete"], true);
    assert_eq!(aggregate["parts"].as_object().unwrap().len(), 3);
    // Misuse is a JSON-RPC error, not a tool result.
    let misuse = out["misuse"].as_array().unwrap();
    assert!(misuse[0]["error"].as_str().unwrap().contains("`id` must be"), "{misuse:?}");
    assert!(misuse[1]["error"].as_str().unwrap().contains("not found"), "{misuse:?}");
    // The statistics as the tool and as the resource: four ids (one twice) made one batch
    // call of three.
    let stats = &call(out, "runtime_stats")["structured"];
    let catalog = stats["upstreams"].as_array().unwrap().iter().find(|u| u["name"] == "catalog").unwrap();
    assert_eq!((catalog["batch"]["batches"].as_u64(), catalog["batch"]["items"].as_u64()), (Some(1), Some(3)));
    assert_eq!(out["resource"]["upstreams"].as_array().unwrap().len(), 3);
}

async fn over_stdio(sdk: Sdk) {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let mut cmd = sdk.command();
    cmd.arg("stdio").arg(bin_path()).args(["serve", "--upstream", &sim.url()]);
    assert_every_tool_answered(&run_client(cmd).await);
}

async fn http_server(upstream: &str) -> (tokio::process::Child, String) {
    spawn_http_server(&["--upstream", upstream], &[]).await
}

async fn over_http(sdk: Sdk) {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let (child, url) = http_server(&sim.url()).await;
    let mut cmd = sdk.command();
    cmd.arg("http").arg(&url);
    assert_every_tool_answered(&run_client(cmd).await);
    stop_http_server(child).await;
}

#[tokio::test]
async fn the_python_sdk_calls_every_tool_over_stdio() {
    over_stdio(Sdk::Python).await;
}

#[tokio::test]
async fn the_typescript_sdk_calls_every_tool_over_stdio() {
    over_stdio(Sdk::TypeScript).await;
}

#[tokio::test]
async fn the_python_sdk_calls_every_tool_over_http() {
    over_http(Sdk::Python).await;
}

#[tokio::test]
async fn the_typescript_sdk_calls_every_tool_over_http() {
    over_http(Sdk::TypeScript).await;
}

#[tokio::test]
async fn the_http_server_checks_host_bounds_bodies_and_serves_health_readiness_and_metrics() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let (child, url) = http_server(&sim.url()).await;
    let base = url.trim_end_matches("/mcp").to_string();
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{base}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().text().await.unwrap(), "ok");
    let ready: serde_json::Value = serde_json::from_str(&get("/readyz").await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(ready["status"], "ready");
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mcp_breaker_state{upstream=\"catalog\"} 0"), "{metrics}");
    assert!(metrics.contains("process_resident_memory_bytes"));

    // DNS rebinding protection: a foreign Host or Origin is refused.
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let post = |host: Option<&str>, origin: Option<&str>, body: String| {
        let mut r = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(h) = host {
            r = r.header("host", h);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    assert_eq!(post(Some("evil.example"), None, init.into()).await.unwrap().status(), 403);
    assert_eq!(post(None, Some("http://evil.example"), init.into()).await.unwrap().status(), 403);
    assert_eq!(post(None, None, init.into()).await.unwrap().status(), 200);
    // Bounded bodies: past the 4 MiB default is refused, with a JSON-RPC answer to its id.
    let huge = format!(r#"{{"jsonrpc":"2.0","id":2,"method":"ping","params":{{"pad":"{}"}}}}"#, "x".repeat(4 << 20));
    let refused = post(None, None, huge).await.unwrap();
    assert_eq!(refused.status(), 413);
    let answer: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!((&answer["id"], &answer["error"]["code"]), (&serde_json::json!(2), &serde_json::json!(-32600)));
    stop_http_server(child).await;
}

#[tokio::test]
async fn with_admin_an_operator_switches_a_breaker_at_run_time_and_without_it_nothing_is_served() {
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let (child, url) = spawn_http_server(&["--upstream", &sim.url(), "--admin"], &[]).await;
    let base = url.trim_end_matches("/mcp").to_string();
    let client = reqwest::Client::new();
    let switch =
        |upstream: &str, action: &str| client.post(format!("{base}/admin/breakers/{upstream}/{action}")).send();
    let answer = switch("catalog", "force_open").await.unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"upstream": "catalog", "state": "forced_open"}));
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mcp_breaker_state{upstream=\"catalog\"} 4"), "forced open: {metrics}");
    assert_eq!(switch("catalog", "normal").await.unwrap().status(), 200);
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mcp_breaker_state{upstream=\"catalog\"} 0"), "closed again: {metrics}");
    assert_eq!(switch("nowhere", "reset").await.unwrap().status(), 404);
    assert_eq!(switch("catalog", "explode").await.unwrap().status(), 400);
    stop_http_server(child).await;

    // Off unless asked for.
    let (child, url) = spawn_http_server(&["--upstream", &sim.url()], &[]).await;
    let base = url.trim_end_matches("/mcp").to_string();
    let answer = client.post(format!("{base}/admin/breakers/catalog/force_open")).send().await.unwrap();
    assert_eq!(answer.status(), 404);
    stop_http_server(child).await;
}

/// Clients that never send DELETE leak nothing: their sessions end after `--session-idle`.
#[tokio::test]
async fn sessions_left_open_expire_after_the_idle_time() {
    let (child, url) = spawn_http_server(&["--session-idle", "1s"], &[]).await;
    let base = url.trim_end_matches("/mcp").to_string();
    let client = reqwest::Client::new();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    for _ in 0..10 {
        let r = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init)
            .send()
            .await
            .unwrap();
        assert!(r.headers().contains_key("mcp-session-id"));
        let _ = r.text().await;
    }
    let sessions = |text: String| text.lines().find_map(|l| l.strip_prefix("mcp_http_sessions ")?.parse::<u64>().ok());
    let metrics = || async { client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap() };
    assert_eq!(sessions(metrics().await), Some(10));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sessions(metrics().await) != Some(0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sessions(metrics().await), Some(0), "idle sessions were ended");
    stop_http_server(child).await;
}

/// Horizontal scaling: in the stateless 2026-07-28 mode an instance holds no per-client state,
/// so two instances share one Redis and one serves from it what the other loaded.
#[cfg(feature = "redis")]
#[tokio::test]
async fn two_stateless_instances_share_the_redis_cache_layer() {
    let redis = crate::common::RedisServer::start();
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let env = [("MCP_RUNTIME_REDIS_URL", redis.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let upstream = ["--upstream", &sim.url()];
    let ((a, url_a), (b, url_b)) = (spawn_http_server(&upstream, &env).await, spawn_http_server(&upstream, &env).await);
    let call = |url: String, tool: &'static str, args: &'static str| async move {
        let mut cmd = Sdk::Python.command();
        cmd.args(["call", &url, tool, args]);
        run_client(cmd).await
    };
    let first = call(url_a.clone(), "lookup", r#"{"id": "shared-1"}"#).await;
    assert_eq!(first["structured"]["served_by"], "fresh");
    assert_eq!(sim.stats().items, 1, "instance a loaded it from the upstream");
    let second = call(url_b.clone(), "lookup", r#"{"id": "shared-1"}"#).await;
    assert_eq!(second["structured"]["item"], first["structured"]["item"]);
    assert_eq!(sim.stats().items, 1, "instance b did not go to the upstream");
    let stats = call(url_b.clone(), "runtime_stats", "{}").await;
    let catalog = stats["structured"]["upstreams"].as_array().unwrap().iter().find(|u| u["name"] == "catalog").unwrap();
    assert_eq!(catalog["cache"]["l2_hits"], 1, "{catalog}");
    for url in [&url_a, &url_b] {
        let metrics = reqwest::get(url.replace("/mcp", "/metrics")).await.unwrap().text().await.unwrap();
        assert!(metrics.contains("mcp_http_sessions 0"), "stateless: no session held");
    }
    stop_http_server(a).await;
    stop_http_server(b).await;
}

/// A load balancer's Host is accepted only when allowed (`--allowed-host`, or the environment);
/// `X-Forwarded-Host` counts only from a `--trusted-proxy`; an Origin only when allowed.
#[tokio::test]
async fn a_load_balancers_host_is_accepted_when_allowed_and_forwarded_headers_only_from_trusted_proxies() {
    let client = reqwest::Client::new();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let status = |url: String, headers: Vec<(&'static str, String)>| {
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(init);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let host = |h: &str| ("host", h.to_string());

    // By default only loopback names: a balancer's name is refused.
    let (child, url) = spawn_http_server(&[], &[]).await;
    let own = url.trim_start_matches("http://").trim_end_matches("/mcp").to_string();
    assert_eq!(status(url.clone(), vec![host(&own)]).await, 200);
    assert_eq!(status(url.clone(), vec![host("mcp.internal:8080")]).await, 403);
    stop_http_server(child).await;

    // Allowed with its port: that port only.
    let (child, url) = spawn_http_server(&["--allowed-host", "mcp.internal:8080"], &[]).await;
    assert_eq!(status(url.clone(), vec![host("mcp.internal:8080")]).await, 200);
    assert_eq!(status(url.clone(), vec![host("mcp.internal:9999")]).await, 403);
    assert_eq!(status(url.clone(), vec![host("evil.example")]).await, 403);
    stop_http_server(child).await;

    // From the environment, comma-separated; a name without a port allows any port. An
    // X-Forwarded-Host from an untrusted peer is ignored.
    let (child, url) = spawn_http_server(&[], &[("MCP_SERVE_ALLOWED_HOSTS", "mcp.internal,lb.internal")]).await;
    assert_eq!(status(url.clone(), vec![host("lb.internal:1234")]).await, 200);
    let spoofed = vec![host(&own), ("x-forwarded-host", "evil.example".into())];
    assert_eq!(status(url.clone(), spoofed).await, 200, "an untrusted peer's X-Forwarded-Host is not read");
    stop_http_server(child).await;

    // Behind a trusted proxy the forwarded host is the one checked.
    let args = ["--trusted-proxy", "127.0.0.1", "--allowed-host", "mcp.internal"];
    let (child, url) = spawn_http_server(&args, &[]).await;
    let forwarded = |h: &str| vec![host(&own), ("x-forwarded-host", h.to_string())];
    assert_eq!(status(url.clone(), forwarded("mcp.internal")).await, 200);
    assert_eq!(status(url.clone(), forwarded("evil.example")).await, 403);
    stop_http_server(child).await;

    // Origins: loopback ones by default, others only when allowed.
    let (child, url) = spawn_http_server(&["--allowed-origin", "https://app.example"], &[]).await;
    assert_eq!(status(url.clone(), vec![("origin", "https://app.example".into())]).await, 200);
    assert_eq!(status(url.clone(), vec![("origin", "https://evil.example".into())]).await, 403);
    assert_eq!(status(url.clone(), vec![("origin", format!("http://{own}"))]).await, 200);
    stop_http_server(child).await;
}

/// `/readyz` probes the upstreams on its interval: an upstream that stops answering makes the
/// instance unready (503, naming it) within two intervals, and ready again within two after it
/// is back.
#[tokio::test]
async fn readyz_turns_503_within_two_probe_intervals_of_an_upstream_outage_and_back_after_it() {
    use mcp_perfcheck::upstream::{FaultKind, FaultSpec, OutageMode};
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let (child, url) = spawn_http_server(&["--upstream", &sim.url(), "--ready-interval", "500ms"], &[]).await;
    let readyz = url.replace("/mcp", "/readyz");
    let client = reqwest::Client::new();
    let read = || async {
        let answer = client.get(&readyz).send().await.unwrap();
        let status = answer.status().as_u16();
        (status, serde_json::from_str::<serde_json::Value>(&answer.text().await.unwrap()).unwrap())
    };
    let (status, body) = read().await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")), "{body}");

    let outage = Duration::from_secs(3);
    let kind = FaultKind::Outage { mode: OutageMode::Refuse };
    sim.schedule(FaultSpec { kind, after: Duration::ZERO, duration: outage });
    let down = std::time::Instant::now();
    let (out_after, body) = loop {
        let (status, body) = read().await;
        if status == 503 {
            break (down.elapsed(), body);
        }
        assert!(down.elapsed() < outage, "still ready during the outage: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(out_after <= Duration::from_secs(1), "unready after {out_after:?}, more than two 500 ms intervals");
    assert_eq!(body["status"], "unready");
    assert!(body["failed"].as_array().unwrap().contains(&serde_json::json!("upstream:catalog")), "{body}");

    let up = down + outage;
    tokio::time::sleep_until(up.into()).await;
    let back_after = loop {
        let (status, body) = read().await;
        if status == 200 {
            break up.elapsed();
        }
        assert!(up.elapsed() < Duration::from_secs(5), "still unready 5 s after the outage: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(back_after <= Duration::from_secs(1), "ready again after {back_after:?}");
    println!("readyz: unready {out_after:?} into the outage, ready {back_after:?} after it (interval 500 ms)");
    stop_http_server(child).await;
}

/// On SIGTERM readiness drops first: for the drain delay `/readyz` says "draining" while calls
/// are still answered; then the server stops accepting and exits 0.
#[tokio::test]
async fn on_sigterm_readiness_drops_first_and_calls_are_served_through_the_drain_delay() {
    let (mut child, url) = spawn_http_server(&["--drain-delay", "1s"], &[]).await;
    let client = reqwest::Client::new();
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ready = client.get(url.replace("/mcp", "/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), r#"{"status":"draining"}"#);
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let call = client
        .post(&url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init)
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200, "still serving while draining");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("exited").unwrap();
    assert!(status.success(), "{status}");
}

/// Handshake-era sessions in Redis (`--session-store`): a session opened on instance a is
/// served by instance b with no sticky routing; without the store, b answers 404; DELETE
/// through b removes it for everyone.
#[cfg(feature = "redis")]
#[tokio::test]
async fn with_a_session_store_a_session_opened_on_one_instance_is_served_by_another() {
    use serde_json::{Value, json};
    let redis = crate::common::RedisServer::start();
    let store = ["--session-store", &redis.url()];
    let ((a, url_a), (b, url_b), (c, url_c)) =
        (spawn_http_server(&store, &[]).await, spawn_http_server(&store, &[]).await, spawn_http_server(&[], &[]).await);
    let client = reqwest::Client::new();
    let post = |url: &str, session: Option<&str>, body: Value| {
        let mut r = client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(s) = session {
            r = r.header("mcp-session-id", s).header("mcp-protocol-version", "2025-11-25");
        }
        r.send()
    };
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fleet","version":"1"}}});
    let opened = post(&url_a, None, init).await.unwrap();
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_string();
    opened.text().await.unwrap();
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(post(&url_a, Some(&session), initialized).await.unwrap().status(), 202);
    let echo = |id: u64| json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"message":"from b"}}});
    let mut took = Vec::new();
    for id in 1..=3 {
        let started = std::time::Instant::now();
        let answer = post(&url_b, Some(&session), echo(id)).await.unwrap();
        assert_eq!(answer.status(), 200, "instance b serves a's session");
        let body = answer.text().await.unwrap();
        took.push(started.elapsed());
        assert!(body.contains("from b") && body.contains(&format!("\"id\":{id}")), "{body}");
    }
    println!(
        "calls on b of a's session: first (handshake replayed from Redis) {:?}, then {:?}, {:?}",
        took[0], took[1], took[2]
    );
    assert_eq!(post(&url_c, Some(&session), echo(4)).await.unwrap().status(), 404, "without the store: 404");
    let deleted = client
        .delete(&url_b)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let mut redis_client = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let left: Option<String> =
        redis::cmd("GET").arg(format!("mcp-perfcheck:session:{session}")).query_async(&mut redis_client).await.unwrap();
    assert_eq!(left, None, "DELETE removed the record");
    for child in [a, b, c] {
        stop_http_server(child).await;
    }
}
