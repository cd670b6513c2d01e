//! JSON-RPC hygiene for both transports: what to do with one incoming message.
//!
//! rmcp drops input it cannot parse (no -32700), answers invalid requests with `-32600` but no
//! `id` member at all, and a request it cannot decode (a lone surrogate in a string, say) gets
//! no answer, so its client waits forever. Every message passes through [`classify`] first: a
//! well-formed one goes on to rmcp untouched (one typed parse, as rmcp would do); anything else
//! gets the answer JSON-RPC 2.0 prescribes, carrying the request's id whenever the id can be
//! read, even out of text that is not JSON or is cut off at a size limit.
//!
//! Answering unparsable input cannot start an error storm with a peer that answers in kind:
//! our answer is a well-formed response, and responses that are not ours are ignored, not
//! answered.

use rmcp::model::{ClientJsonRpcMessage, ClientRequest};
use serde_json::{Map, Value, json};

/// JSON-RPC 2.0 error codes.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// What to do with one incoming message.
#[derive(Debug)]
pub enum Verdict {
    /// Well-formed: hand it to rmcp.
    Message(Box<ClientJsonRpcMessage>),
    /// Answer this error response (a JSON object) instead.
    Reply(Rejection),
    /// Nothing can be answered: a broken notification or a stray response (no id to answer).
    Ignore(String),
}

/// An error answer and why it was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub id: Option<Value>,
    pub code: i64,
    pub message: String,
}

impl Rejection {
    /// The JSON-RPC error response: `"id": null` when the request's id could not be read.
    pub fn to_json(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id.clone().unwrap_or(Value::Null),
            "error": {"code": self.code, "message": bounded(&self.message)},
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).expect("a JSON value serializes")
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The most of a message that is said back or logged: serde's messages quote the input
/// (`invalid type: string "…"`), and the input is the client's, up to the size limit.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters, marked when cut.
pub fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}… (cut)", &text[..at]),
        None => text.to_string(),
    }
}

/// Classifies one message (a stdio line without its newline, or an HTTP body).
pub fn classify(input: &[u8]) -> Verdict {
    let input = input.strip_prefix(UTF8_BOM).unwrap_or(input);
    let typed = match serde_json::from_slice::<ClientJsonRpcMessage>(input) {
        Ok(message) => return standard_or_custom(message),
        Err(e) => e,
    };
    let value = match serde_json::from_slice::<Value>(input) {
        Ok(value) => value,
        Err(e) => {
            let id = scan_id(input);
            return Verdict::Reply(Rejection { id, code: PARSE_ERROR, message: format!("Parse error: {e}") });
        }
    };
    let Value::Object(object) = value else {
        let message = if value.is_array() {
            "Invalid Request: batches are not part of MCP (removed in 2025-06-18); send one message at a time"
        } else {
            "Invalid Request: a JSON-RPC message is an object"
        };
        return Verdict::Reply(Rejection { id: None, code: INVALID_REQUEST, message: message.into() });
    };
    diagnose(&object, &typed)
}

/// The methods of the MCP specification that a client sends.
const STANDARD_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/call",
    "tools/list",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
];

/// rmcp takes a request whose params do not fit its method as a custom request, which the
/// handler then answers "method not found": a standard method there had bad params.
fn standard_or_custom(message: ClientJsonRpcMessage) -> Verdict {
    if let ClientJsonRpcMessage::Request(request) = &message
        && let ClientRequest::CustomRequest(custom) = &request.request
        && STANDARD_METHODS.contains(&custom.method.as_str())
    {
        return Verdict::Reply(Rejection {
            id: serde_json::to_value(&request.id).ok(),
            code: INVALID_PARAMS,
            message: format!(
                "Invalid params: `{}` is missing its params or they do not fit it",
                custom.method.escape_debug()
            ),
        });
    }
    Verdict::Message(Box::new(message))
}

/// A message over the size limit: only its first bytes were kept, to read its id from.
pub fn oversized(prefix: &[u8], limit: usize) -> Rejection {
    let prefix = prefix.strip_prefix(UTF8_BOM).unwrap_or(prefix);
    Rejection {
        id: scan_id(prefix),
        code: INVALID_REQUEST,
        message: format!("Invalid Request: the message exceeds the limit of {limit} bytes"),
    }
}

