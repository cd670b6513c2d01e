//! `serve --conformance`: the reference server plus the fixtures the official conformance
//! suite (`@modelcontextprotocol/conformance`) calls — tools returning every content type,
//! logging, progress, sampling and elicitation; prompts; static, binary and templated
//! resources; subscriptions; completion; `logging/setLevel`. Each fixture answers exactly what
//! the suite's scenario descriptions ask for, so the suite checks rmcp's real protocol paths
//! and ours, not stubs. Results are built from the JSON the scenarios quote, through the SDK's
//! own types.

// The suite still tests sampling and logging, which SEP-2577 deprecates in the SDK.
#![allow(deprecated)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams, CompleteResult, ContentBlock,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ResourceContents, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ReferenceServer;

/// A 1×1 red pixel PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A WAV header with no samples.
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

/// The reference server with the conformance fixtures.
#[derive(Clone)]
pub struct ConformanceServer {
    reference: ReferenceServer,
    subscriptions: Arc<Mutex<HashSet<String>>>,
}

impl ConformanceServer {
    pub fn new(reference: ReferenceServer) -> Self {
        ConformanceServer { reference, subscriptions: Arc::default() }
    }
}

/// An SDK value from the JSON a scenario quotes.
fn from_json<T: DeserializeOwned>(value: Value) -> Result<T, McpError> {
    serde_json::from_value(value).map_err(|e| McpError::internal_error(format!("building a fixture: {e}"), None))
}

fn fixture_tools() -> Vec<Value> {
    let none = json!({"type": "object", "properties": {}});
    let text = |name: &str, description: &str| json!({"type": "object", "properties": {name: {"type": "string", "description": description}}, "required": [name]});
    vec![
        json!({"name": "test_simple_text", "description": "Returns simple text", "inputSchema": none}),
        json!({"name": "test_image_content", "description": "Returns an image", "inputSchema": none}),
        json!({"name": "test_audio_content", "description": "Returns audio", "inputSchema": none}),
        json!({"name": "test_embedded_resource", "description": "Returns an embedded resource", "inputSchema": none}),
        json!({"name": "test_multiple_content_types", "description": "Returns text, an image and a resource", "inputSchema": none}),
        json!({"name": "test_tool_with_logging", "description": "Sends three log messages while it runs", "inputSchema": none}),
        json!({"name": "test_error_handling", "description": "Always fails", "inputSchema": none}),
        json!({"name": "test_tool_with_progress", "description": "Reports progress 0, 50, 100 of 100", "inputSchema": none}),
        json!({"name": "test_sampling", "description": "Asks the client's LLM", "inputSchema": text("prompt", "The prompt to send to the LLM")}),
        json!({"name": "test_elicitation", "description": "Asks the user", "inputSchema": text("message", "The message to show the user")}),
        json!({"name": "test_elicitation_sep1034_defaults", "description": "Elicitation with defaults for every primitive type", "inputSchema": none}),
        json!({"name": "test_elicitation_sep1330_enums", "description": "Elicitation with the five enum schemas", "inputSchema": none}),
    ]
}

fn prompts() -> Value {
    json!({"prompts": [
        {"name": "test_simple_prompt", "description": "A simple prompt without arguments"},
        {"name": "test_prompt_with_arguments", "description": "A prompt with two arguments", "arguments": [
            {"name": "arg1", "description": "First test argument", "required": true},
            {"name": "arg2", "description": "Second test argument", "required": true}]},
        {"name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource", "arguments": [
            {"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]},
        {"name": "test_prompt_with_image", "description": "A prompt with an image"},
    ]})
}

fn arg<'a>(request: &'a CallToolRequestParams, name: &str) -> Result<&'a str, McpError> {
    request
        .arguments
        .as_ref()
        .and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| McpError::invalid_params(format!("`{name}` (a string) is required"), None))
}

