//! The YAML configuration: schema, defaults, validation, and its resolution into a [`Plan`].
//!
//! Two stages, as ripgrep does with its flags: [`Config`] is the file as written (parsed and
//! validated, no I/O beyond reading it); [`Config::into_plan`] resolves it once (the `@self`
//! program, the working directory) into the [`Plan`] the rest of the program consumes.
//! Every error names the file, the field and, where the YAML parser knows it, the line and column.

mod profile;
mod threshold;
mod units;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use profile::Profile;
pub use threshold::{Comparison, Metric as ThresholdMetric, Quantity, RawThresholds, Selector, Threshold};
pub use units::{HumanDuration, Percent, Rate};

/// The program name that stands for this very executable (used by the embedded default).
pub const SELF_PROGRAM: &str = "@self";

const DEFAULT_CONFIG: &str = include_str!("default.yaml");
/// The `config_source` of runs of the embedded default.
pub const DEFAULT_SOURCE: &str = "<embedded default config>";

/// A configuration error; its `Display` names the file and the field (and line/column when known).
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    pub source_name: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub compare: CompareConfig,
    /// Where the base run comes from when `compare` is given only the head (or `run` should
    /// measure both sides itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineConfig>,
    /// Absolute limits in k6's grammar, checked after the run (see `threshold.rs`).
    #[serde(default)]
    pub thresholds: RawThresholds,
}

/// `baseline:`: one of four stores, chosen by `store`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "RawBaseline", tag = "store", rename_all = "kebab-case")]
pub enum BaselineConfig {
    /// A results file kept in the repository, written by `mcp-perfcheck baseline save`.
    File {
        /// Relative to the config's directory.
        path: PathBuf,
    },
    /// Results per commit on a data branch of the repository.
    GitBranch {
        branch: String,
        remote: String,
        /// How many commits' results the branch keeps (the oldest are dropped).
        retention: u32,
        /// The only branch whose saves are pushed (default: the remote's default branch).
        push_from: Option<String>,
        /// The branch a head is compared against (default: `GITHUB_BASE_REF`, else
        /// `push_from`'s default).
        base: Option<String>,
    },
    /// The results uploaded as a workflow artifact by the latest successful run on the base
    /// branch, fetched through the GitHub API.
    Artifact {
        name: String,
        /// The base branch (default: `GITHUB_BASE_REF`, else the repository's default).
        branch: Option<String>,
        /// Only runs of this workflow file (e.g. `perf.yml`).
        workflow: Option<String>,
    },
    /// Same-runner A/B: `run` builds and measures this ref too (like `--base-ref`).
    Ab {
        #[serde(rename = "ref")]
        git_ref: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum StoreKind {
    File,
    GitBranch,
    Artifact,
    Ab,
}

/// `baseline:` as written: read flat (so that serde names the line of an unknown field), then
/// checked against the store's own fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    store: StoreKind,
    path: Option<PathBuf>,
    branch: Option<String>,
    remote: Option<String>,
    retention: Option<u32>,
    push_from: Option<String>,
    base: Option<String>,
    name: Option<String>,
    workflow: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
}

impl TryFrom<RawBaseline> for BaselineConfig {
    type Error = String;
    fn try_from(r: RawBaseline) -> Result<Self, String> {
        let given = [
            ("path", r.path.is_some()),
            ("branch", r.branch.is_some()),
            ("remote", r.remote.is_some()),
            ("retention", r.retention.is_some()),
            ("push_from", r.push_from.is_some()),
            ("base", r.base.is_some()),
            ("name", r.name.is_some()),
            ("workflow", r.workflow.is_some()),
            ("ref", r.git_ref.is_some()),
        ];
        let (store, allowed): (&str, &[&str]) = match r.store {
            StoreKind::File => ("file", &["path"]),
            StoreKind::GitBranch => ("git-branch", &["branch", "remote", "retention", "push_from", "base"]),
            StoreKind::Artifact => ("artifact", &["name", "branch", "workflow"]),
            StoreKind::Ab => ("ab", &["ref"]),
        };
        if let Some((field, _)) = given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
            return Err(format!(
                "field `baseline.{field}` does not apply to store `{store}` (its fields: {})",
                allowed.join(", ")
            ));
        }
        Ok(match r.store {
            StoreKind::File => BaselineConfig::File { path: r.path.unwrap_or_else(default_baseline_path) },
            StoreKind::GitBranch => {
                let retention = r.retention.unwrap_or_else(default_retention);
                if retention == 0 {
                    return Err("field `baseline.retention` must be at least 1".into());
                }
                BaselineConfig::GitBranch {
                    branch: r.branch.unwrap_or_else(default_data_branch),
                    remote: r.remote.unwrap_or_else(default_remote),
                    retention,
                    push_from: r.push_from,
                    base: r.base,
                }
            }
            StoreKind::Artifact => BaselineConfig::Artifact {
                name: r.name.unwrap_or_else(default_artifact_name),
                branch: r.branch,
                workflow: r.workflow,
            },
            StoreKind::Ab => BaselineConfig::Ab {
                git_ref: r.git_ref.ok_or("field `baseline.ref` is required by store `ab` (the base git ref)")?,
            },
        })
    }
}

fn default_baseline_path() -> PathBuf {
    PathBuf::from(".mcp-perfcheck/baseline.json")
}
fn default_data_branch() -> String {
    "mcp-perfcheck-data".into()
}
fn default_remote() -> String {
    "origin".into()
}
fn default_retention() -> u32 {
    100
}
fn default_artifact_name() -> String {
    "mcp-perfcheck-results".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// JSON-RPC over the server's stdin and stdout.
    Stdio,
    /// Streamable HTTP at `server.url`.
    Http,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Shell command run once (with `sh -c`) before anything is measured.
    #[serde(default)]
    pub build: Option<String>,
    /// Program and arguments that start the server. `@self` means this executable. Optional with
    /// `transport: http`: without it the server at `url` must already be running.
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default = "default_transport")]
    pub transport: Transport,
    /// `transport: http`: the MCP endpoint, e.g. `http://127.0.0.1:3000/mcp`. When `command` is
    /// given too, the server is started and the run waits until this URL accepts connections.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory for `build` and `command`, relative to the config file.
    #[serde(default)]
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
    pub metrics_url: Option<String>,
    /// Upstream simulators started for every repetition, by name: `@upstream:NAME` in
    /// `command`, `env` and `url` becomes that simulator's address (`http://127.0.0.1:PORT`),
    /// and scenarios' `faults` break them on cue.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamSim>,
}

/// How a simulated upstream answers when no fault says otherwise.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSim {
    /// `fixed:2ms`, `uniform:1ms..5ms` or `lognormal:2ms,0.5`.
    #[serde(default = "default_upstream_latency")]
    pub latency: crate::upstream::Latency,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_error_status")]
    pub error_status: u16,
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    pub at: HumanDuration,
    /// One of `server.upstreams`.
    pub upstream: String,
    pub kind: FaultKindName,
    pub duration: HumanDuration,
    /// outage: `refuse` (the port closes; the default) or `unavailable` (503s).
    #[serde(default)]
    pub mode: Option<crate::upstream::OutageMode>,
    /// slowdown: the latency while it lasts.
    #[serde(default)]
    pub latency: Option<crate::upstream::Latency>,
    /// error_burst: the share of requests that fail, and with what status (503).
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKindName {
    Outage,
    Slowdown,
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Fresh server processes per scenario: the unit of replication for comparisons. A number,
    /// or `auto` (the default): a pilot of six, then as many as the noise asks for within
    /// `compare.budget` (see [`Repetitions`]).
    #[serde(default)]
    pub repetitions: Repetitions,
    /// A request unanswered for this long counts as a timeout.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    pub scenarios: Vec<Scenario>,
}

/// `workload.repetitions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Repetitions {
    /// Exactly this many per side (more only with `compare.extend`).
    Fixed(u32),
    /// A pilot of [`Repetitions::PILOT`] per side, then, per scenario, the repetitions that give
    /// 90% power at each gating metric's minimum effect from the spread seen so far, looking
    /// again (α spent across the looks) while something is undecided, within `compare.budget`.
    #[default]
    Auto,
}

impl Repetitions {
    /// The pilot: enough repetitions for a first estimate of the spread and for the outlier
    /// rule to judge one (`stats::outliers` needs six).
    pub const PILOT: u32 = 6;

