//! A server child process in its own process group, so that ending it ends everything it
//! started (an `npx` wrapper and its `node`, a shell and its server, …).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How many of the server's last stderr lines are kept for error messages.
const STDERR_TAIL_LINES: usize = 20;
/// Longest stderr line kept, in bytes; a server dumping megabytes on one line costs nothing.
const STDERR_LINE_MAX: usize = 1000;

type Tail = Arc<Mutex<VecDeque<String>>>;

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

/// Keeps the last lines of `pipe` in `tail`.
async fn keep_tail(pipe: impl tokio::io::AsyncRead + Unpin, tail: Tail) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    while let Ok(n) = reader.read_until(b'\n', &mut line).await {
        if n == 0 {
            break;
        }
        line.truncate(STDERR_LINE_MAX);
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let mut tail = tail.lock().expect("stderr tail lock");
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
        line.clear();
    }
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
}

impl ServerProcess {
    /// Starts a stdio server in a new process group: its stdin and stdout are the connection.
    pub fn spawn_stdio(spec: &LaunchSpec) -> io::Result<(ServerProcess, ChildStdin, ChildStdout)> {
        let mut child = command(spec, Stdio::piped()).spawn().map_err(|e| cannot_start(spec, e))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
        let readers = vec![tokio::spawn(keep_tail(stderr, tail.clone()))];
        Ok((ServerProcess::track(child, tail, readers)?, stdin, stdout))
    }

    /// Starts a server that listens on its own (Streamable HTTP) in a new process group. Its
    /// stdin is empty; what it prints on stdout joins the stderr tail.
    pub fn spawn(spec: &LaunchSpec) -> io::Result<ServerProcess> {
        let mut child = command(spec, Stdio::null()).spawn().map_err(|e| cannot_start(spec, e))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
        let readers =
            vec![tokio::spawn(keep_tail(stdout, tail.clone())), tokio::spawn(keep_tail(stderr, tail.clone()))];
        ServerProcess::track(child, tail, readers)
    }

    fn track(child: Child, stderr_tail: Tail, readers: Vec<tokio::task::JoinHandle<()>>) -> io::Result<ServerProcess> {
        let pid = child.id().ok_or_else(|| io::Error::other("server exited before it could be tracked"))?;
        let pgid = Pid::from_raw(pid as i32);
        Ok(ServerProcess { child, pgid, stderr_tail, readers, ended: false })
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

    /// The server's last stderr lines (after it exits, all of them up to the tail length).
    pub async fn stderr_tail(&mut self) -> Vec<String> {
        if self.try_exit_status().is_some() {
            // Let the readers drain what the dead process left in the pipes.
            for task in std::mem::take(&mut self.readers) {
                let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
            }
        }
        self.stderr_tail.lock().expect("stderr tail lock").iter().cloned().collect()
    }

    /// Ends the server: SIGTERM to its process group, up to `grace` to exit, then SIGKILL to
    /// whatever is left of the group. Returns the leader's exit status when known.
    pub async fn shutdown(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.ended {
            return self.try_exit_status();
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
