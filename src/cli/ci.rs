//! `mcp-perfcheck ci`: the whole pipeline inside a workflow. Measure (a same-runner A/B, or the
//! head against the configured baseline store), compare, write the reports, publish them (job
//! summary, the sticky pull-request comment, a commit status, a check run on request), set the
//! step outputs, and exit per the `--fail-on` policy.
//!
//! Pull requests from forks get no write token, so the pipeline splits there: `--mode measure`
//! does everything but the API calls and writes `mcp-perfcheck-report.json` for upload;
//! `--mode publish` runs in a trusted `workflow_run` workflow, treats that file and the event as
//! untrusted data, recomputes the comparison from the results in it, and posts only after the
//! API confirms that the pull request's head is the commit the event says was measured.

mod trust;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{Outcome, colour_wanted, decide, exporter, load_plan, measure, policy_of, store, workflow_run_url};
use crate::config::BaselineConfig;
use crate::github::{self, CheckConclusion, CommentAction, Event, GitHub, StatusState, workflow};
use crate::report::{self, Format, MARKER, Report};
use crate::results::Results;
use crate::stats::{Comparison, MetricVerdict, Policy, Verdict};

/// The report file's schema.
pub const CI_REPORT_SCHEMA: &str = "mcp-perfcheck/ci-report/v1";

/// A report file from `--mode measure` is refused beyond this size: it is untrusted input.
const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Measure, compare, report and publish (a same-repository pull request, a push).
    Full,
    /// Measure, compare and write the report, without any API call (a fork's pull request).
    Measure,
    /// Publish a report written by `--mode measure`, from a trusted `workflow_run` workflow.
    Publish,
}

/// When `ci` exits 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// A binding significant regression or a failed threshold.
    Regression,
    /// Also an inconclusive comparison or a regression made advisory by differing machines.
    Inconclusive,
    /// Never (a failed run still exits 2).
    Never,
}

#[derive(clap::Args)]
pub struct CiArgs {
    /// The YAML config (default: the embedded default config). With --mode publish, the
    /// policy and thresholds come from it (the trusted checkout's), never from the report.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// full: measure and post; measure: no API call, for a fork's pull request; publish:
    /// post a measure-mode report from a trusted workflow_run workflow.
    #[arg(long, value_enum, default_value_t = Mode::Full)]
    pub mode: Mode,
    /// The base of the A/B (default: `baseline.ref`, else origin/<the pull request's base
    /// branch>, else HEAD~1).
    #[arg(long)]
    pub base_ref: Option<String>,
    /// When to exit 1.
    #[arg(long, value_enum, default_value_t = FailOn::Regression)]
    pub fail_on: FailOn,
    /// Where the results and reports are written.
    #[arg(long, default_value = "mcp-perfcheck-report")]
    pub out_dir: PathBuf,
    /// The commit status's context (and the check run's name).
    #[arg(long, default_value = "mcp-perfcheck")]
    pub status_context: String,
    /// Also create a check run with the report.
    #[arg(long)]
    pub check_run: bool,
    /// The login the tool's own comment is written by (a personal token's user instead of
    /// the default GITHUB_TOKEN's bot).
    #[arg(long, default_value = "github-actions[bot]")]
    pub comment_author: String,
    /// Compare this results file (a sharded run's merge, from `mcp-perfcheck merge`) instead
    /// of measuring: it is the head, and the config's stored baseline (`baseline.store`: file,
    /// git-branch or artifact) the base.
    #[arg(long, value_name = "FILE", conflicts_with = "base_ref")]
    pub results: Option<PathBuf>,
    /// --mode publish: the report file `--mode measure` wrote.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// --mode publish: the workflow_run event (e.g. $GITHUB_EVENT_PATH).
    #[arg(long)]
    pub event: Option<PathBuf>,
    /// The calibration to cite (default: mcp-perfcheck-calibration.json when it exists).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Templates to use instead of the embedded ones.
    #[arg(long)]
    pub template_dir: Option<PathBuf>,
    /// With a store of past runs in the config (`history:`, or a git-branch or artifact
    /// `baseline:`): each changed metric's trend over the base branch's newest N commits.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub trend_commits: usize,
    /// The longest any one API call waits for retries and rate limits (e.g. 60s, 2m); past it
    /// the step says what it could not post and exits per the verdict.
    #[arg(long, default_value = "60s", value_parser = parse_wait)]
    pub max_wait: std::time::Duration,
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    crate::config::HumanDuration::parse(text).map(|d| d.0)
}

