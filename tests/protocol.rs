//! Protocol errors by the book (JSON-RPC 2.0 §5), on both transports: one corpus of bad input,
//! each answered with its error and, whenever the id can be read, that id; and the server still
//! serving afterwards.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{bin_path, spawn_http_server, stop_http_server};

const LIMIT: usize = 64 * 1024;

/// What is answered: the id (`null` when unreadable) and the JSON-RPC error code.
struct Case {
    what: &'static str,
    input: Vec<u8>,
    id: Value,
    code: i64,
}

fn case(what: &'static str, input: impl Into<Vec<u8>>, id: Value, code: i64) -> Case {
    Case { what, input: input.into(), id, code }
}

fn corpus() -> Vec<Case> {
    let big =
        format!(r#"{{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{{"pad":"{}"}}}}"#, "x".repeat(LIMIT));
    vec![
        case("not JSON", "hello server", Value::Null, -32700),
        case("cut off", r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"#, json!(1), -32700),
        case(
            "a lone surrogate",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"\ud800"}}}"#,
            json!(2),
            -32700,
        ),
        case(
            "invalid UTF-8",
            &b"{\"jsonrpc\":\"2.0\",\"id\":\"u\",\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\"}}"[..],
            json!("u"),
            -32700,
        ),
        case("binary", &b"\x00\xff\xfe"[..], Value::Null, -32700),
        case("an empty batch", "[]", Value::Null, -32600),
        case("a batch", r#"[{"jsonrpc":"2.0","id":3,"method":"ping"}]"#, Value::Null, -32600),
        case("a scalar", "42", Value::Null, -32600),
        case("no method", r#"{"jsonrpc":"2.0","id":4}"#, json!(4), -32600),
        case("a numeric method", r#"{"jsonrpc":"2.0","id":5,"method":7}"#, json!(5), -32600),
        case("jsonrpc 1.0", r#"{"jsonrpc":"1.0","id":6,"method":"ping"}"#, json!(6), -32600),
        case("no jsonrpc", r#"{"id":7,"method":"ping"}"#, json!(7), -32600),
        case("an object id", r#"{"jsonrpc":"2.0","id":{"n":8},"method":"ping"}"#, Value::Null, -32600),
        case("a fractional id", r#"{"jsonrpc":"2.0","id":8.5,"method":"ping"}"#, Value::Null, -32600),
        case("params a string", r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":"echo"}"#, json!(9), -32602),
        case("params an array", r#"{"jsonrpc":"2.0","id":10,"method":"ping","params":[]}"#, json!(10), -32602),
        case("tools/call without params", r#"{"jsonrpc":"2.0","id":"t","method":"tools/call"}"#, json!("t"), -32602),
        case("an unknown method", r#"{"jsonrpc":"2.0","id":11,"method":"no/such"}"#, json!(11), -32601),
        case(
            "an unknown tool",
            r#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"nope"}}"#,
            json!(12),
            -32602,
        ),
        case("oversized, id first", big, json!("big"), -32600),
    ]
}

fn initialize(id: u64) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"corpus","version":"1"}}})
    .to_string()
}

fn echo(id: u64) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"message":"still here"}}})
        .to_string()
}

fn assert_answer(case: &Case, answer: &Value) {
    assert_eq!(answer["jsonrpc"], "2.0", "{}: {answer}", case.what);
    assert!(answer.as_object().unwrap().contains_key("id"), "{}: the id member is always there: {answer}", case.what);
    assert_eq!((&answer["id"], &answer["error"]["code"]), (&case.id, &json!(case.code)), "{}: {answer}", case.what);
    assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}: {answer}", case.what);
}

#[tokio::test]
async fn over_stdio_every_bad_line_gets_its_json_rpc_answer_and_the_server_keeps_serving() {
    let mut child = tokio::process::Command::new(bin_path())
        .args(["serve", "--max-message-bytes", &LIMIT.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |bytes: &[u8]| {
        stdin.write_all(bytes).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
    };
    let next = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>, what: &str| -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
            .unwrap()
            .expect("the server is still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: {e}: {line}"))
    };
    send(initialize(0).as_bytes()).await;
    assert_eq!(next(&mut lines, "initialize").await["id"], 0);
    send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    for case in corpus() {
        send(&case.input).await;
        assert_answer(&case, &next(&mut lines, case.what).await);
    }
    // What nobody waits for is not answered: a broken notification, a stray response, blank
    // lines. The next answer is the echo's.
    for line in [
        &br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":"x"}"#[..],
        br#"{"jsonrpc":"2.0","id":99,"result":{}}"#,
        b"   ",
    ] {
        send(line).await;
    }
    send(echo(100).as_bytes()).await;
    let answer = next(&mut lines, "echo").await;
    assert_eq!(
        (&answer["id"], &answer["result"]["content"][0]["text"]),
        (&json!(100), &json!("still here")),
        "{answer}"
    );
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "a closed stdin is a clean exit: {status}");
}

#[tokio::test]
async fn over_http_every_bad_body_gets_400_with_a_json_rpc_error_and_the_server_keeps_serving() {
    let (child, url) = spawn_http_server(&["--max-message-bytes", &LIMIT.to_string()], &[]).await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>, session: Option<String>| {
        let mut r = client
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(s) = session {
            r = r.header("mcp-session-id", s).header("mcp-protocol-version", "2025-11-25");
        }
        r.send()
    };
    let opened = post(initialize(0).into_bytes(), None).await.unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let initialized = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec();
    assert_eq!(post(initialized, Some(session.clone())).await.unwrap().status(), 202);
    // Errors the transport finds (bad JSON, bad shape, size) come back as HTTP 400 (413)
    // with a JSON-RPC body; errors of a well-formed request, as rmcp's answer on the session.
    for case in corpus() {
        let response = post(case.input.clone(), Some(session.clone())).await.unwrap();
        let status = response.status().as_u16();
        let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        let answer: Value = if kind.as_deref() == Some("application/json") {
            let expected = if case.what.starts_with("oversized") { 413 } else { 400 };
            assert_eq!(status, expected, "{}: {body}", case.what);
            serde_json::from_str(&body).unwrap()
        } else {
            assert!(matches!(case.code, -32601 | -32602), "{}: {status} {kind:?} {body}", case.what);
            assert_eq!(status, 200, "{}: {body}", case.what);
            let data = body.lines().filter_map(|l| l.strip_prefix("data: ")).find(|d| !d.trim().is_empty());
            serde_json::from_str(data.unwrap_or_else(|| panic!("{}: no event in {body}", case.what))).unwrap()
        };
        assert_answer(&case, &answer);
    }
    // Without a session (the stateless 2026-07-28 revision), the transport's own errors are
    // the same answers.
    for case in corpus().into_iter().filter(|c| !matches!(c.what, "an unknown method" | "an unknown tool")) {
        let response = post(case.input.clone(), None).await.unwrap();
        assert!(matches!(response.status().as_u16(), 400 | 413), "{}: {}", case.what, response.status());
        assert_answer(&case, &serde_json::from_str(&response.text().await.unwrap()).unwrap());
    }
    let still = post(echo(100).into_bytes(), Some(session)).await.unwrap();
    assert_eq!(still.status(), 200);
    let body = still.text().await.unwrap();
    assert!(body.contains("still here"), "{body}");
    stop_http_server(child).await;
}
