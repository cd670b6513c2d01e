//! The mix of a scenario that names no operations: every tool the server lists (`tools/list`,
//! all pages), called with arguments made from its input schema, one weight each.
//!
//! The arguments are the smallest valid-looking call: the schema's `default`, `const`, first
//! `examples` or `enum` value where it gives one; otherwise a plain value of the declared type,
//! sized to `minLength`/`minItems`/`minimum`. Only required properties are filled. A config
//! that names its mix replaces all of this.
//!
//! Each listed tool is called once first, all at once, and left out (the run says which and
//! why) when that probe call fails or takes longer than [`PROBE_LIMIT`]: a tool that refuses
//! made-up arguments would measure its argument check rather than its work, and one that takes
//! seconds (a long-running demo, a tool waiting on something the client never sends, a fetch
//! from the internet) holds a closed-model worker for the whole timeout and can leave a window
//! with no calls at all.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::client::{CallError, Connection, Request};
use crate::config::MixEntry;

/// At most this many `tools/list` pages are read (a server that pages forever stops here).
const MAX_PAGES: usize = 20;
/// Nesting depth past which schemas are not followed (recursive schemas).
const MAX_DEPTH: usize = 8;

/// Longest a tool's probe call may take for the tool to stay in a discovered mix (or the
/// request timeout, when shorter).
pub const PROBE_LIMIT: Duration = Duration::from_secs(2);

/// A listed tool, as a mix entry with arguments made from its schema.
#[derive(Debug, Clone)]
pub struct ListedTool {
    pub entry: MixEntry,
    /// The arguments (paths such as `query` or `where.city`) whose values no `default`,
    /// `const`, `examples` or `enum` of the schema gave: made up from the type alone.
    pub invented: Vec<String>,
}

impl ListedTool {
    pub fn name(&self) -> &str {
        self.entry.tool.as_deref().unwrap_or_default()
    }
}

/// A listed tool that a discovered mix leaves out, and why.
#[derive(Debug, Clone)]
pub struct LeftOut {
    pub tool: ListedTool,
    pub why: String,
}

/// The tools a server lists: those its probe calls answered, and those left out.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub kept: Vec<ListedTool>,
    pub left_out: Vec<LeftOut>,
}

/// The tools `conn` lists and answers within the probe limit, as a mix of one call each; and
/// the tools left out.
pub async fn answering_tools(conn: &Connection, timeout: Duration) -> Result<Discovery, CallError> {
    let listed = listed_tools(conn, timeout).await?;
    let limit = PROBE_LIMIT.min(timeout);
    let probes = listed.iter().map(|tool| async move {
        let name = tool.name();
        let params = json!({ "name": name, "arguments": tool.entry.arguments }).to_string();
        let req = Request { method: "tools/call", name: Some(name), params: &params };
        conn.call(req, limit).await
    });
    let answers = futures_util::future::join_all(probes).await;
    let mut discovery = Discovery::default();
    for (tool, answer) in listed.into_iter().zip(answers) {
        let why = match answer {
            Ok(outcome) if !outcome.is_error => None,
            Ok(_) => Some("its probe call, with arguments made from its schema, returned a tool error".to_string()),
            Err(CallError::Timeout) => {
                Some(format!("no answer within {} in the probe call", humantime::format_duration(limit)))
            }
            Err(CallError::JsonRpc { code, .. }) => Some(format!(
                "its probe call, with arguments made from its schema, was refused (JSON-RPC error {code})"
            )),
            // A broken connection fails the repetition, which reports it.
            Err(_) => None,
        };
        match why {
            Some(why) => discovery.left_out.push(LeftOut { tool, why }),
            None => discovery.kept.push(tool),
        }
    }
    Ok(discovery)
}

/// The tools `conn` lists, as a mix of one call each.
pub async fn listed_tools(conn: &Connection, timeout: Duration) -> Result<Vec<ListedTool>, CallError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        tools: Vec<Tool>,
        #[serde(default)]
        next_cursor: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Tool {
        name: String,
        #[serde(default)]
        input_schema: Value,
    }
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }).to_string(),
            None => "{}".to_string(),
        };
        let raw = conn.request(Request { method: "tools/list", name: None, params: &params }, timeout).await?;
        let page: Page = serde_json::from_str(raw.get())
            .map_err(|e| CallError::Protocol(format!("malformed tools/list result: {e}")))?;
        for tool in page.tools {
            let mut entry = MixEntry::tool(&tool.name, 1);
            let (arguments, invented) = arguments_with_provenance(&tool.input_schema);
            entry.arguments = arguments;
            entries.push(ListedTool { entry, invented });
        }
        match page.next_cursor {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => break,
        }
    }
    Ok(entries)
}

/// Arguments for a tool whose `inputSchema` is `schema` (its required properties), and the
/// argument paths whose values were made up from their type alone.
pub fn arguments_with_provenance(schema: &Value) -> (Map<String, Value>, Vec<String>) {
    let mut invented = Vec::new();
    match example(schema, 0, "", &mut invented) {
        Value::Object(map) => (map, invented),
        _ => (Map::new(), Vec::new()),
    }
}

