//! What `ci --mode publish` keeps of a report that a fork's job wrote. It keeps the
//! measurements, once they are checked. It keeps nothing that steers the decision or the post:
//! the run link comes from the trusted `workflow_run` event; the policy and the thresholds come
//! from the publishing workflow's own config (its checkout of the base repository), else from
//! the embedded default. Commit ids must be commit ids.

use anyhow::{Context, ensure};

use super::CiReport;
use crate::cli::policy_of;
use crate::config::Plan;
use crate::github::Event;
use crate::results::{Results, SCHEMA};
use crate::stats::thresholds;

/// A commit id as git prints it in full: 40 hexadecimal digits.
pub fn is_commit_id(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An untrusted string as an error message may show it: at most 60 characters, every control,
/// quote and non-ASCII character escaped.
pub(super) fn shown(s: &str) -> String {
    let cut: String = s.chars().take(60).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("\"{}{more}\"", cut.escape_default())
}

/// The report made fit to publish, and what was replaced (for the log). Refuses a report whose
/// commit ids are not commit ids or whose runs are not valid results.
pub(super) fn trusted(mut report: CiReport, event: &Event, plan: &Plan) -> anyhow::Result<(CiReport, Vec<String>)> {
    let mut replaced = Vec::new();
    if let Some(sha) = event.head_sha.as_deref() {
        ensure!(is_commit_id(sha), "the workflow_run event's head_sha {} is not a commit id", shown(sha));
    }
    for (what, sha) in [
        ("head_sha", report.head_sha.as_deref()),
        ("head run's git_sha", report.head.git_sha.as_deref()),
        ("base run's git_sha", report.base.git_sha.as_deref()),
    ] {
        if let Some(sha) = sha {
            ensure!(
                is_commit_id(sha),
                "the report's {what} {} is not a commit id (40 hex digits): nothing posted",
                shown(sha)
            );
        }
    }
    for (side, results) in [("base", &report.base), ("head", &report.head)] {
        checked(results).with_context(|| format!("the report's {side} run"))?;
    }

    let link = run_link(event);
    if report.run_url.is_some() && report.run_url != link {
        replaced.push("run link (the link posted is to the workflow_run event's run)".to_string());
    }
    report.run_url = link;

    let policy = policy_of(&plan.compare, Some(&plan.workload));
    if report.policy != policy {
        replaced.push(format!("policy (the policy of {} judged instead)", plan.source));
    }
    report.policy = policy;

    let outcomes = thresholds::evaluate(&report.head, &plan.thresholds, plan.compare.latency);
    if outcomes != report.head.thresholds {
        replaced.push(format!("thresholds (evaluated again from {})", plan.source));
    }
    report.head.thresholds = outcomes;
    Ok((report, replaced))
}

/// A run as `Results::load` would accept it: its schema, and every histogram decodable.
fn checked(results: &Results) -> anyhow::Result<()> {
    ensure!(results.schema == SCHEMA, "schema is {}, this version reads `{SCHEMA}`", shown(&results.schema));
    results.validate()
}

/// The measuring run's page: the server and repository of this (trusted) job, the run id of
/// the event GitHub delivered.
fn run_link(event: &Event) -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let server = var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
    let repository = var("GITHUB_REPOSITORY").or_else(|| event.repository.clone())?;
    let name_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    let valid = repository.split_once('/').is_some_and(|(owner, name)| name_ok(owner) && name_ok(name));
    Some(format!("{}/{repository}/actions/runs/{}", server.trim_end_matches('/'), event.run_id?)).filter(|_| valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_are_forty_hex_digits() {
        assert!(is_commit_id("0123456789abcdef0123456789ABCDEF01234567"));
        assert!(!is_commit_id("0123456789abcdef0123456789abcdef0123456"), "39 digits");
        assert!(!is_commit_id("@mallory 456789abcdef0123456789abcdef0123"));
        assert!(!is_commit_id("ééééééééééééééééééééé"), "42 bytes of non-ASCII");
    }

    #[test]
    fn an_untrusted_string_in_a_message_is_escaped_and_cut() {
        assert_eq!(shown("a\nb\u{202e}"), "\"a\\nb\\u{202e}\"");
        assert_eq!(shown(&"x".repeat(100)), format!("\"{}…\"", "x".repeat(60)));
    }
}
