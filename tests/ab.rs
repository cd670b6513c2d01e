//! Same-runner A/B from a clean clone: a tiny git repository whose second commit makes the
//! server slower; `run --base-ref HEAD~1` measures both, interleaved, and `compare` on the one
//! file fails on the right metric.

use std::path::Path;
use std::process::Command;

use predicates::prelude::*;

use crate::common::{bin, load_lock, read_json};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The server script at one commit: the reference server doing `multiplier` times the work.
fn commit_server(repo: &Path, multiplier: u32, message: &str) {
    let exe = assert_cmd::cargo::cargo_bin("mcp-perfcheck");
    std::fs::write(repo.join("server.sh"), format!("exec {} serve --work-multiplier {multiplier}\n", exe.display()))
        .unwrap();
    git(repo, &["add", "."]);
    git(repo, &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message]);
}

#[test]
fn an_ab_run_of_a_slower_commit_fails_on_the_slowed_operation() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(
        repo.join("perf.yaml"),
        r#"
server:
  command: ["sh", "server.sh"]
workload:
  repetitions: 4
  scenarios:
    - name: work
      concurrency: 2
      duration: 400ms
      mix:
        - tool: compute
          arguments: {iterations: 20000}
        - tool: echo
          arguments: {message: hi}
"#,
    )
    .unwrap();
    commit_server(&repo, 1, "the base");
    commit_server(&repo, 8, "eight times the work per compute call");

    let out = dir.path().join("ab.json");
    bin()
        .current_dir(&repo)
        .args(["run", "--config", "perf.yaml", "--base-ref", "HEAD~1", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains("work (base)").and(predicate::str::contains("work (head)")));
    let r = read_json(&out);
    let base = &r["base_run"];
    assert_eq!(base["scenarios"][0]["repetitions"].as_array().unwrap().len(), 4);
    assert_eq!(r["scenarios"][0]["repetitions"].as_array().unwrap().len(), 4);
    assert_ne!(base["git_sha"], r["git_sha"], "each side records its commit");
    // The worktree is gone: only the main working tree is listed.
    let list = Command::new("git").arg("-C").arg(&repo).args(["worktree", "list"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout).lines().count(), 1);

    let compare = bin().arg("compare").arg(&out).arg("--format").arg("json").output().unwrap();
    assert_eq!(compare.status.code(), Some(1), "{}", String::from_utf8_lossy(&compare.stdout));
    let c: serde_json::Value = serde_json::from_slice(&compare.stdout).unwrap();
    assert_eq!(c["verdict"], "fail");
    let verdict = |op: &str, metric: &str| {
        c["metrics"].as_array().unwrap().iter().find(|m| m["operation"] == op && m["metric"] == metric).unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict("tools/call:compute", "p50"), "regression", "{c:#}");
    // The same comparison without --base-ref's file: a plain results file is not A/B.
    bin()
        .arg("compare")
        .arg(crate::common::fixture("results/reference-small.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not an A/B results file"));
}
