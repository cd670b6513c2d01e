//! `ci` against a fake GitHub (wiremock): the sticky comment, the commit status, retries, a
//! GitHub Enterprise base path, a 403, and the fork-safe publish checks. The reports come from
//! recorded runs (fixtures/results), so no measurement happens here except in the last test.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::{bin, fixture, load_lock};

const TOKEN: &str = "ghs_never_print_this_token";
const HEAD: &str = "2222222222222222222222222222222222222222";
const MARKER: &str = "<!-- mcp-perfcheck:report -->";
const BOT: &str = "github-actions[bot]";

/// A `--mode measure` report for pull request 7 at `HEAD`: the slow head against the quick base.
fn write_report(dir: &Path, head_sha: &str) -> PathBuf {
    let slow = serde_json::from_str(&std::fs::read_to_string(fixture("results/reference-slow.json")).unwrap()).unwrap();
    write_report_of(dir, head_sha, slow)
}

/// The same with `head` as the head's results.
fn write_report_of(dir: &Path, head_sha: &str, head: Value) -> PathBuf {
    let load = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(fixture(&format!("results/{name}"))).unwrap()).unwrap()
    };
    let report = json!({
        "schema": "mcp-perfcheck/ci-report/v1",
        "pr_number": 7,
        "head_sha": head_sha,
        "run_url": "https://github.com/acme/server/actions/runs/9001",
        "policy": {"alpha": 0.05, "min_effect": {"latency": 0.05, "throughput": 0.05, "memory": 0.1, "cpu": 0.1, "error_rate": 0.01}, "strict_environment": false},
        "base": load("reference-quick.json"),
        "head": head,
    });
    let p = dir.join("report.json");
    std::fs::write(&p, report.to_string()).unwrap();
    p
}

/// The publishing workflow's config (its checkout of the default branch): every metric gates,
/// with the minimum effects the recorded reports were judged by.
const TRUSTED_CONFIG: &str = "server:
  command: [\"true\"]
workload:
  scenarios:
    - name: steady
      duration: 1s
      mix: [{tool: echo}]
compare:
  gate: [p50, p95, p99, throughput, error_rate, rss_peak, cpu_per_call]
  min_effect: {latency: 5%, throughput: 5%, memory: 10%, cpu: 10%, error_rate: 1%, error_ratio: 1.0}
";

struct Workspace {
    dir: tempfile::TempDir,
    report: PathBuf,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let report = write_report(dir.path(), HEAD);
        std::fs::write(dir.path().join("trusted.yaml"), TRUSTED_CONFIG).unwrap();
        Workspace { dir, report }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `ci --mode publish` with the fork's workflow_run event, against `api`, judged by the
    /// publishing workflow's own config ([`TRUSTED_CONFIG`]).
    fn publish(&self, api: &str, extra: &[&str]) -> Output {
        let mut args = vec!["--config", "trusted.yaml"];
        args.extend_from_slice(extra);
        self.publish_bare(api, &args)
    }

    /// The same with only `extra`: without `--config`, the embedded default's policy judges.
    fn publish_bare(&self, api: &str, extra: &[&str]) -> Output {
        bin()
            .current_dir(self.dir.path())
            .args(["ci", "--mode", "publish", "--report"])
            .arg(&self.report)
            .arg("--event")
            .arg(fixture("github/events/workflow_run.json"))
            .arg("--out-dir")
            .arg(self.file("out"))
            .args(extra)
            .env("GITHUB_API_URL", api)
            .env("GITHUB_REPOSITORY", "acme/server")
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_OUTPUT", self.file("output"))
            .env("GITHUB_STEP_SUMMARY", self.file("summary.md"))
            .env_remove("GH_TOKEN")
            .output()
            .unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn never_prints_the_token(o: &Output) {
    assert!(!String::from_utf8_lossy(&o.stdout).contains(TOKEN) && !stderr(o).contains(TOKEN), "the token leaked");
}

async fn mount_pull_request(github: &MockServer, prefix: &str, head: &str) {
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/repos/acme/server/pulls/7")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"number": 7, "state": "open", "head": {"sha": head}})),
        )
        .mount(github)
        .await;
}

async fn mount_status(github: &MockServer, prefix: &str) {
    Mock::given(method("POST"))
        .and(path(format!("{prefix}/repos/acme/server/statuses/{HEAD}")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1, "state": "failure"})))
        .mount(github)
        .await;
}

