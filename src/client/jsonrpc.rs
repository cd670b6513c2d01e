//! JSON-RPC pieces both transports share: parsing an incoming message once, by its fields;
//! answering what a server asks of us; reading a `tools/call` result.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{CallError, ClientStats, ServerInfo, ToolOutcome};

/// The protocol version this client asks for in `initialize` (the handshake era).
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// The stateless revision, spoken when a server lists it in `server/discover`.
pub const MODERN_VERSION: &str = "2026-07-28";

/// The stateless era's per-request metadata: a `_meta` member to put first in every request's
/// params (protocol version, client capabilities, client identity).
pub const MODERN_META: &str = concat!(
    r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","#,
    r#""io.modelcontextprotocol/clientCapabilities":{},"#,
    r#""io.modelcontextprotocol/clientInfo":{"name":"mcp-perfcheck","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}}"#
);

/// A ready-made params object split for [`MODERN_META`] to go in front of its members:
/// `{` + META + separator + rest.
pub fn after_meta(params: &str) -> (&'static str, &str) {
    let inner = params.trim().strip_prefix('{').map(str::trim_start).unwrap_or("}");
    (if inner.starts_with('}') { "" } else { "," }, inner)
}

/// Longest malformed message quoted back in diagnostics.
const QUOTE_MAX: usize = 200;

/// What happened on a connection outside any one request, as it happens.
#[derive(Default)]
pub struct Counters {
    pub protocol_errors: AtomicU64,
    pub late_responses: AtomicU64,
    pub notifications: AtomicU64,
    pub server_requests: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub reinitializations: AtomicU64,
    last_malformed: Mutex<Option<String>>,
}

impl Counters {
    /// A message that is not JSON-RPC, or answers an id never sent: counted, and kept as the
    /// sample for diagnostics.
    pub fn protocol_error(&self, text: &[u8]) {
        self.protocol_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_malformed.lock().expect("malformed lock") = Some(quote_bytes(text));
    }

    pub fn snapshot(&self, connections_opened: u64) -> ClientStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            protocol_errors: get(&self.protocol_errors),
            late_responses: get(&self.late_responses),
            notifications: get(&self.notifications),
            server_requests: get(&self.server_requests),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            connections_opened,
            reinitializations: get(&self.reinitializations),
            last_malformed: self.last_malformed.lock().expect("malformed lock").clone(),
        }
    }
}

/// What a request got back.
pub enum Reply {
    Result(Box<RawValue>),
    Error { code: i64, message: String },
    Malformed(String),
}

impl Reply {
    pub fn into_result(self) -> Result<Box<RawValue>, CallError> {
        match self {
            Reply::Result(raw) => Ok(raw),
            Reply::Error { code, message } => Err(CallError::JsonRpc { code, message }),
            Reply::Malformed(why) => Err(CallError::Protocol(why)),
        }
    }
}

/// One incoming JSON-RPC message.
#[derive(Deserialize)]
pub struct Incoming<'a> {
    #[serde(borrow, default)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    #[serde(default)]
    pub error: Option<ErrorObject>,
}

#[derive(Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    #[serde(default)]
    pub message: String,
}

/// What an incoming message is.
pub enum Kind {
    /// The server asks something of us: it must get an answer (`answer`, a ready line).
    Request {
        answer: String,
    },
    Notification,
    /// An answer to our request `id`.
    Response {
        id: u64,
        reply: Reply,
    },
    /// Neither: not JSON-RPC, or an id that is not one of ours.
    Invalid,
}

/// One incoming message, borrowed from its bytes.
pub enum Message<'a> {
    /// The server asks something of us: it must get an answer (`answer`, a ready line).
    Request {
        answer: String,
    },
    Notification,
    /// An answer to our request `id`: its raw result, or why it has none.
    Response {
        id: u64,
        result: Result<&'a RawValue, CallError>,
    },
    /// Neither: not JSON-RPC, or an id that is not one of ours.
    Invalid,
}

