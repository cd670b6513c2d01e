//! The `git-branch` store: results per commit on a data branch of the repository.
//!
//! The branch holds `results/<commit>.json` and `index.tsv` (one `<commit>\t<saved at>` line per
//! stored run, oldest first, at most `retention` lines). It is written with git plumbing through
//! a temporary index, so the working tree and the checked-out branch are never touched. Saves
//! are pushed only from the push branch (the remote's default branch unless configured); a
//! push that loses a race re-reads the remote branch and tries again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::git::{cat_files, git, git_with};
use super::{StoredHistory, StoredRun};
use crate::results::{Results, short_commit};

/// How far back from the merge base a stored ancestor is looked for.
const MAX_ANCESTORS: &str = "500";
const PUSH_ATTEMPTS: usize = 3;
const INDEX: &str = "index.tsv";
/// Who commits to the data branch (CI runners often have no git identity).
const IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "mcp-perfcheck"),
    ("GIT_AUTHOR_EMAIL", "mcp-perfcheck@users.noreply.github.com"),
    ("GIT_COMMITTER_NAME", "mcp-perfcheck"),
    ("GIT_COMMITTER_EMAIL", "mcp-perfcheck@users.noreply.github.com"),
];

pub struct DataBranch {
    pub repo: PathBuf,
    pub branch: String,
    pub remote: String,
    pub retention: u32,
    pub push_from: Option<String>,
    pub base: Option<String>,
}

impl DataBranch {
    fn has_remote(&self) -> bool {
        git(&self.repo, &["remote", "get-url", &self.remote]).is_ok()
    }

    fn local_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// The data branch's newest commit: the remote's (fetched) unless local saves are ahead of
    /// it. `None` when the branch exists nowhere yet.
    fn tip(&self) -> anyhow::Result<Option<String>> {
        let local = git(&self.repo, &["rev-parse", "--verify", "-q", &self.local_ref()]).ok();
        let remote = if self.has_remote() {
            let tracking = format!("refs/remotes/{}/{}", self.remote, self.branch);
            let spec = format!("+refs/heads/{}:{tracking}", self.branch);
            match git(&self.repo, &["fetch", "-q", &self.remote, &spec]) {
                Ok(_) => git(&self.repo, &["rev-parse", "--verify", "-q", &tracking]).ok(),
                Err(e) if e.to_string().contains("couldn't find remote ref") => None,
                Err(e) => return Err(e.context(format!("cannot fetch the data branch from `{}`", self.remote))),
            }
        } else {
            None
        };
        Ok(match (local, remote) {
            (Some(l), Some(r)) if l != r && is_ancestor(&self.repo, &r, &l) => Some(l),
            (_, Some(r)) => Some(r),
            (l, None) => l,
        })
    }

