//! The event a workflow runs for, from its payload (`GITHUB_EVENT_PATH`): which commit the
//! report is about, which pull request it belongs to, and whether that pull request comes from
//! a fork (whose workflows get no write token).

use anyhow::Context;
use serde::Deserialize;

/// What the report needs from an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `pull_request`, `push`, `workflow_run`, ...
    pub name: String,
    /// The commit measured: `pull_request.head.sha`, else `workflow_run.head_sha`, else
    /// `GITHUB_SHA`.
    pub head_sha: Option<String>,
    /// The pull request, when the event names one.
    pub pr_number: Option<u64>,
    /// The pull request's base branch.
    pub base_ref: Option<String>,
    /// The head commit lives in another repository (a fork, or a deleted one).
    pub from_fork: bool,
    /// `workflow_run.id`: the run that measured, for a trusted link to it.
    pub run_id: Option<u64>,
    /// The repository the event belongs to (`repository.full_name`).
    pub repository: Option<String>,
}

#[derive(Deserialize)]
struct Payload {
    pull_request: Option<PullRequest>,
    workflow_run: Option<WorkflowRun>,
    repository: Option<Repo>,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    head: Branch,
    base: Branch,
}

#[derive(Deserialize)]
struct Branch {
    sha: String,
    #[serde(rename = "ref")]
    name: String,
    /// Null when the fork was deleted.
    repo: Option<Repo>,
}

#[derive(Deserialize)]
struct Repo {
    full_name: String,
}

#[derive(Deserialize)]
struct WorkflowRun {
    id: Option<u64>,
    head_sha: String,
    /// Empty for a fork's pull request: GitHub lists only same-repository ones.
    #[serde(default)]
    pull_requests: Vec<RunPullRequest>,
    head_repository: Option<Repo>,
    repository: Option<Repo>,
}

#[derive(Deserialize)]
struct RunPullRequest {
    number: u64,
    base: RunBase,
}

#[derive(Deserialize)]
struct RunBase {
    #[serde(rename = "ref")]
    name: String,
}

impl Event {
    /// Parses the payload of event `name`; `github_sha` is `GITHUB_SHA`, the fallback head.
    pub fn parse(name: &str, payload: &str, github_sha: Option<&str>) -> anyhow::Result<Event> {
        let p: Payload = serde_json::from_str(payload).context("the event payload is not a GitHub event")?;
        let same = |a: &Option<Repo>, b: &Option<Repo>| match (a, b) {
            (Some(a), Some(b)) => a.full_name == b.full_name,
            _ => false,
        };
        let mut event = Event {
            name: name.to_string(),
            head_sha: github_sha.map(String::from),
            pr_number: None,
            base_ref: None,
            from_fork: false,
            run_id: None,
            repository: p.repository.as_ref().map(|r| r.full_name.clone()),
        };
        if let Some(pr) = p.pull_request {
            event.from_fork = !same(&pr.head.repo, &pr.base.repo);
            event.head_sha = Some(pr.head.sha);
            event.pr_number = Some(pr.number);
            event.base_ref = Some(pr.base.name);
        } else if let Some(run) = p.workflow_run {
            let base_repo =
                run.repository.as_ref().or(p.repository.as_ref()).map(|r| Repo { full_name: r.full_name.clone() });
            event.from_fork = !same(&run.head_repository, &base_repo);
            event.head_sha = Some(run.head_sha);
            event.run_id = run.id;
            if let Some(pr) = run.pull_requests.first() {
                event.pr_number = Some(pr.number);
                event.base_ref = Some(pr.base.name.clone());
            }
        }
        Ok(event)
    }

    /// The event Actions describes in `GITHUB_EVENT_NAME` and `GITHUB_EVENT_PATH`.
    pub fn from_env() -> anyhow::Result<Event> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let name = var("GITHUB_EVENT_NAME").context("GITHUB_EVENT_NAME is not set: not inside a GitHub Actions job")?;
        let sha = var("GITHUB_SHA");
        match var("GITHUB_EVENT_PATH") {
            Some(path) => {
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("cannot read the event payload {path}"))?;
                Event::parse(&name, &text, sha.as_deref()).with_context(|| format!("event payload {path}"))
            }
            None => Ok(Event {
                name,
                head_sha: sha,
                pr_number: None,
                base_ref: None,
                from_fork: false,
                run_id: None,
                repository: var("GITHUB_REPOSITORY"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Event {
        let path = format!("{}/fixtures/github/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let event = name.trim_end_matches("_fork").trim_end_matches("_same_repo");
        Event::parse(event, &std::fs::read_to_string(path).unwrap(), Some("ffffffffffffffffffffffffffffffffffffffff"))
            .unwrap()
    }

    #[test]
    fn a_pull_request_gives_its_head_number_and_base() {
        let e = fixture("pull_request");
        assert_eq!(
            e.head_sha.as_deref(),
            Some("1111111111111111111111111111111111111111"),
            "not GITHUB_SHA, the merge commit"
        );
        assert_eq!((e.pr_number, e.base_ref.as_deref(), e.from_fork), (Some(42), Some("main"), false));
    }

    #[test]
    fn a_pull_request_from_a_fork_is_marked() {
        let e = fixture("pull_request_fork");
        assert_eq!((e.pr_number, e.from_fork), (Some(7), true));
        assert_eq!(e.head_sha.as_deref(), Some("2222222222222222222222222222222222222222"));
    }

    #[test]
    fn a_push_falls_back_to_github_sha() {
        let e = fixture("push");
        assert_eq!(e.head_sha.as_deref(), Some("ffffffffffffffffffffffffffffffffffffffff"));
        assert_eq!((e.pr_number, e.from_fork), (None, false));
    }

    #[test]
    fn a_workflow_run_gives_the_measured_head_and_its_pull_request_when_listed() {
        let fork = fixture("workflow_run");
        assert_eq!(fork.head_sha.as_deref(), Some("2222222222222222222222222222222222222222"));
        assert_eq!((fork.pr_number, fork.from_fork), (None, true), "GitHub lists no pull request for a fork's run");
        assert_eq!((fork.run_id, fork.repository.as_deref()), (Some(9001), Some("acme/mcp-server")));
        let same = fixture("workflow_run_same_repo");
        assert_eq!((same.pr_number, same.from_fork, same.base_ref.as_deref()), (Some(42), false, Some("main")));
    }

    #[test]
    fn a_payload_that_is_not_an_event_is_an_error() {
        assert!(Event::parse("push", "[1, 2]", None).is_err());
    }
}