/// Parses one message (the bytes of one line or one SSE event) once, by its fields.
pub fn parse(text: &[u8]) -> Message<'_> {
    let Ok(msg) = serde_json::from_slice::<Incoming>(text) else { return Message::Invalid };
    match (msg.method, msg.id) {
        (Some(method), Some(id)) => Message::Request { answer: answer_server_request(id.get(), method.get()) },
        (Some(_), None) => Message::Notification,
        (None, Some(id)) => {
            let Ok(id) = id.get().parse::<u64>() else { return Message::Invalid };
            let result = match (msg.result, msg.error) {
                (Some(result), None) => Ok(result),
                (None, Some(e)) => Err(CallError::JsonRpc { code: e.code, message: e.message }),
                _ => Err(CallError::Protocol(format!(
                    "response needs exactly one of result and error: {}",
                    quote_bytes(text)
                ))),
            };
            Message::Response { id, result }
        }
        (None, None) => Message::Invalid,
    }
}

/// The common case read in one pass: an answer with a numeric id and an object result, its
/// `isError` and `degraded` marks taken on the way. `None`: anything else (a request, a
/// notification, an error, an odd shape), for [`parse`] to tell apart.
pub fn parse_answer(text: &[u8]) -> Option<(u64, ToolOutcome)> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        id: u64,
        #[serde(borrow)]
        result: CallResult<'a>,
        #[serde(default)]
        method: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
    }
    let a: Answer = serde_json::from_slice(text).ok()?;
    if a.method.is_some() || a.error.is_some() {
        return None;
    }
    Some((a.id, a.result.outcome()))
}

#[derive(Deserialize)]
struct CallResult<'a> {
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
    #[serde(rename = "structuredContent", default, borrow)]
    structured: Option<&'a RawValue>,
}

impl CallResult<'_> {
    fn outcome(&self) -> ToolOutcome {
        /// Only `degraded` is read; the rest of the content is skipped unparsed.
        #[derive(Deserialize)]
        struct Marked<'a> {
            #[serde(default, borrow)]
            degraded: Option<&'a RawValue>,
        }
        // Structured content of any other shape is the tool's business, not a protocol error.
        let degraded = self
            .structured
            .and_then(|content| serde_json::from_str::<Marked>(content.get()).ok())
            .and_then(|m| m.degraded)
            .is_some_and(|flag| marks_degraded(flag.get()));
        ToolOutcome { is_error: self.is_error.unwrap_or(false), degraded }
    }
}

/// Classifies one message, owning what it keeps.
pub fn classify(text: &[u8]) -> Kind {
    match parse(text) {
        Message::Request { answer } => Kind::Request { answer },
        Message::Notification => Kind::Notification,
        Message::Response { id, result } => {
            let reply = match result {
                Ok(raw) => Reply::Result(raw.to_owned()),
                Err(CallError::JsonRpc { code, message }) => Reply::Error { code, message },
                Err(CallError::Protocol(why)) => Reply::Malformed(why),
                Err(other) => Reply::Malformed(other.to_string()),
            };
            Kind::Response { id, reply }
        }
        Message::Invalid => Kind::Invalid,
    }
}

/// `ping` is answered; everything else a server may ask (roots, sampling, elicitation) is
/// refused, so that the server never waits on us. `id` and `method` are raw JSON.
fn answer_server_request(id: &str, method: &str) -> String {
    if method == "\"ping\"" {
        format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{}}}}")
    } else {
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{{\"code\":-32601,\"message\":\"mcp-perfcheck does not support {}\"}}}}",
            method.trim_matches('"')
        )
    }
}

/// A `server/discover` result that lists the stateless revision, as a server identity.
pub fn modern_server_info(raw: &RawValue) -> Option<ServerInfo> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Discover {
        supported_versions: Vec<String>,
        #[serde(default)]
        server_info: Option<Implementation>,
        #[serde(default, rename = "_meta")]
        meta: Option<Meta>,
    }
    #[derive(Deserialize)]
    struct Meta {
        #[serde(default, rename = "io.modelcontextprotocol/serverInfo")]
        server_info: Option<Implementation>,
    }
    let d: Discover = serde_json::from_str(raw.get()).ok()?;
    if !d.supported_versions.iter().any(|v| v == MODERN_VERSION) {
        return None;
    }
    let who = d.server_info.or(d.meta.and_then(|m| m.server_info));
    let (name, version) = who.map(|i| (i.name, i.version)).unwrap_or_default();
    Some(ServerInfo { name, version, protocol_version: MODERN_VERSION.to_string() })
}