    /// Repetitions per side of the first look.
    pub fn first(self) -> u32 {
        match self {
            Repetitions::Fixed(n) => n,
            Repetitions::Auto => Self::PILOT,
        }
    }
}

impl fmt::Display for Repetitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repetitions::Fixed(n) => write!(f, "{n}"),
            Repetitions::Auto => f.write_str("auto"),
        }
    }
}

impl Serialize for Repetitions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Repetitions::Fixed(n) => serializer.serialize_u32(*n),
            Repetitions::Auto => serializer.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Repetitions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Repetitions, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(u32),
            Word(String),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Count(n)) => Ok(Repetitions::Fixed(n)),
            Ok(Raw::Word(w)) if w == "auto" => Ok(Repetitions::Auto),
            _ => Err(serde::de::Error::custom("expected a number of repetitions or `auto`")),
        }
    }
}

/// How a scenario generates load (k6's executor names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Executor {
    /// Closed model: `concurrency` requests always in flight, for `duration`.
    #[default]
    ConstantVus,
    /// Closed model whose concurrency follows `stages` from `start_vus`.
    RampingVus,
    /// Open model: requests sent at `rate`, whatever the server's speed, for `duration`; at most
    /// `max_in_flight` outstanding, later sends wait and count as late.
    ConstantArrivalRate,
    /// Open model whose rate follows `stages` from `start_rate`.
    RampingArrivalRate,
    /// A fixed number of requests (`iterations`) with `concurrency` in flight: smoke checks.
    Iterations,
}

impl Executor {
    pub fn name(self) -> &'static str {
        match self {
            Executor::ConstantVus => "constant-vus",
            Executor::RampingVus => "ramping-vus",
            Executor::ConstantArrivalRate => "constant-arrival-rate",
            Executor::RampingArrivalRate => "ramping-arrival-rate",
            Executor::Iterations => "iterations",
        }
    }
}

/// One stage of a ramping executor: reach `target` linearly over `duration`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub duration: HumanDuration,
    pub target: StageTarget,
}

/// A stage's target: a rate (`2000/s`, ramping-arrival-rate) or a number of VUs (ramping-vus).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StageTarget {
    Rate(Rate),
    Vus(u32),
}

impl<'de> Deserialize<'de> for StageTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = StageTarget;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rate such as 500/s, or a number of VUs")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StageTarget, E> {
                Rate::parse(v).map(StageTarget::Rate).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StageTarget, E> {
                u32::try_from(v).map(StageTarget::Vus).map_err(|_| E::custom(format!("{v} VUs is too many")))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub executor: Executor,
    /// Requests kept in flight (constant-vus, iterations; default 1).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Arrival rate (constant-arrival-rate), e.g. `500/s`.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Most requests outstanding at once (arrival-rate executors; default 100).
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// Requests to make (iterations).
    #[serde(default)]
    pub iterations: Option<u64>,
    /// Rate at the start of the stages (ramping-arrival-rate; default 0/s).
    #[serde(default)]
    pub start_rate: Option<Rate>,
    /// VUs at the start of the stages (ramping-vus; default 1).
    #[serde(default)]
    pub start_vus: Option<u32>,
    /// The ramping executors' stages; together they are the measured window.
    #[serde(default)]
    pub stages: Option<Vec<Stage>>,
    /// Load applied before measuring (at the start level for ramping executors); excluded
    /// from the results.
    #[serde(default)]
    pub warmup: Option<HumanDuration>,
    /// The measured window (constant executors).
    #[serde(default)]
    pub duration: Option<HumanDuration>,
    /// The requests, weighted. Empty or absent: every tool the server lists, with arguments
    /// made from its input schema.
    #[serde(default)]
    pub mix: Vec<MixEntry>,
    /// Constant executors: step the load up for a while, then measure the recovery.
    #[serde(default)]
    pub spike: Option<Spike>,
    /// ramping-arrival-rate: stop when a second breaks these limits; report the capacity.
    #[serde(default)]
    pub breakpoint: Option<Breakpoint>,
    /// A long steady run whose RSS and open-fd slopes are the point (reported for every
    /// scenario; a soak puts them in the summary).
    #[serde(default)]
    pub soak: bool,
    /// Faults applied to `server.upstreams` during the measured window.
    #[serde(default)]
    pub faults: Vec<FaultStep>,
    /// The metrics that decide in this scenario, replacing `compare.gate` for it (an outage
    /// scenario judged on its errors, whose latency mixes the outage with the rest); `[]`: its
    /// metrics are reported and decide nothing.
    #[serde(default)]
    pub gate: Option<Vec<crate::stats::Metric>>,
}

/// A spike: `at` into the measured window the load (rate or VUs) steps to `factor` times its
/// level for `hold`, then back.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    pub at: HumanDuration,
    pub factor: f64,
    pub hold: HumanDuration,
}

/// Limits one second of a breakpoint run must keep; the first second that breaks one ends it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Breakpoint {
    /// That second's p99 latency (from the intended send).
    #[serde(default)]
    pub p99: Option<HumanDuration>,
    /// That second's share of failed calls.
    #[serde(default)]
    pub error_rate: Option<Percent>,
}

/// What a scenario drives, resolved from its executor and fields.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadModel {
    /// Closed: the number of workers over the measured window.
    Closed {
        vus: Profile,
        warmup: Duration,
    },
    /// Open: the arrival rate (per second) over the measured window.
    Open {
        rate: Profile,
        max_in_flight: u32,
        warmup: Duration,
    },
    Iterations {
        concurrency: u32,
        iterations: u64,
    },
}

impl LoadModel {
    /// The measured window's planned length (`None` for iterations).
    pub fn duration(&self) -> Option<Duration> {
        match self {
            LoadModel::Closed { vus: p, .. } | LoadModel::Open { rate: p, .. } => Some(p.duration()),
            LoadModel::Iterations { .. } => None,
        }
    }

    pub fn warmup(&self) -> Duration {
        match self {
            LoadModel::Closed { warmup, .. } | LoadModel::Open { warmup, .. } => *warmup,
            LoadModel::Iterations { .. } => Duration::ZERO,
        }
    }
}

/// Default `max_in_flight` of the open model.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 100;

impl Scenario {
    /// The load model; call only on a validated config.
    pub fn model(&self) -> LoadModel {
        let mut model = self.base_model();
        if let Some(spike) = &self.spike {
            match &mut model {
                LoadModel::Closed { vus: p, .. } | LoadModel::Open { rate: p, .. } => {
                    *p = p.with_spike(spike.at.0, spike.factor, spike.hold.0);
                }
                LoadModel::Iterations { .. } => {}
            }
        }
        model
    }

    fn base_model(&self) -> LoadModel {
        let warmup = self.warmup.map_or(Duration::ZERO, |w| w.0);
        let duration = self.duration.map_or(Duration::ZERO, |d| d.0);
        let stages = |level: fn(&StageTarget) -> f64| {
            self.stages.iter().flatten().map(|s| (s.duration.0, level(&s.target))).collect::<Vec<_>>()
        };
        let max_in_flight = self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        match self.executor {
            Executor::ConstantVus => {
                LoadModel::Closed { vus: Profile::constant(f64::from(self.concurrency.unwrap_or(1)), duration), warmup }
            }
            Executor::RampingVus => LoadModel::Closed {
                vus: Profile {
                    start: f64::from(self.start_vus.unwrap_or(1)),
                    stages: stages(|t| match t {
                        StageTarget::Vus(n) => f64::from(*n),
                        StageTarget::Rate(_) => 0.0,
                    }),
                },
                warmup,
            },
            Executor::ConstantArrivalRate => LoadModel::Open {
                rate: Profile::constant(self.rate.map_or(0.0, Rate::per_second), duration),
                max_in_flight,
                warmup,
            },
            Executor::RampingArrivalRate => LoadModel::Open {
                rate: Profile {
                    start: self.start_rate.map_or(0.0, Rate::per_second),
                    stages: stages(|t| match t {
                        StageTarget::Rate(r) => r.per_second(),
                        StageTarget::Vus(_) => 0.0,
                    }),
                },
                max_in_flight,
                warmup,
            },
            Executor::Iterations => LoadModel::Iterations {
                concurrency: self.concurrency.unwrap_or(1),
                iterations: self.iterations.unwrap_or(0),
            },
        }
    }