/// The API client with this step's retry limit.
fn client(args: &CiArgs, why: &str) -> anyhow::Result<GitHub> {
    let retries = github::Retries { max_wait: args.max_wait, ..github::Retries::default() };
    Ok(GitHub::from_env(why)?.with_retries(retries))
}

/// What `--mode measure` hands to `--mode publish`: the two runs and how to judge them, and
/// which pull request and commit they claim to be about.
#[derive(Debug, Serialize, Deserialize)]
pub struct CiReport {
    pub schema: String,
    pub pr_number: Option<u64>,
    pub head_sha: Option<String>,
    pub run_url: Option<String>,
    pub policy: Policy,
    pub base: Results,
    pub head: Results,
}

pub(super) async fn ci(args: CiArgs) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create the report directory {}", args.out_dir.display()))?;
    match args.mode {
        Mode::Full | Mode::Measure => {
            let event = match Event::from_env() {
                Ok(e) => Some(e),
                Err(e) if std::env::var_os("GITHUB_ACTIONS").is_some() => return Err(e),
                Err(_) => None,
            };
            let report = measure_and_compare(&args, event.as_ref()).await?;
            let path = args.out_dir.join("mcp-perfcheck-report.json");
            std::fs::write(&path, serde_json::to_string(&report)? + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("report data written to {}", path.display());
            let post = args.mode == Mode::Full && event.is_some();
            if args.mode == Mode::Full && event.is_none() {
                eprintln!("mcp-perfcheck ci: not inside GitHub Actions (no GITHUB_EVENT_NAME): nothing is posted");
            }
            publish(&args, &report, post).await
        }
        Mode::Publish => {
            let report_path = args.report.as_deref().context("--mode publish needs --report FILE")?;
            let event_path =
                args.event.as_deref().context("--mode publish needs --event FILE (the workflow_run event)")?;
            let report = read_report(report_path)?;
            let event_text = std::fs::read_to_string(event_path)
                .with_context(|| format!("cannot read the event {}", event_path.display()))?;
            let event = Event::parse("workflow_run", &event_text, None)
                .with_context(|| format!("event {}", event_path.display()))?;
            // The policy and thresholds are this workflow's: its config, read from its own
            // (trusted) checkout, or the embedded default.
            let plan = load_plan(args.config.as_deref())?;
            let (report, replaced) =
                trust::trusted(report, &event, &plan).with_context(|| format!("report {}", report_path.display()))?;
            for what in replaced {
                eprintln!("mcp-perfcheck ci: the report's {what} was not used");
            }
            verify(&args, &report, &event).await?;
            publish(&args, &report, true).await
        }
    }
}

async fn measure_and_compare(args: &CiArgs, event: Option<&Event>) -> anyhow::Result<CiReport> {
    let plan = load_plan(args.config.as_deref())?;
    let results_path = args.out_dir.join("mcp-perfcheck-results.json");
    let stored = plan.baseline.as_ref().is_some_and(|b| !matches!(b, BaselineConfig::Ab { .. }));
    if let Some(path) = &args.results {
        anyhow::ensure!(
            stored,
            "--results {}: a results file measured elsewhere is compared with a stored baseline; the config needs `baseline.store: file`, `git-branch` or `artifact`",
            path.display()
        );
    }
    let (base, head) = match &plan.baseline {
        Some(_) if stored => {
            let head = match &args.results {
                Some(path) => {
                    let mut head = Results::load(path)?;
                    // This config's thresholds, checked on the figures as given.
                    head.thresholds = crate::stats::thresholds::evaluate(&head, &plan.thresholds, plan.compare.latency);
                    if head.sharding.as_ref().is_some_and(|s| s.config_hash != plan.config_hash) {
                        eprintln!(
                            "warning: {} was measured with another config than {}: the policy and thresholds are this config's",
                            path.display(),
                            plan.source
                        );
                    }
                    head.save(&results_path)?;
                    head
                }
                None => measure(&plan, &results_path, None, None).await?,
            };
            let config = args.config.as_deref().context("a baseline store needs --config")?;
            let (config, dir) = crate::config::Config::from_path(config)?;
            let baseline = store(&config, &dir)?.load(head.git_sha.as_deref()).await?;
            eprintln!("mcp-perfcheck: baseline from {}", baseline.source);
            (baseline.results, head)
        }
        configured => {
            let base_ref = args
                .base_ref
                .clone()
                .or(match configured {
                    Some(BaselineConfig::Ab { git_ref }) => Some(git_ref.clone()),
                    _ => None,
                })
                .or_else(|| event.and_then(|e| e.base_ref.as_ref()).map(|b| format!("origin/{b}")))
                .unwrap_or_else(|| "HEAD~1".to_string());
            let mut head = measure(&plan, &results_path, Some(&base_ref), None).await?;
            let base = head.base_run.take().context("an A/B run holds its base side")?;
            (*base, head)
        }
    };
    Ok(CiReport {
        schema: CI_REPORT_SCHEMA.into(),
        pr_number: event.and_then(|e| e.pr_number),
        head_sha: event.and_then(|e| e.head_sha.clone()).or_else(|| head.git_sha.clone()),
        run_url: workflow_run_url(),
        policy: policy_of(&plan.compare, Some(&plan.workload)),
        base,
        head,
    })
}

