//! The error taxonomy every failed request is filed under.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a request failed. Serialized as a short stable string (`timeout`, `jsonrpc:-32602`, …)
/// because it is a map key in the results file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// No answer within the request timeout.
    Timeout,
    /// The connection to the server broke (pipe closed, server exited).
    Transport,
    /// The server sent something that is not valid JSON-RPC.
    Protocol,
    /// A JSON-RPC error response, by code.
    JsonRpc(i64),
    /// Streamable HTTP: an error status without a JSON-RPC error in its body, by status.
    Http(u16),
    /// A tool result with `isError: true`.
    ToolError,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::Transport => f.write_str("transport"),
            ErrorKind::Protocol => f.write_str("protocol"),
            ErrorKind::JsonRpc(code) => write!(f, "jsonrpc:{code}"),
            ErrorKind::Http(status) => write!(f, "http:{status}"),
            ErrorKind::ToolError => f.write_str("tool_error"),
        }
    }
}

impl FromStr for ErrorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "timeout" => ErrorKind::Timeout,
            "transport" => ErrorKind::Transport,
            "protocol" => ErrorKind::Protocol,
            "tool_error" => ErrorKind::ToolError,
            other => {
                let unknown = || format!("unknown error kind `{other}`");
                if let Some(code) = other.strip_prefix("jsonrpc:") {
                    ErrorKind::JsonRpc(code.parse().map_err(|_| unknown())?)
                } else if let Some(status) = other.strip_prefix("http:") {
                    ErrorKind::Http(status.parse().map_err(|_| unknown())?)
                } else {
                    return Err(unknown());
                }
            }
        })
    }
}

impl Serialize for ErrorKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ErrorKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::Transport,
            ErrorKind::Protocol,
            ErrorKind::JsonRpc(-32602),
            ErrorKind::Http(503),
            ErrorKind::ToolError,
        ] {
            assert_eq!(kind.to_string().parse::<ErrorKind>().unwrap(), kind);
        }
        assert!("jsonrpc:abc".parse::<ErrorKind>().is_err());
        assert!("http:99999".parse::<ErrorKind>().is_err());
    }
}
