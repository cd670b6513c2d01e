//! MCP client transports for load generation.
//!
//! `process` starts a server in its own process group and always ends the whole group;
//! `stdio` speaks JSON-RPC over the server's pipes with many requests in flight.
//! The client knows nothing of measurement: it returns outcomes and typed errors, and the load
//! engine files them.

mod process;
mod stdio;

use std::fmt;

pub use process::{LaunchSpec, ServerProcess};
pub use stdio::{PROTOCOL_VERSION, StdioClient};

/// Who answered `initialize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub protocol_version: String,
}

/// A completed tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolOutcome {
    /// The tool reported failure in its result (`isError: true`).
    pub is_error: bool,
}

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    Timeout,
    Transport(String),
    Protocol(String),
    JsonRpc { code: i64, message: String },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => f.write_str("no answer within the timeout"),
            CallError::Transport(why) => write!(f, "connection lost: {why}"),
            CallError::Protocol(why) => write!(f, "protocol error: {why}"),
            CallError::JsonRpc { code, message } => write!(f, "JSON-RPC error {code}: {message}"),
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
    /// Bytes written to and read from the server, handshake included.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The last malformed line, quoted (truncated).
    pub last_malformed: Option<String>,
}
