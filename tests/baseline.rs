//! Baseline stores through the binary: `baseline save`, then `compare HEAD --config` finding the
//! base in the store; a broken baseline is an error (exit 2) that names it.

use std::path::Path;

use predicates::prelude::*;

use crate::common::{bin, fixture, git, read_json};

const WORKLOAD: &str = "
server:
  command: [./srv]
workload:
  repetitions: 2
  scenarios:
    - {name: mixed, duration: 1s, mix: [{tool: echo}]}
";

/// The binary as run locally: no GitHub Actions variables from whatever runs the tests.
fn outside_actions() -> assert_cmd::Command {
    let mut cmd = bin();
    for v in ["GITHUB_REF", "GITHUB_REF_NAME", "GITHUB_BASE_REF", "GITHUB_ACTIONS"] {
        cmd.env_remove(v);
    }
    cmd
}

/// A recorded run (`reference-quick` or `reference-slow`) as if measured at `sha`.
fn results_at(fixture_name: &str, sha: &str, to: &Path) {
    let mut r = read_json(&fixture(&format!("results/{fixture_name}.json")));
    r["git_sha"] = serde_json::Value::String(sha.into());
    std::fs::write(to, serde_json::to_string_pretty(&r).unwrap()).unwrap();
}

#[test]
fn the_file_store_keeps_a_baseline_that_compare_finds_and_a_broken_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("perf.yaml");
    std::fs::write(&config, format!("{WORKLOAD}baseline: {{store: file, path: perf/base.json}}\n")).unwrap();
    let quick = fixture("results/reference-quick.json");
    bin()
        .args(["baseline", "save"])
        .arg(&quick)
        .arg("--config")
        .arg(&config)
        .assert()
        .success()
        .stdout(predicate::str::contains("perf/base.json"));
    let stored = dir.path().join("perf/base.json");
    assert_eq!(std::fs::read(&stored).unwrap(), std::fs::read(&quick).unwrap(), "saved byte for byte");

    let compare = |head: &Path| bin().arg("compare").arg(head).arg("--config").arg(&config).assert();
    compare(&fixture("results/reference-slow.json"))
        .code(1)
        .stderr(predicate::str::contains("baseline from file"))
        .stdout(predicate::str::contains("FAIL"));
    compare(&quick).code(0);

    // Truncated, wrong schema, missing: exit 2, naming the baseline.
    let text = std::fs::read_to_string(&quick).unwrap();
    std::fs::write(&stored, &text[..text.len() / 2]).unwrap();
    compare(&quick).code(2).stderr(predicate::str::contains("baseline").and(predicate::str::contains("base.json")));
    std::fs::write(&stored, text.replace("mcp-perfcheck/results/v1", "mcp-perfcheck/results/v0")).unwrap();
    compare(&quick).code(2).stderr(predicate::str::contains("schema is `mcp-perfcheck/results/v0`"));
    std::fs::remove_file(&stored).unwrap();
    compare(&quick).code(2).stderr(predicate::str::contains("cannot read the baseline (baseline.store: file)"));

    // A failed run is refused as a baseline.
    let mut failed = read_json(&quick);
    failed["failure"] = serde_json::json!({"kind": "server_exit", "message": "crashed", "stderr_tail": []});
    let failed_path = dir.path().join("failed.json");
    std::fs::write(&failed_path, failed.to_string()).unwrap();
    bin()
        .args(["baseline", "save"])
        .arg(&failed_path)
        .arg("--config")
        .arg(&config)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("failed run"));
}

