//! The YAML configuration: schema, defaults, validation, and its resolution into a [`Plan`].
//!
//! Two stages, as ripgrep does with its flags: [`Config`] is the file as written (parsed and
//! validated, no I/O beyond reading it); [`Config::into_plan`] resolves it once (the `@self`
//! program, the working directory) into the [`Plan`] the rest of the program consumes.
//! Every error names the file, the field and, where the YAML parser knows it, the line and column.

mod compare;
mod plan;
mod profile;
mod server;
mod shard;
pub mod starter;
mod store;
mod threshold;
mod units;
mod validate;
mod workload;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use compare::{AUTO_LOOKS, CompareConfig, ExtendConfig, MinEffectConfig};
pub use plan::{Plan, ServerPlan};
pub use profile::Profile;
pub use server::{Era, FaultKindName, FaultStep, ServerConfig, Transport, UPSTREAM_PLACEHOLDER, UpstreamSim};
pub use shard::{CommonStart, MAX_SHARDS, Shard, StartAt, unix_ms};
pub use store::BaselineConfig;
pub use threshold::{Comparison, Metric as ThresholdMetric, Quantity, RawThresholds, Selector, Threshold};
pub use units::{HumanDuration, Percent, Rate};
pub use workload::{
    Breakpoint, DEFAULT_MAX_IN_FLIGHT, Executor, LoadModel, Method, MixEntry, Repetitions, Scenario, Spike, Stage,
    StageTarget, WorkloadConfig, sequence_bounds,
};

/// The program name that stands for this very executable (used by the embedded default).
pub const SELF_PROGRAM: &str = "@self";

const DEFAULT_CONFIG: &str = include_str!("default.yaml");
/// The `config_source` of runs of the embedded default.
pub const DEFAULT_SOURCE: &str = "<embedded default config>";

/// Where editors find the config's JSON Schema (`schema/perf.schema.json` at this version's tag).
pub const SCHEMA_URL: &str = concat!(
    "https://raw.githubusercontent.com/mcp-perfcheck/mcp-perfcheck/v",
    env!("CARGO_PKG_VERSION"),
    "/schema/perf.schema.json"
);

/// A configuration error; its `Display` names the file and the field (and line/column when known).
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server under test: how to build, launch and reach it.
    #[schemars(example = serde_json::json!({"command": ["node", "dist/index.js", "stdio"], "startup_timeout": "20s"}))]
    pub server: ServerConfig,
    /// What to drive: repetitions and scenarios.
    #[schemars(example = serde_json::json!({"repetitions": "auto", "scenarios": [{"name": "steady", "concurrency": 1, "duration": "10s"}]}))]
    pub workload: WorkloadConfig,
    /// How `compare` decides: significance, minimum effects, the gating metrics.
    #[serde(default)]
    pub compare: CompareConfig,
    /// Where the base run comes from when `compare` is given only the head (or `run` should
    /// measure both sides itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"store": "ab", "ref": "origin/main"}))]
    pub baseline: Option<BaselineConfig>,
    /// Where the base branch's past runs are kept (`git-branch` or `artifact`, as `baseline:`
    /// writes them): `history` reads them, and `ci` draws each changed metric's trend in the
    /// pull-request comment from them. Default: `baseline:` when it is one of those two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = serde_json::json!({"store": "git-branch"}))]
    pub history: Option<BaselineConfig>,
    /// Absolute limits in k6's grammar, checked after the run (see `threshold.rs`).
    #[serde(default)]
    #[schemars(example = serde_json::json!({"tools/call{tool:echo}": ["p(95)<50ms", "error_rate<1%"], "server": ["rss_peak<200MB"]}))]
    pub thresholds: RawThresholds,
}

impl Config {
    /// Reads and validates a config file.
    pub fn from_path(path: &Path) -> Result<(Config, PathBuf), ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError { source_name: name.clone(), message: format!("cannot read config file: {e}") })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let config = Config::from_yaml_in(&text, &name, &dir)?;
        Ok((config, dir))
    }

    /// The embedded default: the reference server under a short mixed workload.
    pub fn embedded_default() -> Config {
        Config::from_yaml(DEFAULT_CONFIG, DEFAULT_SOURCE).expect("the embedded default config is valid")
    }

    /// Parses and validates YAML text; `source_name` is used in error messages.
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_in(text, source_name, Path::new("."))
    }

    /// Like [`Config::from_yaml`], with files the config names read relative to `dir`.
    pub fn from_yaml_in(text: &str, source_name: &str, dir: &Path) -> Result<Config, ConfigError> {
        let error = |message| ConfigError { source_name: source_name.to_string(), message };
        let mut config: Config = serde_yaml::from_str(text).map_err(|e| error(describe_yaml_error(&e)))?;
        config.validate().map_err(error)?;
        config.read_argument_files(dir).map_err(error)?;
        Ok(config)
    }
}

impl Config {
    /// The store of past runs: `history:`, else `baseline:` when it keeps runs per commit
    /// (git-branch or artifact); a `file` store's path anchored at `config_dir`.
    pub fn history_in(&self, config_dir: &Path) -> Option<BaselineConfig> {
        let keeps_runs =
            |b: &&BaselineConfig| matches!(b, BaselineConfig::GitBranch { .. } | BaselineConfig::Artifact { .. });
        self.history.as_ref().or(self.baseline.as_ref().filter(keeps_runs)).cloned().map(|b| match b {
            BaselineConfig::File { path } => BaselineConfig::File { path: config_dir.join(path) },
            other => other,
        })
    }
}

/// The JSON Schema of the config file, generated from its types (`mcp-perfcheck schema`, and
/// committed as `schema/perf.schema.json`, which a test keeps current): editors that read the
/// `# yaml-language-server: $schema=` line complete, check and explain every field.
pub fn json_schema() -> String {
    let mut schema =
        schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<Config>();
    schema.insert("$id".into(), SCHEMA_URL.into());
    schema.insert("title".into(), "mcp-perfcheck config".into());
    schema.insert(
        "description".into(),
        "What `mcp-perfcheck run` builds, launches and drives, and how `compare` decides (see the README).".into(),
    );
    let mut value = schema.to_value();
    tidy_descriptions(&mut value);
    let mut text = serde_json::to_string_pretty(&value).expect("a schema serializes");
    text.push('\n');
    text
}

/// Doc comments as editors show them: wrapped lines joined, rustdoc links as plain code.
fn tidy_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(text) if key == "description" => {
                        let paragraphs: Vec<String> = text
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect();
                        *text = paragraphs.join("\n\n").replace("[`", "`").replace("`]", "`");
                    }
                    _ => tidy_descriptions(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(tidy_descriptions),
        _ => {}
    }
}

/// serde_yaml's messages already carry the field path and the line/column; we only make the
/// position easy to spot for editors ("line 3 column 5").
fn describe_yaml_error(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(loc) => {
            let text = e.to_string();
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            let message = text.strip_suffix(&suffix).unwrap_or(&text);
            format!("line {} column {}: {message}", loc.line(), loc.column())
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests;