    /// Stored commits, oldest first, from the index at `tip`.
    fn index(&self, tip: &str) -> anyhow::Result<Vec<(String, String)>> {
        let text = git(&self.repo, &["show", &format!("{tip}:{INDEX}")])
            .with_context(|| format!("data branch `{}` has no readable {INDEX}", self.branch))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| match l.split_once('\t') {
                Some((sha, at)) => Ok((sha.to_string(), at.to_string())),
                None => bail!("data branch `{}`: {INDEX} line {} is not `<commit>\\t<time>`", self.branch, i + 1),
            })
            .collect()
    }

    /// The results stored for the nearest ancestor of the merge base of `head` and the base
    /// branch (`head` itself excluded), and the commit they belong to.
    pub fn load(&self, head: &str) -> anyhow::Result<(Results, String)> {
        let Some(tip) = self.tip()? else {
            bail!(
                "no data branch `{}` locally or on `{}`: save a baseline first (`mcp-perfcheck baseline save` on the default branch)",
                self.branch,
                self.remote
            );
        };
        let stored: HashSet<String> = self.index(&tip)?.into_iter().map(|(sha, _)| sha).collect();
        let head = git(&self.repo, &["rev-parse", "--verify", &format!("{head}^{{commit}}")])
            .with_context(|| format!("the head commit {head} is not in this repository"))?;
        let base = self.base_branch();
        let base_ref = self.resolve_branch(&base)?;
        let merge_base = git(&self.repo, &["merge-base", &head, &base_ref])
            .with_context(|| format!("{head} and `{base}` have no common ancestor"))?;
        let ancestors = git(&self.repo, &["rev-list", "--max-count", MAX_ANCESTORS, &merge_base])?;
        let Some(found) = ancestors.lines().find(|c| *c != head && stored.contains(*c)) else {
            bail!(
                "data branch `{}` holds results for none of the {MAX_ANCESTORS} nearest ancestors of {} (the merge base of the head and `{base}`)",
                self.branch,
                &merge_base[..12.min(merge_base.len())]
            );
        };
        let path = format!("results/{found}.json");
        let text = git(&self.repo, &["show", &format!("{tip}:{path}")])
            .with_context(|| format!("data branch `{}` lists {found} but has no {path}", self.branch))?;
        let results = Results::from_json(&text)
            .with_context(|| format!("data branch `{}`, {path} is not a usable results file", self.branch))?;
        Ok((results, found.to_string()))
    }

    /// The stored runs of the commits on the base branch's first-parent history, oldest first,
    /// at most the newest `limit`; read in one `git cat-file --batch`.
    pub fn history(&self, limit: usize) -> anyhow::Result<StoredHistory> {
        let Some(tip) = self.tip()? else {
            bail!("no data branch `{}` locally or on `{}`: nothing stored yet", self.branch, self.remote);
        };
        let stored: HashSet<String> = self.index(&tip)?.into_iter().map(|(sha, _)| sha).collect();
        let base = self.base_branch();
        let base_ref = self.resolve_branch(&base)?;
        let log = git(&self.repo, &["log", "--first-parent", "--format=%H%x09%cI", &base_ref])?;
        let mut line: Vec<(String, String)> = log
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(sha, _)| stored.contains(*sha))
            .map(|(sha, date)| (sha.to_string(), date.to_string()))
            .collect();
        let mut notes = Vec::new();
        if line.len() < stored.len() {
            notes.push(format!(
                "{} stored run(s) are of commits not on `{base}`'s first-parent history (pull requests' heads, or rewritten history): left out",
                stored.len() - line.len()
            ));
        }
        line.truncate(limit);
        line.reverse();
        let specs: Vec<String> = line.iter().map(|(sha, _)| format!("{tip}:results/{sha}.json")).collect();
        let blobs = cat_files(&self.repo, &specs)?;
        let mut runs = Vec::with_capacity(line.len());
        for ((sha, date), blob) in line.into_iter().zip(blobs) {
            match blob {
                Some(bytes) => runs.push(StoredRun {
                    json: String::from_utf8(bytes).with_context(|| format!("results/{sha}.json is not UTF-8"))?,
                    commit: sha,
                    date: Some(date),
                }),
                None => notes.push(format!("data branch `{}` lists {sha} but has no results/{sha}.json", self.branch)),
            }
        }
        let source = format!("branch {} at {}, `{base}` first-parent order", self.branch, short_commit(&tip));
        Ok(StoredHistory { runs, source, notes })
    }

    /// Stores `results` under their commit; pushes when on the push branch. Returns what was
    /// done, for the user.
    pub fn save(&self, results: &Results, json: &str) -> anyhow::Result<String> {
        let Some(sha) = results.git_sha.clone() else {
            bail!("the results carry no git commit (`git_sha`): the git-branch store files runs by commit");
        };
        let push = self.should_push()?;
        for attempt in 1..=PUSH_ATTEMPTS {
            let tip = self.tip()?;
            let commit = self.commit_on(tip.as_deref(), &sha, json)?;
            let mut update = vec!["update-ref".to_string(), self.local_ref(), commit.clone()];
            // Compare-and-swap against the local ref's current value, when it has one.
            if let Ok(old) = git(&self.repo, &["rev-parse", "--verify", "-q", &self.local_ref()]) {
                update.push(old);
            }
            git(&self.repo, &update.iter().map(String::as_str).collect::<Vec<_>>())?;
            let Some(branch) = &push else {
                let why = match self.current_branch() {
                    Some(b) => format!("on branch `{b}`"),
                    None => "on a detached head".into(),
                };
                return Ok(format!(
                    "stored {sha} on local branch `{}` (not pushed: {why}; results are pushed only from `{}`)",
                    self.branch,
                    self.push_branch().unwrap_or_else(|_| "the default branch".into())
                ));
            };
            let spec = format!("{}:{}", self.local_ref(), self.local_ref());
            match git(&self.repo, &["push", "-q", &self.remote, &spec]) {
                Ok(_) => {
                    return Ok(format!(
                        "stored {sha} on `{}` and pushed it to `{}` (from `{branch}`)",
                        self.branch, self.remote
                    ));
                }
                Err(e) if attempt < PUSH_ATTEMPTS && is_race(&e) => {
                    // Another job pushed first: drop our commit and rebuild on theirs.
                    if let Some(old) = &tip {
                        git(&self.repo, &["update-ref", &self.local_ref(), old])?;
                    }
                    continue;
                }
                Err(e) => {
                    return Err(e.context(format!("cannot push data branch `{}` to `{}`", self.branch, self.remote)));
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// A commit on `parent` with `results/<sha>.json` added and the index trimmed to the
    /// retention, built in a temporary index.
    fn commit_on(&self, parent: Option<&str>, sha: &str, json: &str) -> anyhow::Result<String> {
        let tmp = tempfile::NamedTempFile::new().context("cannot make a temporary git index")?;
        let index_path = tmp.path().display().to_string();
        let env = [("GIT_INDEX_FILE", index_path.as_str())];
        let run = |args: &[&str], stdin: Option<&[u8]>| git_with(&self.repo, args, &env, stdin);
        let mut entries = match parent {
            Some(p) => {
                run(&["read-tree", p], None)?;
                self.index(p)?
            }
            None => {
                run(&["read-tree", "--empty"], None)?;
                Vec::new()
            }
        };
        entries.retain(|(s, _)| s != sha);
        entries.push((sha.to_string(), now()));
        let excess = entries.len().saturating_sub(self.retention as usize);
        for (old, _) in entries.drain(..excess) {
            run(&["update-index", "--force-remove", &format!("results/{old}.json")], None)?;
        }
        let add = |path: &str, bytes: &[u8]| -> anyhow::Result<()> {
            let blob = run(&["hash-object", "-w", "--stdin"], Some(bytes))?;
            run(&["update-index", "--add", "--cacheinfo", &format!("100644,{blob},{path}")], None)?;
            Ok(())
        };
        add(&format!("results/{sha}.json"), json.as_bytes())?;
        let index: String = entries.iter().map(|(s, at)| format!("{s}\t{at}\n")).collect();
        add(INDEX, index.as_bytes())?;
        let tree = run(&["write-tree"], None)?;
        let message = format!("mcp-perfcheck: results for {sha}");
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message.as_str()];
        if let Some(p) = parent {
            args.extend(["-p", p]);
        }
        git_with(&self.repo, &args, &IDENTITY, None)
    }

    /// `Some(branch)` when saves from here are pushed: there is a remote and the checked-out
    /// branch is the push branch.
    fn should_push(&self) -> anyhow::Result<Option<String>> {
        if !self.has_remote() {
            return Ok(None);
        }
        let current = self.current_branch();
        let push = self.push_branch()?;
        Ok(current.filter(|c| *c == push))
    }

    /// The branch being built: `GITHUB_REF_NAME` on a branch push in Actions, else git's.
    fn current_branch(&self) -> Option<String> {
        if std::env::var("GITHUB_REF").is_ok_and(|r| r.starts_with("refs/heads/"))
            && let Ok(name) = std::env::var("GITHUB_REF_NAME")
        {
            return Some(name);
        }
        git(&self.repo, &["symbolic-ref", "--short", "-q", "HEAD"]).ok()
    }

    /// `push_from`, else the remote's default branch.
    fn push_branch(&self) -> anyhow::Result<String> {
        if let Some(b) = &self.push_from {
            return Ok(b.clone());
        }
        let listing = git(&self.repo, &["ls-remote", "--symref", &self.remote, "HEAD"])
            .with_context(|| format!("cannot ask `{}` for its default branch (set baseline.push_from)", self.remote))?;
        listing
            .lines()
            .find_map(|l| l.strip_prefix("ref: refs/heads/").and_then(|r| r.split('\t').next()))
            .map(str::to_string)
            .with_context(|| format!("`{}` names no default branch (set baseline.push_from)", self.remote))
    }

    /// `base`, else `GITHUB_BASE_REF` (set on pull requests), else the push branch.
    fn base_branch(&self) -> String {
        self.base
            .clone()
            .or_else(|| std::env::var("GITHUB_BASE_REF").ok().filter(|b| !b.is_empty()))
            .or_else(|| self.push_branch().ok())
            .unwrap_or_else(|| "main".into())
    }

    /// A commit for branch `name`: the remote's (fetched), else the local branch's.
    fn resolve_branch(&self, name: &str) -> anyhow::Result<String> {
        if self.has_remote() {
            let tracking = format!("refs/remotes/{}/{name}", self.remote);
            let _ = git(&self.repo, &["fetch", "-q", &self.remote, &format!("+refs/heads/{name}:{tracking}")]);
            if let Ok(sha) = git(&self.repo, &["rev-parse", "--verify", "-q", &tracking]) {
                return Ok(sha);
            }
        }
        git(&self.repo, &["rev-parse", "--verify", "-q", &format!("refs/heads/{name}")])
            .with_context(|| format!("base branch `{name}` is neither on `{}` nor local", self.remote))
    }
}

fn is_ancestor(repo: &Path, ancestor: &str, of: &str) -> bool {
    git(repo, &["merge-base", "--is-ancestor", ancestor, of]).is_ok()
}

fn is_race(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("non-fast-forward") || text.contains("fetch first") || text.contains("rejected")
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