impl ConformanceServer {
    async fn fixture(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<CallToolResult>, McpError> {
        let peer = &context.peer;
        let result = match request.name.as_ref() {
            "test_simple_text" => {
                CallToolResult::success(vec![ContentBlock::text("This is a simple text response for testing.")])
            }
            "test_image_content" => CallToolResult::success(vec![ContentBlock::image(PNG, "image/png")]),
            "test_audio_content" => CallToolResult::success(vec![ContentBlock::audio(WAV, "audio/wav")]),
            "test_embedded_resource" => CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text("This is an embedded resource content.", "test://embedded-resource")
                    .with_mime_type("text/plain"),
            )]),
            "test_multiple_content_types" => CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(PNG, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(r#"{"test":"data","value":123}"#, "test://mixed-content-resource")
                        .with_mime_type("application/json"),
                ),
            ]),
            "test_tool_with_logging" => {
                for (i, message) in
                    ["Tool execution started", "Tool processing data", "Tool execution completed"].iter().enumerate()
                {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let param = from_json(json!({"level": "info", "logger": "conformance", "data": message}))?;
                    let _ = peer.notify_logging_message(param).await;
                }
                CallToolResult::success(vec![ContentBlock::text("Tool with logging executed successfully")])
            }
            "test_error_handling" => {
                CallToolResult::error(vec![ContentBlock::text("This tool intentionally returns an error for testing")])
            }
            "test_tool_with_progress" => {
                let token = context.meta.get_progress_token();
                for (i, progress) in [0, 50, 100].into_iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(token) = &token {
                        let param = from_json(json!({"progressToken": token, "progress": progress, "total": 100}))?;
                        let _ = peer.notify_progress(param).await;
                    }
                }
                CallToolResult::success(vec![ContentBlock::text("Tool with progress executed successfully")])
            }
            "test_sampling" => {
                let prompt = arg(request, "prompt")?;
                let params = from_json(json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                    "maxTokens": 100
                }))?;
                let reply = peer.create_message(params).await;
                match reply {
                    Ok(r) => {
                        let content = serde_json::to_value(&r.message.content).unwrap_or_default();
                        let text = content
                            .get("text")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(|| content.to_string());
                        CallToolResult::success(vec![ContentBlock::text(format!("LLM response: {text}"))])
                    }
                    Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("sampling failed: {e}"))]),
                }
            }
            "test_elicitation" => {
                let message = arg(request, "message")?;
                let schema = json!({"type": "object", "properties": {
                    "username": {"type": "string", "description": "User's response"},
                    "email": {"type": "string", "description": "User's email address"}},
                    "required": ["username", "email"]});
                self.elicit(peer, message, schema, "User response").await?
            }
            "test_elicitation_sep1034_defaults" => {
                let schema = json!({"type": "object", "properties": {
                    "name": {"type": "string", "default": "John Doe"},
                    "age": {"type": "integer", "default": 30},
                    "score": {"type": "number", "default": 95.5},
                    "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "default": true}}});
                self.elicit(
                    peer,
                    "Please review and update the form fields with defaults",
                    schema,
                    "Elicitation completed",
                )
                .await?
            }
            "test_elicitation_sep1330_enums" => {
                let schema = json!({"type": "object", "properties": {
                    "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "oneOf": [
                        {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"},
                        {"const": "value3", "title": "Third Option"}]},
                    "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "items": {"anyOf": [
                        {"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"},
                        {"const": "value3", "title": "Third Choice"}]}}}});
                self.elicit(peer, "Please select options from the enum fields", schema, "Elicitation completed").await?
            }
            _ => return Ok(None),
        };
        Ok(Some(result))
    }

    async fn elicit(
        &self,
        peer: &rmcp::Peer<RoleServer>,
        message: &str,
        schema: Value,
        label: &str,
    ) -> Result<CallToolResult, McpError> {
        let params = from_json(json!({"mode": "form", "message": message, "requestedSchema": schema}))
            .or_else(|_| from_json(json!({"message": message, "requestedSchema": schema})))?;
        Ok(match peer.create_elicitation(params).await {
            Ok(r) => {
                let r = serde_json::to_value(&r).unwrap_or_default();
                let text = format!("{label}: action={}, content={}", r["action"].as_str().unwrap_or("?"), r["content"]);
                CallToolResult::success(vec![ContentBlock::text(text)])
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("elicitation failed: {e}"))]),
        })
    }
}

