//! A lean JSON-RPC client over a server's stdin/stdout with many requests in flight on the one
//! pipe, matched by id.
//!
//! Three tasks share the pipe: callers register a pending id and hand a ready-made line to the
//! writer task (which batches writes and flushes when its queue is empty); the reader task
//! parses each line once, by its fields, and wakes the caller whose id it answers.
//! Server-initiated requests are answered (`ping`) or refused, so the server never stalls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{mpsc, oneshot};

use super::jsonrpc::{Counters, Kind, Reply, classify, initialize_params, parse_initialize, tool_outcome};
use super::{CallError, ClientStats, ServerInfo, ToolOutcome};

#[derive(Default)]
struct Pending {
    /// Why the connection closed, once it has.
    closed: Option<String>,
    waiters: HashMap<u64, oneshot::Sender<Reply>>,
}

struct Shared {
    pending: Mutex<Pending>,
    counters: Counters,
    next_id: AtomicU64,
}

impl Shared {
    fn close(&self, reason: String) {
        let mut p = self.pending.lock().expect("pending lock");
        if p.closed.is_none() {
            p.closed = Some(reason);
        }
        // Dropping the senders wakes every waiter with a transport error.
        p.waiters.clear();
    }

    fn closed_reason(&self) -> String {
        let p = self.pending.lock().expect("pending lock");
        p.closed.clone().unwrap_or_else(|| "connection closed".to_string())
    }
}

/// A JSON-RPC connection to a server over its stdio pipes.
pub struct StdioClient {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<String>,
}

impl StdioClient {
    /// Starts the reader and writer tasks on the server's pipes.
    pub fn connect(stdin: ChildStdin, stdout: ChildStdout) -> StdioClient {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            counters: Counters::default(),
            next_id: AtomicU64::new(1),
        });
        let (writer, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(stdin, rx, shared.clone()));
        tokio::spawn(read_loop(stdout, writer.clone(), shared.clone()));
        StdioClient { shared, writer }
    }

    /// The MCP handshake: `initialize`, then `notifications/initialized`.
    pub async fn initialize(&self, timeout: Duration) -> Result<ServerInfo, CallError> {
        let raw = self.request("initialize", &initialize_params(), timeout).await?;
        let info = parse_initialize(&raw)?;
        self.notify("notifications/initialized", "{}")?;
        Ok(info)
    }

    /// Sends any request; a `tools/call` result is also checked for `isError`.
    pub async fn call(&self, method: &str, params: &str, timeout: Duration) -> Result<ToolOutcome, CallError> {
        let raw = self.request(method, params, timeout).await?;
        if method == "tools/call" { tool_outcome(&raw) } else { Ok(ToolOutcome::default()) }
    }

    /// Sends a request and waits for its answer. `params` must be a JSON value.
    pub async fn request(&self, method: &str, params: &str, timeout: Duration) -> Result<Box<RawValue>, CallError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.shared.pending.lock().expect("pending lock");
            if let Some(reason) = &p.closed {
                return Err(CallError::Transport(reason.clone()));
            }
            p.waiters.insert(id, tx);
        }
        let line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{method}\",\"params\":{params}}}\n");
        if self.writer.send(line).is_err() {
            self.forget(id);
            return Err(CallError::Transport(self.shared.closed_reason()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply.into_result(),
            Ok(Err(_)) => Err(CallError::Transport(self.shared.closed_reason())),
            Err(_) => {
                self.forget(id);
                // Tell the server we gave up, so it can stop working on it (MCP cancellation).
                let _ = self.notify("notifications/cancelled", &format!(r#"{{"requestId":{id},"reason":"timeout"}}"#));
                Err(CallError::Timeout)
            }
        }
    }

    /// Sends a notification (no answer expected).
    pub fn notify(&self, method: &str, params: &str) -> Result<(), CallError> {
        let line = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{method}\",\"params\":{params}}}\n");
        self.writer.send(line).map_err(|_| CallError::Transport(self.shared.closed_reason()))
    }

    /// What happened on the connection that belongs to no request.
    pub fn stats(&self) -> ClientStats {
        self.shared.counters.snapshot(1)
    }

    /// Closes the connection: pending and later requests fail with a transport error giving
    /// `reason`. Used when the server process exits while a descendant still holds its pipe.
    pub fn close(&self, reason: String) {
        self.shared.close(reason);
    }

    /// Whether the connection has closed (the server closed its stdout or stopped reading).
    pub fn closed(&self) -> Option<String> {
        self.shared.pending.lock().expect("pending lock").closed.clone()
    }

    fn forget(&self, id: u64) {
        self.shared.pending.lock().expect("pending lock").waiters.remove(&id);
    }
}

async fn write_loop(stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<String>, shared: Arc<Shared>) {
    let mut out = BufWriter::new(stdin);
    while let Some(line) = rx.recv().await {
        let mut written = line.len();
        let mut result = out.write_all(line.as_bytes()).await;
        // Batch whatever else is already queued before paying for a flush.
        while result.is_ok() {
            match rx.try_recv() {
                Ok(more) => {
                    written += more.len();
                    result = out.write_all(more.as_bytes()).await;
                }
                Err(_) => break,
            }
        }
        shared.counters.bytes_sent.fetch_add(written as u64, Ordering::Relaxed);
        if let Err(e) = match result {
            Ok(()) => out.flush().await,
            Err(e) => Err(e),
        } {
            shared.close(format!("cannot write to the server's stdin: {e}"));
            return;
        }
    }
    // All senders dropped: the client is gone; closing stdin tells the server to exit.
    let _ = out.shutdown().await;
}

async fn read_loop(stdout: ChildStdout, writer: mpsc::UnboundedSender<String>, shared: Arc<Shared>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => {
                shared.close("the server closed its stdout".to_string());
                return;
            }
            Ok(n) => {
                shared.counters.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                handle_line(&line, &writer, &shared)
            }
            Err(e) => {
                shared.close(format!("cannot read the server's stdout: {e}"));
                return;
            }
        }
    }
}

fn handle_line(line: &[u8], writer: &mpsc::UnboundedSender<String>, shared: &Shared) {
    let text = line.trim_ascii();
    if text.is_empty() {
        return;
    }
    match classify(text) {
        Kind::Request { mut answer } => {
            shared.counters.server_requests.fetch_add(1, Ordering::Relaxed);
            answer.push('\n');
            let _ = writer.send(answer);
        }
        Kind::Notification => {
            shared.counters.notifications.fetch_add(1, Ordering::Relaxed);
        }
        Kind::Response { id, reply } => {
            let waiter = shared.pending.lock().expect("pending lock").waiters.remove(&id);
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(reply);
                }
                // An id we sent whose caller gave up (timeout) is late; any other id is bogus.
                None if id > 0 && id < shared.next_id.load(Ordering::Relaxed) => {
                    shared.counters.late_responses.fetch_add(1, Ordering::Relaxed);
                }
                None => shared.counters.protocol_error(text),
            }
        }
        Kind::Invalid => shared.counters.protocol_error(text),
    }
}
