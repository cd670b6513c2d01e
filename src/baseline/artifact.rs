//! The `artifact` store: the results file uploaded (with `actions/upload-artifact`) by the
//! latest successful workflow run on the base branch, fetched through the GitHub API.
//!
//! GitHub's context comes from the environment Actions sets: `GITHUB_REPOSITORY`,
//! `GITHUB_API_URL` (GitHub Enterprise included), `GITHUB_BASE_REF`, and the token from
//! `GITHUB_TOKEN` (or `GH_TOKEN`). The token is handed to octocrab and never printed.

use std::io::Read;

use crate::github::GitHub;
use anyhow::{Context, bail};
use serde::Deserialize;

use super::{StoredHistory, StoredRun};
use crate::results::{Results, short_commit};

/// How many of the newest successful runs are searched for the artifact.
const RUNS_SEARCHED: u8 = 20;

pub struct ArtifactStore {
    pub name: String,
    pub branch: Option<String>,
    pub workflow: Option<String>,
}

#[derive(Deserialize)]
struct Runs {
    workflow_runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    id: u64,
    head_sha: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    run_number: u64,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct Artifacts {
    artifacts: Vec<Artifact>,
}

#[derive(Deserialize)]
struct Artifact {
    id: u64,
    name: String,
    #[serde(default)]
    expired: bool,
}

#[derive(Deserialize)]
struct Repository {
    default_branch: String,
}

/// The repository's API context and the branch whose runs count.
struct RepoContext {
    github: GitHub,
    branch: String,
}

impl ArtifactStore {
    async fn context(&self) -> anyhow::Result<RepoContext> {
        let github = GitHub::from_env("the artifact store")?;
        let branch = match self.branch.clone().or_else(|| env("GITHUB_BASE_REF")) {
            Some(b) => b,
            None => {
                let r: Repository = github
                    .octocrab()
                    .get(format!("/repos/{}/{}", github.owner(), github.repo()), None::<&()>)
                    .await
                    .map_err(|e| api_error(e, "read the repository"))?;
                r.default_branch
            }
        };
        Ok(RepoContext { github, branch })
    }

    /// A page of the branch's successful runs, newest first; a fork's pull request may come
    /// from a branch of the same name, so only the base repository's own runs are kept.
    async fn runs(&self, cx: &RepoContext, per_page: u32, page: u32) -> anyhow::Result<(Vec<Run>, usize)> {
        let (owner, repo) = (cx.github.owner(), cx.github.repo());
        let route = match &self.workflow {
            Some(w) => format!("/repos/{owner}/{repo}/actions/workflows/{w}/runs"),
            None => format!("/repos/{owner}/{repo}/actions/runs"),
        };
        let query = [
            ("branch", cx.branch.clone()),
            ("status", "success".to_string()),
            ("per_page", per_page.to_string()),
            ("page", page.to_string()),
        ];
        let runs: Runs =
            cx.github.octocrab().get(route, Some(&query)).await.map_err(|e| api_error(e, "list workflow runs"))?;
        let listed = runs.workflow_runs.len();
        Ok((runs.workflow_runs.into_iter().filter(|r| !r.event.starts_with("pull_request")).collect(), listed))
    }

    /// The results file in `run`'s artifact (`None`: the run has no such artifact, or it expired).
    async fn results_of(&self, cx: &RepoContext, run: &Run) -> anyhow::Result<Option<(String, String)>> {
        let (crab, owner, repo) = (cx.github.octocrab(), cx.github.owner(), cx.github.repo());
        let artifacts: Artifacts = crab
            .get(
                format!("/repos/{owner}/{repo}/actions/runs/{}/artifacts", run.id),
                Some(&[("name", self.name.as_str())]),
            )
            .await
            .map_err(|e| api_error(e, "list a run's artifacts"))?;
        let Some(artifact) = artifacts.artifacts.iter().find(|a| a.name == self.name && !a.expired) else {
            return Ok(None);
        };
        let zip = crab
            .actions()
            .download_artifact(owner, repo, artifact.id.into(), octocrab::params::actions::ArchiveFormat::Zip)
            .await
            .map_err(|e| api_error(e, "download the artifact"))?;
        let what = format!("artifact `{}` of run #{} ({})", self.name, run.run_number, short_commit(&run.head_sha));
        let text = results_in_zip(&zip).with_context(|| format!("{what} holds no readable results file"))?;
        Ok(Some((text, what)))
    }

    /// The newest successful base-branch run's artifact, and a description of where it was
    /// found.
    pub async fn load(&self) -> anyhow::Result<(Results, String)> {
        let cx = self.context().await?;
        let (runs, listed) = self.runs(&cx, u32::from(RUNS_SEARCHED), 1).await?;
        for run in &runs {
            if let Some((text, what)) = self.results_of(&cx, run).await? {
                let results =
                    Results::from_json(&text).with_context(|| format!("{what} is not a usable results file"))?;
                return Ok((results, what));
            }
        }
        bail!(
            "no artifact `{}` in the last {listed} successful runs on `{}` of {}/{}{}",
            self.name,
            cx.branch,
            cx.github.owner(),
            cx.github.repo(),
            self.workflow.as_ref().map(|w| format!(" (workflow {w})")).unwrap_or_default()
        )
    }

    /// The artifacts of the newest `limit` successful runs of the branch that have one, oldest
    /// first (one run a commit: a commit's newest run).
    pub async fn history(&self, limit: usize) -> anyhow::Result<StoredHistory> {
        let cx = self.context().await?;
        let mut runs: Vec<StoredRun> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut notes = Vec::new();
        let mut page = 1;
        while runs.len() < limit {
            let (listed, count) = self.runs(&cx, 100, page).await?;
            for run in listed {
                if runs.len() >= limit || !seen.insert(run.head_sha.clone()) {
                    continue;
                }
                match self.results_of(&cx, &run).await? {
                    Some((json, _)) => runs.push(StoredRun { commit: run.head_sha, date: run.created_at, json }),
                    None => {
                        notes.push(format!("run #{} has no artifact `{}` (or it expired)", run.run_number, self.name))
                    }
                }
            }
            if count < 100 {
                break;
            }
            page += 1;
        }
        runs.reverse();
        let source =
            format!("artifact `{}` of {}/{} on `{}`", self.name, cx.github.owner(), cx.github.repo(), cx.branch);
        Ok(StoredHistory { runs, source, notes })
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The one JSON file of the archive (`mcp-perfcheck-results.json` when there are several).
fn results_in_zip(bytes: &[u8]) -> anyhow::Result<String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("not a zip archive")?;
    let names: Vec<String> =
        archive.file_names().filter_map(Result::ok).filter(|n| n.ends_with(".json")).map(|n| n.into_owned()).collect();
    let name = match names.as_slice() {
        [] => bail!("no .json file in the archive"),
        [one] => one.clone(),
        many => {
            many.iter().find(|n| n.rsplit('/').next() == Some("mcp-perfcheck-results.json")).cloned().with_context(
                || format!("several .json files and none named mcp-perfcheck-results.json: {}", many.join(", ")),
            )?
        }
    };
    let mut text = String::new();
    archive
        .by_name(&name)?
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {name} from the archive"))?;
    Ok(text)
}

/// An API failure, with the permission the artifact store needs.
fn api_error(e: octocrab::Error, doing: &'static str) -> anyhow::Error {
    crate::github::api_error(e, doing, "actions: read").into()
}
