//! The server under test for one repetition: launched (or found at its URL), its process tree
//! sampled from its start, and the MCP session opened on it, with every way that can fail
//! turned into a `RunFailure` that names the command and keeps the server's stderr.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::client::{CallError, Connection, HttpClient, HttpOptions, LaunchSpec, ServerProcess, StdioClient};
use crate::config::{Plan, Transport};
use crate::measure::TreeSampler;
use crate::results::{FailureKind, RunFailure, ServerIdentity};

/// The server under test for one repetition: the process started for it (none when the
/// configured URL serves on its own) and the connection to it.
pub(super) struct Session {
    pub server: Option<ServerProcess>,
    /// Samples the server's process tree from its start, so that readings precede the window.
    pub sampler: Option<TreeSampler>,
    pub conn: Arc<Connection>,
    pub identity: ServerIdentity,
}

/// Starts the server (if configured) and completes the MCP handshake.
pub(super) async fn open_session(plan: &Plan, cancel: &CancellationToken) -> Result<Session, RunFailure> {
    let spec = (!plan.server.command.is_empty()).then(|| LaunchSpec {
        program: plan.server.command[0].clone(),
        args: plan.server.command[1..].to_vec(),
        env: plan.server.env.clone(),
        cwd: plan.server.cwd.clone(),
    });
    let command = plan.server.to_string();
    let fail = |kind, message: String, stderr_tail| RunFailure { kind, message, stderr_tail };
    let startup = plan.server.startup_timeout;
    let (mut server, connecting) = match (plan.server.transport, spec) {
        (Transport::Stdio, Some(spec)) => {
            let (server, stdin, stdout) = ServerProcess::spawn_stdio(&spec)
                .map_err(|e| fail(FailureKind::ServerStart, e.to_string(), Vec::new()))?;
            let client = StdioClient::connect(stdin, stdout).map_err(|e| {
                fail(FailureKind::ServerStart, format!("cannot use the server's pipes: {e}"), Vec::new())
            })?;
            let connecting: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
                let info = client.connect_session(startup).await?;
                Ok((Connection::Stdio(Box::new(client)), info))
            });
            (Some(server), connecting)
        }
        (Transport::Stdio, None) => unreachable!("validated: stdio servers have a command"),
        (Transport::Http, spec) => {
            let url = plan.server.url.clone().expect("validated: http servers have a url");
            let handshake = plan.server.era == crate::config::Era::Handshake;
            let options = http_options(plan).map_err(|e| fail(FailureKind::ServerStart, e, Vec::new()))?;
            let server = match spec {
                Some(spec) => Some(
                    ServerProcess::spawn(&spec)
                        .map_err(|e| fail(FailureKind::ServerStart, e.to_string(), Vec::new()))?,
                ),
                None => None,
            };
            let launched = server.is_some();
            let connecting: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
                let deadline = tokio::time::Instant::now() + startup;
                if launched {
                    wait_until_accepting(&url, deadline).await?;
                }
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                let (client, info) = HttpClient::connect(&url, remaining, handshake, options).await?;
                Ok((Connection::Http(Box::new(client)), info))
            });
            (server, connecting)
        }
    };

    let sampler = server.as_ref().map(|s| TreeSampler::start(s.id()));
    // The leader's exit counts as much as a closed pipe: a descendant may still hold it open.
    let outcome = tokio::select! {
        r = connecting => Some(r),
        status = exited(&mut server) => Some(Err(CallError::Transport(exit_reason(status)))),
        _ = cancel.cancelled() => None,
    };
    let shutdown = plan.server.shutdown_timeout;
    let handshake = "`server/discover` or `initialize`";
    match outcome {
        Some(Ok((conn, info))) => Ok(Session {
            server,
            sampler,
            conn: Arc::new(conn),
            identity: ServerIdentity {
                name: info.name,
                version: info.version,
                protocol_version: info.protocol_version,
                command,
                transport: match plan.server.transport {
                    Transport::Stdio => "stdio",
                    Transport::Http => "http",
                }
                .to_string(),
            },
        }),
        Some(Err(e)) => {
            let why = match &e {
                CallError::Timeout => format!(
                    "the server did not complete the MCP handshake ({handshake}) within {} (server.startup_timeout)",
                    humantime::format_duration(startup)
                ),
                other => format!("the server did not complete the MCP handshake ({handshake}): {other}"),
            };
            let (message, tail) = match &mut server {
                Some(s) => {
                    let message = with_exit_status(s, why);
                    let tail = s.stderr_tail().await;
                    s.shutdown(shutdown).await;
                    (message, tail)
                }
                None => (why, Vec::new()),
            };
            Err(fail(FailureKind::ServerStart, format!("`{command}`: {message}"), tail))
        }
        None => {
            if let Some(s) = &mut server {
                s.shutdown(shutdown).await;
            }
            Err(fail(FailureKind::Interrupted, "interrupted while starting the server".into(), Vec::new()))
        }
    }
}

