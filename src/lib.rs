//! mcp-perfcheck: a performance regression gate for Model Context Protocol servers.
//!
//! The flow: [`config`] → build → launch ([`client`]) → workload ([`load`], recording with
//! [`measure`]) → [`results`] → [`stats`] → [`report`] → exit code. See ARCHITECTURE.md.

pub mod baseline;
pub mod cli;
pub mod client;
pub mod config;
pub mod github;
pub mod history;
pub mod live;
pub mod load;
pub mod measure;
pub mod report;
pub mod results;
/// The resilience runtime, a crate of its own (`crates/mcp-runtime`).
pub use mcp_runtime as runtime;
pub mod server;
pub mod stats;
pub mod upstream;
