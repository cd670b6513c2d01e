//! Running git: every store and the worktree go through here.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Runs git in `dir` and returns its trimmed output, or its error output as the error.
pub(super) fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    git_with(dir, args, &[], None)
}

/// Runs git in `dir` with extra environment and `stdin`, returning trimmed stdout.
pub(super) fn git_with(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> anyhow::Result<String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(args).envs(env.iter().copied());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot run git (is it installed?)")?;
    if let Some(bytes) = stdin {
        child.stdin.take().expect("piped").write_all(bytes).context("cannot write to git")?;
    }
    let out = child.wait_with_output().context("cannot run git")?;
    if !out.status.success() {
        bail!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
