//! Streamable HTTP: both protocol eras, SSE answers with server messages before the response,
//! sessions that expire, DELETE at the end, a server we did not start, and failures.

use predicates::prelude::*;

use crate::common::{
    SHORT_ECHO, assert_all_gone, fixture, free_port, load_lock, read_json, read_pids, run_cmd, run_ok,
    scripted_http_config, write_config,
};

fn log_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn legacy_sessions_with_sse_answers_expire_renew_and_are_deleted() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let env = format!(r#"SCRIPTED_SSE: "1", SCRIPTED_EXPIRE_EVERY: "40", SCRIPTED_LOG_FILE: "{}""#, log.display());
    let r = run_ok(&scripted_http_config(free_port(), &env, SHORT_ECHO));
    assert_eq!(r["server"]["protocol_version"], "2025-06-18");
    assert_eq!(r["server"]["transport"], "http");
    let rep = &r["scenarios"][0]["repetitions"][0];
    let echo = &rep["operations"][0];
    // The server answers 400 to a request without the negotiated MCP-Protocol-Version or its
    // session: no such error proves both were sent, before and after every renewal. (About one
    // run in ten under load sees a single transport error on a pooled connection, not yet
    // explained; it is allowed, and nothing else is.)
    let calls = echo["count"].as_u64().unwrap();
    let errors = echo["errors"].as_object().unwrap();
    assert!(errors.keys().all(|k| k == "transport"), "{echo}");
    assert!(errors.get("transport").map_or(0, |n| n.as_u64().unwrap()) * 100 <= calls, "{echo}");
    assert!(calls >= 80, "{calls} calls");
    let conn = &rep["connection"];
    let renewals = conn["session_reinitializations"].as_u64().unwrap();
    assert!(renewals >= calls / 40 - 1, "{renewals} renewals for {calls} calls: {conn}");
    // Every answer came after a priming event, a notification and a ping from the server.
    assert!(conn["notifications"].as_u64().unwrap() >= calls, "{conn}");
    assert!(conn["server_requests"].as_u64().unwrap() >= calls, "{conn}");
    let lines = log_lines(&log);
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count() as u64;
    // Every ping was answered, but for the last few still on their way when the run ended.
    assert!(count("pong") + 8 >= calls, "pings answered: {} of {calls}", count("pong"));
    assert_eq!(count("initialize"), renewals + 1, "one handshake per session, however many callers saw the 404");
    assert_eq!(count("delete"), 1, "the last session is ended: {lines:?}");
    assert_eq!(lines.iter().rfind(|l| l.starts_with("delete")), Some(&format!("delete session-{}", renewals + 1)));
    // Keep-alive: a few pooled connections (each call in flight, its ping's answer, a renewal),
    // not one per call.
    let opened = rep["client"]["connections_opened"].as_u64().unwrap();
    assert!(opened >= 1 && opened * 10 <= calls, "{opened} connections for {calls} calls: {}", rep["client"]);
}

#[test]
fn the_stateless_revision_is_detected_and_spoken() {
    let _turn = load_lock();
    // This server checks `_meta`, MCP-Protocol-Version, Mcp-Method and Mcp-Name on every request
    // and refuses `initialize`: a clean run proves the client chose and spoke 2026-07-28.
    let r = run_ok(&scripted_http_config(free_port(), r#"SCRIPTED_ERA: modern"#, SHORT_ECHO));
    assert_eq!(r["server"]["protocol_version"], "2026-07-28");
    let echo = &r["scenarios"][0]["repetitions"][0]["operations"][0];
    assert_eq!(echo["errors"], serde_json::json!({}), "{echo}");
    assert!(echo["count"].as_u64().unwrap() >= 50, "{echo}");
}

#[test]
fn a_server_that_is_already_running_is_measured_at_its_url() {
    let _turn = load_lock();
    let port = free_port();
    let mut server = std::process::Command::new("python3")
        .arg(fixture("peers/scripted_http_server.py"))
        .arg(port.to_string())
        .spawn()
        .unwrap();
    // The run does not wait for a server it did not start: give this one a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the scripted server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let yaml = format!("server:\n  transport: http\n  url: http://127.0.0.1:{port}/mcp\nworkload:{SHORT_ECHO}");
    let r = run_ok(&yaml);
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(r["server"]["command"], format!("http://127.0.0.1:{port}/mcp"));
    let rep = &r["scenarios"][0]["repetitions"][0];
    assert!(rep["operations"][0]["count"].as_u64().unwrap() > 10);
    assert!(rep["server_resources"].is_null(), "no process of ours to sample");
}

#[test]
fn an_http_server_that_dies_mid_run_gives_exit_2_and_keeps_the_measurements() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let out = dir.path().join("r.json");
    let env = format!(r#"SCRIPTED_CRASH_AFTER: "150", SCRIPTED_PID_FILE: "{}""#, pids.display());
    let workload = SHORT_ECHO.replace("duration: 500ms", "duration: 5s");
    let cfg = write_config(dir.path(), &scripted_http_config(free_port(), &env, &workload));
    run_cmd(&cfg, &out)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("RUN FAILED (server_exit)"))
        .stdout(predicate::str::contains("fatal: scripted crash after 150 calls"));
    let r = read_json(&out);
    assert!(r["failure"]["message"].as_str().unwrap().contains("exit status: 3"), "{}", r["failure"]);
    let echo = &r["scenarios"][0]["repetitions"][0]["operations"][0];
    assert!(echo["count"].as_u64().unwrap() >= 150, "calls before the crash are kept: {echo}");
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn an_http_server_that_never_listens_fails_the_start_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let port = free_port();
    let yaml = format!(
        "server:\n  command: [sh, -c, \"echo listening soon; echo no port for you >&2; sleep 30\"]\n  transport: http\n  url: http://127.0.0.1:{port}/mcp\n  startup_timeout: 1s\nworkload:{SHORT_ECHO}"
    );
    run_cmd(&write_config(dir.path(), &yaml), &out)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("within 1s (server.startup_timeout)"))
        .stdout(predicate::str::contains("no port for you"))
        .stdout(predicate::str::contains("listening soon"));
    assert_eq!(read_json(&out)["failure"]["kind"], "server_start");
}
