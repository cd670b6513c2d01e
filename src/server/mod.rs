//! The reference MCP server, on rmcp (the official Rust SDK), over stdio.
//!
//! It is what `mcp-perfcheck run` checks when given no config. Tools:
//! - `echo {message}`: returns `message`; protocol overhead only;
//! - `compute {iterations}`: deterministic CPU work (see [`tools::compute`]).

mod tools;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

pub use tools::compute;

/// The most `compute` iterations one call may ask for, so a typo cannot hang the server.
pub const MAX_ITERATIONS: u64 = 1_000_000_000;

/// Options for `mcp-perfcheck serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Multiplies the work of every `compute` call. For trying out the gate: a build with a
    /// multiplier of 4 is a server whose `compute` got four times slower.
    pub work_multiplier: u64,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self { work_multiplier: 1 }
    }
}

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

#[derive(Debug, Clone)]
pub struct ReferenceServer {
    tool_router: ToolRouter<Self>,
    options: ServeOptions,
}

#[tool_router]
impl ReferenceServer {
    pub fn new(options: ServeOptions) -> Self {
        Self { tool_router: Self::tool_router(), options }
    }

    #[tool(description = "Returns `message` unchanged. Measures protocol overhead only.")]
    fn echo(&self, Parameters(EchoArgs { message }): Parameters<EchoArgs>) -> String {
        message
    }

    #[tool(description = "Deterministic CPU work: `iterations` rounds of a 64-bit mixer. Returns the final value.")]
    fn compute(&self, Parameters(ComputeArgs { iterations }): Parameters<ComputeArgs>) -> Result<String, String> {
        if iterations > MAX_ITERATIONS {
            return Err(format!("iterations must be at most {MAX_ITERATIONS}"));
        }
        let work = iterations.saturating_mul(self.options.work_multiplier);
        Ok(compute(work).to_string())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ReferenceServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mcp-perfcheck-reference", env!("CARGO_PKG_VERSION")))
            .with_instructions("The mcp-perfcheck reference server: `echo` and `compute` tools for performance checks.")
    }
}

/// Serves over stdin/stdout until the client closes stdin.
pub async fn serve_stdio(options: ServeOptions) -> anyhow::Result<()> {
    let service = ReferenceServer::new(options).serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    Ok(())
}
