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

use crate::results::Results;

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

impl ArtifactStore {
    /// The newest successful base-branch run's artifact, and a description of where it was
    /// found.
    pub async fn load(&self) -> anyhow::Result<(Results, String)> {
        let github = GitHub::from_env("the artifact store")?;
        let (crab, owner, repo) = (github.octocrab(), github.owner(), github.repo());
        let repository = format!("{owner}/{repo}");
        let branch = match self.branch.clone().or_else(|| env("GITHUB_BASE_REF")) {
            Some(b) => b,
            None => {
                let r: Repository = crab
                    .get(format!("/repos/{owner}/{repo}"), None::<&()>)
                    .await
                    .map_err(|e| api_error(e, "read the repository"))?;
                r.default_branch
            }
        };
        let route = match &self.workflow {
            Some(w) => format!("/repos/{owner}/{repo}/actions/workflows/{w}/runs"),
            None => format!("/repos/{owner}/{repo}/actions/runs"),
        };
        let query = [("branch", branch.as_str()), ("status", "success"), ("per_page", &RUNS_SEARCHED.to_string())];
        let runs: Runs = crab.get(route, Some(&query)).await.map_err(|e| api_error(e, "list workflow runs"))?;
        // A fork's pull request may come from a branch of the same name: only the base
        // repository's own runs count.
        for run in runs.workflow_runs.iter().filter(|r| !r.event.starts_with("pull_request")) {
            let artifacts: Artifacts = crab
                .get(
                    format!("/repos/{owner}/{repo}/actions/runs/{}/artifacts", run.id),
                    Some(&[("name", self.name.as_str())]),
                )
                .await
                .map_err(|e| api_error(e, "list a run's artifacts"))?;
            let Some(artifact) = artifacts.artifacts.iter().find(|a| a.name == self.name && !a.expired) else {
                continue;
            };
            let zip = crab
                .actions()
                .download_artifact(owner, repo, artifact.id.into(), octocrab::params::actions::ArchiveFormat::Zip)
                .await
                .map_err(|e| api_error(e, "download the artifact"))?;
            let what = format!("artifact `{}` of run #{} ({})", self.name, run.run_number, short(&run.head_sha));
            let text = results_in_zip(&zip).with_context(|| format!("{what} holds no readable results file"))?;
            let results = Results::from_json(&text).with_context(|| format!("{what} is not a usable results file"))?;
            return Ok((results, what));
        }
        bail!(
            "no artifact `{}` in the last {} successful runs on `{branch}` of {repository}{}",
            self.name,
            runs.workflow_runs.len(),
            self.workflow.as_ref().map(|w| format!(" (workflow {w})")).unwrap_or_default()
        )
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
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