    /// Checks that the fields fit the executor; `at` is the scenario's path for messages.
    fn validate_executor(&self, at: &str) -> Result<(), String> {
        let name = self.executor.name();
        let given = [
            ("concurrency", self.concurrency.is_some()),
            ("rate", self.rate.is_some()),
            ("max_in_flight", self.max_in_flight.is_some()),
            ("iterations", self.iterations.is_some()),
            ("start_rate", self.start_rate.is_some()),
            ("start_vus", self.start_vus.is_some()),
            ("stages", self.stages.is_some()),
            ("warmup", self.warmup.is_some()),
            ("duration", self.duration.is_some()),
            ("spike", self.spike.is_some()),
            ("breakpoint", self.breakpoint.is_some()),
            ("soak", self.soak),
        ];
        let (required, allowed): (&[&str], &[&str]) = match self.executor {
            Executor::ConstantVus => (&["duration"], &["concurrency", "warmup", "duration", "spike", "soak"]),
            Executor::RampingVus => (&["stages"], &["start_vus", "stages", "warmup"]),
            Executor::ConstantArrivalRate => {
                (&["rate", "duration"], &["rate", "max_in_flight", "warmup", "duration", "spike", "soak"])
            }
            Executor::RampingArrivalRate => {
                (&["stages"], &["start_rate", "stages", "max_in_flight", "warmup", "breakpoint"])
            }
            Executor::Iterations => (&["iterations"], &["iterations", "concurrency"]),
        };
        for (field, present) in given {
            if present && !allowed.contains(&field) {
                return Err(format!("field `{at}.{field}`: does not apply to executor {name}"));
            }
            if !present && required.contains(&field) {
                return Err(format!("field `{at}.{field}`: required by executor {name}"));
            }
        }
        let positive = |field: &str, ok: bool| {
            if ok { Ok(()) } else { Err(format!("field `{at}.{field}`: must be greater than zero")) }
        };
        positive("concurrency", self.concurrency != Some(0))?;
        positive("max_in_flight", self.max_in_flight != Some(0))?;
        positive("iterations", self.iterations != Some(0))?;
        positive("duration", self.duration.is_none_or(|d| !d.0.is_zero()))?;
        positive("rate", self.rate.is_none_or(|r| r.per_second() > 0.0))?;
        if let Some(spike) = &self.spike {
            if !(spike.factor > 1.0 && spike.factor.is_finite()) {
                return Err(format!(
                    "field `{at}.spike.factor`: must be above 1 (the load is multiplied by it), e.g. 5"
                ));
            }
            positive("spike.hold", !spike.hold.0.is_zero())?;
            let window = self.duration.map_or(Duration::ZERO, |d| d.0);
            if spike.at.0 + spike.hold.0 >= window {
                return Err(format!(
                    "field `{at}.spike`: at + hold must end before the scenario's duration ({}), leaving time to recover",
                    humantime::format_duration(window)
                ));
            }
        }
        if let Some(b) = &self.breakpoint
            && b.p99.is_none()
            && b.error_rate.is_none()
        {
            return Err(format!(
                "field `{at}.breakpoint`: give p99, error_rate or both, e.g. {{p99: 50ms, error_rate: 1%}}"
            ));
        }
        if let Some(stages) = &self.stages {
            if stages.is_empty() {
                return Err(format!("field `{at}.stages`: list at least one stage"));
            }
            let want_rate = self.executor == Executor::RampingArrivalRate;
            for (i, st) in stages.iter().enumerate() {
                positive(&format!("stages[{i}].duration"), !st.duration.0.is_zero())?;
                match (want_rate, st.target) {
                    (true, StageTarget::Vus(n)) => {
                        return Err(format!("field `{at}.stages[{i}].target`: a rate is needed, e.g. {n}/s"));
                    }
                    (false, StageTarget::Rate(_)) => {
                        return Err(format!("field `{at}.stages[{i}].target`: a number of VUs is needed"));
                    }
                    _ => {}
                }
            }
            let level = match self.model() {
                LoadModel::Open { rate, .. } => rate.total(),
                LoadModel::Closed { vus, .. } => vus.max(),
                LoadModel::Iterations { .. } => 1.0,
            };
            positive("stages", level > 0.0)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// The tool to call (implies `method: tools/call`).
    #[serde(default)]
    pub tool: Option<String>,
    /// The MCP method; `tools/call` when `tool` is given.
    #[serde(default)]
    pub method: Option<Method>,
    /// `resources/read`: the resource.
    #[serde(default)]
    pub uri: Option<String>,
    /// `prompts/get`: the prompt.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Arguments of `tools/call` and `prompts/get`. A value `{$random: [a, b]}` takes one of the
    /// values per call; `{$sequence: {start: 1, step: 1}}` counts up per call of this entry.
    #[serde(default)]
    pub arguments: serde_json::Map<String, serde_json::Value>,
    /// A JSONL file (relative to the config file) whose lines are the arguments of successive
    /// calls, in turn; instead of `arguments`.
    #[serde(default)]
    pub arguments_file: Option<PathBuf>,
    /// The lines of `arguments_file`, read when the config is loaded.
    #[serde(skip)]
    pub argument_lines: Vec<serde_json::Map<String, serde_json::Value>>,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

/// The MCP requests a mix can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Method {
    #[serde(rename = "tools/call")]
    ToolsCall,
    #[serde(rename = "tools/list")]
    ToolsList,
    #[serde(rename = "resources/read")]
    ResourcesRead,
    #[serde(rename = "prompts/get")]
    PromptsGet,
    #[serde(rename = "ping")]
    Ping,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::ToolsCall => "tools/call",
            Method::ToolsList => "tools/list",
            Method::ResourcesRead => "resources/read",
            Method::PromptsGet => "prompts/get",
            Method::Ping => "ping",
        }
    }
}

impl MixEntry {
    /// A `tools/call` of `tool` with no arguments.
    pub fn tool(tool: &str, weight: u32) -> MixEntry {
        MixEntry {
            tool: Some(tool.into()),
            method: None,
            uri: None,
            prompt: None,
            arguments: Default::default(),
            arguments_file: None,
            argument_lines: Vec::new(),
            weight,
        }
    }

    pub fn method(&self) -> Method {
        self.method.unwrap_or(Method::ToolsCall)
    }

    /// The operation's name in results: `tools/call:<tool>`, `prompts/get:<prompt>`, or the method.
    pub fn operation(&self) -> String {
        match (self.method(), &self.tool, &self.prompt) {
            (Method::ToolsCall, Some(t), _) => format!("tools/call:{t}"),
            (Method::PromptsGet, _, Some(p)) => format!("prompts/get:{p}"),
            (m, _, _) => m.name().to_string(),
        }
    }

    fn validate(&self, at: &str) -> Result<(), String> {
        let m = self.method();
        let name = m.name();
        let fail = |field: &str, problem: &str| Err(format!("field `{at}.{field}`: {problem}"));
        match (m, &self.tool) {
            (Method::ToolsCall, None) => return fail("tool", "required for tools/call"),
            (Method::ToolsCall, Some(t)) if t.trim().is_empty() => return fail("tool", "must name a tool"),
            (Method::ToolsCall, Some(_)) => {}
            (_, Some(_)) => return fail("tool", &format!("does not apply to {name}")),
            _ => {}
        }
        match (m, &self.uri) {
            (Method::ResourcesRead, None) => return fail("uri", "required for resources/read"),
            (Method::ResourcesRead, Some(_)) => {}
            (_, Some(_)) => return fail("uri", &format!("does not apply to {name}")),
            _ => {}
        }
        match (m, &self.prompt) {
            (Method::PromptsGet, None) => return fail("prompt", "required for prompts/get"),
            (Method::PromptsGet, Some(_)) => {}
            (_, Some(_)) => return fail("prompt", &format!("does not apply to {name}")),
            _ => {}
        }
        if !self.arguments.is_empty() && !matches!(m, Method::ToolsCall | Method::PromptsGet) {
            return fail("arguments", &format!("does not apply to {name}"));
        }
        if self.arguments_file.is_some() {
            if !matches!(m, Method::ToolsCall | Method::PromptsGet) {
                return fail("arguments_file", &format!("does not apply to {name}"));
            }
            if !self.arguments.is_empty() {
                return fail("arguments_file", "give either arguments or arguments_file, not both");
            }
        }
        for (key, value) in &self.arguments {
            let Some(obj) = value.as_object().filter(|o| o.keys().any(|k| k.starts_with('$'))) else { continue };
            let at_key = format!("arguments.{key}");
            match (obj.len(), obj.get("$random"), obj.get("$sequence")) {
                (1, Some(serde_json::Value::Array(values)), None) if !values.is_empty() => {}
                (1, Some(_), None) => return fail(&at_key, "$random takes a non-empty list of values"),
                (1, None, Some(seq)) if sequence_bounds(seq).is_some() => {}
                (1, None, Some(_)) => return fail(&at_key, "$sequence takes {start: N, step: N} (integers)"),
                _ => return fail(&at_key, "keys starting with $ are templates: use one of $random or $sequence"),
            }
        }
        Ok(())
    }
}