/// Why a JSON object is not a message rmcp takes.
fn diagnose(object: &Map<String, Value>, typed: &serde_json::Error) -> Verdict {
    let id = object.get("id");
    let id_ok = id.filter(|id| valid_id(id)).cloned();
    let method = object.get("method");
    if method.is_none() && (object.contains_key("result") || object.contains_key("error")) {
        return Verdict::Ignore(format!("a response that is not one to our requests: {typed}"));
    }
    let reject = |code, message: String| Verdict::Reply(Rejection { id: id_ok.clone(), code, message });
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return reject(INVALID_REQUEST, "Invalid Request: `jsonrpc` must be \"2.0\"".into());
    }
    if id.is_some_and(|id| !valid_id(id)) {
        return reject(INVALID_REQUEST, "Invalid Request: `id` must be a string or an integer".into());
    }
    let Some(method) = method.and_then(Value::as_str) else {
        return reject(INVALID_REQUEST, "Invalid Request: `method` must be a string".into());
    };
    if id.is_none() {
        return Verdict::Ignore(format!("notification `{}`: {typed}", method.escape_debug()));
    }
    if object.get("params").is_some_and(|p| !p.is_object()) {
        return reject(INVALID_PARAMS, format!("Invalid params: `{}` takes an object", method.escape_debug()));
    }
    reject(INVALID_PARAMS, format!("Invalid params for `{}`: {typed}", method.escape_debug()))
}

/// MCP ids are strings or integers (JSON-RPC's fractional numbers and null are not allowed).
fn valid_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// The top-level `id` of something meant to be a JSON-RPC object, read without trusting the rest:
/// strings are skipped without validating their escapes or encoding, and the text may end
/// anywhere after the id. `None` unless a valid id is found.
pub fn scan_id(input: &[u8]) -> Option<Value> {
    let mut s = Scanner { input, at: 0 };
    s.ws();
    s.eat(b'{')?;
    loop {
        s.ws();
        let key = s.string()?;
        s.ws();
        s.eat(b':')?;
        s.ws();
        if key == b"\"id\"" {
            let start = s.at;
            match s.peek()? {
                b'"' => s.string()?,
                _ => s.scalar(),
            };
            let id: Value = serde_json::from_slice(&input[start..s.at]).ok()?;
            return valid_id(&id).then_some(id);
        }
        s.value()?;
        s.ws();
        match s.next()? {
            b',' => continue,
            _ => return None,
        }
    }
}

