//! The reference MCP server, on rmcp (the official Rust SDK) and the resilience runtime, over
//! stdio.
//!
//! It is what `mcp-perfcheck run` checks when given no config. Tools:
//! - `echo {message}`: returns `message`; protocol overhead only;
//! - `compute {iterations}`: deterministic CPU work (see [`tools::compute`]);
//! - `lookup {id}`: one item from the `catalog` upstream through limiter, breaker, retry, pool,
//!   cache and fallback; a degraded answer says which level served it;
//! - `batch_lookup {ids}`: many items, coalesced by the micro-batcher into batch calls;
//! - `aggregate {id}`: the item from `catalog`, `pricing` and `inventory` at once, each behind
//!   its own bulkhead; partial results are marked degraded;
//! - `runtime_stats`: the runtime's statistics (also the resource `runtime://stats`).
//!
//! The upstream tools need upstreams: `serve --upstream URL` (an upstream simulator) or
//! `--runtime-config FILE`, and `MCP_RUNTIME_UPSTREAM_<NAME>_URL` on top.

mod conformance;
pub mod http;
pub mod jsonrpc;
mod ready;
#[cfg(feature = "redis")]
pub mod sessions;
mod stdio;
mod tools;
pub mod upstreams;

use std::sync::Arc;

use rmcp::ErrorData as McpError;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolResult, ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents,
};
use rmcp::service::RequestContext;
use serde_json::{Value, json};

use crate::runtime::Runtime;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

pub use conformance::ConformanceServer;
pub use stdio::DEFAULT_MAX_MESSAGE_BYTES;
pub use tools::compute;

/// The most `compute` iterations one call may ask for, so a typo cannot hang the server.
pub const MAX_ITERATIONS: u64 = 1_000_000_000;

/// `compute` calls up to this much work (about 10 µs) run inline: handing them to another
/// thread would cost about as much as the work.
const INLINE_ITERATIONS: u64 = 10_000;

/// Options for `mcp-perfcheck serve`.
#[derive(Clone)]
pub struct ServeOptions {
    /// Multiplies the work of every `compute` call. For trying out the gate: a build with a
    /// multiplier of 4 is a server whose `compute` got four times slower, 1.1 one that does 10%
    /// more work.
    pub work_multiplier: f64,
    /// The runtime the upstream tools call through (`None`: they fail, as tool errors, saying
    /// that no upstream is configured).
    pub runtime: Option<Arc<Runtime>>,
    /// Also serve the conformance suite's fixtures ([`ConformanceServer`]).
    pub conformance: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { work_multiplier: 1.0, runtime: None, conformance: false }
    }
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("work_multiplier", &self.work_multiplier)
            .field("runtime", &self.runtime.is_some())
            .field("conformance", &self.conformance)
            .finish()
    }
}

const NO_UPSTREAM: &str = "no upstream is configured: start the server with `serve --upstream URL` \
    (an upstream simulator) or `--runtime-config FILE`";

