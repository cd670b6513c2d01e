//! `workload:`: repetitions, scenarios, executors and their load models, and the mix.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{FaultStep, HumanDuration, Percent, Profile, Rate};

/// What to drive: repetitions and scenarios.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
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
    /// The scenarios, run in order, each on fresh server processes.
    #[schemars(length(min = 1))]
    #[schemars(example = serde_json::json!([{"name": "steady", "concurrency": 1, "warmup": "1s", "duration": "10s", "mix": [{"tool": "echo", "arguments": {"message": "hi"}}]}]))]
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

impl schemars::JsonSchema for Repetitions {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Repetitions".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Fresh server processes per scenario: a number, or `auto` (a pilot of six, then as many as the noise asks for within compare.budget).",
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"const": "auto"}
            ],
            "examples": ["auto", 10],
        })
    }
}

/// How a scenario generates load (k6's executor names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long the stage takes to reach its target.
    pub duration: HumanDuration,
    /// The rate (ramping-arrival-rate) or VUs (ramping-vus) at the stage's end.
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

impl schemars::JsonSchema for StageTarget {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StageTarget".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A rate such as 2000/s (ramping-arrival-rate), or a number of VUs (ramping-vus).",
            "oneOf": [generator.subschema_for::<Rate>(), {"type": "integer", "minimum": 0}],
            "examples": ["2000/s", 50],
        })
    }
}

/// A scenario: a load model, a mix, and optional phases and faults.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The scenario's name in results and reports (unique in the workload).
    #[schemars(example = &"steady")]
    pub name: String,
    /// How load is generated (k6's executor names; default `constant-vus`).
    #[serde(default)]
    pub executor: Executor,
    /// Requests kept in flight (constant-vus, iterations; default 1).
    #[serde(default)]
    #[schemars(example = 8)]
    pub concurrency: Option<u32>,
    /// Arrival rate (constant-arrival-rate), e.g. `500/s`.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Most requests outstanding at once (arrival-rate executors; default 100).
    #[serde(default)]
    #[schemars(example = 100)]
    pub max_in_flight: Option<u32>,
    /// Requests to make (iterations).
    #[serde(default)]
    #[schemars(example = 1000)]
    pub iterations: Option<u64>,
    /// Rate at the start of the stages (ramping-arrival-rate; default 0/s).
    #[serde(default)]
    pub start_rate: Option<Rate>,
    /// VUs at the start of the stages (ramping-vus; default 1).
    #[serde(default)]
    #[schemars(example = 1)]
    pub start_vus: Option<u32>,
    /// The ramping executors' stages; together they are the measured window.
    #[serde(default)]
    #[schemars(example = serde_json::json!([{"duration": "30s", "target": "2000/s"}]))]
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
    #[schemars(example = serde_json::json!([{"tool": "echo", "arguments": {"message": "hi"}, "weight": 3}, {"method": "tools/list"}]))]
    pub mix: Vec<MixEntry>,
    /// Constant executors: step the load up for a while, then measure the recovery.
    #[serde(default)]
    #[schemars(example = serde_json::json!({"at": "4s", "factor": 3, "hold": "2s"}))]
    pub spike: Option<Spike>,
    /// ramping-arrival-rate: stop when a second breaks these limits; report the capacity.
    #[serde(default)]
    #[schemars(example = serde_json::json!({"p99": "50ms", "error_rate": "1%"}))]
    pub breakpoint: Option<Breakpoint>,
    /// A long steady run whose RSS and open-fd slopes are the point (reported for every
    /// scenario; a soak puts them in the summary).
    #[serde(default)]
    pub soak: bool,
    /// Faults applied to `server.upstreams` during the measured window.
    #[serde(default)]
    #[schemars(example = serde_json::json!([{"at": "1s", "upstream": "catalog", "kind": "outage", "mode": "unavailable", "duration": "1s"}]))]
    pub faults: Vec<FaultStep>,
    /// The metrics that decide in this scenario, replacing `compare.gate` for it (an outage
    /// scenario judged on its errors, whose latency mixes the outage with the rest); `[]`: its
    /// metrics are reported and decide nothing.
    #[serde(default)]
    #[schemars(example = serde_json::json!(["error_rate", "rss_peak"]))]
    pub gate: Option<Vec<crate::stats::Metric>>,
}

/// A spike: `at` into the measured window the load (rate or VUs) steps to `factor` times its
/// level for `hold`, then back.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// When the spike starts, into the measured window.
    pub at: HumanDuration,
    /// The load during the spike, as a multiple of the scenario's level.
    #[schemars(example = 3.0)]
    pub factor: f64,
    /// How long the spike lasts.
    pub hold: HumanDuration,
}

/// Limits one second of a breakpoint run must keep; the first second that breaks one ends it.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
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
    pub(super) fn validate_executor(&self, at: &str) -> Result<(), String> {
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

/// One kind of request of a mix, weighted.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// The tool to call (implies `method: tools/call`).
    #[serde(default)]
    #[schemars(example = &"echo")]
    pub tool: Option<String>,
    /// The MCP method; `tools/call` when `tool` is given.
    #[serde(default)]
    pub method: Option<Method>,
    /// `resources/read`: the resource.
    #[serde(default)]
    #[schemars(example = &"demo://resource/static/document/architecture.md")]
    pub uri: Option<String>,
    /// `prompts/get`: the prompt.
    #[serde(default)]
    #[schemars(example = &"args-prompt")]
    pub prompt: Option<String>,
    /// Arguments of `tools/call` and `prompts/get`. A value `{$random: [a, b]}` takes one of the
    /// values per call; `{$sequence: {start: 1, step: 1}}` counts up per call of this entry.
    #[serde(default)]
    #[schemars(example = serde_json::json!({"message": "hi", "id": {"$random": [1, 2, 3]}}))]
    pub arguments: serde_json::Map<String, serde_json::Value>,
    /// A JSONL file (relative to the config file) whose lines are the arguments of successive
    /// calls, in turn; instead of `arguments`.
    #[serde(default)]
    #[schemars(example = &"fixtures/configs/echo-messages.jsonl")]
    pub arguments_file: Option<PathBuf>,
    /// The lines of `arguments_file`, read when the config is loaded.
    #[serde(skip)]
    pub argument_lines: Vec<serde_json::Map<String, serde_json::Value>>,
    /// The entry's share of the calls, relative to the other entries' weights (default 1).
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1))]
    pub weight: u32,
}

/// The MCP requests a mix can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
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

    pub(super) fn validate(&self, at: &str) -> Result<(), String> {
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

fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_weight() -> u32 {
    1
}