/// A cursor over bytes; every step returns `None` at the end of the input.
struct Scanner<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    /// A string with its quotes, escapes skipped but not checked.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        self.eat(b'"')?;
        loop {
            match self.next()? {
                b'\\' => {
                    self.next()?;
                }
                b'"' => return Some(&self.input[start..self.at]),
                _ => {}
            }
        }
    }

    /// A number, literal or anything else up to a delimiter.
    fn scalar(&mut self) -> &'a [u8] {
        let start = self.at;
        while let Some(b) = self.peek() {
            if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.at += 1;
        }
        &self.input[start..self.at]
    }

    /// Any value, nested ones by bracket depth.
    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                    self.at += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            _ => {
                if self.scalar().is_empty() {
                    return None;
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(input: &[u8]) -> Rejection {
        match classify(input) {
            Verdict::Reply(r) => r,
            other => panic!("{:?}: expected an error answer, got {other:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn well_formed_messages_pass() {
        for m in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#[..],
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            br#"{"jsonrpc":"2.0","id":"a","result":{}}"#,
            b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        ] {
            assert!(matches!(classify(m), Verdict::Message(_)), "{}", String::from_utf8_lossy(m));
        }
    }

    #[test]
    fn each_bad_input_gets_its_answer() {
        // (input, id answered, code)
        let table: &[(&[u8], Value, i64)] = &[
            (b"not json", Value::Null, PARSE_ERROR),
            (br#"{"jsonrpc":"2.0","id":1,"method":"#, json!(1), PARSE_ERROR),
            (br#"{"jsonrpc":"2.0","id":"x\"y","method":"ping""#, json!("x\"y"), PARSE_ERROR),
            (br#"{"jsonrpc":"2.0","method":"tools/call","params":{"a":[1,{"b":"}"}]},"id":7"#, json!(7), PARSE_ERROR),
            (br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"x":"\ud800"}}"#, json!(5), PARSE_ERROR),
            (b"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\",\"params\":{\"x\":\"\xff\"}}", json!(6), PARSE_ERROR),
            (b"\xff\xfe", Value::Null, PARSE_ERROR),
            (b"[]", Value::Null, INVALID_REQUEST),
            (b"null", Value::Null, INVALID_REQUEST),
            (br#"[{"jsonrpc":"2.0","id":8,"method":"ping"}]"#, Value::Null, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":2}"#, json!(2), INVALID_REQUEST),
            (br#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#, json!(3), INVALID_REQUEST),
            (br#"{"id":3,"method":"ping"}"#, json!(3), INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":4,"method":42}"#, json!(4), INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#, Value::Null, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":12.5,"method":"ping"}"#, Value::Null, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, Value::Null, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":"x"}"#, json!(9), INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":10,"method":"ping","params":[]}"#, json!(10), INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":"t","method":"tools/call"}"#, json!("t"), INVALID_PARAMS),
            (br#"{"jsonrpc":"2.0","id":11,"method":"resources/read","params":{"uri":5}}"#, json!(11), INVALID_PARAMS),
        ];
        for (input, id, code) in table {
            let r = reply(input);
            let answer = r.to_json();
            assert_eq!((&answer["id"], r.code), (id, *code), "{:?}: {answer}", String::from_utf8_lossy(input));
            assert_eq!(answer["jsonrpc"], "2.0");
            assert!(answer.as_object().unwrap().contains_key("id"), "the id member is always there");
        }
    }

    #[test]
    fn nothing_is_answered_where_nobody_waits() {
        let notification = br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":"x"}"#;
        assert!(matches!(classify(notification), Verdict::Ignore(_)));
        assert!(matches!(classify(br#"{"jsonrpc":"2.0","id":16,"error":5}"#), Verdict::Ignore(_)));
    }

    #[test]
    fn the_id_is_read_from_the_head_of_an_oversized_message() {
        let mut big = br#"{"jsonrpc":"2.0","id":"big-1","method":"tools/call","params":{"x":""#.to_vec();
        big.extend(std::iter::repeat_n(b'a', 100));
        let r = oversized(&big, 64);
        assert_eq!((r.id, r.code), (Some(json!("big-1")), INVALID_REQUEST));
        assert!(r.message.contains("64 bytes"), "{}", r.message);
        // An id after the cut-off is unknown, not guessed.
        assert_eq!(oversized(br#"{"params":{"x":"aaaa"#, 16).id, None);
    }

    #[test]
    fn what_is_said_back_is_bounded() {
        let long = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{}","params":[]}}"#, "y".repeat(10_000));
        let rejection = reply(long.as_bytes());
        assert!(rejection.message.len() > 10_000, "the method name is quoted");
        let answer = rejection.to_json();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS + 10, "{} chars", message.len());
        assert_eq!(bounded("short"), "short");
    }

    #[test]
    fn the_scanner_skips_strings_and_nesting_without_being_fooled() {
        assert_eq!(scan_id(br#" { "a" : "\"id\":1" , "b":{"id":2,"c":[{"id":3}]}, "id" : -4 }"#), Some(json!(-4)));
        assert_eq!(scan_id(br#"{"id":null}"#), None);
        assert_eq!(scan_id(br#"{"id":1.5}"#), None);
        assert_eq!(scan_id(br#"{"id":"\ud800"}"#), None, "an id we could not echo faithfully");
        assert_eq!(scan_id(b"[1]"), None);
        assert_eq!(scan_id(b""), None);
        assert_eq!(scan_id(br#"{"a":}"#), None);
    }
}
