//! A server child process in its own process group, so that ending it ends everything it
//! started (an `npx` wrapper and its `node`, a shell and its server, …).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How much of the end of the server's stderr is kept for error messages, in bytes: a server
/// that dumps megabytes (on one line or many) costs no more than this.
const STDERR_TAIL_BYTES: usize = 8 << 10;
/// A stdio server is given this long to exit on its own once its stdin is closed, before
/// SIGTERM (the MCP stdio transport's shutdown order).
const STDIN_CLOSE_GRACE: Duration = Duration::from_secs(1);

type Tail = Arc<Mutex<Vec<u8>>>;

fn command(spec: &LaunchSpec, stdin: Stdio) -> Command {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(&spec.env)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // A safety net only: the group is ended explicitly on every path.
        .kill_on_drop(true);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    cmd
}

fn cannot_start(spec: &LaunchSpec, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot start `{}`: {e}", spec.program))
}

/// Keeps the last [`STDERR_TAIL_BYTES`] of `pipe` in `tail`.
async fn keep_tail(mut pipe: impl tokio::io::AsyncRead + Unpin, tail: Tail) {
    let mut chunk = vec![0; 4096];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let mut tail = tail.lock().expect("stderr tail lock");
        tail.extend_from_slice(&chunk[..n]);
        // Trimmed in halves, so that a chatty server costs one copy per 8 KiB, not per read.
        if tail.len() > 2 * STDERR_TAIL_BYTES {
            let cut = tail.len() - STDERR_TAIL_BYTES;
            tail.drain(..cut);
        }
    }
}

/// The lines of the last [`STDERR_TAIL_BYTES`] of `bytes`; a line cut at the start is marked.
fn tail_lines(bytes: &[u8]) -> Vec<String> {
    let start = bytes.len().saturating_sub(STDERR_TAIL_BYTES);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    if start > 0
        && let Some(first) = lines.first_mut()
    {
        first.insert(0, '…');
    }
    lines
}

/// What to start.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
}

/// A running server. Dropping it kills its whole process group; [`ServerProcess::shutdown`]
/// ends it politely first.
pub struct ServerProcess {
    child: Child,
    pgid: Pid,
    stderr_tail: Tail,
    /// The tasks filling the tail, until the pipes close.
    readers: Vec<tokio::task::JoinHandle<()>>,
    ended: bool,
    /// Spoken to over its stdin and stdout: closing stdin is the first request to stop.
    stdio: bool,
}

impl ServerProcess {
    /// Starts a stdio server in a new process group: its stdin and stdout are the connection.
    pub fn spawn_stdio(spec: &LaunchSpec) -> io::Result<(ServerProcess, ChildStdin, ChildStdout)> {
        let mut child = command(spec, Stdio::piped()).spawn().map_err(|e| cannot_start(spec, e))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = Tail::default();
        let readers = vec![tokio::spawn(keep_tail(stderr, tail.clone()))];
        let mut server = ServerProcess::track(child, tail, readers)?;
        server.stdio = true;
        Ok((server, stdin, stdout))
    }

    /// Starts a server that listens on its own (Streamable HTTP) in a new process group. Its
    /// stdin is empty; what it prints on stdout joins the stderr tail.
    pub fn spawn(spec: &LaunchSpec) -> io::Result<ServerProcess> {
        let mut child = command(spec, Stdio::null()).spawn().map_err(|e| cannot_start(spec, e))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = Tail::default();
        let readers =
            vec![tokio::spawn(keep_tail(stdout, tail.clone())), tokio::spawn(keep_tail(stderr, tail.clone()))];
        ServerProcess::track(child, tail, readers)
    }

    fn track(child: Child, stderr_tail: Tail, readers: Vec<tokio::task::JoinHandle<()>>) -> io::Result<ServerProcess> {
        let pid = child.id().ok_or_else(|| io::Error::other("server exited before it could be tracked"))?;
        let pgid = Pid::from_raw(pid as i32);
        Ok(ServerProcess { child, pgid, stderr_tail, readers, ended: false, stdio: false })
    }

    pub fn id(&self) -> u32 {
        self.pgid.as_raw() as u32
    }

    /// The exit status, if the server has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until the server exits.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// The lines of the end of the server's stderr (after it exits, up to the tail's length).
    pub async fn stderr_tail(&mut self) -> Vec<String> {
        if self.try_exit_status().is_some() {
            // Let the readers drain what the dead process left in the pipes.
            for task in std::mem::take(&mut self.readers) {
                let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
            }
        }
        tail_lines(&self.stderr_tail.lock().expect("stderr tail lock"))
    }

    /// Ends the server in the MCP stdio transport's order: a stdio server, whose stdin the
    /// caller has closed by then, gets a moment to exit on its own; then SIGTERM to its process
    /// group, up to `grace` to exit, then SIGKILL to whatever is left of the group. Returns the
    /// leader's exit status when known.
    pub async fn shutdown(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.ended {
            return self.try_exit_status();
        }
        if self.stdio
            && let Ok(Ok(status)) = tokio::time::timeout(grace.min(STDIN_CLOSE_GRACE), self.child.wait()).await
        {
            // The leader is gone; anything it left behind in its group goes with it.
            let _ = killpg(self.pgid, Signal::SIGKILL);
            self.ended = true;
            return Some(status);
        }
        let _ = killpg(self.pgid, Signal::SIGTERM);
        let status = tokio::time::timeout(grace, self.child.wait()).await.ok().and_then(Result::ok);
        // Descendants may outlive the leader (or ignore SIGTERM): end the whole group.
        let _ = killpg(self.pgid, Signal::SIGKILL);
        let status = match status {
            Some(s) => Some(s),
            None => self.child.wait().await.ok(),
        };
        self.ended = true;
        status
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.ended {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stderr_tail_is_bounded_in_bytes_and_marks_a_cut_line() {
        let mut bytes = b"first line\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 3 * STDERR_TAIL_BYTES));
        bytes.extend_from_slice(b"\nlast words\n");
        let lines = tail_lines(&bytes);
        assert_eq!(lines.len(), 2, "the first line is past the tail");
        assert!(lines[0].starts_with('…') && lines[0].len() < STDERR_TAIL_BYTES + 4);
        assert_eq!(lines[1], "last words");
        assert_eq!(tail_lines(b"a\nb\n"), ["a", "b"]);
    }

    #[tokio::test]
    async fn a_stdio_server_that_exits_when_its_stdin_closes_gets_no_signal() {
        // `cat` exits on end of input; SIGTERM would show as a signal in its status.
        let spec = LaunchSpec { program: "cat".into(), args: vec![], env: BTreeMap::new(), cwd: None };
        let (mut server, stdin, _stdout) = ServerProcess::spawn_stdio(&spec).unwrap();
        drop(stdin);
        let status = server.shutdown(Duration::from_secs(5)).await.unwrap();
        assert!(status.success(), "{status}");
        // One that ignores end of input is stopped by SIGTERM after the grace.
        let spec = LaunchSpec { program: "sleep".into(), args: vec!["30".into()], env: BTreeMap::new(), cwd: None };
        let (mut server, stdin, _stdout) = ServerProcess::spawn_stdio(&spec).unwrap();
        drop(stdin);
        let status = server.shutdown(Duration::from_secs(5)).await.unwrap();
        assert!(!status.success(), "ended by a signal: {status}");
    }
}