#[test]
fn the_git_branch_store_files_runs_by_commit_pushes_only_from_main_and_finds_the_merge_base() {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("origin.git");
    let work = dir.path().join("work");
    git(dir.path(), &["init", "-q", "--bare", "-b", "main", origin.to_str().unwrap()]);
    git(dir.path(), &["clone", "-q", origin.to_str().unwrap(), work.to_str().unwrap()]);
    git(&work, &["checkout", "-q", "-b", "main"]);
    std::fs::write(work.join("perf.yaml"), format!("{WORKLOAD}baseline: {{store: git-branch, retention: 2}}\n"))
        .unwrap();
    let results = dir.path().join("results.json");
    let save = |fixture_name: &str, sha: &str| {
        results_at(fixture_name, sha, &results);
        let out = outside_actions()
            .current_dir(&work)
            .args(["baseline", "save"])
            .arg(&results)
            .args(["-c", "perf.yaml"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let mut commits = Vec::new();
    for name in ["a", "b", "c"] {
        std::fs::write(work.join(name), name).unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-qm", name]);
        git(&work, &["push", "-q", "origin", "main"]);
        let sha = git(&work, &["rev-parse", "HEAD"]);
        let said = save("reference-quick", &sha);
        assert!(said.contains("pushed it to `origin`"), "{said}");
        commits.push(sha);
    }
    let (a, b, c) = (&commits[0], &commits[1], &commits[2]);
    // Retention 2: the oldest run is gone from the pushed branch.
    let index = git(&origin, &["show", "mcp-perfcheck-data:index.tsv"]);
    assert!(!index.contains(a.as_str()) && index.contains(b.as_str()) && index.contains(c.as_str()), "{index}");
    let files = git(&origin, &["ls-tree", "-r", "--name-only", "mcp-perfcheck-data"]);
    assert_eq!(files.lines().filter(|f| f.starts_with("results/")).count(), 2, "{files}");
    // The working tree and the checked-out branch were never touched.
    assert_eq!(git(&work, &["status", "--porcelain", "--untracked-files=no"]), "");
    assert_eq!(git(&work, &["symbolic-ref", "--short", "HEAD"]), "main");

    // A feature branch from b: its merge base with main is b, whose results are the baseline.
    git(&work, &["checkout", "-q", "-b", "feature", b]);
    std::fs::write(work.join("f"), "f").unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "f"]);
    let f = git(&work, &["rev-parse", "HEAD"]);
    results_at("reference-slow", &f, &results);
    outside_actions()
        .current_dir(&work)
        .arg("compare")
        .arg(&results)
        .args(["-c", "perf.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("baseline from branch mcp-perfcheck-data at {}", &b[..12])));
    // Saving from the feature branch stays local.
    let said = save("reference-slow", &f);
    assert!(said.contains("not pushed: on branch `feature`") && said.contains("pushed only from `main`"), "{said}");
    assert!(!git(&origin, &["show", "mcp-perfcheck-data:index.tsv"]).contains(f.as_str()));

    // A fresh clone reads the pushed branch: c's nearest stored ancestor (itself excluded) is b.
    let other = dir.path().join("other");
    git(dir.path(), &["clone", "-q", origin.to_str().unwrap(), other.to_str().unwrap()]);
    std::fs::copy(work.join("perf.yaml"), other.join("perf.yaml")).unwrap();
    let out_file = dir.path().join("found.json");
    outside_actions()
        .current_dir(&other)
        .args(["baseline", "show", "-c", "perf.yaml", "--head", c, "--out"])
        .arg(&out_file)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("commit {b}")));
    assert_eq!(read_json(&out_file)["git_sha"], b.as_str());

    // A head with no stored ancestor at all is a clear error.
    git(&other, &["checkout", "-q", "--orphan", "lonely"]);
    git(&other, &["commit", "-qm", "lonely"]);
    outside_actions()
        .current_dir(&other)
        .args(["baseline", "show", "-c", "perf.yaml", "--head", "HEAD"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no common ancestor"));
}

/// A zip archive holding `name` with `text`, as GitHub serves an artifact.
fn zipped(name: &str, text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(text.as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_artifact_store_takes_the_newest_successful_base_run_that_uploaded_results() {
    use wiremock::matchers::{header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "ghs_secret_token_value";
    let github = MockServer::start().await;
    let runs = serde_json::json!({"total_count": 3, "workflow_runs": [
        // A fork's pull request from a branch also called main: never a baseline.
        {"id": 30, "head_sha": "f0f0f0f0f0f0f0f0", "event": "pull_request", "run_number": 12},
        // The newest push run uploaded no results (say, the perf job was skipped).
        {"id": 20, "head_sha": "2222222222222222", "event": "push", "run_number": 11},
        {"id": 10, "head_sha": "1111111111111111", "event": "push", "run_number": 10},
    ]});
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/actions/runs"))
        .and(query_param("branch", "main"))
        .and(query_param("status", "success"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(runs))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/actions/runs/20/artifacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"total_count": 0, "artifacts": []})))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/actions/runs/10/artifacts"))
        .and(query_param("name", "mcp-perfcheck-results"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"total_count": 1, "artifacts": [
            {"id": 77, "name": "mcp-perfcheck-results", "expired": false}
        ]})))
        .mount(&github)
        .await;
    // GitHub answers the download with a redirect to short-lived blob storage.
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/actions/artifacts/77/zip"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", format!("{}/blob/77.zip", github.uri())))
        .mount(&github)
        .await;
    let quick = std::fs::read_to_string(fixture("results/reference-quick.json")).unwrap();
    Mock::given(method("GET"))
        .and(path("/blob/77.zip"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(zipped("mcp-perfcheck-results.json", &quick)))
        .mount(&github)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("perf.yaml");
    std::fs::write(&config, format!("{WORKLOAD}baseline: {{store: artifact, branch: main}}\n")).unwrap();
    let compare = |head: &Path, token: &str| {
        bin()
            .arg("compare")
            .arg(head)
            .arg("--config")
            .arg(&config)
            .env("GITHUB_API_URL", github.uri())
            .env("GITHUB_REPOSITORY", "acme/server")
            .env("GITHUB_TOKEN", token)
            .env_remove("GITHUB_BASE_REF")
            .output()
            .unwrap()
    };
    let out = compare(&fixture("results/reference-slow.json"), TOKEN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("baseline from artifact `mcp-perfcheck-results` of run #10 (111111111111)"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));

    // A wrong token: the API refuses; exit 2 with the status, and the token is never shown.
    let out = compare(&fixture("results/reference-slow.json"), "ghs_wrong_token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GitHub API: cannot list workflow runs: 404"), "{stderr}");
    assert!(!stderr.contains("ghs_wrong_token") && !stderr.contains(TOKEN), "{stderr}");

    // A corrupt artifact is an error naming it, not a pass.
    github.reset().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/actions/runs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"workflow_runs": [
            {"id": 10, "head_sha": "1111111111111111", "event": "push", "run_number": 10}
        ]})))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/actions/runs/10/artifacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"artifacts": [
            {"id": 77, "name": "mcp-perfcheck-results", "expired": false}
        ]})))
        .mount(&github)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/actions/artifacts/77/zip"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(zipped("results.json", &quick[..quick.len() / 3])))
        .mount(&github)
        .await;
    let out = compare(&fixture("results/reference-slow.json"), TOKEN);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("artifact `mcp-perfcheck-results` of run #10 (111111111111) is not a usable results file"),
        "{stderr}"
    );
}