/// The configured headers, each value read (from the environment where it says so) before
/// anything starts; the error names the field, never the value.
fn http_options(plan: &Plan) -> Result<HttpOptions, String> {
    let headers = plan
        .server
        .headers
        .iter()
        .map(|(name, h)| {
            crate::runtime::http::resolve_header(name, &h.0).map_err(|e| format!("server.headers.{name}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(HttpOptions { headers, ca_file: plan.server.ca_file.clone() })
}

/// Waits until `url`'s host and port accept TCP connections (a launched HTTP server is up).
async fn wait_until_accepting(url: &str, deadline: tokio::time::Instant) -> Result<(), CallError> {
    let uri: http::Uri = url.parse().map_err(|e| CallError::Transport(format!("`{url}`: {e}")))?;
    let host = uri.host().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    loop {
        match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(probe)) => {
                // A port in the ephemeral range with nothing listening yet can be "connected" to
                // itself (TCP simultaneous open): that is not the server, and while it lasts the
                // server cannot bind its port. Closing with a reset leaves no TIME_WAIT behind.
                let itself = connected_to_itself(&probe);
                let _ = probe.set_zero_linger();
                if !itself {
                    return Ok(());
                }
            }
            Ok(Err(_)) => {}
            Err(_) => return Err(CallError::Timeout),
        }
        if tokio::time::Instant::now() + STARTUP_POLL >= deadline {
            return Err(CallError::Timeout);
        }
        tokio::time::sleep(STARTUP_POLL).await;
    }
}

fn connected_to_itself(stream: &tokio::net::TcpStream) -> bool {
    stream.local_addr().ok() == stream.peer_addr().ok()
}

/// How often a launched HTTP server's port is tried while it starts.
const STARTUP_POLL: Duration = Duration::from_millis(25);

/// Resolves when the server we started exits; never, when we started none.
pub(super) async fn exited(server: &mut Option<ServerProcess>) -> std::io::Result<std::process::ExitStatus> {
    match server {
        Some(s) => s.wait().await,
        None => std::future::pending().await,
    }
}

pub(super) fn exit_reason(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => format!("the server process exited ({s})"),
        Err(e) => format!("the server process could not be waited for: {e}"),
    }
}

/// Appends how the server exited, when it has.
pub(super) fn with_exit_status(server: &mut ServerProcess, message: String) -> String {
    match server.try_exit_status() {
        // The reason may already say how it exited; say it once.
        Some(status) if !message.contains(&status.to_string()) => format!("{message} (server exited: {status})"),
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_probe_connected_to_itself_is_not_taken_for_the_server() {
        // Bind a port, then connect to that same port with nothing listening: TCP's simultaneous
        // open connects the socket to itself, as a readiness probe can by chance.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(free).unwrap();
        let stream = socket.connect(free).await.expect("simultaneous open on loopback");
        assert!(connected_to_itself(&stream));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let real = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        assert!(!connected_to_itself(&real));
        // With nothing listening, the wait ends in a timeout, never in a false "ready".
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let url = format!("http://127.0.0.1:{closed}/mcp");
        assert!(matches!(wait_until_accepting(&url, deadline).await, Err(CallError::Timeout)));
    }
}
