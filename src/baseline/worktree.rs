//! The same-runner A/B's base side: the base ref checked out in a git worktree, so that both
//! sides are built and measured on this machine (`config::Plan::rebased` points the head's plan
//! at it).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::git::git;

/// The base ref, checked out beside the repository for as long as this lives.
pub struct Worktree {
    repo_root: PathBuf,
    path: PathBuf,
    /// Keeps the worktree's parent directory; removed after the worktree.
    _dir: tempfile::TempDir,
    /// The commit the ref resolved to.
    pub sha: String,
}

impl Worktree {
    /// Checks `git_ref` out (detached) in a temporary worktree of the repository that holds
    /// `inside`.
    pub fn create(inside: &Path, git_ref: &str) -> anyhow::Result<Worktree> {
        let repo_root =
            PathBuf::from(git(inside, &["rev-parse", "--show-toplevel"]).with_context(|| {
                format!("--base-ref needs a git repository, and {} is not in one", inside.display())
            })?);
        let sha = git(&repo_root, &["rev-parse", "--verify", &format!("{git_ref}^{{commit}}")])
            .with_context(|| format!("--base-ref `{git_ref}` is not a commit of {}", repo_root.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("mcp-perfcheck-base-")
            .tempdir()
            .context("cannot make a temporary directory")?;
        let path = dir.path().join("base");
        git(&repo_root, &["worktree", "add", "--detach", &path.display().to_string(), &sha])
            .with_context(|| format!("cannot check out `{git_ref}` in a worktree"))?;
        Ok(Worktree { repo_root, path, _dir: dir, sha })
    }

    /// The repository's top directory.
    pub fn repo_root(&self) -> &Path {
        &self.repo_root
    }

    /// Where the base ref is checked out.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let path = self.path.display().to_string();
        let _ = git(&self.repo_root, &["worktree", "remove", "--force", &path]);
        let _ = git(&self.repo_root, &["worktree", "prune"]);
    }
}
