//! MCP client transports for load generation.
//!
//! `process` starts a server in its own process group and always ends the whole group;
//! `stdio` speaks JSON-RPC over the server's pipes with many requests in flight; `http` speaks
//! Streamable HTTP over pooled keep-alive connections, in either protocol era.
//! The client knows nothing of measurement: it returns outcomes and typed errors, and the load
//! engine files them.

mod http;
mod jsonrpc;
mod process;
mod sse;
mod stdio;

use std::fmt;
use std::time::Duration;

use serde_json::value::RawValue;

pub use http::{HttpClient, HttpOptions};
pub use jsonrpc::MODERN_VERSION;
pub use jsonrpc::PROTOCOL_VERSION;
pub use process::{LaunchSpec, ServerProcess};
pub use stdio::{Pipes, StdioClient, Tick};

/// One request to send: `params` is a ready-made JSON object; `name` is what it names (the tool,
/// prompt or resource URI), which Streamable HTTP repeats in a header.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub name: Option<&'a str>,
    pub params: &'a str,
}

/// A connection to the server under test, over either transport.
pub enum Connection {
    Stdio(Box<StdioClient>),
    Http(Box<HttpClient>),
}

impl Connection {
    /// Sends a request; a `tools/call` result is also checked for `isError`.
    pub async fn call(&self, req: Request<'_>, timeout: Duration) -> Result<ToolOutcome, CallError> {
        match self {
            Connection::Stdio(c) => c.call(req.method, req.params, timeout).await,
            Connection::Http(c) => c.call(req, timeout).await,
        }
    }

    /// Sends a request and returns its result.
    pub async fn request(&self, req: Request<'_>, timeout: Duration) -> Result<Box<RawValue>, CallError> {
        match self {
            Connection::Stdio(c) => c.request(req.method, req.params, timeout).await,
            Connection::Http(c) => c.request(req, timeout).await,
        }
    }

    /// What happened on the connection that belongs to no request.
    pub fn stats(&self) -> ClientStats {
        match self {
            Connection::Stdio(c) => c.stats(),
            Connection::Http(c) => c.stats(),
        }
    }

    /// Pending and later requests fail with a transport error giving `reason`.
    pub fn close(&self, reason: String) {
        match self {
            Connection::Stdio(c) => c.close(reason),
            Connection::Http(c) => c.close(reason),
        }
    }

    /// Why the connection closed, once it has.
    pub fn closed(&self) -> Option<String> {
        match self {
            Connection::Stdio(c) => c.closed(),
            Connection::Http(c) => c.closed(),
        }
    }

    /// Ends the session politely (Streamable HTTP: DELETE); stdio ends when its pipe closes.
    pub async fn disconnect(&self, timeout: Duration) {
        if let Connection::Http(c) = self {
            c.disconnect(timeout).await;
        }
    }
}

/// A call that came back (or failed) on a pipelined connection, by the slot it was sent in.
#[derive(Debug)]
pub struct Completion {
    pub slot: usize,
    pub outcome: Result<ToolOutcome, CallError>,
}

/// Who answered `initialize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub protocol_version: String,
}

/// A completed tool call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolOutcome {
    /// The tool reported failure in its result (`isError: true`).
    pub is_error: bool,
    /// The tool answered, but marked the answer degraded (stale, a default, partial): its
    /// structured content's `degraded` is `true`, a non-zero count or a non-empty list, as the
    /// reference server and servers on the mcp-perfcheck runtime say it.
    pub degraded: bool,
}

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    Timeout,
    Transport(String),
    Protocol(String),
    JsonRpc {
        code: i64,
        message: String,
    },
    /// Streamable HTTP: an error status whose body carried no JSON-RPC error.
    Http {
        status: u16,
        message: String,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("no answer within the timeout"),
            CallError::Transport(why) => write!(f, "connection lost: {why}"),
            CallError::Protocol(why) => write!(f, "protocol error: {why}"),
            CallError::JsonRpc { code, message } => write!(f, "JSON-RPC error {code}: {message}"),
            CallError::Http { status, message } => write!(f, "HTTP {status}: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

/// What happened on a connection outside any one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Lines that were not JSON-RPC, or answered ids never sent.
    pub protocol_errors: u64,
    /// Answers that arrived after their request timed out.
    pub late_responses: u64,
    pub notifications: u64,
    /// Requests the server sent us (answered or refused).
    pub server_requests: u64,
    /// Bytes written to and read from the server, handshake included (HTTP: message bodies).
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Connections opened (stdio: the one pipe pair).
    pub connections_opened: u64,
    /// Streamable HTTP: sessions re-initialized after the server answered 404.
    pub reinitializations: u64,
    /// The last malformed line, quoted (truncated).
    pub last_malformed: Option<String>,
}