/// `history` over the artifact store: the branch's successful runs that uploaded results,
/// oldest first, one a commit; a pull request's run and a run without the artifact left out.
#[tokio::test(flavor = "multi_thread")]
async fn the_artifact_store_gives_history_its_runs_oldest_first() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let github = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/actions/runs"))
        .and(query_param("branch", "main"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"workflow_runs": [
            {"id": 40, "head_sha": "4444444444444444444444444444444444444444", "event": "push", "run_number": 14, "created_at": "2026-12-04T10:00:00Z"},
            {"id": 35, "head_sha": "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0", "event": "pull_request", "run_number": 13},
            {"id": 30, "head_sha": "3333333333333333333333333333333333333333", "event": "schedule", "run_number": 12, "created_at": "2026-12-03T10:00:00Z"},
            {"id": 20, "head_sha": "2222222222222222222222222222222222222222", "event": "push", "run_number": 11, "created_at": "2026-12-02T10:00:00Z"},
        ]})))
        .mount(&github)
        .await;
    let quick = std::fs::read_to_string(fixture("results/reference-quick.json")).unwrap();
    for (run, artifact) in [(40u64, Some(94u64)), (30, None), (20, Some(92))] {
        let listed = match artifact {
            Some(id) => {
                serde_json::json!({"artifacts": [{"id": id, "name": "mcp-perfcheck-results", "expired": false}]})
            }
            None => serde_json::json!({"artifacts": []}),
        };
        Mock::given(method("GET"))
            .and(path(format!("/repos/acme/server/actions/runs/{run}/artifacts")))
            .respond_with(ResponseTemplate::new(200).set_body_json(listed))
            .mount(&github)
            .await;
        if let Some(id) = artifact {
            let mut r: serde_json::Value = serde_json::from_str(&quick).unwrap();
            r["git_sha"] = format!("{}", run / 10).repeat(40).into();
            Mock::given(method("GET"))
                .and(path(format!("/repos/acme/server/actions/artifacts/{id}/zip")))
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_bytes(zipped("mcp-perfcheck-results.json", &serde_json::to_string(&r).unwrap())),
                )
                .mount(&github)
                .await;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("perf.yaml");
    std::fs::write(&config, format!("{WORKLOAD}baseline: {{store: artifact, branch: main}}\n")).unwrap();
    let out = bin()
        .args(["history", "--format", "json", "--config"])
        .arg(&config)
        .env("GITHUB_API_URL", github.uri())
        .env("GITHUB_REPOSITORY", "acme/server")
        .env("GITHUB_TOKEN", "ghs_token")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h["runs"], 2);
    assert!(h["source"].as_str().unwrap().contains("artifact `mcp-perfcheck-results` of acme/server on `main`"));
    let commits: Vec<&str> =
        h["series"][0]["points"].as_array().unwrap().iter().map(|p| p["commit"].as_str().unwrap()).collect();
    assert_eq!(commits, ["2".repeat(40), "4".repeat(40)], "oldest first, the pull request's run left out");
    assert_eq!(h["series"][0]["points"][0]["date"], "2026-12-02T10:00:00Z");
    assert!(h["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("run #12 has no artifact")));
}
