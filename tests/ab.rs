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
compare:
  extend: {max_looks: 2}
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
    // Extra looks were allowed (4 + 2 repetitions), but the first look already decided.
    assert_eq!(r["looks"], serde_json::json!({"repetitions": [4], "max_repetitions": 6, "ended": "decided"}));
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
    // Tested at the first look's share of α: 0.05·ln(1 + (e − 1)·4/6).
    let spent = 0.05 * (1.0 + (std::f64::consts::E - 1.0) * 4.0 / 6.0).ln();
    assert_eq!(c["look"]["look"], 1);
    assert!((c["look"]["alpha"].as_f64().unwrap() - spent).abs() < 1e-12, "{}", c["look"]);
    // The same comparison without --base-ref's file: a plain results file is not A/B.
    bin()
        .arg("compare")
        .arg(crate::common::fixture("results/reference-small.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not an A/B results file"));
}

#[test]
fn a_base_that_cannot_start_is_an_error_that_says_so() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    git(repo, &["init", "-q"]);
    std::fs::write(
        repo.join("perf.yaml"),
        "server: {command: [sh, server.sh]}\nworkload:\n  repetitions: 2\n  scenarios: [{name: s, concurrency: 1, duration: 200ms, mix: [{tool: echo, arguments: {message: hi}}]}]\n",
    )
    .unwrap();
    git(repo, &["add", "."]);
    git(repo, &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "config only"]);
    // The server script exists only in the working tree: the base checkout has none.
    let exe = assert_cmd::cargo::cargo_bin("mcp-perfcheck");
    std::fs::write(repo.join("server.sh"), format!("exec {} serve\n", exe.display())).unwrap();
    bin()
        .current_dir(repo)
        .args(["run", "--config", "perf.yaml", "--base-ref", "HEAD", "--out", "ab.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error: the base side failed:").and(predicate::str::contains("server.build")));
    let r = read_json(&repo.join("ab.json"));
    assert_eq!(r["base_run"]["failure"]["kind"], "server_start", "{r:#}");
}

/// The engine's extra looks, driven by a decision the test controls: a look that leaves
/// something undecided adds repetitions to both sides until the last look allowed, a decided
/// look ends the run, and a budget too small for another look ends it too.
#[test]
fn extra_looks_add_repetitions_to_both_sides_until_decided_or_out_of_looks_or_time() {
    use mcp_perfcheck::config::Config;
    use mcp_perfcheck::load::{self, BaseSide, Extension, Progress};
    use mcp_perfcheck::results::{Looks, LooksEnded, Results};
    use std::ops::ControlFlow;
    use std::time::Duration;

    let _turn = load_lock();
    let exe = assert_cmd::cargo::cargo_bin("mcp-perfcheck");
    let yaml = format!(
        "server: {{command: [{:?}, serve]}}\nworkload:\n  repetitions: 2\n  scenarios: [{{name: quick, concurrency: 1, duration: 150ms, mix: [{{tool: echo, arguments: {{message: hi}}}}]}}]\n",
        exe.display().to_string()
    );
    let plan = Config::from_yaml(&yaml, "looks.yaml").unwrap().into_plan("looks.yaml".into(), &exe, Path::new("."));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();

    let run = |undecided: bool, budget: Duration| -> (Results, Vec<Vec<u32>>, u32) {
        let mut seen = Vec::new();
        let mut decide = |r: &Results| {
            let looks = r.looks.as_ref().expect("the engine records the looks before asking");
            let reps = |r: &Results| r.scenarios[0].repetitions.len() as u32;
            assert_eq!(reps(r), *looks.repetitions.last().unwrap(), "the head has the look's repetitions");
            assert_eq!(reps(r.base_run.as_deref().unwrap()), reps(r), "and so has the base");
            seen.push(looks.repetitions.clone());
            vec![undecided.then(|| reps(r) + 1)]
        };
        let mut extending = 0;
        let mut on_event = |e: Progress<'_>| {
            if let Progress::Extending { more, .. } = e {
                assert_eq!(more, 1);
                extending += 1;
            }
            ControlFlow::Continue(())
        };
        let extension = Extension {
            max_looks: 3,
            max_repetitions: load::MostRepetitions::Exactly(4),
            budget: load::Budget::AfterFirstLook(budget),
            plan: &mut decide,
        };
        let side = BaseSide { plan: &plan, git_sha: None, seed: 1 };
        let r = runtime.block_on(load::execute_ab(&plan, side, Some(extension), &cancel, &mut on_event));
        assert!(r.failure.is_none(), "{:?}", r.failure);
        (r, seen, extending)
    };

    let (r, seen, extending) = run(true, Duration::from_secs(600));
    assert_eq!(seen, vec![vec![2], vec![2, 3], vec![2, 3, 4]]);
    assert_eq!(extending, 2);
    let ended = Looks { repetitions: vec![2, 3, 4], max_repetitions: 4, ended: Some(LooksEnded::MaxLooks) };
    assert_eq!(r.looks, Some(ended));
    let indices: Vec<u32> = r.scenarios[0].repetitions.iter().map(|rep| rep.index).collect();
    assert_eq!(indices, [1, 2, 3, 4], "extra repetitions continue the numbering");

    let (r, seen, extending) = run(false, Duration::from_secs(600));
    assert_eq!((seen.len(), extending), (1, 0));
    assert_eq!(r.looks.unwrap().ended, Some(LooksEnded::Decided));
    assert_eq!(r.base_run.unwrap().scenarios[0].repetitions.len(), 2);

    let (r, _, extending) = run(true, Duration::ZERO);
    assert_eq!(extending, 0);
    assert_eq!(r.looks.unwrap(), Looks { repetitions: vec![2], max_repetitions: 4, ended: Some(LooksEnded::Budget) });
}
