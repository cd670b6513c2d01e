//! An MCP server (stdio) whose one tool calls an external HTTPS API through a tower stack of
//! the runtime's layers: cache → retry → circuit breaker → timeout → pooled HTTPS client with
//! an `Authorization` header.
//!
//! ```text
//! UPSTREAM_URL=https://api.example.com UPSTREAM_TOKEN=… cargo run -p mcp-runtime-examples --bin rmcp_https_tool
//! ```
//!
//! The tool `item` answers `GET {UPSTREAM_URL}/items/{id}` as structured content; a failure is
//! a tool error saying why and when to come back, never a hang: each attempt has 2 s, the
//! breaker stops calling a failing API, and a fresh answer is cached for 30 s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mcp_runtime::http::HeaderSource;
use mcp_runtime::layer::{self, BoxError, BreakerLayer, CacheLayer, RetryLayer, TimeoutLayer};
use mcp_runtime::{BreakerConfig, Cache, CacheConfig, CircuitBreaker, HttpConfig, HttpUpstream, Retry, RetryConfig};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt as _, schemars, tool, tool_handler, tool_router};
use serde_json::json;
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt as _};

/// The API's answers, as the cache keeps them (status and body; `http::Response` is cloneable).
type Api = BoxCloneSyncService<http::Request<Bytes>, http::Response<Bytes>, BoxError>;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct ItemArgs {
    /// The item's id: letters, digits and dashes.
    id: String,
}

#[derive(Clone)]
struct Shop {
    api: Api,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Shop {
    #[tool(description = "One item from the API, cached for 30 s. A failure says why and when to retry.")]
    async fn item(&self, Parameters(ItemArgs { id }): Parameters<ItemArgs>) -> Result<CallToolResult, McpError> {
        // Untrusted input never reaches the URL unchecked.
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(McpError::invalid_params("`id` must be 1 to 64 letters, digits or dashes", None));
        }
        let request = http::Request::get(format!("/items/{id}")).body(Bytes::new()).expect("a checked path");
        Ok(match self.api.clone().oneshot(request).await {
            Ok(answer) if answer.status() == 200 => match serde_json::from_slice(answer.body()) {
                Ok(item) => CallToolResult::structured(item),
                Err(e) => {
                    CallToolResult::structured_error(json!({"error": format!("the API's answer is not JSON: {e}")}))
                }
            },
            Ok(answer) => {
                CallToolResult::structured_error(json!({"error": format!("the API answered {}", answer.status())}))
            }
            Err(e) => CallToolResult::structured_error(json!({
                "error": e.to_string(),
                "retry_after_ms": layer::retry_after(e.as_ref()).map(|d| d.as_millis() as u64),
            })),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Shop {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("rmcp-https-tool", env!("CARGO_PKG_VERSION")))
    }
}

/// The stack, outermost first: what each layer is for is in `mcp_runtime::layer`.
fn api(url: &str, token: Option<String>) -> Result<Api, Box<dyn std::error::Error>> {
    let clock = mcp_runtime::tokio_clock();
    let mut http = HttpConfig::default();
    if let Some(token) = token {
        http.headers = BTreeMap::from([("authorization".into(), HeaderSource::Value(format!("Bearer {token}")))]);
    }
    let client = HttpUpstream::new("api", url, http, clock.clone())?;
    let cache = Cache::new(CacheConfig { ttl: Duration::from_secs(30), ..CacheConfig::default() }, clock.clone());
    let retry = Arc::new(Retry::new(RetryConfig::default(), clock.clone()));
    let breaker = CircuitBreaker::new(BreakerConfig::default(), clock.clone());
    let stack = ServiceBuilder::new()
        // Only reads are cached, by their URI.
        .layer(CacheLayer::new(cache, |r: &http::Request<Bytes>| {
            (r.method() == http::Method::GET).then(|| r.uri().to_string())
        }))
        .layer(RetryLayer::new(retry))
        .layer(BreakerLayer::new(breaker))
        .layer(TimeoutLayer::new(Duration::from_secs(2), clock))
        .service(client);
    Ok(BoxCloneSyncService::new(stack))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("UPSTREAM_URL").unwrap_or_else(|_| "https://api.example.com".into());
    let api = api(&url, std::env::var("UPSTREAM_TOKEN").ok())?;
    let shop = Shop { api, tool_router: Shop::tool_router() };
    shop.serve(rmcp::transport::stdio()).await?.waiting().await?;
    Ok(())
}
