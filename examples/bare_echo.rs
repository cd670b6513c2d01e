//! A bare rmcp server with one `echo` tool and nothing else: the baseline the reference
//! server's cost is compared with in `scripts/bench-servers`. Over stdio, or Streamable HTTP
//! with `--http ADDR` (rmcp's service on `axum::serve`, TCP_NODELAY on, as rmcp's examples do).
//!
//! With `--pipes`, stdio goes through rmcp's `stdio_pipes` on a current-thread runtime, as
//! `mcp-perfcheck serve` does: the bench shows what that change alone is worth.
//!
//!     cargo run --release --example bare_echo [-- --pipes | --http 127.0.0.1:8080]

use std::sync::Arc;

use axum::serve::{Listener, ListenerExt};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to return.
    message: String,
}

#[derive(Debug, Clone)]
struct Bare {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Bare {
    fn new() -> Self {
        Bare { tool_router: Self::tool_router() }
    }

    #[tool(description = "Returns `message` unchanged.")]
    fn echo(&self, Parameters(EchoArgs { message }): Parameters<EchoArgs>) -> String {
        message
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let http = args.iter().position(|a| a == "--http").and_then(|i| args.get(i + 1));
    let pipes = args.iter().any(|a| a == "--pipes");
    // `--pipes`: what `mcp-perfcheck serve` does over stdio (non-blocking pipes, one thread).
    let runtime = if pipes {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?
    };
    runtime.block_on(async {
        match http {
            None if pipes => Bare::new().serve(rmcp::transport::stdio_pipes()).await?.waiting().await?,
            None => Bare::new().serve(rmcp::transport::stdio()).await?.waiting().await?,
            Some(addr) => {
                let service = StreamableHttpService::new(
                    || Ok(Bare::new()),
                    Arc::new(LocalSessionManager::default()),
                    StreamableHttpServerConfig::default(),
                );
                let app = axum::Router::new().route_service("/mcp", service);
                let listener = tokio::net::TcpListener::bind(addr).await?.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                println!("listening on http://{}/mcp", listener.local_addr()?);
                axum::serve(listener, app).await?;
                return Ok(());
            }
        };
        Ok(())
    })
}