/// `initialize`'s params: our identity, no client capabilities.
pub fn initialize_params() -> String {
    format!(
        r#"{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"mcp-perfcheck","version":"{}"}}}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

/// Who answered `initialize`.
pub fn parse_initialize(raw: &RawValue) -> Result<ServerInfo, CallError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Init {
        protocol_version: String,
        server_info: Implementation,
    }
    let init: Init = serde_json::from_str(raw.get())
        .map_err(|e| CallError::Protocol(format!("malformed initialize result: {e}: {}", quote(raw.get()))))?;
    Ok(ServerInfo {
        name: init.server_info.name,
        version: init.server_info.version,
        protocol_version: init.protocol_version,
    })
}

#[derive(Deserialize)]
pub struct Implementation {
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// A `tools/call` result's `isError`, and whether its structured content says `degraded`.
pub fn tool_outcome(raw: &RawValue) -> Result<ToolOutcome, CallError> {
    let result: CallResult = serde_json::from_str(raw.get())
        .map_err(|e| CallError::Protocol(format!("malformed tools/call result: {e}: {}", quote(raw.get()))))?;
    Ok(result.outcome())
}

/// `true`, a non-zero count or a non-empty list.
fn marks_degraded(flag: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(flag) {
        Ok(serde_json::Value::Bool(b)) => b,
        Ok(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        Ok(serde_json::Value::Array(items)) => !items.is_empty(),
        _ => false,
    }
}

pub fn quote_bytes(text: &[u8]) -> String {
    quote(&String::from_utf8_lossy(text))
}

/// `text`, cut to a length fit for an error message.
pub fn quote(text: &str) -> String {
    if text.len() <= QUOTE_MAX {
        return text.to_string();
    }
    let mut end = QUOTE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_told_apart_by_their_fields() {
        assert!(matches!(classify(br#"{"jsonrpc":"2.0","method":"notifications/message"}"#), Kind::Notification));
        let Kind::Request { answer } = classify(br#"{"jsonrpc":"2.0","id":"s1","method":"ping"}"#) else { panic!() };
        assert_eq!(answer, r#"{"jsonrpc":"2.0","id":"s1","result":{}}"#);
        let Kind::Request { answer } = classify(br#"{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage"}"#)
        else {
            panic!()
        };
        assert!(answer.contains("-32601") && answer.contains("sampling/createMessage"), "{answer}");
        let Kind::Response { id: 3, reply: Reply::Error { code: -32602, .. } } =
            classify(br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad"}}"#)
        else {
            panic!()
        };
        assert!(matches!(classify(b"not json"), Kind::Invalid));
        assert!(matches!(classify(br#"{"jsonrpc":"2.0","id":"x","result":{}}"#), Kind::Invalid));
    }

    #[test]
    fn the_one_pass_answer_agrees_with_the_general_parse() {
        let line = br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"a\"b"}],"isError":true,"structuredContent":{"degraded":["x"]}}}"#;
        assert_eq!(parse_answer(line), Some((42, ToolOutcome { is_error: true, degraded: true })));
        let Message::Response { id: 42, result: Ok(raw) } = parse(line) else { panic!() };
        assert_eq!(tool_outcome(raw).unwrap(), ToolOutcome { is_error: true, degraded: true });
        // Everything else is left to the general parse.
        for other in [
            &br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m"}}"#[..],
            br#"{"jsonrpc":"2.0","id":"s1","method":"ping"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"roots/list","result":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"result":[1]}"#,
            br#"{"jsonrpc":"2.0","id":"7","result":{}}"#,
            b"not json",
        ] {
            assert_eq!(parse_answer(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn a_result_marked_degraded_is_told_apart_and_other_content_is_not_an_error() {
        let outcome = |text: &str| tool_outcome(&RawValue::from_string(text.to_string()).unwrap()).unwrap();
        let marked = |degraded: &str| {
            outcome(&format!(r#"{{"content":[],"structuredContent":{{"degraded":{degraded},"x":[1,{{}}]}}}}"#))
        };
        assert!(marked("true").degraded && marked("2").degraded && marked(r#"["pricing"]"#).degraded);
        assert!(
            !marked("false").degraded && !marked("0").degraded && !marked("[]").degraded && !marked("null").degraded
        );
        assert_eq!(outcome(r#"{"content":[]}"#), ToolOutcome { is_error: false, degraded: false });
        assert_eq!(
            outcome(r#"{"content":[],"structuredContent":[1,2],"isError":true}"#),
            ToolOutcome { is_error: true, degraded: false }
        );
    }
}
