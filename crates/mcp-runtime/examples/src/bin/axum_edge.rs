//! An MCP endpoint (Streamable HTTP on axum) with the runtime's rate limit and bulkhead as
//! tower middleware in front of rmcp: a call past the rate is shed with 429, past the
//! concurrency bound with 503, both with `Retry-After`, before rmcp parses a byte of it. The
//! tool behind it reads an upstream through the runtime's preset stack (`Runtime`).
//!
//! ```text
//! EDGE_LISTEN=127.0.0.1:8080 EDGE_RATE=50 EDGE_BURST=10 EDGE_CONCURRENCY=8 \
//!   UPSTREAM_URL=http://127.0.0.1:9000 cargo run -p mcp-runtime-examples --bin axum_edge
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use mcp_runtime::layer::{self, BoxError, BulkheadLayer, RateLimitLayer};
use mcp_runtime::{Bulkhead, BulkheadConfig, Overloaded, RateConfig, RateLimit, Runtime, RuntimeConfig};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::json;
use tower::ServiceBuilder;

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct LookupArgs {
    /// The item's id: letters, digits and dashes.
    id: String,
}

#[derive(Clone)]
struct Catalog {
    runtime: Arc<Runtime>,
    tool_router: Arc<ToolRouter<Self>>,
}

#[tool_router]
impl Catalog {
    #[tool(description = "One item from the catalog upstream, through the runtime's cache, retry and breaker.")]
    async fn lookup(&self, Parameters(LookupArgs { id }): Parameters<LookupArgs>) -> Result<CallToolResult, McpError> {
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(McpError::invalid_params("`id` must be 1 to 64 letters, digits or dashes", None));
        }
        let catalog = self.runtime.upstream("catalog").map_err(|e| McpError::internal_error(e.to_string(), None))?;
        Ok(match catalog.get_json(&format!("/items/{id}")).await {
            Ok(reply) => {
                CallToolResult::structured(json!({"item": reply.value.as_deref(), "served_by": reply.level.name()}))
            }
            Err(unavailable) => CallToolResult::structured_error(json!({"error": unavailable.to_string()})),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Catalog {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("axum-edge", env!("CARGO_PKG_VERSION")))
    }
}

/// A shed call's answer: 429 for the rate, 503 for the bulkhead, with when to come back.
async fn shed(error: BoxError) -> impl IntoResponse {
    let status = match layer::find::<Overloaded>(error.as_ref()) {
        Some(Overloaded::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
        None => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let wait = layer::retry_after(error.as_ref()).unwrap_or(Duration::from_secs(1));
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0); // rounded up: never too early
    (status, [("retry-after", seconds.to_string())], error.to_string())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = mcp_runtime::tokio_clock();
    let upstream = std::env::var("UPSTREAM_URL").unwrap_or_else(|_| "http://127.0.0.1:9000".into());
    let yaml = format!("upstreams:\n  catalog:\n    url: {}\n", serde_json::to_string(&upstream)?);
    let runtime = Arc::new(Runtime::new(&RuntimeConfig::from_yaml(&yaml, "UPSTREAM_URL")?, clock.clone())?);
    let catalog = Catalog { runtime, tool_router: Arc::new(Catalog::tool_router()) };
    let mcp = StreamableHttpService::new(
        move || Ok(catalog.clone()),
        Arc::new(LocalSessionManager::default()),
        // Stateless, answering plain JSON: a call's answer is ready when its tool is done, so
        // the bulkhead's slot is held for the whole call. (Around an SSE stream a tower layer
        // sees only the response head: the slot would be freed before the tool ran.)
        StreamableHttpServerConfig::default().with_legacy_session_mode(false).with_json_response(true),
    );

    let rate =
        RateConfig { per_second: env_or("EDGE_RATE", 50.0), burst: env_or("EDGE_BURST", 10), ..RateConfig::default() };
    let bulkhead = BulkheadConfig {
        max_concurrent: env_or("EDGE_CONCURRENCY", 8),
        max_queue: env_or("EDGE_QUEUE", 16),
        max_queue_wait: Duration::from_millis(env_or("EDGE_QUEUE_WAIT_MS", 100)),
    };
    // Outermost first: errors become answers, then the rate, then the concurrency bound.
    let edge = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(shed))
        .layer(RateLimitLayer::new(Arc::new(RateLimit::new(rate, clock.clone()))))
        .layer(BulkheadLayer::new(Arc::new(Bulkhead::new(bulkhead, clock))));
    let app = axum::Router::new().route_service("/mcp", mcp).layer(edge);

    let listener =
        tokio::net::TcpListener::bind(std::env::var("EDGE_LISTEN").unwrap_or("127.0.0.1:8080".into())).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
