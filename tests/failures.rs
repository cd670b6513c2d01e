//! Robustness: no server process outlives `run` (normal end, crash, interrupt), a server that
//! fails to start or dies gives exit 2 with its stderr, malformed output is counted, not fatal.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::common::{
    SHORT_ECHO, assert_all_gone, load_lock, read_json, read_pids, run_cmd, scripted_config, write_config,
};

#[test]
fn no_process_remains_after_a_normal_run() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let cfg = write_config(dir.path(), &scripted_config("normal", &pids, "", SHORT_ECHO));
    let out = dir.path().join("r.json");
    run_cmd(&cfg, &out).assert().success();
    let pids = read_pids(&pids);
    assert_eq!(pids.len(), 2, "server and its child");
    // Both were measured as one server.
    assert_eq!(read_json(&out)["scenarios"][0]["repetitions"][0]["server_resources"]["processes_peak"], 2);
    assert_all_gone(&pids);
}

#[test]
fn a_crashed_server_gives_exit_2_its_stderr_and_keeps_what_was_measured() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let out = dir.path().join("r.json");
    let workload = SHORT_ECHO.replace("duration: 500ms", "duration: 5s");
    let cfg =
        write_config(dir.path(), &scripted_config("crash", &pids, "    SCRIPTED_CRASH_AFTER: \"200\"", &workload));
    run_cmd(&cfg, &out)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("RUN FAILED (server_exit)"))
        .stdout(predicate::str::contains("fatal: scripted crash after 200 calls"));
    let r = read_json(&out);
    assert_eq!(r["failure"]["kind"], "server_exit");
    assert!(r["failure"]["message"].as_str().unwrap().contains("exit status: 3"), "{}", r["failure"]);
    assert!(r["failure"]["stderr_tail"].to_string().contains("scripted crash"));
    let rep = &r["scenarios"][0]["repetitions"][0];
    assert!(rep["failure"].is_string());
    let echo = &rep["operations"][0];
    assert!(echo["count"].as_u64().unwrap() >= 199, "calls before the crash are kept: {echo}");
    assert!(echo["errors"]["transport"].as_u64().unwrap() >= 1, "{echo}");
    // What went wrong is kept with the count.
    assert!(echo["error_samples"]["transport"].as_str().unwrap().starts_with("connection lost"), "{echo}");
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn an_interrupted_run_ends_the_server_and_keeps_the_results() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let out = dir.path().join("r.json");
    let workload = SHORT_ECHO.replace("repetitions: 1", "repetitions: 3").replace("duration: 500ms", "duration: 1s");
    let cfg = write_config(dir.path(), &scripted_config("normal", &pids, "", &workload));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mcp-perfcheck"))
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt during the second repetition (its server has written 2 more pids).
    let deadline = Instant::now() + Duration::from_secs(20);
    while read_pids(&pids).len() < 4 {
        assert!(Instant::now() < deadline, "the second repetition never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "run did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
    let r = read_json(&out);
    assert_eq!(r["failure"]["kind"], "interrupted");
    let reps = r["scenarios"][0]["repetitions"].as_array().unwrap();
    assert_eq!(reps[0]["failure"], serde_json::Value::Null, "the first repetition completed");
    assert!(reps[0]["operations"][0]["count"].as_u64().unwrap() > 0);
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn a_server_that_exits_at_once_gives_exit_2_and_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let cfg = write_config(dir.path(), &scripted_config("exit_early", &pids, "", SHORT_ECHO));
    run_cmd(&cfg, &dir.path().join("r.json"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("RUN FAILED (server_start)"))
        .stdout(predicate::str::contains("did not complete the MCP handshake (`server/discover` or `initialize`)"))
        .stdout(predicate::str::contains("fatal: cannot bind to the configured port"));
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn a_server_that_never_answers_initialize_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let cfg = scripted_config("silent", &pids, "", SHORT_ECHO).replace("startup_timeout: 5s", "startup_timeout: 1s");
    let cfg = write_config(dir.path(), &cfg);
    run_cmd(&cfg, &dir.path().join("r.json"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains(
            "did not complete the MCP handshake (`server/discover` or `initialize`) within 1s (server.startup_timeout)",
        ))
        .stdout(predicate::str::contains("starting up, please wait"));
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn a_missing_server_program_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "server:\n  command: [/nonexistent/server]\nworkload:\n  repetitions: 1\n  scenarios:\n    - {name: s, duration: 1s, mix: [{tool: echo}]}\n",
    );
    run_cmd(&cfg, &dir.path().join("r.json"))
        .assert()
        .code(2)
        .stdout(predicate::str::contains("cannot start `/nonexistent/server`"));
}

#[test]
fn malformed_lines_and_failed_calls_are_counted_by_kind() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let out = dir.path().join("r.json");
    let workload = SHORT_ECHO.replace(
        "mix: [{tool: echo, arguments: {message: hi}}]",
        "mix: [{tool: echo, arguments: {message: hi}}, {tool: fail}, {tool: no_such_tool}]",
    );
    let cfg = write_config(dir.path(), &scripted_config("garbage", &pids, "", &workload));
    run_cmd(&cfg, &out).assert().success();
    let r = read_json(&out);
    let rep = &r["scenarios"][0]["repetitions"][0];
    assert!(rep["unattributed_errors"]["protocol"].as_u64().unwrap() > 0, "{rep}");
    assert_eq!(rep["connection"]["malformed_sample"], "this line is not JSON-RPC");
    let op = |name: &str| rep["operations"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap().clone();
    assert_eq!(op("tools/call:echo")["errors"], serde_json::json!({}));
    let fail = op("tools/call:fail");
    assert_eq!(fail["errors"]["tool_error"], fail["count"]);
    let missing = op("tools/call:no_such_tool");
    assert_eq!(missing["errors"]["jsonrpc:-32602"], missing["count"]);
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn an_unanswered_request_counts_as_a_timeout_and_is_cancelled() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let out = dir.path().join("r.json");
    let workload = SHORT_ECHO
        .replace("request_timeout: 2s", "request_timeout: 200ms")
        .replace("duration: 500ms", "duration: 1s")
        .replace(
            "mix: [{tool: echo, arguments: {message: hi}}]",
            "mix: [{tool: echo, arguments: {message: hi}}, {tool: hang}]",
        );
    let log = dir.path().join("log");
    let env = format!("    SCRIPTED_LOG_FILE: \"{}\"", log.display());
    let cfg = write_config(dir.path(), &scripted_config("normal", &pids, &env, &workload));
    run_cmd(&cfg, &out).assert().success();
    let r = read_json(&out);
    let ops = r["scenarios"][0]["repetitions"][0]["operations"].as_array().unwrap().clone();
    let hang = ops.iter().find(|o| o["name"] == "tools/call:hang").unwrap();
    assert!(hang["count"].as_u64().unwrap() >= 1);
    assert_eq!(hang["errors"]["timeout"], hang["count"], "{hang}");
    let echo = ops.iter().find(|o| o["name"] == "tools/call:echo").unwrap();
    assert_eq!(echo["errors"], serde_json::json!({}));
    // Each timed-out request was cancelled, as MCP asks of a client that gives up. The server
    // is stopped when the window ends, so each of the 2 workers' last cancellation may still be
    // in the pipe, unread.
    let log = std::fs::read_to_string(&log).unwrap();
    let cancelled = log.lines().filter(|l| l.starts_with("cancelled ")).count() as u64;
    assert!(cancelled >= 1 && cancelled + 2 >= hang["count"].as_u64().unwrap(), "{log}");
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn requests_the_server_sends_mid_run_are_answered_so_it_never_waits() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let out = dir.path().join("r.json");
    let log = dir.path().join("log");
    let env = format!("    SCRIPTED_ASK: \"1\"\n    SCRIPTED_LOG_FILE: \"{}\"", log.display());
    let cfg = write_config(dir.path(), &scripted_config("normal", &pids, &env, SHORT_ECHO));
    run_cmd(&cfg, &out).assert().success();
    let r = read_json(&out);
    let rep = &r["scenarios"][0]["repetitions"][0];
    assert_eq!(rep["connection"]["server_requests"], 4, "{}", rep["connection"]);
    assert_eq!(rep["operations"][0]["errors"], serde_json::json!({}), "the calls around them went on");
    // ping gets its empty result; what a client without those capabilities cannot do is
    // refused as an unknown method, at once.
    let log = std::fs::read_to_string(&log).unwrap();
    let mut answers: Vec<&str> = log.lines().filter(|l| l.starts_with("answer ")).collect();
    answers.sort_unstable();
    assert_eq!(
        answers,
        [
            "answer elicitation/create error -32601",
            "answer ping result {}",
            "answer roots/list error -32601",
            "answer sampling/createMessage error -32601",
        ],
        "{log}"
    );
    assert_all_gone(&read_pids(&pids));
}

#[test]
fn a_slow_starting_stateless_server_is_spoken_to_statelessly() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let out = dir.path().join("r.json");
    // It reads nothing for 3 s, past the discover probe's 2 s: `initialize` goes out too, is
    // refused once the probe is answered, and the probe's answer settles the era.
    let env = "    SCRIPTED_MODERN: \"1\"\n    SCRIPTED_START_DELAY: \"3\"";
    let cfg = write_config(dir.path(), &scripted_config("normal", &pids, env, SHORT_ECHO));
    run_cmd(&cfg, &out).assert().success();
    let r = read_json(&out);
    assert_eq!(r["server"]["protocol_version"], "2026-07-28");
    assert_eq!(r["server"]["name"], "scripted-modern");
    let echo = &r["scenarios"][0]["repetitions"][0]["operations"][0];
    assert_eq!(echo["errors"], serde_json::json!({}), "every call carried the revision in _meta: {echo}");
    assert!(echo["count"].as_u64().unwrap() > 10);
    assert_all_gone(&read_pids(&pids));
}
