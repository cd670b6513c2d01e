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

/// The contents of many blobs (`<rev>:<path>` each), `None` for one that does not exist: one
/// `git cat-file --batch` per core, each given a contiguous share (a history of a thousand
/// runs would otherwise spawn git a thousand times, and git's inflating is most of the cost).
pub(super) fn cat_files(dir: &Path, specs: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from).min(specs.len().max(1));
    let share = specs.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = specs.chunks(share).map(|part| scope.spawn(move || cat_files_one(dir, part))).collect();
        let mut all = Vec::with_capacity(specs.len());
        for part in parts {
            all.extend(part.join().expect("git cat-file's reader does not panic")?);
        }
        Ok(all)
    })
}

/// [`cat_files`] in one process.
fn cat_files_one(dir: &Path, specs: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run git (is it installed?)")?;
    let mut stdin = child.stdin.take().expect("piped");
    let input: String = specs.iter().map(|s| format!("{s}\n")).collect();
    // Written from a thread: git answers while we write, and both pipes have limits.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut blobs = Vec::with_capacity(specs.len());
    let mut header = String::new();
    for spec in specs {
        header.clear();
        out.read_line(&mut header).context("git cat-file --batch ended early")?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        match fields.as_slice() {
            [_, "missing"] | [_, "ambiguous"] => blobs.push(None),
            [_, "blob", size] => {
                let size: usize = size.parse().with_context(|| format!("git cat-file: bad header {header:?}"))?;
                let mut blob = vec![0; size + 1]; // the content and its newline
                out.read_exact(&mut blob).with_context(|| format!("git cat-file: {spec} cut short"))?;
                blob.pop();
                blobs.push(Some(blob));
            }
            _ => bail!("git cat-file: unexpected header {header:?} for {spec}"),
        }
    }
    writer.join().expect("the writer does not panic").context("cannot write to git cat-file")?;
    let status = child.wait().context("cannot run git")?;
    if !status.success() {
        bail!("git cat-file --batch failed ({status})");
    }
    Ok(blobs)
}