/// Reads an untrusted report: bounded in size, checked for its schema.
fn read_report(path: &Path) -> anyhow::Result<CiReport> {
    let size = std::fs::metadata(path).with_context(|| format!("cannot read the report {}", path.display()))?.len();
    anyhow::ensure!(size <= MAX_REPORT_BYTES, "{}: {size} bytes, more than a report can be", path.display());
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the report {}", path.display()))?;
    parse_report(&text)
        .with_context(|| format!("{} is not a report from `mcp-perfcheck ci --mode measure`", path.display()))
}

fn parse_report(text: &str) -> anyhow::Result<CiReport> {
    let report: CiReport = serde_json::from_str(text)?;
    anyhow::ensure!(
        report.schema == CI_REPORT_SCHEMA,
        "schema is `{}`, this version reads `{CI_REPORT_SCHEMA}`",
        trust::shown(&report.schema)
    );
    Ok(report)
}

/// What `--mode publish` does with an untrusted report and event short of the API: parse and
/// check both, keep what is trusted, compare, and render every format. For fuzzing: any input
/// must end in `Ok` or an error, never a panic.
pub fn publish_offline(report: &str, event: &str) -> anyhow::Result<Vec<String>> {
    let report = parse_report(report)?;
    let event = Event::parse("workflow_run", event, None)?;
    let plan = crate::config::Plan::embedded_default(std::path::Path::new("mcp-perfcheck"));
    let (report, _) = trust::trusted(report, &event, &plan)?;
    let comparison = crate::stats::compare(&report.base, &report.head, &report.policy);
    let view = Report {
        comparison: &comparison,
        base: &report.base,
        head: &report.head,
        run_url: report.run_url.as_deref(),
        trends: None,
    };
    [Format::Markdown, Format::Text, Format::Html, Format::Junit, Format::Json]
        .into_iter()
        .map(|f| report::exporter(f).comparison(&view))
        .collect()
}

/// Before anything is posted for a fork's report: the pull request it names must exist, be
/// open, and have as its head the commit the trusted event says was measured, which must also
/// be the one the report claims.
async fn verify(args: &CiArgs, report: &CiReport, event: &Event) -> anyhow::Result<()> {
    let measured = event.head_sha.as_deref().context("the workflow_run event names no head commit")?;
    let claimed = report.head_sha.as_deref().context("the report names no head commit")?;
    anyhow::ensure!(
        claimed == measured,
        "the report claims commit {claimed}, the workflow run measured {measured}: nothing posted"
    );
    let number = report.pr_number.context("the report names no pull request: nothing to publish to")?;
    let github = client(args, "--mode publish")?;
    let pr = github.pull_request(number).await?;
    anyhow::ensure!(
        pr.head.sha == measured,
        "pull request #{number} is at {}, not at the measured {measured} (pushed since, or not this pull request): nothing posted",
        pr.head.sha
    );
    anyhow::ensure!(pr.state == "open", "pull request #{number} is {}: nothing posted", pr.state);
    Ok(())
}