/// A value `schema` accepts, as far as a plain reading of it goes; `path` names it, and is
/// added to `invented` when the value comes from its type alone.
fn example(schema: &Value, depth: usize, path: &str, invented: &mut Vec<String>) -> Value {
    let Some(s) = schema.as_object() else {
        invented.push(path.to_string());
        return Value::Null;
    };
    if depth > MAX_DEPTH {
        invented.push(path.to_string());
        return Value::Null;
    }
    for given in ["default", "const"] {
        if let Some(v) = s.get(given) {
            return v.clone();
        }
    }
    for listed in ["examples", "enum"] {
        if let Some(v) = s.get(listed).and_then(Value::as_array).and_then(|a| a.first()) {
            return v.clone();
        }
    }
    for alternatives in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = s.get(alternatives).and_then(Value::as_array).and_then(|a| a.first()) {
            return example(first, depth + 1, path, invented);
        }
    }
    let number = |key: &str| s.get(key).and_then(Value::as_f64);
    let kind = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // `["string", "null"]`: the first type that is not null.
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ if s.contains_key("properties") => "object",
        _ => "null",
    };
    if kind != "object" {
        invented.push(path.to_string());
    }
    match kind {
        "string" => {
            let len = number("minLength").unwrap_or(0.0).max(1.0) as usize;
            Value::String("a".repeat(len.min(1024)))
        }
        "integer" => json!(
            number("minimum")
                .map_or(1, |m| m.ceil() as i64)
                .max(number("exclusiveMinimum").map_or(i64::MIN, |m| m.floor() as i64 + 1))
        ),
        "number" => json!(number("minimum").or(number("exclusiveMinimum").map(|m| m + 1.0)).unwrap_or(1.0)),
        "boolean" => Value::Bool(false),
        "array" => {
            let n = number("minItems").unwrap_or(0.0) as usize;
            let mut item_notes = Vec::new();
            let item = s.get("items").map(|i| example(i, depth + 1, path, &mut item_notes)).unwrap_or(Value::Null);
            Value::Array(vec![item; n.min(16)])
        }
        "object" => {
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let properties = s.get("properties").and_then(Value::as_object);
            let object = required
                .into_iter()
                .map(|key| {
                    let at = if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
                    let value = match properties.and_then(|p| p.get(key)) {
                        Some(p) => example(p, depth + 1, &at, invented),
                        None => {
                            invented.push(at);
                            Value::Null
                        }
                    };
                    (key.to_string(), value)
                })
                .collect();
            Value::Object(object)
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments_for(schema: &Value) -> Map<String, Value> {
        arguments_with_provenance(schema).0
    }

    #[test]
    fn values_made_up_from_a_type_alone_are_named_by_path() {
        let schema = json!({
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius"]},
                "n": {"type": "integer", "default": 3},
                "where": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"const": "75001"}}, "required": ["city", "zip"]},
                "untyped": {}
            },
            "required": ["query", "unit", "n", "where", "untyped", "undeclared"]
        });
        let (args, invented) = arguments_with_provenance(&schema);
        assert_eq!(args["where"], json!({"city": "a", "zip": "75001"}));
        assert_eq!(invented, ["query", "where.city", "untyped", "undeclared"]);
    }

    #[test]
    fn required_properties_get_plain_values_of_their_type() {
        let schema = json!({
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "count": {"type": "integer", "minimum": 3},
                "ratio": {"type": "number"},
                "loud": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string", "minLength": 2}, "minItems": 2},
                "where": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "optional": {"type": "string"}
            },
            "required": ["message", "count", "ratio", "loud", "tags", "where"]
        });
        let args = Value::Object(arguments_for(&schema));
        assert_eq!(
            args,
            json!({"message": "a", "count": 3, "ratio": 1.0, "loud": false, "tags": ["aa", "aa"], "where": {"city": "a"}})
        );
    }

    #[test]
    fn defaults_enums_examples_and_alternatives_are_preferred() {
        let schema = json!({
            "type": "object",
            "properties": {
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "n": {"type": "integer", "default": 7},
                "q": {"type": "string", "examples": ["weather"]},
                "id": {"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "null"}]},
                "maybe": {"type": ["null", "string"]}
            },
            "required": ["unit", "n", "q", "id", "maybe"]
        });
        assert_eq!(
            Value::Object(arguments_for(&schema)),
            json!({"unit": "celsius", "n": 7, "q": "weather", "id": 1, "maybe": "a"})
        );
    }

    #[test]
    fn schemas_without_properties_or_recursing_forever_still_give_arguments() {
        assert!(arguments_for(&json!({"type": "object"})).is_empty());
        assert!(arguments_for(&Value::Null).is_empty());
        let mut deep = json!({"type": "string"});
        for _ in 0..20 {
            deep = json!({"type": "object", "properties": {"x": deep}, "required": ["x"]});
        }
        let args = Value::Object(arguments_for(&deep));
        assert!(args.to_string().contains("null"), "cut off past the depth limit: {args}");
    }
}