/// `start` and `step` of a `$sequence` template (`{start: 1, step: 1}`, or a bare start).
pub fn sequence_bounds(value: &serde_json::Value) -> Option<(i64, i64)> {
    match value {
        serde_json::Value::Number(n) => Some((n.as_i64()?, 1)),
        serde_json::Value::Object(o) => {
            if o.keys().any(|k| k != "start" && k != "step") {
                return None;
            }
            let get = |k: &str, default: i64| o.get(k).map_or(Some(default), |v| v.as_i64());
            Some((get("start", 1)?, get("step", 1)?))
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    /// Significance level of each test, before Holm's correction across metrics.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Changes smaller than this are never called regressions or improvements: one
    /// percentage for latency and throughput (`5%`), or one per kind of metric
    /// (`{latency: 5%, throughput: 5%, memory: 10%, cpu: 10%, error_rate: 0.1%, error_ratio:
    /// 1.5}`: an error rate regresses when it is 1.5 times the base's and at least 0.1
    /// percentage points more).
    #[serde(default)]
    pub min_effect: MinEffectConfig,
    /// Keep the verdict binding when base and head ran on different machines (CPU model,
    /// cores, OS); by default such a comparison is advisory.
    #[serde(default)]
    pub strict_environment: bool,
    /// Which calls latency percentiles (compared and thresholded) are taken over: `all`
    /// (default: failures at their time to failure, timeouts at the timeout, as wrk2 counts
    /// them) or `successes` (k6's `expected_response:true`).
    #[serde(default)]
    pub latency: crate::measure::LatencyBasis,
    /// Extra repetitions for an A/B run whose comparison is inconclusive.
    #[serde(default)]
    pub extend: ExtendConfig,
    /// With `workload.repetitions: auto`, the most wall time the repetitions of a run may take,
    /// both sides of an A/B together (default 3m); a look not expected to end within it is not
    /// started.
    #[serde(default = "default_budget")]
    pub budget: HumanDuration,
    /// The metrics whose verdicts decide the comparison, of p50, p95, p99, throughput,
    /// error_rate, rss_peak, cpu_per_call (default: p50, error_rate, rss_peak, cpu_per_call,
    /// the ones steady enough on a shared 2-core runner to decide within the budget; see the
    /// README); the others are reported and decide nothing.
    #[serde(default = "default_gate")]
    pub gate: Vec<crate::stats::Metric>,
}

fn default_gate() -> Vec<crate::stats::Metric> {
    crate::stats::Gate::DEFAULT.metrics()
}

impl Default for CompareConfig {
    fn default() -> Self {
        Self {
            alpha: default_alpha(),
            min_effect: MinEffectConfig::default(),
            strict_environment: false,
            latency: Default::default(),
            extend: ExtendConfig::default(),
            budget: default_budget(),
            gate: default_gate(),
        }
    }
}

/// `compare.extend`: after an A/B run's planned repetitions, when the comparison is
/// inconclusive (no regression, some metric not shown within its minimum effect), measure more, looking again after each
/// batch; α is spent across the looks so that the false-alarm rate stays at `alpha`. Off by
/// default (`max_looks: 1`): extra looks cost time and some power at the first look.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendConfig {
    /// Looks in all, the first included; 1 turns extension off (default: 1 with a fixed
    /// `workload.repetitions`, 4 with `auto`).
    #[serde(default)]
    pub max_looks: Option<u32>,
    /// Repetitions per side added at each extra look (default: half of a fixed
    /// `workload.repetitions`, at least 2; with `auto`, as many as the spread asks for).
    #[serde(default)]
    pub repetitions: Option<u32>,
    /// The most wall time the extra looks may take; a look not expected to end within it is
    /// not started.
    #[serde(default = "default_extend_budget")]
    pub budget: HumanDuration,
}

impl Default for ExtendConfig {
    fn default() -> Self {
        ExtendConfig { max_looks: None, repetitions: None, budget: default_extend_budget() }
    }
}

impl ExtendConfig {
    /// Looks in all under `repetitions`.
    pub fn looks(&self, repetitions: Repetitions) -> u32 {
        self.max_looks.unwrap_or(match repetitions {
            Repetitions::Fixed(_) => 1,
            Repetitions::Auto => AUTO_LOOKS,
        })
    }

    /// Repetitions per extra look, for a workload of `first` repetitions.
    pub fn repetitions_after(&self, first: u32) -> u32 {
        self.repetitions.unwrap_or((first / 2).max(2))
    }
}

fn default_budget() -> HumanDuration {
    HumanDuration(Duration::from_secs(180))
}

/// Looks of an `auto` plan: the pilot, the planned size, and two more should the spread have
/// been underestimated.
pub const AUTO_LOOKS: u32 = 4;
fn default_extend_budget() -> HumanDuration {
    HumanDuration(Duration::from_secs(600))
}

/// `compare.min_effect`: the minimum effect of each kind of metric. Relative for latency,
/// throughput, memory and CPU; for the error rate both a ratio (`error_ratio`, the head's rate
/// over the base's) and an absolute floor (`error_rate`, in percentage points).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MinEffectConfig {
    pub latency: Percent,
    pub throughput: Percent,
    pub memory: Percent,
    pub cpu: Percent,
    pub error_rate: Percent,
    pub error_ratio: f64,
}

impl Default for MinEffectConfig {
    /// `stats::Policy::DEFAULT`'s, which says why (a test in `cli` keeps the two equal).
    fn default() -> Self {
        MinEffectConfig {
            latency: Percent(0.05),
            throughput: Percent(0.05),
            memory: Percent(0.10),
            cpu: Percent(0.10),
            error_rate: Percent(0.001),
            error_ratio: 1.5,
        }
    }
}