/// The base branch's trends from the config's store of past runs, on the head's machine
/// class; `None` (with a note why) when there is no such store or it cannot be read: a trend
/// line is extra, never a reason to lose the report.
async fn trends(args: &CiArgs, head: &Results) -> Option<crate::report::Trends> {
    let path = args.config.as_deref()?;
    let (config, dir) = match crate::config::Config::from_path(path) {
        Ok(loaded) => loaded,
        Err(e) => {
            super::print_labelled("note", &format!("no trend lines in the comment: {e:#}"));
            return None;
        }
    };
    config.history_in(&dir)?;
    let read = async {
        let stored = super::history::past_runs(&config, &dir, path)?.history(args.trend_commits).await?;
        let runs: Vec<crate::history::Run> = stored
            .runs
            .into_iter()
            .filter_map(|r| {
                let results = Results::figures_from_json(&r.json).ok()?;
                Some(crate::history::Run { commit: r.commit, date: r.date, results })
            })
            .collect();
        anyhow::Ok(crate::history::trends(&runs, &head.environment.class(), config.compare.latency))
    };
    match read.await {
        Ok(t) => Some(t),
        Err(e) => {
            super::print_labelled("note", &format!("no trend lines in the comment: {e:#}"));
            None
        }
    }
}

/// Writes the reports, fills the job summary and outputs, posts (when `post`), and decides the
/// exit code. A failed API call is reported and does not change the verdict's exit code.
async fn publish(args: &CiArgs, report: &CiReport, post: bool) -> anyhow::Result<Outcome> {
    let comparison = decide(&report.base, &report.head, &report.policy, args.calibration.as_deref())?;
    let trends = trends(args, &report.head).await;
    let view = Report {
        comparison: &comparison,
        base: &report.base,
        head: &report.head,
        run_url: report.run_url.as_deref(),
        trends: trends.as_ref(),
    };
    let render =
        |format| -> anyhow::Result<String> { exporter(format, args.template_dir.as_deref())?.comparison(&view) };
    let markdown = render(Format::Markdown)?;
    let files = [
        ("mcp-perfcheck-report.md", markdown.clone()),
        ("mcp-perfcheck-report.html", render(Format::Html)?),
        ("mcp-perfcheck-junit.xml", render(Format::Junit)?),
    ];
    for (name, text) in &files {
        let path = args.out_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let text = render(Format::Text)?;
    let text = if colour_wanted() { report::colour_text(&text) } else { text };
    print!("{}", workflow::log_block(&text, std::env::var_os("GITHUB_ACTIONS").is_some()));
    if workflow::append_summary(&markdown)? {
        eprintln!("mcp-perfcheck ci: report added to the job summary");
    }
    for line in annotations(&comparison, &report.head) {
        println!("{line}");
    }
    let verdict = verdict_word(&comparison, &report.head);
    let report_path = args.out_dir.join("mcp-perfcheck-report.md");
    workflow::set_outputs(&[("verdict", verdict), ("report-path", &report_path.display().to_string())])?;

    if post {
        post_report(args, report, &comparison, &markdown).await;
    }
    Ok(outcome(&comparison, &report.head, args.fail_on))
}

async fn post_report(args: &CiArgs, report: &CiReport, comparison: &Comparison, markdown: &str) {
    let github = match client(args, "posting the report") {
        Ok(g) => g,
        Err(e) => {
            super::print_labelled("warning", &format!("nothing posted: {e:#}"));
            return;
        }
    };
    let said = |what: &str, r: Result<String, github::ApiError>| match r {
        Ok(done) => eprintln!("mcp-perfcheck ci: {done}"),
        // An API error may quote what the server answered.
        Err(e) => super::print_labelled("warning", &format!("{what} not posted: {e}")),
    };
    if let Some(pr) = report.pr_number {
        // One comment per status context: a matrix of jobs keeps one each.
        let marker = report::marker_for(&args.status_context);
        let body = markdown.replacen(MARKER, &marker, 1);
        let r = github.upsert_comment(pr, &marker, &args.comment_author, &body).await.map(|a| match a {
            CommentAction::Created(id) => format!("comment {id} created on #{pr}"),
            CommentAction::Updated(id) => format!("comment {id} updated on #{pr}"),
        });
        said("the pull-request comment", r);
    }
    let Some(sha) = report.head_sha.as_deref() else {
        eprintln!("warning: no head commit known: no commit status");
        return;
    };
    let (state, description) = status_of(comparison, &report.head, args.fail_on);
    let r = github
        .set_status(sha, state, &args.status_context, &description, report.run_url.as_deref())
        .await
        .map(|()| format!("status `{}` set on {}", args.status_context, sha.get(..12).unwrap_or(sha)));
    said("the commit status", r);
    if args.check_run {
        let title = report::comment_headline(&Report {
            comparison,
            base: &report.base,
            head: &report.head,
            run_url: None,
            trends: None,
        });
        let conclusion = match (state, verdict_word(comparison, &report.head)) {
            (StatusState::Success, "inconclusive") => CheckConclusion::Neutral,
            (StatusState::Success, _) => CheckConclusion::Success,
            _ => CheckConclusion::Failure,
        };
        let r = github
            .create_check_run(sha, &args.status_context, conclusion, &title, markdown, report.run_url.as_deref())
            .await
            .map(|()| "check run created".to_string());
        said("the check run", r);
    }
}

/// The commit status: its state and a one-line description (cut to 140 characters by the API
/// client). An inconclusive comparison is a success marked ⚠️, unless it is to fail.
fn status_of(c: &Comparison, head: &Results, fail_on: FailOn) -> (StatusState, String) {
    let regressions = c.regressions();
    let failed_thresholds = head.thresholds.iter().filter(|t| !t.held).count();
    match c.verdict {
        Verdict::Error => {
            (StatusState::Error, format!("could not compare: {}", c.notes.first().map_or("", String::as_str)))
        }
        Verdict::Fail if !c.advisory => (StatusState::Failure, format!("{regressions} significant regression(s)")),
        _ if failed_thresholds > 0 => (StatusState::Failure, format!("{failed_thresholds} threshold(s) failed")),
        Verdict::Fail => {
            (StatusState::Success, format!("{regressions} regression(s) on different machines (advisory)"))
        }
        Verdict::Inconclusive => {
            let state = if fail_on == FailOn::Inconclusive { StatusState::Failure } else { StatusState::Success };
            (state, format!("⚠️ inconclusive: {}", report::undecided_line(c, &|t| t.to_string())))
        }
        Verdict::Pass => (StatusState::Success, "no regression".into()),
    }
}

/// `pass`, `fail`, `inconclusive`, `advisory` or `error`: the step output.
fn verdict_word(c: &Comparison, head: &Results) -> &'static str {
    let thresholds_failed = head.thresholds.iter().any(|t| !t.held);
    match c.verdict {
        Verdict::Error => "error",
        Verdict::Fail if !c.advisory => "fail",
        _ if thresholds_failed => "fail",
        Verdict::Fail => "advisory",
        Verdict::Inconclusive => "inconclusive",
        Verdict::Pass => "pass",
    }
}