/// The URI of the runtime's statistics as a resource.
pub use crate::runtime::STATS_URI;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to return.
    pub message: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ComputeArgs {
    /// Rounds of work; about a nanosecond each on a current CPU.
    pub iterations: u64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LookupArgs {
    /// The item's id: 1-64 characters of A-Z a-z 0-9 _ . - (an integer is taken as its
    /// decimal digits, so that a workload's `$sequence` makes ids).
    #[serde(deserialize_with = "string_or_integer")]
    pub id: String,
}

fn string_or_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("`id` must be a string, got {other}"))),
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct BatchLookupArgs {
    /// The items' ids (at most 100).
    pub ids: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NoArgs {}

#[derive(Debug, Clone)]
pub struct ReferenceServer {
    /// Shared: rmcp's HTTP service asks its factory for a fresh server on every request (to look
    /// up a tool's schema), and building a router generates every tool's schema.
    tool_router: Arc<ToolRouter<Self>>,
    options: ServeOptions,
}

#[tool_router]
impl ReferenceServer {
    pub fn new(options: ServeOptions) -> Self {
        Self { tool_router: Arc::new(Self::tool_router()), options }
    }

    #[tool(description = "Returns `message` unchanged. Measures protocol overhead only.")]
    fn echo(&self, Parameters(EchoArgs { message }): Parameters<EchoArgs>) -> String {
        message
    }

    #[tool(description = "Deterministic CPU work: `iterations` rounds of a 64-bit mixer. Returns the final value.")]
    async fn compute(&self, Parameters(ComputeArgs { iterations }): Parameters<ComputeArgs>) -> Result<String, String> {
        if iterations > MAX_ITERATIONS {
            return Err(format!("iterations must be at most {MAX_ITERATIONS}"));
        }
        // Saturating: `as` clamps a product beyond u64 to u64::MAX.
        let work = (iterations as f64 * self.options.work_multiplier).round() as u64;
        if work <= INLINE_ITERATIONS {
            return Ok(compute(work).to_string());
        }
        // Off the protocol loop: over stdio it is a single thread, which a long call would stall.
        tokio::task::spawn_blocking(move || compute(work).to_string()).await.map_err(|e| e.to_string())
    }

    #[tool(description = "One item from the `catalog` upstream through rate limit, bulkhead, retry, \
        circuit breaker, connection pool, cache (TTL, stale-while-revalidate, stale-if-error) and \
        fallback. `served_by` says which level answered (fresh, stale, static_default); anything \
        but fresh is `degraded`.")]
    async fn lookup(&self, Parameters(LookupArgs { id }): Parameters<LookupArgs>) -> Result<CallToolResult, McpError> {
        upstreams::check_id(&id).map_err(|e| McpError::invalid_params(e, None))?;
        let runtime = match self.runtime() {
            Ok(runtime) => runtime,
            Err(no_upstream) => return Ok(no_upstream),
        };
        Ok(upstreams::lookup(runtime, &id).await)
    }

    #[tool(description = "Many items from the `catalog` upstream: cached ones from the cache, the \
        rest coalesced by the micro-batcher into batch calls. Each item says how it was served.")]
    async fn batch_lookup(
        &self,
        Parameters(BatchLookupArgs { ids }): Parameters<BatchLookupArgs>,
    ) -> Result<CallToolResult, McpError> {
        if ids.len() > upstreams::MAX_BATCH {
            let message = format!("`ids` holds {} ids; at most {} are allowed", ids.len(), upstreams::MAX_BATCH);
            return Err(McpError::invalid_params(message, None));
        }
        for id in &ids {
            upstreams::check_id(id).map_err(|e| McpError::invalid_params(e, None))?;
        }
        let runtime = match self.runtime() {
            Ok(runtime) => runtime,
            Err(no_upstream) => return Ok(no_upstream),
        };
        Ok(tool_result(Box::pin(upstreams::batch_lookup(runtime, &ids)).await))
    }

    #[tool(description = "The item from the `catalog`, `pricing` and `inventory` upstreams at once, \
        each behind its own bulkhead. A part that fails leaves the others: the result is then \
        marked partial (`complete: false`) and degraded.")]
    async fn aggregate(
        &self,
        Parameters(LookupArgs { id }): Parameters<LookupArgs>,
    ) -> Result<CallToolResult, McpError> {
        upstreams::check_id(&id).map_err(|e| McpError::invalid_params(e, None))?;
        let runtime = match self.runtime() {
            Ok(runtime) => runtime,
            Err(no_upstream) => return Ok(no_upstream),
        };
        Ok(tool_result(Box::pin(upstreams::aggregate(runtime, &id)).await))
    }

    #[tool(description = "The runtime's statistics: per upstream the breaker's state and \
        transitions, cache hits and misses, pool connections, throttle rejections, retries and \
        fallback levels; the process's memory, CPU and descriptors. Also the resource runtime://stats.")]
    async fn runtime_stats(&self, _: Parameters<NoArgs>) -> Result<CallToolResult, McpError> {
        Ok(match self.runtime() {
            Ok(runtime) => CallToolResult::structured(stats_json(runtime)),
            Err(no_upstream) => no_upstream,
        })
    }

    /// The reference tools, as `tools/list` shows them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }

    /// The runtime, or the tool error a client sees without one: a server started without
    /// upstreams is not protocol misuse, so it is `isError: true`, not a JSON-RPC error.
    fn runtime(&self) -> Result<&Arc<Runtime>, CallToolResult> {
        self.options.runtime.as_ref().ok_or_else(|| CallToolResult::structured_error(json!({"error": NO_UPSTREAM})))
    }
}

/// A tool's answer: structured content, `isError` when nothing could serve it.
fn tool_result(outcome: Result<Value, Value>) -> CallToolResult {
    match outcome {
        Ok(v) => CallToolResult::structured(v),
        Err(v) => CallToolResult::structured_error(v),
    }
}

fn stats_json(runtime: &Runtime) -> Value {
    serde_json::to_value(runtime.stats()).unwrap_or_else(|e| json!({"error": e.to_string()}))
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ReferenceServer {
    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let stats = Resource::new(STATS_URI, "runtime_stats")
            .with_description("The runtime's statistics, as the runtime_stats tool returns them")
            .with_mime_type("application/json");
        Ok(ListResourcesResult::with_all_items(if self.options.runtime.is_some() { vec![stats] } else { vec![] }))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if request.uri != STATS_URI {
            return Err(McpError::resource_not_found(format!("no resource {}", request.uri), None));
        }
        let runtime = self.options.runtime.as_ref().ok_or_else(|| McpError::resource_not_found(NO_UPSTREAM, None))?;
        let text = serde_json::to_string_pretty(&stats_json(runtime)).unwrap_or_default();
        let contents = ResourceContents::text(text, STATS_URI).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("mcp-perfcheck-reference", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "The mcp-perfcheck reference server: `echo` and `compute`, and `lookup`, `batch_lookup`, \
                 `aggregate` and `runtime_stats` over the resilience runtime, for performance checks.",
            )
    }
}

/// Serves over stdin/stdout until the client closes stdin.
///
/// The standard streams are driven through tokio's non-blocking pipe driver when they are pipes
/// (as MCP clients launch servers), not tokio's `Stdin`/`Stdout`, which hand every read and write
/// to the blocking thread pool: that hand-off was most of the server's cost per call (170 µs of
/// CPU per echo call against 14 µs without it, `scripts/bench-servers`). Run it on a
/// current-thread runtime: one connection gains nothing from more threads but cross-thread
/// wake-ups; `compute` moves its heavy calls to the blocking pool itself.
///
/// Every line is judged before rmcp sees it ([`jsonrpc`]): bad input gets its JSON-RPC error, and
/// lines past `max_message_bytes` are refused without being buffered whole.
pub async fn serve_stdio(options: ServeOptions, max_message_bytes: usize) -> anyhow::Result<()> {
    let (read, write) = rmcp::transport::stdio_pipes();
    let transport = stdio::StrictTransport::new(read, write, max_message_bytes);
    if options.conformance {
        let service = ConformanceServer::new(ReferenceServer::new(options)).serve(transport).await?;
        service.waiting().await?;
    } else {
        let service = ReferenceServer::new(options).serve(transport).await?;
        service.waiting().await?;
    }
    Ok(())
}