impl MinEffectConfig {
    fn entries(&self) -> [(&'static str, Percent); 5] {
        [
            ("latency", self.latency),
            ("throughput", self.throughput),
            ("memory", self.memory),
            ("cpu", self.cpu),
            ("error_rate", self.error_rate),
        ]
    }
}

impl<'de> Deserialize<'de> for MinEffectConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PerKind {
            latency: Option<Percent>,
            throughput: Option<Percent>,
            memory: Option<Percent>,
            cpu: Option<Percent>,
            error_rate: Option<Percent>,
            error_ratio: Option<f64>,
        }
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MinEffectConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a percentage such as 5%, or a map of latency, throughput, memory, cpu, error_rate, error_ratio",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let p = Percent::parse(v).map_err(E::custom)?;
                Ok(MinEffectConfig { latency: p, throughput: p, ..MinEffectConfig::default() })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let k = PerKind::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                let d = MinEffectConfig::default();
                Ok(MinEffectConfig {
                    latency: k.latency.unwrap_or(d.latency),
                    throughput: k.throughput.unwrap_or(d.throughput),
                    memory: k.memory.unwrap_or(d.memory),
                    cpu: k.cpu.unwrap_or(d.cpu),
                    error_rate: k.error_rate.unwrap_or(d.error_rate),
                    error_ratio: k.error_ratio.unwrap_or(d.error_ratio),
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Err(E::custom(format!("invalid percentage `{v}`: write it with a % sign, e.g. {v}%")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!("invalid percentage `{v}`: write it with a % sign, e.g. {v}%")))
            }
        }
        deserializer.deserialize_any(V)
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
fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_weight() -> u32 {
    1
}
fn default_alpha() -> f64 {
    0.05
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

    /// Reads every `arguments_file`: one JSON object per non-empty line.
    fn read_argument_files(&mut self, dir: &Path) -> Result<(), String> {
        for (i, scenario) in self.workload.scenarios.iter_mut().enumerate() {
            for (j, entry) in scenario.mix.iter_mut().enumerate() {
                let Some(file) = &entry.arguments_file else { continue };
                let at = format!("field `workload.scenarios[{i}].mix[{j}].arguments_file`");
                let path = dir.join(file);
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("{at}: cannot read {}: {e}", path.display()))?;
                for (k, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let args = serde_json::from_str(line)
                        .map_err(|e| format!("{at}: {} line {}: not a JSON object: {e}", path.display(), k + 1))?;
                    entry.argument_lines.push(args);
                }
                if entry.argument_lines.is_empty() {
                    return Err(format!("{at}: {} has no lines", path.display()));
                }
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        let field = |path: &str, problem: &str| Err(format!("field `{path}`: {problem}"));
        let launches = !self.server.command.is_empty();
        if launches && self.server.command[0].trim().is_empty() {
            return field("server.command", "must name a program, e.g. [\"./target/release/my-server\"]");
        }
        match (self.server.transport, &self.server.url) {
            (Transport::Stdio, _) if !launches => {
                return field("server.command", "must name a program, e.g. [\"./target/release/my-server\"]");
            }
            (Transport::Stdio, Some(_)) => return field("server.url", "is only used with `transport: http`"),
            (Transport::Http, None) => {
                return field("server.url", "is required with `transport: http`, e.g. http://127.0.0.1:3000/mcp");
            }
            (Transport::Http, Some(url)) => {
                let parsed = url.parse::<http::Uri>();
                if !url.starts_with("http://") || parsed.as_ref().map_or(true, |u| u.host().is_none()) {
                    return field("server.url", "must be an http:// URL with a host, e.g. http://127.0.0.1:3000/mcp");
                }
            }
            _ => {}
        }
        if let Some(url) = &self.server.metrics_url
            && !url.starts_with("http://")
        {
            return field("server.metrics_url", "must be an http:// URL, e.g. http://127.0.0.1:9464/metrics");
        }
        if self.server.startup_timeout.0.is_zero() {
            return field("server.startup_timeout", "must be greater than zero");
        }
        for (name, sim) in &self.server.upstreams {
            if !(0.0..=1.0).contains(&sim.error_rate) {
                return field(&format!("server.upstreams.{name}.error_rate"), "must be in [0, 1]");
            }
        }
        let mentioned = |text: &str| {
            text.match_indices(UPSTREAM_PLACEHOLDER)
                .map(|(i, _)| {
                    let rest = &text[i + UPSTREAM_PLACEHOLDER.len()..];
                    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>()
        };
        let texts = self.server.command.iter().chain(self.server.env.values()).chain(self.server.url.iter());
        for name in texts.flat_map(|t| mentioned(t)) {
            if !self.server.upstreams.contains_key(&name) {
                return field(
                    "server.upstreams",
                    &format!("`{UPSTREAM_PLACEHOLDER}{name}` is used but no upstream `{name}` is defined"),
                );
            }
        }
        let w = &self.workload;
        if w.repetitions == Repetitions::Fixed(0) {
            return field("workload.repetitions", "must be at least 1");
        }
        if w.request_timeout.0.is_zero() {
            return field("workload.request_timeout", "must be greater than zero");
        }
        if w.scenarios.is_empty() {
            return field("workload.scenarios", "must list at least one scenario");
        }
        let mut names = HashSet::new();
        for (i, s) in w.scenarios.iter().enumerate() {
            let at = format!("workload.scenarios[{i}]");
            if s.name.trim().is_empty() {
                return field(&format!("{at}.name"), "must not be empty");
            }
            for (j, f) in s.faults.iter().enumerate() {
                let at = format!("{at}.faults[{j}]");
                if !self.server.upstreams.contains_key(&f.upstream) {
                    let known: Vec<_> = self.server.upstreams.keys().map(String::as_str).collect();
                    let problem =
                        format!("no upstream `{}` in server.upstreams (defined: {})", f.upstream, known.join(", "));
                    return field(&format!("{at}.upstream"), &problem);
                }
                if f.duration.0.is_zero() {
                    return field(&format!("{at}.duration"), "must be greater than zero");
                }
                if let Err(problem) = f.fault() {
                    return field(&at, &problem);
                }
            }
            if !names.insert(s.name.as_str()) {
                return field(&format!("{at}.name"), &format!("duplicate scenario name `{}`", s.name));
            }
            s.validate_executor(&at)?;
            for (j, m) in s.mix.iter().enumerate() {
                m.validate(&format!("{at}.mix[{j}]"))?;
            }
            if !s.mix.is_empty() && s.mix.iter().all(|m| m.weight == 0) {
                return field(&format!("{at}.mix"), "at least one weight must be greater than zero");
            }
        }
        threshold::parse_all(&self.thresholds)?;
        let c = &self.compare;
        if !(c.alpha > 0.0 && c.alpha < 1.0) {
            return field("compare.alpha", "must be between 0 and 1 (exclusive), e.g. 0.05");
        }
        for (kind, p) in c.min_effect.entries() {
            if p.fraction() >= 1.0 {
                return field(&format!("compare.min_effect.{kind}"), "must be below 100%");
            }
        }
        if !(c.min_effect.error_ratio >= 1.0 && c.min_effect.error_ratio.is_finite()) {
            return field("compare.min_effect.error_ratio", "must be a number of at least 1, e.g. 1.5");
        }
        if c.gate.is_empty() {
            return field(
                "compare.gate",
                "name at least one metric (p50, p95, p99, throughput, error_rate, rss_peak, cpu_per_call)",
            );
        }
        if self.workload.scenarios.iter().all(|s| s.gate.as_ref().is_some_and(Vec::is_empty)) {
            return field(
                "workload.scenarios[].gate",
                "every scenario's gate is empty, so nothing would decide: name a metric in one of them",
            );
        }
        if c.extend.max_looks == Some(0) {
            return field("compare.extend.max_looks", "must be at least 1 (1: no extra looks)");
        }
        if c.extend.repetitions == Some(0) {
            return field("compare.extend.repetitions", "must be at least 1");
        }
        Ok(())
    }

    /// `baseline:` with a `file` store's path anchored at the config's directory.
    pub fn baseline_in(&self, config_dir: &Path) -> Option<BaselineConfig> {
        self.baseline.clone().map(|b| match b {
            BaselineConfig::File { path } => BaselineConfig::File { path: config_dir.join(path) },
            other => other,
        })
    }

    /// Resolves the config into the plan the run consumes. `self_exe` replaces `@self`;
    /// `config_dir` anchors a relative `server.cwd`.
    pub fn into_plan(self, source: String, self_exe: &Path, config_dir: &Path) -> Plan {
        let baseline = self.baseline_in(config_dir);
        let mut command = self.server.command;
        if command.first().is_some_and(|p| p == SELF_PROGRAM) {
            command[0] = self_exe.display().to_string();
        }
        let cwd = self.server.cwd.map(|c| config_dir.join(c));
        let thresholds = threshold::parse_all(&self.thresholds).expect("validated when loaded");
        Plan {
            source,
            server: ServerPlan {
                build: self.server.build,
                command,
                transport: self.server.transport,
                url: self.server.url,
                env: self.server.env,
                cwd,
                startup_timeout: self.server.startup_timeout.0,
                shutdown_timeout: self.server.shutdown_timeout.0,
                metrics_url: self.server.metrics_url,
                upstreams: self.server.upstreams,
            },
            workload: self.workload,
            compare: self.compare,
            baseline,
            thresholds,
        }
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

/// A resolved config: what to build, launch and drive.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the config came from (a path, or the embedded default), for reports.
    pub source: String,
    pub server: ServerPlan,
    pub workload: WorkloadConfig,
    pub compare: CompareConfig,
    /// With a `file` store's path made absolute (against the config's directory).
    pub baseline: Option<BaselineConfig>,
    pub thresholds: Vec<Threshold>,
}

#[derive(Debug, Clone)]
pub struct ServerPlan {
    pub build: Option<String>,
    /// Program and arguments; empty when the server at `url` is already running.
    pub command: Vec<String>,
    pub transport: Transport,
    pub url: Option<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub startup_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub metrics_url: Option<String>,
    /// Simulators to start per repetition; `@upstream:NAME` marks where their addresses go.
    pub upstreams: BTreeMap<String, UpstreamSim>,
}

impl Plan {
    /// The same plan for a copy of the repository at `to` (a worktree of another commit) that
    /// is at `from` here: the working directory of the build and the server (`cwd` when none
    /// is configured), and command arguments and environment values that are absolute paths
    /// inside the repository, point into the copy. Workload, thresholds and comparison
    /// settings stay.
    pub fn rebased(&self, from: &Path, to: &Path, cwd: &Path) -> Plan {
        let rebase = |path: &Path| {
            let absolute = if path.is_absolute() { path.to_path_buf() } else { cwd.join(path) };
            absolute.strip_prefix(from).ok().map(|inside| to.join(inside))
        };
        let rebase_text = |text: &String| {
            let p = Path::new(text);
            match p.is_absolute().then(|| rebase(p)).flatten() {
                Some(inside) => inside.display().to_string(),
                None => text.clone(),
            }
        };
        let mut plan = self.clone();
        let here = self.server.cwd.clone().unwrap_or_else(|| cwd.to_path_buf());
        plan.server.cwd = Some(rebase(&here).unwrap_or(here));
        plan.server.command = self.server.command.iter().map(rebase_text).collect();
        plan.server.env = self.server.env.iter().map(|(k, v)| (k.clone(), rebase_text(v))).collect();
        plan
    }
}

impl fmt::Display for ServerPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.command.is_empty(), &self.url) {
            (true, Some(url)) => f.write_str(url),
            _ => f.write_str(&self.command.join(" ")),
        }
    }
}

impl Plan {
    /// The embedded default, resolved against this executable.
    pub fn embedded_default(self_exe: &Path) -> Plan {
        Config::embedded_default().into_plan(DEFAULT_SOURCE.to_string(), self_exe, Path::new("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
server:
  command: [./srv]
workload:
  scenarios:
    - name: s
      duration: 1s
      mix: [{tool: echo}]
";

    fn err(yaml: &str) -> String {
        Config::from_yaml(yaml, "perf.yaml").unwrap_err().to_string()
    }

    #[test]
    fn upstream_simulators_and_faults_are_checked_against_each_other() {
        let with = |server_extra: &str, fault: &str| {
            format!(
                "server:\n  command: [./srv, --upstream, \"@upstream:catalog\"]\n{server_extra}workload:\n  scenarios:\n    - name: s\n      duration: 3s\n      mix: [{{tool: lookup}}]\n      faults: [{fault}]\n"
            )
        };
        let sims = "  upstreams:\n    catalog: {latency: \"lognormal:2ms,0.5\"}\n";
        let ok = Config::from_yaml(&with(sims, "{at: 1s, upstream: catalog, kind: outage, duration: 1s}"), "perf.yaml")
            .unwrap();
        assert_eq!(ok.workload.scenarios[0].faults[0].kind_name(), "outage");
        assert!(err(&with("", "")).contains("`@upstream:catalog` is used but no upstream `catalog` is defined"));
        let e = err(&with(sims, "{at: 1s, upstream: pricing, kind: outage, duration: 1s}"));
        assert!(e.contains("workload.scenarios[0].faults[0].upstream`: no upstream `pricing` in server.upstreams (defined: catalog)"), "{e}");
        let e = err(&with(sims, "{at: 1s, upstream: catalog, kind: slowdown, duration: 1s}"));
        assert!(e.contains("`latency` is required for a slowdown"), "{e}");
        let e = err(&with(sims, "{at: 1s, upstream: catalog, kind: meteor, duration: 1s}"));
        assert!(e.contains("unknown variant `meteor`"), "{e}");
        let e = err(&with(
            "  upstreams:\n    catalog: {latency: \"gamma:1ms\"}\n",
            "{at: 1s, upstream: catalog, kind: outage, duration: 1s}",
        ));
        assert!(e.contains("unknown distribution `gamma`"), "{e}");
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = Config::from_yaml(MINIMAL, "perf.yaml").unwrap();
        assert_eq!(c.workload.repetitions, Repetitions::Auto);
        assert_eq!(c.compare.budget.0, Duration::from_secs(180));
        assert_eq!(c.compare.gate, crate::stats::Gate::DEFAULT.metrics());
        assert_eq!(c.workload.scenarios[0].gate, None, "the scenario follows compare.gate");
        let own = Config::from_yaml(
            &MINIMAL.replace("      duration: 1s\n", "      duration: 1s\n      gate: [error_rate]\n"),
            "perf.yaml",
        );
        assert_eq!(own.unwrap().workload.scenarios[0].gate, Some(vec![crate::stats::Metric::ErrorRate]));
        let e = err(&MINIMAL.replace("      duration: 1s\n", "      duration: 1s\n      gate: []\n"));
        assert!(e.contains("workload.scenarios[].gate") && e.contains("nothing would decide"), "{e}");
        let fixed = Config::from_yaml(&MINIMAL.replace("workload:\n", "workload:\n  repetitions: 7\n"), "perf.yaml");
        assert_eq!(fixed.unwrap().workload.repetitions, Repetitions::Fixed(7));
        let word = Config::from_yaml(&MINIMAL.replace("workload:\n", "workload:\n  repetitions: many\n"), "perf.yaml");
        let e = format!("{:#}", word.unwrap_err());
        assert!(e.contains("workload") && e.contains("a number of repetitions or `auto`"), "{e}");
        assert_eq!(
            c.workload.scenarios[0].model(),
            LoadModel::Closed { vus: Profile::constant(1.0, Duration::from_secs(1)), warmup: Duration::ZERO }
        );
        assert_eq!(c.workload.scenarios[0].mix[0].weight, 1);
        assert_eq!(c.compare.alpha, 0.05);
        assert_eq!(c.compare.min_effect.latency.fraction(), 0.05);
        assert_eq!(c.compare.min_effect.memory.fraction(), 0.10);
        let per_kind = format!("{MINIMAL}compare: {{min_effect: {{memory: 20%, error_rate: 0.5%}}}}\n");
        let m = Config::from_yaml(&per_kind, "perf.yaml").unwrap().compare.min_effect;
        assert_eq!((m.memory.fraction(), m.error_rate.fraction(), m.latency.fraction()), (0.20, 0.005, 0.05));
        let one = Config::from_yaml(&format!("{MINIMAL}compare: {{min_effect: 3%}}\n"), "perf.yaml").unwrap();
        let m = one.compare.min_effect;
        assert_eq!((m.latency.fraction(), m.throughput.fraction(), m.memory.fraction()), (0.03, 0.03, 0.10));
        assert_eq!(c.server.startup_timeout.0, Duration::from_secs(20));
        assert_eq!(c.compare.extend.looks(Repetitions::Fixed(10)), 1, "extra looks at a fixed count are opt-in");
        assert_eq!(c.compare.extend.looks(Repetitions::Auto), AUTO_LOOKS);
        let extend = format!("{MINIMAL}compare: {{extend: {{max_looks: 3, budget: 5m}}}}\n");
        let e = Config::from_yaml(&extend, "perf.yaml").unwrap().compare.extend;
        assert_eq!((e.looks(Repetitions::Auto), e.repetitions_after(10), e.budget.0), (3, 5, Duration::from_secs(300)));
        assert_eq!(e.repetitions_after(3), 2);
    }

    #[test]
    fn the_issue_example_config_parses() {
        let yaml = r#"
server:
  build: "cargo build --release"
  command: ["./target/release/my-server", "--stdio"]
  transport: stdio
  env: {RUST_LOG: "warn"}
  startup_timeout: 20s
workload:
  repetitions: 5
  scenarios:
    - name: steady
      concurrency: 8
      warmup: 2s
      duration: 10s
      mix:
        - tool: echo
          arguments: {message: "hi"}
          weight: 3
        - tool: compute
          arguments: {iterations: 1000}
          weight: 1
compare:
  alpha: 0.05
  min_effect: 5%
"#;
        let c = Config::from_yaml(yaml, "perf.yaml").unwrap();
        assert_eq!(c.workload.scenarios[0].warmup.unwrap().0, Duration::from_secs(2));
        assert_eq!(c.workload.scenarios[0].mix[1].arguments["iterations"], 1000);
        assert_eq!(c.server.env["RUST_LOG"], "warn");
    }

    #[test]
    fn unknown_field_names_file_field_and_line() {
        let e = err("server:\n  command: [x]\n  comand: [y]\nworkload: {scenarios: []}\n");
        assert!(e.starts_with("perf.yaml: line 3 column 3:"), "{e}");
        assert!(e.contains("unknown field `comand`"), "{e}");
        assert!(e.contains("server"), "{e}");
    }

    #[test]
    fn nested_unknown_field_names_its_path() {
        let e = err(&MINIMAL.replace("duration: 1s", "duration: 1s\n      durration: 2s"));
        assert!(e.contains("workload.scenarios[0]"), "{e}");
        assert!(e.contains("unknown field `durration`"), "{e}");
        assert!(e.contains("line 8"), "{e}");
    }

    #[test]
    fn bad_duration_names_the_field_and_value() {
        let e = err(&MINIMAL.replace("duration: 1s", "duration: 10 parsecs"));
        assert!(e.contains("workload.scenarios[0].duration"), "{e}");
        assert!(e.contains("invalid duration `10 parsecs`"), "{e}");
        assert!(e.contains("line 7"), "{e}");
    }

    #[test]
    fn validation_errors_name_the_field() {
        let no_mix = Config::from_yaml(&MINIMAL.replace("mix: [{tool: echo}]", "mix: []"), "p.yaml").unwrap();
        assert!(no_mix.workload.scenarios[0].mix.is_empty(), "an empty mix means the tools the server lists");
        let zero = MINIMAL.replace("mix: [{tool: echo}]", "mix: [{tool: echo, weight: 0}]");
        assert!(err(&zero).contains("`workload.scenarios[0].mix`: at least one weight"));
        let e = err(&MINIMAL.replace("command: [./srv]", "command: []"));
        assert!(e.contains("`server.command`"), "{e}");
        let e = err(&format!("{MINIMAL}compare: {{alpha: 2}}\n"));
        assert!(e.contains("`compare.alpha`"), "{e}");
        let e = err(&format!("{MINIMAL}compare: {{min_effect: {{memory: 120%}}}}\n"));
        assert!(e.contains("`compare.min_effect.memory`: must be below 100%"), "{e}");
        let e = err(&format!("{MINIMAL}compare: {{min_effect: {{latncy: 5%}}}}\n"));
        assert!(e.contains("compare.min_effect") && e.contains("unknown field `latncy`"), "{e}");
        let e = err(&format!("{MINIMAL}compare: {{extend: {{max_looks: 0}}}}\n"));
        assert!(e.contains("`compare.extend.max_looks`: must be at least 1"), "{e}");
        let e = err(&format!("{MINIMAL}compare: {{extend: {{max_looks: 3, repetitions: 0}}}}\n"));
        assert!(e.contains("`compare.extend.repetitions`: must be at least 1"), "{e}");
        let e = err(&format!("{MINIMAL}compare: {{extend: {{looks: 3}}}}\n"));
        assert!(e.contains("compare.extend") && e.contains("unknown field `looks`"), "{e}");
        let e = err(&format!("{MINIMAL}baseline: {{store: s3}}\n"));
        assert!(e.contains("baseline") && e.contains("unknown variant `s3`"), "{e}");
        let e = err(&format!("{MINIMAL}baseline: {{store: file, pth: x}}\n"));
        assert!(e.contains("baseline") && e.contains("unknown field `pth`"), "{e}");
        let e = err(&format!("{MINIMAL}baseline: {{store: ab}}\n"));
        assert!(e.contains("`baseline.ref` is required by store `ab`"), "{e}");
        let e = err(&format!("{MINIMAL}baseline: {{store: file, retention: 3}}\n"));
        assert!(e.contains("`baseline.retention` does not apply to store `file`"), "{e}");
        let e = err(&format!("{MINIMAL}compare: {{min_effect: 5}}\n"));
        assert!(e.contains("write it with a % sign"), "{e}");
        let e = err(&MINIMAL.replace("name: s", "name: s\n      concurrency: 0"));
        assert!(e.contains("`workload.scenarios[0].concurrency`"), "{e}");
    }

    #[test]
    fn executors_take_their_own_fields() {
        let open =
            MINIMAL.replace("duration: 1s", "executor: constant-arrival-rate\n      rate: 200/s\n      duration: 1s");
        let c = Config::from_yaml(&open, "perf.yaml").unwrap();
        assert_eq!(
            c.workload.scenarios[0].model(),
            LoadModel::Open {
                rate: Profile::constant(200.0, Duration::from_secs(1)),
                max_in_flight: DEFAULT_MAX_IN_FLIGHT,
                warmup: Duration::ZERO,
            }
        );
        let e = err(&MINIMAL.replace("duration: 1s", "executor: constant-arrival-rate\n      duration: 1s"));
        assert!(e.contains("field `workload.scenarios[0].rate`: required by executor constant-arrival-rate"), "{e}");
        let e = err(&open.replace("rate: 200/s", "rate: 200/s\n      concurrency: 3"));
        assert!(
            e.contains("`workload.scenarios[0].concurrency`: does not apply to executor constant-arrival-rate"),
            "{e}"
        );
        let iters = MINIMAL.replace("duration: 1s", "executor: iterations\n      iterations: 50\n      concurrency: 2");
        let c = Config::from_yaml(&iters, "perf.yaml").unwrap();
        assert_eq!(c.workload.scenarios[0].model(), LoadModel::Iterations { concurrency: 2, iterations: 50 });
        let e = err(&iters.replace("iterations: 50", "iterations: 50\n      duration: 1s"));
        assert!(e.contains("`workload.scenarios[0].duration`: does not apply to executor iterations"), "{e}");
        let e = err(&MINIMAL.replace("duration: 1s", "executor: constant-vus"));
        assert!(e.contains("`workload.scenarios[0].duration`: required by executor constant-vus"), "{e}");
        let e =
            err(&MINIMAL.replace("executor", "x").replace("duration: 1s", "executor: open-loop\n      duration: 1s"));
        assert!(e.contains("unknown variant `open-loop`"), "{e}");
    }

    #[test]
    fn thresholds_are_parsed_with_the_config_and_errors_name_them() {
        let yaml = format!(
            "{MINIMAL}thresholds:\n  \"tools/call{{tool:echo}}\": [\"p(95)<50ms\", {{threshold: \"error_rate<1%\", abort_on_fail: true, delay: 2s}}]\n"
        );
        let (c, _) = (Config::from_yaml(&yaml, "perf.yaml").unwrap(), ());
        let plan = c.into_plan("perf.yaml".into(), Path::new("/x"), Path::new("."));
        assert_eq!(plan.thresholds.len(), 2);
        assert!(plan.thresholds[1].abort_on_fail);
        assert_eq!(plan.thresholds[1].delay, Duration::from_secs(2));
        let e = err(&format!("{MINIMAL}thresholds:\n  server: [\"rss_peak<lots\"]\n"));
        assert!(e.contains("thresholds.\"server\"[0]"), "{e}");
        let e = err(&format!("{MINIMAL}thresholds:\n  server: [{{threshold: \"rss_peak<1MB\", abort: true}}]\n"));
        assert!(e.contains("thresholds"), "{e}");
    }

    #[test]
    fn mix_entries_take_the_fields_of_their_method() {
        let with = |entry: &str| MINIMAL.replace("mix: [{tool: echo}]", &format!("mix: [{entry}]"));
        let c = Config::from_yaml(&with("{method: ping}, {method: tools/list}, {method: resources/read, uri: \"file:///a\"}, {method: prompts/get, prompt: greet, arguments: {who: x}}"), "p.yaml").unwrap();
        let ops: Vec<String> = c.workload.scenarios[0].mix.iter().map(MixEntry::operation).collect();
        assert_eq!(ops, ["ping", "tools/list", "resources/read", "prompts/get:greet"]);
        assert!(
            err(&with("{method: resources/read}"))
                .contains("`workload.scenarios[0].mix[0].uri`: required for resources/read")
        );
        assert!(err(&with("{method: ping, tool: echo}")).contains("mix[0].tool`: does not apply to ping"));
        assert!(err(&with("{}")).contains("mix[0].tool`: required for tools/call"));
        assert!(
            err(&with("{method: tools/list, arguments: {a: 1}}")).contains("arguments`: does not apply to tools/list")
        );
        assert!(err(&with("{method: subscribe}")).contains("unknown variant `subscribe`"));
    }

    #[test]
    fn argument_templates_are_checked() {
        let with =
            |args: &str| MINIMAL.replace("mix: [{tool: echo}]", &format!("mix: [{{tool: echo, arguments: {args}}}]"));
        Config::from_yaml(
            &with("{id: {$random: [1, 2]}, n: {$sequence: {start: 10, step: 2}}, m: {$sequence: 5}}"),
            "p.yaml",
        )
        .unwrap();
        assert!(err(&with("{id: {$random: []}}")).contains("arguments.id`: $random takes a non-empty list"));
        assert!(err(&with("{id: {$sequence: {from: 1}}}")).contains("$sequence takes"));
        assert!(err(&with("{id: {$randon: [1]}}")).contains("use one of $random or $sequence"));
    }

    #[test]
    fn ramping_executors_take_stages_of_their_kind() {
        let ramp = MINIMAL.replace(
            "duration: 1s",
            "executor: ramping-arrival-rate\n      start_rate: 10/s\n      stages: [{duration: 2s, target: 100/s}, {duration: 1s, target: 0/s}]",
        );
        let c = Config::from_yaml(&ramp, "p.yaml").unwrap();
        let LoadModel::Open { rate, .. } = c.workload.scenarios[0].model() else { panic!("open model") };
        assert_eq!(rate.start, 10.0);
        assert_eq!(rate.stages, vec![(Duration::from_secs(2), 100.0), (Duration::from_secs(1), 0.0)]);
        let e = err(&ramp.replace("target: 100/s", "target: 100"));
        assert!(e.contains("`workload.scenarios[0].stages[0].target`: a rate is needed, e.g. 100/s"), "{e}");
        let vus = MINIMAL.replace("duration: 1s", "executor: ramping-vus\n      stages: [{duration: 2s, target: 8}]");
        let c = Config::from_yaml(&vus, "p.yaml").unwrap();
        let LoadModel::Closed { vus: profile, .. } = c.workload.scenarios[0].model() else { panic!("closed") };
        assert_eq!((profile.start, profile.max()), (1.0, 8.0));
        let e = err(&vus.replace("target: 8", "target: 8/s"));
        assert!(e.contains("stages[0].target`: a number of VUs is needed"), "{e}");
        let e = err(&vus.replace("executor: ramping-vus", "executor: ramping-vus\n      duration: 3s"));
        assert!(e.contains("`workload.scenarios[0].duration`: does not apply to executor ramping-vus"), "{e}");
        let e = err(&MINIMAL.replace("duration: 1s", "executor: ramping-vus\n      stages: []"));
        assert!(e.contains("stages`: list at least one stage"), "{e}");
        let e = err(&MINIMAL
            .replace("duration: 1s", "executor: ramping-arrival-rate\n      stages: [{duration: 1s, target: 0/s}]"));
        assert!(e.contains("stages`: must be greater than zero"), "{e}");
    }

    #[test]
    fn argument_files_are_read_relative_to_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ids.jsonl"), "{\"id\": 1}\n\n{\"id\": 2}\n").unwrap();
        let yaml = MINIMAL.replace("mix: [{tool: echo}]", "mix: [{tool: lookup, arguments_file: ids.jsonl}]");
        let path = dir.path().join("perf.yaml");
        std::fs::write(&path, &yaml).unwrap();
        let (c, _) = Config::from_path(&path).unwrap();
        assert_eq!(c.workload.scenarios[0].mix[0].argument_lines.len(), 2);
        std::fs::write(dir.path().join("ids.jsonl"), "{\"id\": 1}\n[1, 2]\n").unwrap();
        let e = Config::from_path(&path).unwrap_err().to_string();
        assert!(e.contains("mix[0].arguments_file`") && e.contains("ids.jsonl line 2: not a JSON object"), "{e}");
        std::fs::remove_file(dir.path().join("ids.jsonl")).unwrap();
        let e = Config::from_path(&path).unwrap_err().to_string();
        assert!(e.contains("cannot read") && e.contains("ids.jsonl"), "{e}");
        let both =
            MINIMAL.replace("mix: [{tool: echo}]", "mix: [{tool: x, arguments: {a: 1}, arguments_file: f.jsonl}]");
        assert!(err(&both).contains("either arguments or arguments_file"));
    }

    #[test]
    fn metrics_url_must_be_http() {
        let yaml = MINIMAL.replace("command: [./srv]", "command: [./srv]\n  metrics_url: https://x/metrics");
        assert!(err(&yaml).contains("`server.metrics_url`: must be an http:// URL"));
        let ok = MINIMAL.replace("command: [./srv]", "command: [./srv]\n  metrics_url: http://127.0.0.1:9464/metrics");
        assert!(Config::from_yaml(&ok, "p.yaml").unwrap().server.metrics_url.is_some());
    }

    #[test]
    fn spike_breakpoint_and_soak_fit_their_executors() {
        let open = |extra: &str| {
            MINIMAL.replace(
                "mix: [{tool: echo}]",
                &format!(
                    "executor: constant-arrival-rate\n      rate: 10/s\n      {extra}\n      mix: [{{tool: echo}}]"
                ),
            )
        };
        let ok = Config::from_yaml(&open("spike: {at: 200ms, factor: 4, hold: 300ms}"), "p.yaml").unwrap();
        let model = ok.workload.scenarios[0].model();
        let LoadModel::Open { rate, .. } = model else { panic!() };
        assert_eq!(rate.at(Duration::from_millis(350)), 40.0);
        assert!(
            err(&open("spike: {at: 200ms, factor: 1, hold: 300ms}")).contains("`workload.scenarios[0].spike.factor`")
        );
        assert!(err(&open("spike: {at: 800ms, factor: 2, hold: 300ms}")).contains("at + hold must end before"));
        assert!(err(&open("breakpoint: {p99: 50ms}")).contains("`workload.scenarios[0].breakpoint`: does not apply"));
        let ramp = MINIMAL.replace(
            "duration: 1s\n      mix: [{tool: echo}]",
            "executor: ramping-arrival-rate\n      stages: [{duration: 1s, target: 10/s}]\n      breakpoint: {}\n      mix: [{tool: echo}]",
        );
        assert!(err(&ramp).contains("give p99, error_rate or both"), "{}", err(&ramp));
        assert!(Config::from_yaml(&open("soak: true"), "p.yaml").unwrap().workload.scenarios[0].soak);
    }

    #[test]
    fn http_needs_a_url_and_may_skip_the_command() {
        let http = |server: &str| {
            format!("server: {server}\nworkload: {{scenarios: [{{name: s, duration: 1s, mix: [{{tool: echo}}]}}]}}\n")
        };
        assert!(err(&http("{transport: http}")).contains("`server.url`: is required with `transport: http`"));
        assert!(err(&http("{transport: http, url: \"https://x/mcp\"}")).contains("must be an http:// URL"));
        assert!(err(&http("{command: [x], url: \"http://h/mcp\"}")).contains("`server.url`: is only used with"));
        assert!(err(&http("{}")).contains("`server.command`: must name a program"));
        let c = Config::from_yaml(&http("{transport: http, url: \"http://127.0.0.1:3000/mcp\"}"), "p.yaml").unwrap();
        let plan = c.into_plan("p.yaml".into(), Path::new("/bin/x"), Path::new("."));
        assert!(plan.server.command.is_empty());
        assert_eq!(plan.server.to_string(), "http://127.0.0.1:3000/mcp");
    }

    #[test]
    fn missing_file_is_named() {
        let e = Config::from_path(Path::new("/nonexistent/perf.yaml")).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/perf.yaml: cannot read config file"), "{e}");
    }

    #[test]
    fn embedded_default_resolves_self_to_this_executable() {
        let plan = Plan::embedded_default(Path::new("/usr/bin/mcp-perfcheck"));
        assert_eq!(plan.server.command, ["/usr/bin/mcp-perfcheck", "serve"]);
        assert!(plan.workload.scenarios[0].mix.iter().any(|m| m.operation() == "tools/call:compute"));
        use crate::stats::Metric;
        assert_eq!(plan.workload.scenarios[0].gate, None);
        assert_eq!(plan.workload.scenarios[1].gate, Some(vec![Metric::ErrorRate, Metric::RssPeak]));
    }
}