/// No comment yet on pull request 7, and the one posted gets id 1.
async fn mount_new_comment(github: &MockServer) {
    mount_comments(github, "", json!([])).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/issues/7/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1, "user": {"login": BOT}})))
        .mount(github)
        .await;
}

async fn mount_comments(github: &MockServer, prefix: &str, existing: Value) {
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/repos/acme/server/issues/7/comments")))
        .respond_with(ResponseTemplate::new(200).set_body_json(existing))
        .mount(github)
        .await;
}

fn requests<'a>(all: &'a [Request], verb: &str, suffix: &str) -> Vec<&'a Request> {
    all.iter().filter(|r| r.method.as_str() == verb && r.url.path().ends_with(suffix)).collect()
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_run_creates_a_comment_and_a_status_and_the_second_updates_that_comment() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    // Someone quoting the report (marker included) is not us: their comment is never edited.
    let theirs = json!({"id": 100, "user": {"login": "alice"}, "body": format!("{MARKER} quoted")});
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    mount_comments(&github, "", json!([theirs.clone()])).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/issues/7/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 555, "user": {"login": BOT}, "body": "x"})))
        .expect(1)
        .mount(&github)
        .await;

    let first = ws.publish(&github.uri(), &[]);
    assert_eq!(first.status.code(), Some(1), "a regression fails the job: {}", stderr(&first));
    never_prints_the_token(&first);
    assert!(stderr(&first).contains("comment 555 created on #7"), "{}", stderr(&first));
    let all = github.received_requests().await.unwrap();
    let posted = body(requests(&all, "POST", "/issues/7/comments")[0]);
    let text = posted["body"].as_str().unwrap();
    assert!(text.starts_with(MARKER) && text.contains("### ❌ mcp-perfcheck: 9 regressions"), "{text}");
    assert!(text.chars().count() <= 65_000);
    let status = body(requests(&all, "POST", &format!("/statuses/{HEAD}"))[0]);
    assert_eq!(status["state"], "failure");
    assert_eq!(status["context"], "mcp-perfcheck");
    assert_eq!(status["target_url"], "https://github.com/acme/server/actions/runs/9001");
    assert!(status["description"].as_str().unwrap().chars().count() <= 140);
    // Every call carried the token, as a bearer header.
    assert!(all.iter().all(|r| r.headers.get("authorization").unwrap() == &format!("Bearer {TOKEN}")[..]));
    let outputs = std::fs::read_to_string(ws.file("output")).unwrap();
    assert!(outputs.contains("verdict<<ghadelimiter_") && outputs.contains("\nfail\n"), "{outputs}");
    assert!(outputs.contains("report-path<<") && outputs.contains("mcp-perfcheck-report.md"), "{outputs}");
    let summary = std::fs::read_to_string(ws.file("summary.md")).unwrap();
    assert!(summary.contains("9 regressions"), "{summary}");
    for name in ["mcp-perfcheck-report.md", "mcp-perfcheck-report.html", "mcp-perfcheck-junit.xml"] {
        assert!(ws.file("out").join(name).exists(), "{name}");
    }
    // Annotations for the regressions, at most ten.
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("::error title=mcp-perfcheck")).count(), 9, "{stdout}");

    // The second run finds our comment (by marker and author) and edits it.
    github.reset().await;
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    let ours = json!({"id": 555, "user": {"login": BOT}, "body": format!("{MARKER}\nold report")});
    mount_comments(&github, "", json!([theirs, ours])).await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/server/issues/comments/555"))
        .and(body_partial_json(json!({})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 555})))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/server/issues/comments/100"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&github)
        .await;
    let second = ws.publish(&github.uri(), &[]);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let all = github.received_requests().await.unwrap();
    assert!(requests(&all, "POST", "/issues/7/comments").is_empty(), "no second comment");
    assert_eq!(requests(&all, "POST", &format!("/statuses/{HEAD}")).len(), 1, "a new status");
    assert!(stderr(&second).contains("comment 555 updated on #7"), "{}", stderr(&second));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_403_on_the_comment_keeps_the_summary_names_the_permission_and_exits_per_policy() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    mount_comments(&github, "", json!([])).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/issues/7/comments"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .mount(&github)
        .await;
    let out = ws.publish(&github.uri(), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "the verdict decides the exit code: {err}");
    assert!(
        err.contains("403 Resource not accessible by integration")
            && err.contains("`permissions: pull-requests: write`"),
        "{err}"
    );
    never_prints_the_token(&out);
    assert!(std::fs::read_to_string(ws.file("summary.md")).unwrap().contains("9 regressions"));
    let all = github.received_requests().await.unwrap();
    assert_eq!(requests(&all, "POST", "/issues/7/comments").len(), 1, "a 403 is not retried");
    assert_eq!(requests(&all, "POST", &format!("/statuses/{HEAD}")).len(), 1, "the status still goes out");

    let lenient = ws.publish(&github.uri(), &["--fail-on", "never"]);
    assert_eq!(lenient.status.code(), Some(0), "{}", stderr(&lenient));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_502_on_the_comment_create_then_success_makes_exactly_one_comment() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    mount_comments(&github, "", json!([])).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/issues/7/comments"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/issues/7/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 77, "user": {"login": BOT}})))
        .mount(&github)
        .await;
    let out = ws.publish(&github.uri(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("comment 77 created on #7"), "{}", stderr(&out));
    let all = github.received_requests().await.unwrap();
    let kinds: Vec<&str> =
        all.iter().filter(|r| r.url.path().ends_with("/issues/7/comments")).map(|r| r.method.as_str()).collect();
    assert_eq!(kinds, ["GET", "POST", "GET", "POST"], "looked again before creating again");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_that_landed_despite_a_502_is_updated_not_made_twice() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    // GitHub made the comment but answered 502: the second listing shows it.
    Mock::given(method("GET"))
        .and(path("/repos/acme/server/issues/7/comments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    let landed = json!({"id": 88, "user": {"login": BOT}, "body": format!("{MARKER}\nthe report")});
    mount_comments(&github, "", json!([landed])).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/issues/7/comments"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .expect(1)
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/server/issues/comments/88"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 88})))
        .expect(1)
        .mount(&github)
        .await;
    let out = ws.publish(&github.uri(), &[]);
    assert!(stderr(&out).contains("comment 88 updated on #7"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_longer_than_the_cap_ends_the_wait_and_the_step_exits_per_its_verdict() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    mount_pull_request(&github, "", HEAD).await;
    mount_new_comment(&github).await;
    let reset = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    Mock::given(method("POST"))
        .and(path(format!("/repos/acme/server/statuses/{HEAD}")))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded"})),
        )
        .expect(1)
        .mount(&github)
        .await;
    let out = ws.publish(&github.uri(), &["--max-wait", "5s"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "the regression still fails the job: {err}");
    assert!(err.contains("warning: the commit status not posted") && err.contains("API rate limit exceeded"), "{err}");
    assert!(err.contains("would pass the 5s --max-wait"), "{err}");
    assert!(err.contains("comment 1 created on #7"), "the rest still goes out: {err}");
    assert!(std::fs::read_to_string(ws.file("summary.md")).unwrap().contains("regression"));
    assert!(ws.file("out/mcp-perfcheck-report.md").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_and_an_enterprise_base_path_is_kept() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    let prefix = "/api/v3";
    mount_pull_request(&github, prefix, HEAD).await;
    mount_status(&github, prefix).await;
    // The first listing fails with a 502, the retry succeeds.
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/repos/acme/server/issues/7/comments")))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    mount_comments(&github, prefix, json!([])).await;
    Mock::given(method("POST"))
        .and(path(format!("{prefix}/repos/acme/server/issues/7/comments")))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 9, "user": {"login": BOT}})))
        .mount(&github)
        .await;
    let out = ws.publish(&format!("{}{prefix}", github.uri()), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("comment 9 created on #7"), "{}", stderr(&out));
    let all = github.received_requests().await.unwrap();
    assert!(all.iter().all(|r| r.url.path().starts_with(prefix)), "every call under /api/v3");
    assert_eq!(requests(&all, "GET", "/issues/7/comments").len(), 2, "one 502, one retry");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_status_context_keeps_a_comment_of_its_own() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    let default = json!({"id": 10, "user": {"login": BOT}, "body": format!("{MARKER}\nthe default context's")});
    let linux = json!({"id": 11, "user": {"login": BOT}, "body": "<!-- mcp-perfcheck:report context=perf (linux) -->\nlinux's"});
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    mount_comments(&github, "", json!([default, linux])).await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/issues/7/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 12, "user": {"login": BOT}})))
        .mount(&github)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 11})))
        .mount(&github)
        .await;

    // A new matrix job gets a new comment, the default context's is left alone.
    let out = ws.publish(&github.uri(), &["--status-context", "perf (macos)"]);
    assert!(stderr(&out).contains("comment 12 created on #7"), "{}", stderr(&out));
    let all = github.received_requests().await.unwrap();
    let posted = body(requests(&all, "POST", "/issues/7/comments")[0]);
    assert!(posted["body"].as_str().unwrap().starts_with("<!-- mcp-perfcheck:report context=perf (macos) -->\n"));
    assert!(requests(&all, "PATCH", "").is_empty(), "no other context's comment edited");

    // The linux job finds its own and edits it.
    github.reset().await;
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    mount_comments(&github, "", json!([default, linux])).await;
    Mock::given(method("PATCH"))
        .and(path("/repos/acme/server/issues/comments/11"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 11})))
        .expect(1)
        .mount(&github)
        .await;
    let out = ws.publish(&github.uri(), &["--status-context", "perf (linux)"]);
    assert!(stderr(&out).contains("comment 11 updated on #7"), "{}", stderr(&out));
    let all = github.received_requests().await.unwrap();
    assert!(requests(&all, "POST", "/issues/7/comments").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_in_the_report_steers_the_publish_step() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    // The fork's job wrote a phishing link, a policy under which nothing can regress, and
    // thresholds it says held.
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(&ws.report).unwrap()).unwrap();
    report["run_url"] = json!("https://evil.example/login?next=github.com");
    report["policy"]["alpha"] = json!(1e-12);
    report["policy"]["min_effect"] =
        json!({"latency": 100.0, "throughput": 100.0, "memory": 100.0, "cpu": 100.0, "error_rate": 1.0});
    std::fs::write(&ws.report, report.to_string()).unwrap();
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    mount_new_comment(&github).await;

    let out = ws.publish_bare(&github.uri(), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "judged by the embedded default's policy, the slow head regresses: {err}");
    assert!(
        err.contains("the report's run link (the link posted is to the workflow_run event's run) was not used"),
        "{err}"
    );
    assert!(
        err.contains("the report's policy (the policy of <embedded default config> judged instead) was not used"),
        "{err}"
    );
    let all = github.received_requests().await.unwrap();
    let status = body(requests(&all, "POST", &format!("/statuses/{HEAD}"))[0]);
    assert_eq!(status["state"], "failure");
    assert_eq!(status["target_url"], "https://github.com/acme/server/actions/runs/9001", "the event's run");
    let comment = body(requests(&all, "POST", "/issues/7/comments")[0]);
    assert!(!comment["body"].as_str().unwrap().contains("evil.example"), "{comment}");
    assert!(!std::fs::read_to_string(ws.file("out/mcp-perfcheck-report.md")).unwrap().contains("evil.example"));

    // A trusted checkout's config judges instead, when the workflow names one.
    github.reset().await;
    mount_pull_request(&github, "", HEAD).await;
    mount_status(&github, "").await;
    mount_new_comment(&github).await;
    let errors_only = TRUSTED_CONFIG
        .replace("gate: [p50, p95, p99, throughput, error_rate, rss_peak, cpu_per_call]", "gate: [error_rate]");
    std::fs::write(ws.file("perf.yaml"), errors_only).unwrap();
    let out = ws.publish_bare(&github.uri(), &["--config", "perf.yaml"]);
    assert_eq!(out.status.code(), Some(0), "only errors gate, and none changed: {}", stderr(&out));
    assert!(stderr(&out).contains("(the policy of perf.yaml judged instead)"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_id_that_is_not_forty_hex_digits_is_refused_before_any_call() {
    let github = MockServer::start().await;
    for (field, sha) in [
        ("head_sha", "@mallory look here 0123456789abcdef012345"),
        ("head_sha", "é"),
        ("head.git_sha", "ééééééééééééééééééééééééééééééééééééééééé\n::error::pwned"),
        ("base.git_sha", "2222222"),
    ] {
        let ws = Workspace::new();
        let mut report: Value = serde_json::from_str(&std::fs::read_to_string(&ws.report).unwrap()).unwrap();
        match field.split_once('.') {
            Some((side, key)) => report[side][key] = json!(sha),
            None => report[field] = json!(sha),
        }
        std::fs::write(&ws.report, report.to_string()).unwrap();
        let out = ws.publish(&github.uri(), &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{field} {sha:?}: {err}");
        assert!(err.contains("is not a commit id (40 hex digits): nothing posted"), "{err}");
        assert!(!err.contains("\n::error::pwned"), "shown escaped: {err}");
    }
    assert!(github.received_requests().await.unwrap().is_empty(), "not a single API call");
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_posts_nothing_for_a_report_whose_commit_is_not_the_pull_requests_head() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    // The fork pushed again since it was measured: the pull request's head moved on.
    mount_pull_request(&github, "", "9999999999999999999999999999999999999999").await;
    let out = ws.publish(&github.uri(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pull request #7 is at 9999"), "{}", stderr(&out));
    let all = github.received_requests().await.unwrap();
    assert!(all.iter().all(|r| r.method.as_str() == "GET"), "nothing posted: {all:?}");

    // A report claiming another commit than the event measured is refused before any call.
    github.reset().await;
    let forged = tempfile::tempdir().unwrap();
    std::fs::write(forged.path().join("trusted.yaml"), TRUSTED_CONFIG).unwrap();
    let ws2 =
        Workspace { report: write_report(forged.path(), "1111111111111111111111111111111111111111"), dir: forged };
    let out = ws2.publish(&github.uri(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the report claims commit 1111"), "{}", stderr(&out));
    assert!(github.received_requests().await.unwrap().is_empty());

    // Not a report at all.
    std::fs::write(&ws.report, "{\"schema\": \"something/else\"}").unwrap();
    let out = ws.publish(&github.uri(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a report from `mcp-perfcheck ci --mode measure`"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::await_holding_lock)] // the lock only orders whole tests; nothing else in this one takes it
async fn a_rate_limited_status_is_retried_a_check_run_goes_out_on_request_and_a_huge_report_is_cut() {
    // CPU-heavy: kept off the load tests' machine time.
    let _turn = crate::common::load_lock();
    let github = MockServer::start().await;
    let ws = Workspace::new();
    // A report with 300 operations: over a thousand compared metrics.
    let mut report: Value = serde_json::from_str(&std::fs::read_to_string(&ws.report).unwrap()).unwrap();
    for side in ["base", "head"] {
        for rep in report[side]["scenarios"][0]["repetitions"].as_array_mut().unwrap() {
            let ops = rep["operations"].as_array().unwrap().clone();
            let more: Vec<Value> = (0..150)
                .flat_map(|i| {
                    ops.iter().map(move |o| {
                        let mut o = o.clone();
                        o["name"] =
                            json!(format!("{}-with-a-long-descriptive-suffix-{i:03}", o["name"].as_str().unwrap()));
                        o
                    })
                })
                .collect();
            rep["operations"].as_array_mut().unwrap().extend(more);
        }
    }
    std::fs::write(&ws.report, report.to_string()).unwrap();
    mount_pull_request(&github, "", HEAD).await;
    mount_new_comment(&github).await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/acme/server/statuses/{HEAD}")))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(json!({"message": "slow down"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&github)
        .await;
    mount_status(&github, "").await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/check-runs"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 3})))
        .expect(1)
        .mount(&github)
        .await;
    let out = ws.publish(&github.uri(), &["--check-run", "--status-context", "perf/reference"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let all = github.received_requests().await.unwrap();
    assert_eq!(requests(&all, "POST", &format!("/statuses/{HEAD}")).len(), 2, "a 429, then the retry");
    assert_eq!(body(requests(&all, "POST", &format!("/statuses/{HEAD}"))[1])["context"], "perf/reference");
    let comment = body(requests(&all, "POST", "/issues/7/comments")[0]);
    let text = comment["body"].as_str().unwrap();
    assert!(text.chars().count() <= 65_000, "{} characters", text.chars().count());
    assert!(text.contains("Left out to fit GitHub's comment limit:"), "{text}");
    let check = body(requests(&all, "POST", "/check-runs")[0]);
    assert_eq!((check["name"].as_str(), check["head_sha"].as_str()), (Some("perf/reference"), Some(HEAD)));
    assert_eq!(check["conclusion"], "failure");
    assert!(check["output"]["title"].as_str().unwrap().contains("regressions"), "{check}");
    // Annotations stop at ten, however many metrics regressed.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("::error ")).count(), 10);
}

#[tokio::test]
async fn an_inconclusive_comparison_is_a_warning_and_a_neutral_check_unless_told_to_fail() {
    let github = MockServer::start().await;
    let ws = Workspace::new();
    let noisy = serde_json::from_str(&crate::common::noisy_head().to_json()).unwrap();
    write_report_of(ws.dir.path(), HEAD, noisy);
    mount_pull_request(&github, "", HEAD).await;
    mount_new_comment(&github).await;
    mount_status(&github, "").await;
    Mock::given(method("POST"))
        .and(path("/repos/acme/server/check-runs"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 3})))
        .mount(&github)
        .await;
    let out = ws.publish(&github.uri(), &["--check-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = github.received_requests().await.unwrap();
    let comment = body(requests(&all, "POST", "/issues/7/comments")[0]);
    assert!(
        comment["body"].as_str().unwrap().contains("### ⚠️ mcp-perfcheck: inconclusive: mixed echo p99 could be up to")
    );
    let status = body(requests(&all, "POST", &format!("/statuses/{HEAD}"))[0]);
    assert_eq!(status["state"], "success");
    assert!(status["description"].as_str().unwrap().starts_with("⚠️ inconclusive: "), "{status}");
    assert_eq!(body(requests(&all, "POST", "/check-runs")[0])["conclusion"], "neutral");
    let outputs = std::fs::read_to_string(ws.file("output")).unwrap();
    assert!(outputs.starts_with("verdict<<") && outputs.lines().nth(1) == Some("inconclusive"), "{outputs}");

    let strict = ws.publish(&github.uri(), &["--fail-on", "inconclusive"]);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
    let all = github.received_requests().await.unwrap();
    let statuses = requests(&all, "POST", &format!("/statuses/{HEAD}"));
    assert_eq!(body(statuses[statuses.len() - 1])["state"], "failure");
}

/// `--mode measure` on a fork's pull request: a real A/B of a two-commit repository, the
/// reports and outputs written, and no API call (there is no token to make one with).
#[test]
fn measure_mode_runs_the_ab_and_writes_the_report_without_calling_the_api() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").arg("-C").arg(&repo).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    let exe = assert_cmd::cargo::cargo_bin("mcp-perfcheck");
    std::fs::write(
        repo.join("perf.yaml"),
        "server: {command: [sh, server.sh]}\nworkload:\n  repetitions: 3\n  scenarios: [{name: work, concurrency: 2, duration: 300ms, mix: [{tool: compute, arguments: {iterations: 20000}}]}]\n",
    )
    .unwrap();
    for (multiplier, message) in [(1, "base"), (8, "slower")] {
        std::fs::write(
            repo.join("server.sh"),
            format!("exec {} serve --work-multiplier {multiplier}\n", exe.display()),
        )
        .unwrap();
        git(&["add", "."]);
        git(&["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message]);
    }
    let event = dir.path().join("event.json");
    std::fs::copy(fixture("github/events/pull_request_fork.json"), &event).unwrap();
    let out = bin()
        .current_dir(&repo)
        .args(["ci", "--mode", "measure", "--config", "perf.yaml", "--base-ref", "HEAD~1", "--out-dir", "out"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_OUTPUT", dir.path().join("output"))
        .env("GITHUB_API_URL", "http://127.0.0.1:9") // discard port: any call would fail loudly
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("GitHub API"), "{}", stderr(&out));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("out/mcp-perfcheck-report.json")).unwrap()).unwrap();
    assert_eq!(report["schema"], "mcp-perfcheck/ci-report/v1");
    assert_eq!(report["pr_number"], 7);
    assert_eq!(
        report["head_sha"], "2222222222222222222222222222222222222222",
        "the event's head, for publish to check"
    );
    assert_eq!(report["base"]["scenarios"][0]["repetitions"].as_array().unwrap().len(), 3);
    let outputs = std::fs::read_to_string(dir.path().join("output")).unwrap();
    assert!(outputs.contains("\nfail\n"), "{outputs}");
    assert!(repo.join("out/mcp-perfcheck-report.md").exists() && repo.join("out/mcp-perfcheck-results.json").exists());
}