impl ServerHandler for ConformanceServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities: ServerCapabilities = serde_json::from_value(json!({
            "tools": {}, "prompts": {}, "resources": {"subscribe": true}, "logging": {}, "completions": {}
        }))
        .unwrap_or_default();
        let reference = self.reference.get_info();
        let mut info = ServerConfig::new(capabilities);
        info.server_info = reference.server_info;
        info.with_instructions("The mcp-perfcheck reference server with the conformance suite's fixtures.")
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools = self.reference.tools();
        for t in fixture_tools() {
            tools.push(from_json::<Tool>(t)?);
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        match self.fixture(&request, &context).await? {
            Some(result) => Ok(result.into()),
            None => self.reference.call_tool(request, context).await,
        }
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        from_json(prompts())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let arg = |name: &str| {
            args.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| McpError::invalid_params(format!("argument `{name}` is required"), None))
        };
        let user = |content: Value| json!({"role": "user", "content": content});
        let messages = match request.name.as_ref() {
            "test_simple_prompt" => vec![user(json!({"type": "text", "text": "This is a simple prompt for testing."}))],
            "test_prompt_with_arguments" => {
                let text = format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1")?, arg("arg2")?);
                vec![user(json!({"type": "text", "text": text}))]
            }
            "test_prompt_with_embedded_resource" => vec![
                user(
                    json!({"type": "resource", "resource": {"uri": arg("resourceUri")?, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}),
                ),
                user(json!({"type": "text", "text": "Please process the embedded resource above."})),
            ],
            "test_prompt_with_image" => vec![
                user(json!({"type": "image", "data": PNG, "mimeType": "image/png"})),
                user(json!({"type": "text", "text": "Please analyze the image above."})),
            ],
            other => return Err(McpError::invalid_params(format!("no prompt {other}"), None)),
        };
        Ok(from_json::<GetPromptResult>(json!({"messages": messages}))?.into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let mut listed = self.reference.list_resources(request, context).await?;
        let fixtures: ListResourcesResult = from_json(json!({"resources": [
            {"uri": "test://static-text", "name": "static-text", "description": "A static text resource", "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "static-binary", "description": "A static binary resource", "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "watched-resource", "description": "A resource to subscribe to", "mimeType": "text/plain"},
        ]}))?;
        listed.resources.extend(fixtures.resources);
        Ok(listed)
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        from_json(json!({"resourceTemplates": [
            {"uriTemplate": "test://template/{id}/data", "name": "template", "description": "Data for an id", "mimeType": "application/json"}
        ]}))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.clone();
        let contents = match uri.as_str() {
            "test://static-text" => ResourceContents::text("This is the content of the static text resource.", &uri)
                .with_mime_type("text/plain"),
            "test://watched-resource" => {
                ResourceContents::text("Watched resource content.", &uri).with_mime_type("text/plain")
            }
            "test://static-binary" => ResourceContents::blob(PNG, &uri).with_mime_type("image/png"),
            _ => match uri.strip_prefix("test://template/").and_then(|r| r.strip_suffix("/data")) {
                Some(id) => {
                    let text =
                        json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string();
                    ResourceContents::text(text, &uri).with_mime_type("application/json")
                }
                None => return self.reference.read_resource(request, context).await,
            },
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(&self, request: SubscribeRequestParams, _: RequestContext<RoleServer>) -> Result<(), McpError> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner()).insert(request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.subscriptions.lock().unwrap_or_else(|e| e.into_inner()).remove(&request.uri);
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let prefix = request.argument.value.clone();
        let values: Vec<String> = ["test", "testing", "tested"]
            .iter()
            .filter(|v| v.starts_with(prefix.as_str()))
            .map(|v| v.to_string())
            .collect();
        from_json(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}}))
    }

    async fn set_level(&self, _: SetLevelRequestParams, _: RequestContext<RoleServer>) -> Result<(), McpError> {
        Ok(())
    }
}