fn outcome(c: &Comparison, head: &Results, fail_on: FailOn) -> Outcome {
    match (verdict_word(c, head), fail_on) {
        ("error", _) => Outcome::Error,
        (_, FailOn::Never) => Outcome::Pass,
        ("fail", _) => Outcome::Fail,
        ("inconclusive" | "advisory", FailOn::Inconclusive) => Outcome::Fail,
        _ => Outcome::Pass,
    }
}

/// At most [`workflow::MAX_ANNOTATIONS`] error annotations: regressions, then failed thresholds.
fn annotations(c: &Comparison, head: &Results) -> Vec<String> {
    let regressions = c.metrics.iter().filter(|m| m.gates && m.verdict == MetricVerdict::Regression).map(|m| {
        let title = format!("mcp-perfcheck: {} {} {}", m.scenario, m.operation, m.metric.label());
        let change = m.change.map_or("–".into(), |v| format!("{:+.1}%", v * 100.0));
        workflow::annotation(
            "error",
            &title,
            &format!("regressed {change} (adjusted p {:.3})", m.p_adjusted.unwrap_or(1.0)),
        )
    });
    let thresholds = head.thresholds.iter().filter(|t| !t.held).map(|t| {
        workflow::annotation(
            "error",
            &format!("mcp-perfcheck: threshold {}", t.key),
            &format!("{} failed", t.expression),
        )
    });
    regressions.chain(thresholds).take(workflow::MAX_ANNOTATIONS).collect()
}
