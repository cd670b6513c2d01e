//! `compare:`: how a comparison decides.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{HumanDuration, Percent, Repetitions};

/// How `compare` decides: significance, minimum effects, the gating metrics.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendConfig {
    /// Looks in all, the first included; 1 turns extension off (default: 1 with a fixed
    /// `workload.repetitions`, 4 with `auto`).
    #[serde(default)]
    #[schemars(example = 4)]
    pub max_looks: Option<u32>,
    /// Repetitions per side added at each extra look (default: half of a fixed
    /// `workload.repetitions`, at least 2; with `auto`, as many as the spread asks for).
    #[serde(default)]
    #[schemars(example = 5)]
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
    pub(super) fn entries(&self) -> [(&'static str, Percent); 5] {
        [
            ("latency", self.latency),
            ("throughput", self.throughput),
            ("memory", self.memory),
            ("cpu", self.cpu),
            ("error_rate", self.error_rate),
        ]
    }
}

impl schemars::JsonSchema for MinEffectConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MinEffect".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let percent = generator.subschema_for::<Percent>();
        schemars::json_schema!({
            "description": "The smallest change that counts: one percentage for latency and throughput, or one per kind of metric.",
            "oneOf": [
                percent,
                {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "latency": {"$ref": "#/$defs/Percent", "description": "Latency percentiles, relative (default 5%)."},
                        "throughput": {"$ref": "#/$defs/Percent", "description": "Throughput, relative (default 5%)."},
                        "memory": {"$ref": "#/$defs/Percent", "description": "Peak RSS, relative (default 10%)."},
                        "cpu": {"$ref": "#/$defs/Percent", "description": "CPU per call, relative (default 10%)."},
                        "error_rate": {"$ref": "#/$defs/Percent", "description": "The error rate's absolute floor, in percentage points (default 0.1%)."},
                        "error_ratio": {"type": "number", "exclusiveMinimum": 0, "description": "The error rate's ratio, head over base (default 1.5).", "examples": [1.5]}
                    }
                }
            ],
            "examples": ["5%", {"latency": "5%", "memory": "10%", "error_ratio": 1.5}],
        })
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

fn default_alpha() -> f64 {
    0.05
}
