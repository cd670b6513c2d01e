//! `server:`: how the server under test is built, launched and reached, and the upstream
//! simulators and faults around it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

/// How the generator talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// JSON-RPC over the server's stdin and stdout.
    Stdio,
    /// Streamable HTTP at `server.url`.
    Http,
}

/// Which revision of the protocol the generator speaks over HTTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Era {
    /// The stateless 2026-07-28 revision when `server/discover` offers it, else the handshake.
    #[default]
    Auto,
    /// Always the 2025-11-25 handshake (`initialize`, an `Mcp-Session-Id` session), to check a
    /// server's handshake era even when it also speaks 2026-07-28.
    Handshake,
}

/// The server under test: how to build, launch and reach it.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Shell command run once (with `sh -c`) before anything is measured.
    #[serde(default)]
    #[schemars(example = &"cargo build --release")]
    pub build: Option<String>,
    /// Program and arguments that start the server. `@self` means this executable. Optional with
    /// `transport: http`: without it the server at `url` must already be running.
    #[serde(default)]
    #[schemars(example = ["node", "dist/index.js", "stdio"])]
    pub command: Vec<String>,
    /// `stdio` (JSON-RPC over the server's stdin and stdout) or `http` (Streamable HTTP at `url`).
    #[serde(default = "default_transport")]
    pub transport: Transport,
    /// `transport: http`: the MCP endpoint, e.g. `http://127.0.0.1:3000/mcp`. When `command` is
    /// given too, the server is started and the run waits until this URL accepts connections.
    #[serde(default)]
    #[schemars(example = &"http://127.0.0.1:3000/mcp")]
    pub url: Option<String>,
    /// `transport: http`: headers sent with every request, e.g. a bearer token. A value, or
    /// `{env: NAME}` to read it from the environment when the run connects (a secret kept out of
    /// the file, and out of the config's hash). Never shown in reports or errors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(example = serde_json::json!({"authorization": {"env": "MCP_TOKEN"}, "x-tenant": "load-test"}))]
    pub headers: BTreeMap<String, Header>,
    /// `transport: http` with an `https://` URL: root certificates (PEM) to trust besides the
    /// system's, for a server behind a private certificate authority; relative to the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"certs/staging-ca.pem")]
    pub ca_file: Option<PathBuf>,
    /// `transport: http`: `auto` (the stateless 2026-07-28 revision when the server offers it,
    /// else the handshake) or `handshake` (always the 2025-11-25 handshake and its session).
    #[serde(default)]
    pub era: Era,
    /// Environment variables for `build` and the server, on top of this process's own.
    #[serde(default)]
    #[schemars(example = std::collections::BTreeMap::from([("PORT".to_string(), "3000".to_string())]))]
    pub env: BTreeMap<String, String>,
    /// Working directory for `build` and `command`, relative to the config file.
    #[serde(default)]
    #[schemars(example = &"../..")]
    pub cwd: Option<PathBuf>,
    /// How long the server may take to answer `initialize`.
    #[serde(default = "default_startup_timeout")]
    pub startup_timeout: HumanDuration,
    /// How long the server gets to exit after SIGTERM before its process group is killed.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// The server's Prometheus endpoint (`http://127.0.0.1:9464/metrics`), scraped at the start
    /// and end of each measured window and every second in between.
    #[serde(default)]
    #[schemars(example = &"http://127.0.0.1:9464/metrics")]
    pub metrics_url: Option<String>,
    /// Upstream simulators started for every repetition, by name: `@upstream:NAME` in
    /// `command`, `env` and `url` becomes that simulator's address (`http://127.0.0.1:PORT`),
    /// and scenarios' `faults` break them on cue.
    #[serde(default)]
    #[schemars(example = serde_json::json!({"catalog": {"latency": "lognormal:2ms,0.4", "seed": 1}}))]
    pub upstreams: BTreeMap<String, UpstreamSim>,
}

/// A configured request header's value: the value itself, or `{env: NAME}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Header(pub mcp_runtime::http::HeaderSource);

