//! GitHub: the context a workflow gives (environment, event payload, its output files) and the
//! API calls that publish a report — the sticky pull-request comment, the commit status, a
//! check run — through octocrab, with retries of our own (`call.rs`: backoff with jitter on
//! 5xx, rate limits waited out, everything within `--max-wait`, a comment never created
//! twice); a plain 403 is not retried, and its error names the `permissions:` entry the
//! workflow lacks. The token goes to octocrab and is never printed: errors carry the status,
//! GitHub's message and what was being done.

mod call;
mod event;
pub mod workflow;

use std::time::Duration;

use anyhow::Context;
use octocrab::Octocrab;
use octocrab::service::middleware::retry::{NoOpRateLimitMetrics, RetryConfig};
use serde::{Deserialize, Serialize};

pub use call::{Retries, rate_limit_wait};
pub use event::Event;

use call::Doing;
use http::Method;

/// A failed API call: what was being done, the status, GitHub's message, and the permission a
/// 401/403 points at.
#[derive(Debug, thiserror::Error)]
#[error("GitHub API: cannot {doing}: {}{}{}", status.map(|s| format!("{s} ")).unwrap_or_default(), message, hint(status, permission))]
pub struct ApiError {
    pub doing: &'static str,
    pub status: Option<u16>,
    pub message: String,
    /// The `permissions:` entry the call needs, e.g. `pull-requests: write`.
    pub permission: &'static str,
    /// A server error or a lost connection: the call may or may not have been done.
    pub transient: bool,
}

fn hint(status: &Option<u16>, permission: &str) -> String {
    match status {
        Some(401) => " (the token is invalid or expired)".into(),
        Some(403) => format!(
            " (the workflow's token lacks `permissions: {permission}`; a pull request from a fork never gets it: use `ci --mode measure` there and `--mode publish` in a `workflow_run` workflow)"
        ),
        Some(404) => format!(" (not found, or not visible to the token: it needs `permissions: {permission}`)"),
        _ => String::new(),
    }
}

impl ApiError {
    /// An answer that is not what the call expects (no id, not the JSON it should be).
    fn unexpected(what: Doing, message: String) -> ApiError {
        ApiError { doing: what.doing, status: None, message, permission: what.permission, transient: false }
    }

    /// The call was refused for lack of permission (not a transient failure).
    pub fn is_forbidden(&self) -> bool {
        matches!(self.status, Some(401 | 403))
    }
}

/// The repository a workflow runs in and a client for its API.
pub struct GitHub {
    /// Without octocrab's own retries: [`GitHub::call`] retries.
    crab: Octocrab,
    /// With octocrab's rate-limit-aware retries, for callers of [`GitHub::octocrab`].
    retrying: Octocrab,
    owner: String,
    repo: String,
    retries: Retries,
}

/// What `upsert_comment` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentAction {
    Created(u64),
    Updated(u64),
}

/// A commit status's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Success,
    Failure,
    Error,
    Pending,
}

/// A completed check run's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckConclusion {
    Success,
    Failure,
    /// Neither: an inconclusive comparison.
    Neutral,
}

/// GitHub's limit on a commit status description.
pub const STATUS_DESCRIPTION_MAX: usize = 140;

