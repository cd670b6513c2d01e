//! `baseline:`: where the base run comes from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `baseline:`: one of four stores, chosen by `store`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(try_from = "RawBaseline", tag = "store", rename_all = "kebab-case")]
pub enum BaselineConfig {
    /// A results file kept in the repository, written by `mcp-perfcheck baseline save`.
    File {
        /// Relative to the config's directory.
        path: PathBuf,
    },
    /// Results per commit on a data branch of the repository.
    GitBranch {
        branch: String,
        remote: String,
        /// How many commits' results the branch keeps (the oldest are dropped).
        retention: u32,
        /// The only branch whose saves are pushed (default: the remote's default branch).
        push_from: Option<String>,
        /// The branch a head is compared against (default: `GITHUB_BASE_REF`, else
        /// `push_from`'s default).
        base: Option<String>,
    },
    /// The results uploaded as a workflow artifact by the latest successful run on the base
    /// branch, fetched through the GitHub API.
    Artifact {
        name: String,
        /// The base branch (default: `GITHUB_BASE_REF`, else the repository's default).
        branch: Option<String>,
        /// Only runs of this workflow file (e.g. `perf.yml`).
        workflow: Option<String>,
    },
    /// Same-runner A/B: `run` builds and measures this ref too (like `--base-ref`).
    Ab {
        #[serde(rename = "ref")]
        git_ref: String,
    },
}

/// The kind of baseline store.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum StoreKind {
    File,
    GitBranch,
    Artifact,
    Ab,
}

/// `baseline:` as written: read flat (so that serde names the line of an unknown field), then
/// checked against the store's own fields.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    /// `file` (a results file in the repository), `git-branch` (results per commit on a data
    /// branch), `artifact` (the base branch's latest workflow upload) or `ab` (`run` measures a
    /// git ref too).
    store: StoreKind,
    /// file: the results file, relative to the config's directory (default
    /// `.mcp-perfcheck/baseline.json`).
    #[schemars(example = &".mcp-perfcheck/baseline.json")]
    path: Option<PathBuf>,
    /// git-branch: the data branch (default `mcp-perfcheck-data`); artifact: the base branch
    /// (default `GITHUB_BASE_REF`, else the repository's default).
    #[schemars(example = &"mcp-perfcheck-data")]
    branch: Option<String>,
    /// git-branch: the remote the data branch lives on (default `origin`).
    #[schemars(example = &"origin")]
    remote: Option<String>,
    /// git-branch: how many commits' results the branch keeps (default 100).
    #[schemars(range(min = 1), example = 100)]
    retention: Option<u32>,
    /// git-branch: the only branch whose saves are pushed (default: the remote's default branch).
    #[schemars(example = &"main")]
    push_from: Option<String>,
    /// git-branch: the branch a head is compared against (default `GITHUB_BASE_REF`, else
    /// `push_from`'s default).
    #[schemars(example = &"main")]
    base: Option<String>,
    /// artifact: the artifact's name (default `mcp-perfcheck-results`).
    #[schemars(example = &"mcp-perfcheck-results")]
    name: Option<String>,
    /// artifact: only runs of this workflow file.
    #[schemars(example = &"perf.yml")]
    workflow: Option<String>,
    /// ab: the base git ref to build and measure beside the head.
    #[serde(rename = "ref")]
    #[schemars(example = &"origin/main")]
    git_ref: Option<String>,
}

impl TryFrom<RawBaseline> for BaselineConfig {
    type Error = String;
    fn try_from(r: RawBaseline) -> Result<Self, String> {
        let given = [
            ("path", r.path.is_some()),
            ("branch", r.branch.is_some()),
            ("remote", r.remote.is_some()),
            ("retention", r.retention.is_some()),
            ("push_from", r.push_from.is_some()),
            ("base", r.base.is_some()),
            ("name", r.name.is_some()),
            ("workflow", r.workflow.is_some()),
            ("ref", r.git_ref.is_some()),
        ];
        let (store, allowed): (&str, &[&str]) = match r.store {
            StoreKind::File => ("file", &["path"]),
            StoreKind::GitBranch => ("git-branch", &["branch", "remote", "retention", "push_from", "base"]),
            StoreKind::Artifact => ("artifact", &["name", "branch", "workflow"]),
            StoreKind::Ab => ("ab", &["ref"]),
        };
        if let Some((field, _)) = given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
            return Err(format!(
                "field `baseline.{field}` does not apply to store `{store}` (its fields: {})",
                allowed.join(", ")
            ));
        }
        Ok(match r.store {
            StoreKind::File => BaselineConfig::File { path: r.path.unwrap_or_else(default_baseline_path) },
            StoreKind::GitBranch => {
                let retention = r.retention.unwrap_or_else(default_retention);
                if retention == 0 {
                    return Err("field `baseline.retention` must be at least 1".into());
                }
                BaselineConfig::GitBranch {
                    branch: r.branch.unwrap_or_else(default_data_branch),
                    remote: r.remote.unwrap_or_else(default_remote),
                    retention,
                    push_from: r.push_from,
                    base: r.base,
                }
            }
            StoreKind::Artifact => BaselineConfig::Artifact {
                name: r.name.unwrap_or_else(default_artifact_name),
                branch: r.branch,
                workflow: r.workflow,
            },
            StoreKind::Ab => BaselineConfig::Ab {
                git_ref: r.git_ref.ok_or("field `baseline.ref` is required by store `ab` (the base git ref)")?,
            },
        })
    }
}

fn default_baseline_path() -> PathBuf {
    PathBuf::from(".mcp-perfcheck/baseline.json")
}
fn default_data_branch() -> String {
    "mcp-perfcheck-data".into()
}
fn default_remote() -> String {
    "origin".into()
}
fn default_retention() -> u32 {
    100
}
fn default_artifact_name() -> String {
    "mcp-perfcheck-results".into()
}