impl schemars::JsonSchema for Header {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Header".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A header's value, or {env: NAME} to read it from the environment when the run connects.",
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"env": {"type": "string", "description": "The environment variable holding the value.", "examples": ["MCP_TOKEN"]}},
                    "required": ["env"],
                    "additionalProperties": false
                }
            ],
            "examples": ["load-test", {"env": "MCP_TOKEN"}],
        })
    }
}

/// Headers the client sets itself, which a config may not replace.
pub const RESERVED_HEADERS: [&str; 8] = [
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
];

/// How a simulated upstream answers when no fault says otherwise.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSim {
    /// `fixed:2ms`, `uniform:1ms..5ms` or `lognormal:2ms,0.5`.
    #[serde(default = "default_upstream_latency")]
    pub latency: crate::upstream::Latency,
    /// The share of requests answered with `error_status` (0.01 = 1%).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub error_rate: f64,
    /// The HTTP status of those errors.
    #[serde(default = "default_error_status")]
    pub error_status: u16,
    /// Seeds every draw, so a run's answers are reproducible.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_upstream_latency() -> crate::upstream::Latency {
    crate::upstream::Latency::Fixed(Duration::from_millis(1))
}

fn default_error_status() -> u16 {
    503
}

fn default_seed() -> u64 {
    1
}

/// `@upstream:NAME`: the address of the upstream simulator called NAME.
pub const UPSTREAM_PLACEHOLDER: &str = "@upstream:";

/// A fault applied to a simulated upstream `at` into the measured window, for `duration`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// When the fault starts, into the measured window.
    pub at: HumanDuration,
    /// One of `server.upstreams`.
    #[schemars(example = &"catalog")]
    pub upstream: String,
    /// `outage`, `slowdown` or `error_burst`.
    pub kind: FaultKindName,
    /// How long the fault lasts.
    pub duration: HumanDuration,
    /// outage: `refuse` (the port closes; the default) or `unavailable` (503s).
    #[serde(default)]
    pub mode: Option<crate::upstream::OutageMode>,
    /// slowdown: the latency while it lasts.
    #[serde(default)]
    pub latency: Option<crate::upstream::Latency>,
    /// error_burst: the share of requests that fail, and with what status (503).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    #[schemars(example = 0.5)]
    pub rate: Option<f64>,
    /// error_burst: the HTTP status of the failed requests (default 503).
    #[serde(default)]
    #[schemars(example = 503)]
    pub status: Option<u16>,
}

/// What a fault does to its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultKindName {
    /// The upstream is down (see `mode`).
    Outage,
    /// Every answer takes `latency`.
    Slowdown,
    /// A share (`rate`) of the requests fail with `status`.
    ErrorBurst,
}

impl FaultStep {
    /// The simulator's fault, checked (`Err`: which field is missing or wrong).
    pub fn fault(&self) -> Result<crate::upstream::FaultKind, String> {
        use crate::upstream::FaultKind;
        match self.kind {
            FaultKindName::Outage => Ok(FaultKind::Outage { mode: self.mode.unwrap_or_default() }),
            FaultKindName::Slowdown => match self.latency {
                Some(latency) => Ok(FaultKind::Slowdown { latency }),
                None => Err("`latency` is required for a slowdown, e.g. fixed:200ms".into()),
            },
            FaultKindName::ErrorBurst => match self.rate {
                Some(rate) if (0.0..=1.0).contains(&rate) => {
                    Ok(FaultKind::ErrorBurst { rate, status: self.status.unwrap_or(503) })
                }
                Some(rate) => Err(format!("`rate` must be in [0, 1], got {rate}")),
                None => Err("`rate` is required for an error_burst, e.g. 0.5".into()),
            },
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            FaultKindName::Outage => "outage",
            FaultKindName::Slowdown => "slowdown",
            FaultKindName::ErrorBurst => "error_burst",
        }
    }
}

fn default_transport() -> Transport {
    Transport::Stdio
}
fn default_startup_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(20))
}
fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