/// What a pull request says of itself, for checking a report against it.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestInfo {
    pub number: u64,
    pub state: String,
    pub head: PullRequestHead,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestHead {
    pub sha: String,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    body: Option<String>,
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

/// Comments read per page and pages read at most when looking for our own.
const COMMENTS_PER_PAGE: usize = 100;
const COMMENT_PAGES: usize = 30;

impl GitHub {
    /// A client for `repository` (`owner/name`) at `api` (e.g. `https://api.github.com`, or a
    /// GitHub Enterprise `https://host/api/v3`).
    pub fn new(api: &str, token: String, repository: &str) -> anyhow::Result<GitHub> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .with_context(|| format!("the repository `{repository}` is not `owner/name`"))?;
        let client = |retry: RetryConfig| {
            Octocrab::builder()
                .base_uri(api)
                .with_context(|| format!("the GitHub API URL `{api}` is not a URL"))?
                .personal_token(token.clone())
                .add_retry_config(retry)
                .set_connect_timeout(Some(Duration::from_secs(10)))
                .set_read_timeout(Some(Duration::from_secs(30)))
                .build()
                .context("cannot set up the GitHub client")
        };
        let crab = client(RetryConfig::None)?;
        let retrying = client(RetryConfig::HandleRateLimits {
            metrics: std::sync::Arc::new(NoOpRateLimitMetrics),
            max_retries: 3,
            min_wait_seconds: 1,
            retry_on_forbidden: false,
        })?;
        Ok(GitHub { crab, retrying, owner: owner.to_string(), repo: repo.to_string(), retries: Retries::default() })
    }

    /// The same client with `retries` instead of the defaults.
    pub fn with_retries(self, retries: Retries) -> GitHub {
        GitHub { retries, ..self }
    }

    /// The client for the repository and token Actions gives: `GITHUB_REPOSITORY`,
    /// `GITHUB_API_URL` (default `https://api.github.com`), `GITHUB_TOKEN` or `GH_TOKEN`.
    /// `why` says what needs it, for the error when something is missing.
    pub fn from_env(why: &str) -> anyhow::Result<GitHub> {
        let repository = env("GITHUB_REPOSITORY")
            .with_context(|| format!("{why} needs GITHUB_REPOSITORY (owner/name), as GitHub Actions sets it"))?;
        let token = env("GITHUB_TOKEN").or_else(|| env("GH_TOKEN")).with_context(|| {
            format!("{why} needs a token in GITHUB_TOKEN (in a workflow: `env: GITHUB_TOKEN: ${{{{ github.token }}}}`)")
        })?;
        let api = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        GitHub::new(&api, token, &repository)
    }

    /// The octocrab client (with octocrab's retries), for calls this module does not wrap.
    pub fn octocrab(&self) -> &Octocrab {
        &self.retrying
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn repo(&self) -> &str {
        &self.repo
    }

    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}/{rest}", self.owner, self.repo)
    }

    /// Updates the comment on pull request `pr` that carries `marker` and was written by
    /// `author`, or creates one. A comment by anyone else is never touched, marker or not. A
    /// create that failed with the outcome unknown (a 5xx, a lost connection) is not sent
    /// again blindly: the comments are listed again first, and the one it may have made is
    /// updated instead.
    pub async fn upsert_comment(
        &self,
        pr: u64,
        marker: &str,
        author: &str,
        body: &str,
    ) -> Result<CommentAction, ApiError> {
        let payload = serde_json::json!({ "body": body });
        let mut attempt = 1;
        loop {
            let found = self.find_comment(pr, marker, author).await?;
            if let Some(id) = found {
                let route = self.route(&format!("issues/comments/{id}"));
                let doing = Doing { doing: "update the report comment", permission: "pull-requests: write" };
                self.call(Method::PATCH, &route, Some(&payload), doing, true).await?;
                return Ok(CommentAction::Updated(id));
            }
            let route = self.route(&format!("issues/{pr}/comments"));
            let doing = Doing { doing: "comment on the pull request", permission: "pull-requests: write" };
            match self.call(Method::POST, &route, Some(&payload), doing, false).await {
                Ok(created) => {
                    let id = created["id"]
                        .as_u64()
                        .ok_or_else(|| ApiError::unexpected(doing, "the answer names no comment id".into()))?;
                    return Ok(CommentAction::Created(id));
                }
                Err(e) if e.transient && attempt < self.retries.attempts => {
                    tokio::time::sleep(self.retries.backoff(attempt, 0.5)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Our comment on `pr`: the first by `author` that carries `marker`.
    async fn find_comment(&self, pr: u64, marker: &str, author: &str) -> Result<Option<u64>, ApiError> {
        let doing = Doing { doing: "list the pull request's comments", permission: "pull-requests: write" };
        for page in 1..=COMMENT_PAGES {
            let route = self.route(&format!("issues/{pr}/comments?per_page={COMMENTS_PER_PAGE}&page={page}"));
            let answer = self.call(Method::GET, &route, None, doing, true).await?;
            let comments: Vec<Comment> = serde_json::from_value(answer)
                .map_err(|e| ApiError::unexpected(doing, format!("unexpected answer: {e}")))?;
            let n = comments.len();
            let ours = comments.into_iter().find(|c| {
                c.user.as_ref().is_some_and(|u| u.login == author)
                    && c.body.as_deref().is_some_and(|b| b.contains(marker))
            });
            if let Some(c) = ours {
                return Ok(Some(c.id));
            }
            if n < COMMENTS_PER_PAGE {
                break;
            }
        }
        Ok(None)
    }

    /// Sets a commit status on `sha`. The description is cut to GitHub's 140 characters.
    pub async fn set_status(
        &self,
        sha: &str,
        state: StatusState,
        context: &str,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<(), ApiError> {
        let payload = serde_json::json!({
            "state": state,
            "context": context,
            "description": cut(description, STATUS_DESCRIPTION_MAX),
            "target_url": target_url,
        });
        // Repeatable: a second status of the same context replaces the first.
        let doing = Doing { doing: "set the commit status", permission: "statuses: write" };
        self.call(Method::POST, &self.route(&format!("statuses/{sha}")), Some(&payload), doing, true).await?;
        Ok(())
    }

    /// Creates a completed check run on `sha` with the report as its summary.
    pub async fn create_check_run(
        &self,
        sha: &str,
        name: &str,
        conclusion: CheckConclusion,
        title: &str,
        summary: &str,
        details_url: Option<&str>,
    ) -> Result<(), ApiError> {
        let payload = serde_json::json!({
            "name": name,
            "head_sha": sha,
            "status": "completed",
            "conclusion": conclusion,
            "details_url": details_url,
            "output": { "title": cut(title, 255), "summary": cut(summary, 65_535) },
        });
        // Repeatable: GitHub shows the latest check run of a name.
        let doing = Doing { doing: "create the check run", permission: "checks: write" };
        self.call(Method::POST, &self.route("check-runs"), Some(&payload), doing, true).await?;
        Ok(())
    }

    /// Pull request `number` as the API sees it now.
    pub async fn pull_request(&self, number: u64) -> Result<PullRequestInfo, ApiError> {
        let doing = Doing { doing: "read the pull request", permission: "pull-requests: read" };
        let answer = self.call(Method::GET, &self.route(&format!("pulls/{number}")), None, doing, true).await?;
        serde_json::from_value(answer).map_err(|e| ApiError::unexpected(doing, format!("unexpected answer: {e}")))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// At most `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    text.chars().take(max - 1).collect::<String>() + "…"
}

/// An octocrab failure as an [`ApiError`].
pub fn api_error(e: octocrab::Error, doing: &'static str, permission: &'static str) -> ApiError {
    match e {
        octocrab::Error::GitHub { source, .. } => ApiError {
            doing,
            status: Some(source.status_code.as_u16()),
            message: source.message.clone(),
            permission,
            transient: source.status_code.is_server_error(),
        },
        other => ApiError { doing, status: None, message: other.to_string(), permission, transient: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_names_the_missing_permission_and_never_the_token() {
        let e = ApiError {
            doing: "set the commit status",
            status: Some(403),
            message: "Resource not accessible by integration".into(),
            permission: "statuses: write",
            transient: false,
        };
        let text = e.to_string();
        assert!(text.starts_with("GitHub API: cannot set the commit status: 403 Resource not accessible by integration (the workflow's token lacks `permissions: statuses: write`"), "{text}");
        assert!(e.is_forbidden());
        assert_eq!(cut(&"x".repeat(200), STATUS_DESCRIPTION_MAX).chars().count(), 140);
    }

    #[test]
    fn a_repository_must_be_owner_slash_name() {
        assert!(GitHub::new("https://api.github.com", "t".into(), "just-a-name").is_err());
        assert!(GitHub::new("https://api.github.com", "t".into(), "o/r/x").is_err());
        assert!(GitHub::new("not a url", "t".into(), "o/r").is_err());
    }
}
