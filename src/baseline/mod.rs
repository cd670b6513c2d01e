//! Baselines: where the base run of a comparison comes from.
//!
//! Four stores (`baseline.store`): `file` (a results file kept in the repository), `git-branch`
//! (results per commit on a data branch), `artifact` (the latest successful run's uploaded
//! results, through the GitHub API) and `ab` (the base ref measured in the same run, in a
//! [`Worktree`]). Whatever the store, a baseline is read through `Results::from_json`, so a
//! corrupt, truncated or wrong-schema one is an error that names it, never a silent pass.

mod artifact;
mod data_branch;
mod git;
mod worktree;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::BaselineConfig;
use crate::results::Results;

pub use worktree::Worktree;

/// A base run and where it came from.
pub struct Baseline {
    pub results: Results,
    /// For the user: "file .mcp-perfcheck/baseline.json", "branch mcp-perfcheck-data at 1a2b3c…".
    pub source: String,
}

/// A run kept in a store, for a history: its commit, the commit's date when the store knows
/// it, and the results file's text (the caller parses it).
pub struct StoredRun {
    pub commit: String,
    pub date: Option<String>,
    pub json: String,
}

/// A store's runs, oldest first, with where they came from and what was left out.
pub struct StoredHistory {
    pub runs: Vec<StoredRun>,
    pub source: String,
    pub notes: Vec<String>,
}

/// A configured store, ready to read from or write to.
pub enum Store {
    File(PathBuf),
    GitBranch(data_branch::DataBranch),
    Artifact(artifact::ArtifactStore),
    Ab(String),
}

impl Store {
    /// The store `config` describes, for the repository at `repo`.
    pub fn new(config: &BaselineConfig, repo: &Path) -> Store {
        match config.clone() {
            BaselineConfig::File { path } => Store::File(path),
            BaselineConfig::GitBranch { branch, remote, retention, push_from, base } => {
                Store::GitBranch(data_branch::DataBranch {
                    repo: repo.to_path_buf(),
                    branch,
                    remote,
                    retention,
                    push_from,
                    base,
                })
            }
            BaselineConfig::Artifact { name, branch, workflow } => {
                Store::Artifact(artifact::ArtifactStore { name, branch, workflow })
            }
            BaselineConfig::Ab { git_ref } => Store::Ab(git_ref),
        }
    }

    /// The base run for the head commit `head` (default: the checked-out `HEAD`).
    pub async fn load(&self, head: Option<&str>) -> anyhow::Result<Baseline> {
        match self {
            Store::File(path) => {
                let results = Results::load(path).context("cannot read the baseline (baseline.store: file)")?;
                Ok(Baseline { results, source: format!("file {}", path.display()) })
            }
            Store::GitBranch(store) => {
                let (results, sha) = store
                    .load(head.unwrap_or("HEAD"))
                    .context("cannot read the baseline (baseline.store: git-branch)")?;
                Ok(Baseline {
                    results,
                    source: format!("branch {} at {}", store.branch, crate::results::short_commit(&sha)),
                })
            }
            Store::Artifact(store) => {
                let (results, source) =
                    store.load().await.context("cannot read the baseline (baseline.store: artifact)")?;
                Ok(Baseline { results, source })
            }
            Store::Ab(git_ref) => bail!(
                "baseline.store is `ab`: the base ({git_ref}) is measured by `run` in the same results file, and this file has no base run; run `mcp-perfcheck run --config …` first"
            ),
        }
    }

    /// Every run the store keeps, oldest first, at most the newest `limit`: the git-branch
    /// store's in the first-parent order of its base branch, the artifact store's from the
    /// newest successful runs of its branch.
    pub async fn history(&self, limit: usize) -> anyhow::Result<StoredHistory> {
        match self {
            Store::GitBranch(store) => {
                store.history(limit).context("cannot read the history (baseline.store: git-branch)")
            }
            Store::Artifact(store) => {
                store.history(limit).await.context("cannot read the history (baseline.store: artifact)")
            }
            Store::File(path) => bail!(
                "baseline.store is `file` ({}): one run, not a history; give results files instead, or use the git-branch store",
                path.display()
            ),
            Store::Ab(_) => bail!("baseline.store is `ab`: nothing is stored; give results files instead"),
        }
    }

    /// Keeps the results in `path` as the baseline; says what was done.
    pub fn save(&self, path: &Path) -> anyhow::Result<String> {
        let results = Results::load(path)?;
        if let Some(f) = &results.failure {
            bail!("{} is a failed run ({}): it cannot be a baseline", path.display(), f.message);
        }
        // Exactly the file's bytes: what was measured, not a re-serialisation.
        let json = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        match self {
            Store::File(to) => {
                if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                }
                std::fs::write(to, json).with_context(|| format!("cannot write the baseline {}", to.display()))?;
                Ok(format!("saved {} as the baseline {} (commit it to the repository)", path.display(), to.display()))
            }
            Store::GitBranch(store) => store.save(&results, &json),
            Store::Artifact(store) => bail!(
                "baseline.store is `artifact`: upload {} as the artifact `{}` with actions/upload-artifact in the base branch's workflow",
                path.display(),
                store.name
            ),
            Store::Ab(_) => bail!("baseline.store is `ab`: the base is measured afresh by every run, nothing is saved"),
        }
    }
}
