//! Comparing two runs: per scenario and operation the repetition-level p50, p95, p99 and
//! throughput, per scenario the error rate, the server's peak RSS and its CPU per call, of base
//! and head are tested (Welch's t on logarithms; on raw values for the error rate), the p-values
//! are adjusted across all metrics (Holm), and each metric gets a verdict against its minimum
//! effect.
//!
//! Pure functions over results already in memory: `stats` does no I/O.

mod adjust;
mod bootstrap;
mod calibration;
mod change_points;
mod counts;
mod mwu;
mod paired;
mod power;
#[cfg(test)]
mod reference_tests;
mod sequential;
#[cfg(test)]
mod simulation_tests;
pub mod thresholds;
mod welch;

use serde::Serialize;

use crate::measure::{Environment, Quantity};
use crate::results::{LatencyBasis, Results, ScenarioResult};

pub use adjust::{benjamini_hochberg, holm};
pub use bootstrap::{BootstrapRatio, IndexedBuckets, PooledBuckets, SplitMix64, bootstrap_ratio, pooled_quantile};
pub use calibration::{
    CALIBRATION_SCHEMA, Calibration, CalibrationCite, CalibrationRecord, Detectable, POWER, calibrate, clopper_pearson,
};
pub use change_points::{ChangePoint, Settings as ChangePointSettings, change_points, change_points_after};
pub use counts::{Counts, RateTest, error_rate_test};
pub use mwu::{HodgesLehmann, MannWhitney, hodges_lehmann, mann_whitney};
pub use paired::{OUTLIER_Z, outliers, paired_log_ratio};
pub use power::{Design, MAX_REPETITIONS, detectable_change, repetitions_for};
pub use sequential::{alpha_spent, look_alpha};
pub use welch::{DifferenceTest, LogRatioTest, geometric_mean, welch_difference, welch_log_ratio};

/// Confidence of the reported intervals.
pub const CONFIDENCE: f64 = 0.95;

/// How a comparison decides.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Policy {
    /// Family-wise significance level (Holm-adjusted p-values are compared with it).
    pub alpha: f64,
    /// Per kind of metric, the change below which nothing is called a regression or an
    /// improvement.
    pub min_effect: MinEffects,
    /// When the runs' environments differ (CPU model, cores, OS), keep the verdict binding
    /// rather than advisory.
    pub strict_environment: bool,
    /// Which calls latency percentiles are taken over (`all` where a report written before the
    /// choice existed does not say).
    #[serde(default)]
    pub latency: LatencyBasis,
    /// The metrics that decide (all, where a report written before the choice does not say).
    #[serde(default = "every_metric")]
    pub gate: Gate,
    /// Scenarios that decide on metrics of their own instead of `gate`
    /// (`workload.scenarios[].gate`: an outage scenario judged on its errors alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenario_gates: Vec<ScenarioGate>,
}

/// One scenario's own gate.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ScenarioGate {
    pub scenario: String,
    pub gate: Gate,
}

impl Policy {
    /// The metrics that decide in `scenario`.
    pub fn gate_of(&self, scenario: &str) -> Gate {
        self.scenario_gates.iter().find(|g| g.scenario == scenario).map_or(self.gate, |g| g.gate)
    }

    /// The defaults: α 0.05; minimum effects 5% for latency and throughput (the resolution
    /// users ask of a gate), 10% for memory and CPU, whose repetition-to-repetition spread is
    /// wider (allocator and scheduler noise), errors ×1.5 and at least a tenth of a percentage
    /// point more. The config's defaults are these.
    pub const DEFAULT: Policy = Policy {
        alpha: 0.05,
        min_effect: MinEffects {
            latency: 0.05,
            throughput: 0.05,
            memory: 0.10,
            cpu: 0.10,
            error_rate: 0.001,
            error_ratio: 1.5,
        },
        strict_environment: false,
        latency: LatencyBasis::All,
        gate: Gate::DEFAULT,
        scenario_gates: Vec::new(),
    };
}

/// Minimum effects per kind of metric: relative for latency, throughput, memory and CPU (0.05 =
/// 5%). The error rate's is both: a head rate `error_ratio` times the base's, and at least
/// `error_rate` more in absolute terms (0.001 = a tenth of a percentage point), since a rate
/// that starts at zero has no relative change and a tiny one moves by large ratios.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct MinEffects {
    pub latency: f64,
    pub throughput: f64,
    pub memory: f64,
    pub cpu: f64,
    pub error_rate: f64,
    /// (A report written before the ratio existed judged error rates on the floor alone.)
    #[serde(default = "no_error_ratio")]
    pub error_ratio: f64,
}

fn no_error_ratio() -> f64 {
    1.0
}

impl MinEffects {
    /// The minimum effect of `metric` on the scale of its change; for the error rate, in
    /// absolute terms at the base's rate `base`.
    pub fn of(&self, metric: Metric, base: Option<f64>) -> f64 {
        match metric {
            Metric::P50 | Metric::P95 | Metric::P99 => self.latency,
            Metric::Throughput => self.throughput,
            Metric::RssPeak => self.memory,
            Metric::CpuPerCall => self.cpu,
            Metric::ErrorRate => self.error_rate.max((self.error_ratio - 1.0) * base.unwrap_or(0.0)),
        }
    }
}

/// The metrics whose verdicts decide a comparison (`compare.gate`); the others are reported
/// beside them, judged the same way, and decide nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate(u8);

impl Gate {
    pub const ALL: Gate = Gate(0x7f);
    /// The median latency, errors, memory and CPU: on a shared 2-core runner these stay steady
    /// enough to decide within minutes, where p95, p99 and closed-model throughput (which
    /// mirrors latency) swing with the neighbours (`calibrate` measures it; see the README).
    pub const DEFAULT: Gate = Gate(
        1 << Metric::P50 as u8
            | 1 << Metric::ErrorRate as u8
            | 1 << Metric::RssPeak as u8
            | 1 << Metric::CpuPerCall as u8,
    );

    pub fn of(metrics: &[Metric]) -> Gate {
        Gate(metrics.iter().fold(0, |bits, m| bits | 1 << *m as u8))
    }

    pub fn contains(self, metric: Metric) -> bool {
        self.0 & (1 << metric as u8) != 0
    }

    pub fn metrics(self) -> Vec<Metric> {
        Metric::PER_OPERATION.into_iter().chain(Metric::PER_SCENARIO).filter(|m| self.contains(*m)).collect()
    }
}

fn every_metric() -> Gate {
    Gate::ALL
}

impl Serialize for Gate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.metrics().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Gate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Gate, D::Error> {
        Ok(Gate::of(&Vec::<Metric>::deserialize(deserializer)?))
    }
}

/// A metric a comparison tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The median latency of an operation.
    P50,
    /// The 95th percentile latency of an operation.
    P95,
    /// The 99th percentile latency of an operation.
    P99,
    /// Calls per second of an operation.
    Throughput,
    /// Failed calls over all calls of a scenario (errors not tied to an operation included).
    ErrorRate,
    /// The server process tree's peak resident memory.
    RssPeak,
    /// The server process tree's CPU time per call, µs.
    CpuPerCall,
}

/// How a metric's change is expressed and tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Ratio of geometric means (Welch on logarithms); `change` 0.072 = +7.2%.
    Ratio,
    /// Difference of means (Welch on the values); `change` 0.02 = +2 percentage points.
    Difference,
}

/// The operation name scenario-level metrics are listed under.
pub const ALL_OPERATIONS: &str = "(all)";

impl Metric {
    /// Measured per operation.
    pub const PER_OPERATION: [Metric; 4] = [Metric::P50, Metric::P95, Metric::P99, Metric::Throughput];
    /// Measured per scenario, over all its operations.
    pub const PER_SCENARIO: [Metric; 3] = [Metric::ErrorRate, Metric::RssPeak, Metric::CpuPerCall];

    pub fn lower_is_better(self) -> bool {
        !matches!(self, Metric::Throughput)
    }

    pub fn scale(self) -> Scale {
        if self == Metric::ErrorRate { Scale::Difference } else { Scale::Ratio }
    }

    pub fn label(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Throughput => "throughput",
            Metric::ErrorRate => "error rate",
            Metric::RssPeak => "peak RSS",
            Metric::CpuPerCall => "CPU per call",
        }
    }

    pub fn quantity(self) -> Quantity {
        match self {
            Metric::P50 | Metric::P95 | Metric::P99 | Metric::CpuPerCall => Quantity::Duration,
            Metric::Throughput => Quantity::PerSecond,
            Metric::ErrorRate => Quantity::Ratio,
            Metric::RssPeak => Quantity::Bytes,
        }
    }

    pub fn unit(self) -> &'static str {
        match self.quantity() {
            Quantity::Duration => "µs",
            Quantity::PerSecond => "calls/s",
            Quantity::Bytes => "bytes",
            _ => "ratio",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricVerdict {
    /// Worse, significantly, by more than the minimum effect.
    Regression,
    /// Better, significantly, by more than the minimum effect.
    Improvement,
    /// A significant change whose whole interval lies within the minimum effect: real, and too
    /// small to matter.
    Negligible,
    /// No significant change, and the whole interval within the minimum effect.
    Unchanged,
    /// Not decided: the interval reaches past the minimum effect without the change being
    /// shown to (or the metric could not be tested).
    Inconclusive,
}

impl MetricVerdict {
    pub fn label(self) -> &'static str {
        match self {
            MetricVerdict::Regression => "regression",
            MetricVerdict::Improvement => "improvement",
            MetricVerdict::Negligible => "negligible",
            MetricVerdict::Unchanged => "unchanged",
            MetricVerdict::Inconclusive => "inconclusive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No metric regressed, and none could be worse by more than its minimum effect: each is
    /// unchanged, negligible or improved, or undecided only on its better side.
    Pass,
    /// At least one metric regressed significantly and beyond the minimum effect.
    Fail,
    /// No regression shown, but some metric could still be worse by more than its minimum
    /// effect (its interval reaches past it), or could not be tested at all.
    Inconclusive,
    /// The runs could not be compared (a run failed, or they share nothing to compare).
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricComparison {
    pub scenario: String,
    pub operation: String,
    pub metric: Metric,
    pub unit: &'static str,
    pub scale: Scale,
    /// Paired (a same-runner A/B: `base_values[i]` ran beside `head_values[i]`) or independent.
    pub design: Design,
    /// The base repetitions' central value: geometric mean (ratio scale) or mean (difference).
    pub base: Option<f64>,
    pub head: Option<f64>,
    /// The repetition-level values used, so anyone can recompute the test (paired: in pair
    /// order).
    pub base_values: Vec<f64>,
    pub head_values: Vec<f64>,
    /// Repetitions left out as disturbed ([`outliers`]), with their values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<Excluded>,
    /// Change of head against base: relative (0.072 = +7.2%) on the ratio scale, absolute on
    /// the difference scale.
    pub change: Option<f64>,
    /// 95% interval of `change`.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// The minimum effect this metric was judged against, on the scale of `change`.
    pub min_effect: f64,
    /// Welch's t on logarithms, two-sided.
    pub p_welch: Option<f64>,
    /// Mann–Whitney U, two-sided: the distribution-free check beside Welch's t.
    pub p_mwu: Option<f64>,
    /// `p_welch`, Holm-adjusted across every metric of this comparison: what the gate uses.
    pub p_adjusted: Option<f64>,
    /// `p_welch`, Benjamini–Hochberg q-value across the same metrics (shown, not gating).
    pub q_value: Option<f64>,
    /// Hodges–Lehmann shift head − base in the metric's unit, with its distribution-free
    /// interval (`None` beyond 50 repetitions a side).
    pub hl_shift: Option<f64>,
    pub hl_low: Option<f64>,
    pub hl_high: Option<f64>,
    /// For p99: the change of the p99 pooled over all requests of each side, with a 95%
    /// bootstrap interval that resamples whole repetitions (shown, not gating).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooled: Option<PooledChange>,
    /// Its verdict decides the comparison (`compare.gate`).
    pub gates: bool,
    /// The error rate's counts, which it is tested on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<ErrorCounts>,
    /// The smallest change this comparison could detect with 90% power, from the two sides'
    /// spread at their size (on the scale of `change`).
    pub detectable: Option<f64>,
    /// `detectable` is above the minimum effect: a change that matters could go unseen.
    pub underpowered: bool,
    /// Repetitions a side that would detect the minimum effect with 90% power, from the same
    /// spread (`None`: more than [`MAX_REPETITIONS`], or no spread to go by).
    pub repetitions_needed: Option<u32>,
    pub verdict: MetricVerdict,
}

impl MetricComparison {
    /// The spread between repetitions its test saw, on the scale of its design: per side's
    /// sum of squares and degrees of freedom, or for pairs the differences' over 2 (so that
    /// its root is what one side's spread would be if the pairs shared nothing).
    pub fn spread_terms(&self) -> Option<(f64, usize)> {
        match self.design {
            Design::Independent => {
                let sides = [self.base_values.as_slice(), self.head_values.as_slice()];
                let terms: Vec<(f64, usize)> =
                    sides.iter().filter_map(|v| power::sum_of_squares(v, self.scale)).collect();
                (!terms.is_empty()).then(|| terms.iter().fold((0.0, 0), |(s, d), (s2, d2)| (s + s2, d + d2)))
            }
            Design::Paired => {
                let d: Vec<f64> = self
                    .base_values
                    .iter()
                    .zip(&self.head_values)
                    .filter(|(b, h)| **b > 0.0 && **h > 0.0)
                    .map(|(b, h)| h.ln() - b.ln())
                    .collect();
                power::sum_of_squares(&d, Scale::Difference).map(|(ss, df)| (ss / 2.0, df))
            }
        }
    }

    /// The end of the 95% interval on the worse side: the largest slowdown (or loss of
    /// throughput) the data allow.
    pub fn worst_case(&self) -> Option<f64> {
        if self.metric.lower_is_better() { self.ci_high } else { self.ci_low }
    }

    /// Not shown to be within its minimum effect on the worse side: what keeps a comparison
    /// from passing when nothing regressed.
    pub fn could_regress(&self) -> bool {
        self.verdict == MetricVerdict::Inconclusive
            && self
                .worst_case()
                .is_none_or(|w| if self.metric.lower_is_better() { w > self.min_effect } else { w < -self.min_effect })
    }
}

/// A repetition left out of a metric's test: its value was an outlier among its side's (or,
/// paired, its ratio among the pairs').
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Excluded {
    pub side: Side,
    pub repetition: u32,
    /// The value (for a pair, head over base).
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Base,
    Head,
    /// Both halves of a pair.
    Pair,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Base => "base",
            Side::Head => "head",
            Side::Pair => "pair",
        }
    }
}

/// Errors and calls per repetition of both sides, and the dispersion their scatter showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorCounts {
    pub base: Vec<Counts>,
    pub head: Vec<Counts>,
    pub dispersion: f64,
}

/// A pooled quantile's relative change with its bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PooledChange {
    pub base: f64,
    pub head: f64,
    pub change: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub iterations: usize,
    pub seed: u64,
}

/// Identifies one side of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub git_sha: Option<String>,
    pub timestamp: String,
    pub server: Option<String>,
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub verdict: Verdict,
    pub alpha: f64,
    pub min_effect: MinEffects,
    pub confidence: f64,
    pub base: RunInfo,
    pub head: RunInfo,
    pub metrics: Vec<MetricComparison>,
    /// How the two runs' machines differ, when they do (CPU model, cores, OS).
    pub environment_mismatch: Option<String>,
    /// The environments differ and the policy is not strict: the verdict informs, it does not
    /// gate.
    pub advisory: bool,
    /// The latest calibration (`mcp-perfcheck calibrate`), when one is at hand: its measured
    /// false-alarm rate is cited in the report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationCite>,
    /// The head run took several looks at its data (`compare.extend`): which look this is and
    /// the share of α it tests at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub look: Option<LookInfo>,
    /// Why the verdict is `error` or what limited the comparison.
    pub notes: Vec<String>,
}

/// One look of a run that may take several (see `sequential`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LookInfo {
    /// 1 for the first look.
    pub look: usize,
    /// Repetitions per side at this look, and the most the looks could reach.
    pub repetitions: u32,
    pub max_repetitions: u32,
    /// The significance level of this look (Holm-adjusted p-values are compared with it): its
    /// share of `alpha`.
    pub alpha: f64,
}

impl Comparison {
    pub fn count(&self, verdict: MetricVerdict) -> usize {
        self.metrics.iter().filter(|m| m.verdict == verdict).count()
    }

    /// The regressions that decide: of metrics that gate.
    pub fn regressions(&self) -> usize {
        self.metrics.iter().filter(|m| m.gates && m.verdict == MetricVerdict::Regression).count()
    }

    /// More repetitions could settle something: no regression yet, the runs comparable, and
    /// some metric not yet shown to be within its minimum effect on the worse side.
    pub fn wants_more_repetitions(&self) -> bool {
        self.verdict == Verdict::Inconclusive
    }

    /// The metrics that keep the comparison from passing, the largest possible slowdown
    /// first (those that could not be tested at all last).
    pub fn undecided(&self) -> Vec<&MetricComparison> {
        let mut undecided: Vec<&MetricComparison> =
            self.metrics.iter().filter(|m| m.gates && m.could_regress()).collect();
        let excess = |m: &MetricComparison| m.worst_case().map_or(f64::NEG_INFINITY, |w| w.abs() - m.min_effect);
        undecided.sort_by(|a, b| excess(b).total_cmp(&excess(a)));
        undecided
    }
}

/// Per scenario of `scenarios`, the repetitions a side that its undecided gating metrics ask
/// for to reach 90% power at their minimum effects ([`MAX_REPETITIONS`] where none would do);
/// `None` for a scenario with nothing left to decide. Nothing is left once the comparison
/// passed, failed or could not be made.
pub fn wanted_repetitions(c: &Comparison, scenarios: &[&str]) -> Vec<Option<u32>> {
    let undecided = c.undecided();
    scenarios
        .iter()
        .map(|name| {
            (c.verdict == Verdict::Inconclusive)
                .then(|| {
                    undecided
                        .iter()
                        .filter(|m| m.scenario == *name)
                        .map(|m| m.repetitions_needed.unwrap_or(MAX_REPETITIONS))
                        .max()
                })
                .flatten()
        })
        .collect()
}

/// For one run that a later comparison will judge (against a stored baseline, as independent
/// samples): per scenario, the repetitions a side its gating metrics need for 90% power at
/// their minimum effects, from the run's own spread; `None` for a scenario that has them.
pub fn planned_repetitions(run: &Results, policy: &Policy) -> Vec<Option<u32>> {
    let itself = compare_as(run, run, policy, Design::Independent);
    run.scenarios
        .iter()
        .map(|s| {
            let have = s.completed_repetitions().count() as u32;
            itself
                .metrics
                .iter()
                .filter(|m| m.gates && m.scenario == s.name)
                .map(|m| m.repetitions_needed.unwrap_or(MAX_REPETITIONS))
                .max()
                .filter(|want| *want > have)
        })
        .collect()
}

fn run_info(r: &Results) -> RunInfo {
    RunInfo {
        git_sha: r.git_sha.clone(),
        timestamp: r.timestamp.clone(),
        server: r.server.as_ref().map(|s| format!("{} {}", s.name, s.version)),
        failure: r.failure.as_ref().map(|f| f.message.clone()),
    }
}

/// One repetition's value of a metric, with the repetition's index (what pairs a base
/// repetition with the head repetition that ran beside it).
type Indexed = Vec<(u32, f64)>;

/// The repetition-level values of one per-operation metric, from completed repetitions that
/// measured the operation and, for latency, had at least one successful call.
fn values(scenario: &ScenarioResult, operation: &str, metric: Metric, basis: LatencyBasis) -> Indexed {
    scenario
        .completed_repetitions()
        .filter_map(|r| Some((r.index, r.operation(operation)?)))
        .filter_map(|(index, op)| {
            let l = op.latency(basis);
            let latency_known = op.latency_count(basis) > 0;
            let value = match metric {
                Metric::P50 if latency_known => l.p50 as f64,
                Metric::P95 if latency_known => l.p95 as f64,
                Metric::P99 if latency_known => l.p99 as f64,
                Metric::Throughput => op.throughput_per_s,
                _ => return None,
            };
            Some((index, value))
        })
        .collect()
}

/// The repetition-level values of one per-scenario metric. Resource metrics exist only when
/// the server was launched (and so sampled) by the run.
fn scenario_values(scenario: &ScenarioResult, metric: Metric) -> Indexed {
    scenario
        .completed_repetitions()
        .filter_map(|r| {
            let value = match metric {
                Metric::ErrorRate => {
                    let c = repetition_counts(r);
                    (c.calls > 0).then(|| c.errors as f64 / c.calls as f64)
                }
                Metric::RssPeak => {
                    r.server_resources.as_ref().filter(|s| s.samples > 0).map(|s| s.rss_peak_bytes as f64)
                }
                Metric::CpuPerCall => {
                    r.server_resources.as_ref().map(|s| s.cpu_us_per_call).filter(|c| c.is_finite() && *c > 0.0)
                }
                _ => None,
            };
            Some((r.index, value?))
        })
        .collect()
}

/// A repetition's errors out of its calls, every operation and the unattributed errors.
fn repetition_counts(r: &crate::results::RepetitionResult) -> Counts {
    let unattributed: u64 = r.unattributed_errors.values().sum();
    Counts {
        calls: r.operations.iter().map(|o| o.count).sum::<u64>() + unattributed,
        errors: r.operations.iter().map(|o| o.error_count()).sum::<u64>() + unattributed,
    }
}

/// The error rate compared on counts ([`error_rate_test`]); the per-repetition rates stay in
/// the values, with the distribution-free view computed on them.
fn error_rate_comparison(base: &ScenarioResult, head: &ScenarioResult) -> MetricComparison {
    let counts = |s: &ScenarioResult| -> Vec<Counts> {
        s.completed_repetitions().map(repetition_counts).filter(|c| c.calls > 0).collect()
    };
    let (b, h) = (counts(base), counts(head));
    let (vb, vh) = (scenario_values(base, Metric::ErrorRate), scenario_values(head, Metric::ErrorRate));
    // Tested on counts, whose dispersion already allows for a burst in one repetition.
    let mut m = metric_comparison(&head.name, ALL_OPERATIONS, Metric::ErrorRate, vb, vh, Design::Independent);
    if let Some(t) = error_rate_test(&b, &h, CONFIDENCE) {
        m.base = Some(t.base_rate);
        m.head = Some(t.head_rate);
        m.change = Some(t.head_rate - t.base_rate);
        (m.ci_low, m.ci_high, m.p_welch) = (Some(t.low), Some(t.high), Some(t.p_value));
        m.counts = Some(ErrorCounts { base: b, head: h, dispersion: t.dispersion });
    }
    m
}

/// Each completed repetition's latency histogram of `operation`, as buckets for the bootstrap.
/// Says so when a latency percentile of `operation` reached the request timeout in some
/// repetition: the calls behind it took at least that long, and the value is a lower bound.
fn censored_note(scenario: &ScenarioResult, operation: &str, side: &str, basis: LatencyBasis) -> Option<String> {
    let (percentile, timeout) = scenario
        .completed_repetitions()
        .filter_map(|r| r.operation(operation))
        .filter_map(|op| {
            let l = op.latency(basis);
            let at = [("p50", l.p50), ("p95", l.p95), ("p99", l.p99)].into_iter().find(|(_, v)| op.is_censored(*v))?;
            Some((at.0, op.censored_at_us?))
        })
        .next()?;
    Some(format!(
        "`{operation}` of scenario `{}` ({side}): its {percentile} reached the {} ms request timeout: those calls took at least that long (censored)",
        scenario.name,
        timeout / 1000
    ))
}

fn bucket_sets(scenario: &ScenarioResult, operation: &str, basis: LatencyBasis) -> Vec<Vec<(u64, u64)>> {
    scenario
        .completed_repetitions()
        .filter_map(|r| r.operation(operation))
        .filter_map(|op| op.decode_histogram_on(basis).ok())
        .filter(|h| !h.is_empty())
        .map(|h| h.buckets())
        .collect()
}

/// Bootstrap iterations for the pooled p99: enough for stable 95% limits (±0.5 percentile
/// points of the bootstrap distribution), cheap enough for hundreds of operations.
const BOOTSTRAP_ITERATIONS: usize = 1000;

/// The pooled-p99 change with its bootstrap interval; seeded from the metric's identity so
/// the same files always give the same interval.
fn pooled_p99(
    scenario: &str,
    operation: &str,
    base: &[Vec<(u64, u64)>],
    head: &[Vec<(u64, u64)>],
) -> Option<PooledChange> {
    let sets: Vec<&[(u64, u64)]> = base.iter().chain(head).map(Vec::as_slice).collect();
    let (axis, mut indexed) = PooledBuckets::new(&sets);
    let head_indexed = indexed.split_off(base.len());
    let base_indexed = indexed;
    let p99 = |reps: &[&IndexedBuckets]| axis.quantile(reps, 0.99);
    let seed = format!("{scenario}\u{0}{operation}").bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3) // FNV-1a
    });
    let r = bootstrap_ratio(&base_indexed, &head_indexed, p99, BOOTSTRAP_ITERATIONS, seed, CONFIDENCE)?;
    let (b, h) = (p99(&base_indexed.iter().collect::<Vec<_>>()), p99(&head_indexed.iter().collect::<Vec<_>>()));
    Some(PooledChange {
        base: b,
        head: h,
        change: r.ratio - 1.0,
        ci_low: r.low - 1.0,
        ci_high: r.high - 1.0,
        iterations: BOOTSTRAP_ITERATIONS,
        seed,
    })
}

/// Compares `head` with `base` under `policy`: as pairs when they are the two sides of one
/// same-runner A/B, else as independent samples.
pub fn compare(base: &Results, head: &Results, policy: &Policy) -> Comparison {
    let design =
        if base.pairing.is_some() && base.pairing == head.pairing { Design::Paired } else { Design::Independent };
    compare_as(base, head, policy, design)
}

fn compare_as(base: &Results, head: &Results, policy: &Policy, design: Design) -> Comparison {
    let mut notes = Vec::new();
    let mut metrics = Vec::new();
    for hs in &head.scenarios {
        let Some(bs) = base.scenario(&hs.name) else {
            notes.push(format!("scenario `{}` is not in the base run", hs.name));
            continue;
        };
        for op in hs.operation_names() {
            if !bs.operation_names().contains(&op) {
                notes.push(format!("operation `{op}` of scenario `{}` is not in the base run", hs.name));
                continue;
            }
            for (side, sc) in [("base", bs), ("head", hs)] {
                if let Some(note) = censored_note(sc, op, side, policy.latency) {
                    notes.push(note);
                }
            }
            for metric in Metric::PER_OPERATION {
                let basis = policy.latency;
                let (b, h) = (values(bs, op, metric, basis), values(hs, op, metric, basis));
                let mut m = metric_comparison(&hs.name, op, metric, b, h, design);
                if metric == Metric::P99 {
                    m.pooled = pooled_p99(&hs.name, op, &bucket_sets(bs, op, basis), &bucket_sets(hs, op, basis));
                }
                metrics.push(m);
            }
        }
        for metric in Metric::PER_SCENARIO {
            let (b, h) = (scenario_values(bs, metric), scenario_values(hs, metric));
            // A server the run did not launch has no resource figures on either side.
            if b.is_empty() && h.is_empty() {
                continue;
            }
            metrics.push(match metric {
                Metric::ErrorRate => error_rate_comparison(bs, hs),
                _ => metric_comparison(&hs.name, ALL_OPERATIONS, metric, b, h, design),
            });
        }
    }
    for bs in &base.scenarios {
        if head.scenario(&bs.name).is_none() {
            notes.push(format!("scenario `{}` is not in the head run", bs.name));
        }
    }

    let look = head.looks.as_ref().filter(|l| !l.repetitions.is_empty()).map(|l| LookInfo {
        look: l.repetitions.len(),
        repetitions: *l.repetitions.last().expect("not empty"),
        max_repetitions: l.max_repetitions,
        alpha: look_alpha(policy.alpha, l),
    });
    judge(&mut metrics, &Policy { alpha: look.map_or(policy.alpha, |l| l.alpha), ..policy.clone() }, &mut notes);
    notes.extend(excluded_notes(&metrics));

    let verdict = overall_verdict(base, head, &metrics, &mut notes);
    let environment_mismatch = environment_mismatch(&base.environment, &head.environment);
    let advisory = environment_mismatch.is_some() && !policy.strict_environment;
    if let Some(how) = &environment_mismatch {
        notes.insert(
            0,
            if advisory {
                format!("the runs' machines differ ({how}): the verdict is advisory (compare.strict_environment makes it binding)")
            } else {
                format!("the runs' machines differ ({how})")
            },
        );
    }
    Comparison {
        verdict,
        alpha: policy.alpha,
        min_effect: policy.min_effect,
        confidence: CONFIDENCE,
        base: run_info(base),
        head: run_info(head),
        metrics,
        environment_mismatch,
        advisory,
        calibration: None,
        look,
        notes,
    }
}

/// Per scenario, the repetitions left out as disturbed and of which metrics.
fn excluded_notes(metrics: &[MetricComparison]) -> Vec<String> {
    use std::collections::BTreeMap;
    // scenario → (repetition, side) → metrics
    let mut seen: BTreeMap<&str, BTreeMap<(u32, &str), Vec<String>>> = BTreeMap::new();
    for m in metrics {
        for e in &m.excluded {
            let what = if m.operation == ALL_OPERATIONS {
                m.metric.label().to_string()
            } else {
                format!("{} {}", m.operation, m.metric.label())
            };
            seen.entry(&m.scenario).or_default().entry((e.repetition, e.side.label())).or_default().push(what);
        }
    }
    seen.into_iter()
        .map(|(scenario, reps)| {
            let listed: Vec<String> =
                reps.iter().map(|((rep, side), what)| format!("{side} {rep} ({})", what.join(", "))).collect();
            format!(
                "scenario `{scenario}`: repetitions left out of a metric's test as disturbed (modified z-score above {OUTLIER_Z}): {}",
                listed.join("; ")
            )
        })
        .collect()
}

/// How `head`'s machine differs from `base`'s in what moves performance: CPU model, cores, OS.
fn environment_mismatch(base: &Environment, head: &Environment) -> Option<String> {
    let (b, h) = (base.class(), head.class());
    (b != h).then(|| format!("base on {b}, head on {h}"))
}

/// One metric's values on both sides, tested (paired t or Welch's t on logarithms, Welch on the
/// values on the difference scale, Mann–Whitney, Hodges–Lehmann) after leaving out repetitions
/// a neighbour disturbed; not yet adjusted or judged.
fn metric_comparison(
    scenario: &str,
    operation: &str,
    metric: Metric,
    base: Indexed,
    head: Indexed,
    design: Design,
) -> MetricComparison {
    let (base_values, head_values, excluded) = match (metric.scale(), design) {
        (Scale::Difference, _) => {
            (base.into_iter().map(|v| v.1).collect(), head.into_iter().map(|v| v.1).collect(), vec![])
        }
        (Scale::Ratio, Design::Paired) => kept_pairs(base, head),
        (Scale::Ratio, Design::Independent) => {
            let (b, mut excluded) = kept(base, Side::Base);
            let (h, more) = kept(head, Side::Head);
            excluded.extend(more);
            (b, h, excluded)
        }
    };
    let (base, head, change, test) = match metric.scale() {
        Scale::Ratio => {
            let (gb, gh) = (geometric_mean(&base_values), geometric_mean(&head_values));
            let test = match design {
                Design::Paired => {
                    let pairs: Vec<(f64, f64)> = base_values.iter().copied().zip(head_values.iter().copied()).collect();
                    paired_log_ratio(&pairs, CONFIDENCE)
                }
                Design::Independent => welch_log_ratio(&base_values, &head_values, CONFIDENCE),
            }
            .map(|t| (t.ratio_low - 1.0, t.ratio_high - 1.0, t.p_value));
            (gb, gh, gb.zip(gh).map(|(b, h)| h / b - 1.0), test)
        }
        Scale::Difference => {
            let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
            let (mb, mh) = (mean(&base_values), mean(&head_values));
            let test = welch_difference(&base_values, &head_values, CONFIDENCE).map(|t| (t.low, t.high, t.p_value));
            (mb, mh, mb.zip(mh).map(|(b, h)| h - b), test)
        }
    };
    let mwu = if test.is_some() { mann_whitney(&base_values, &head_values) } else { None };
    let hl = if test.is_some() { hodges_lehmann(&base_values, &head_values, CONFIDENCE) } else { None };
    MetricComparison {
        scenario: scenario.to_string(),
        operation: operation.to_string(),
        metric,
        unit: metric.unit(),
        scale: metric.scale(),
        design,
        base,
        head,
        change,
        ci_low: test.map(|t| t.0),
        ci_high: test.map(|t| t.1),
        min_effect: 0.0,
        p_welch: test.map(|t| t.2),
        p_mwu: mwu.map(|t| t.p_value),
        p_adjusted: None,
        q_value: None,
        hl_shift: hl.map(|h| h.shift),
        hl_low: hl.map(|h| h.low),
        hl_high: hl.map(|h| h.high),
        pooled: None,
        gates: true,
        counts: None,
        detectable: None,
        underpowered: false,
        repetitions_needed: None,
        base_values,
        head_values,
        excluded,
        verdict: MetricVerdict::Inconclusive,
    }
}

/// One side's values with its outliers (on logarithms) left out, and those it left out.
fn kept(values: Indexed, side: Side) -> (Vec<f64>, Vec<Excluded>) {
    let logs: Vec<f64> = values.iter().map(|(_, v)| if *v > 0.0 { v.ln() } else { f64::NAN }).collect();
    let out = paired::outliers(&logs);
    let excluded = out.iter().map(|&i| Excluded { side, repetition: values[i].0, value: values[i].1 }).collect();
    let kept = values.iter().enumerate().filter(|(i, _)| !out.contains(i)).map(|(_, (_, v))| *v).collect();
    (kept, excluded)
}

/// The repetitions both sides completed, paired by index, with the pairs whose log ratio is an
/// outlier left out (a neighbour disturbed one half of the pair).
fn kept_pairs(base: Indexed, head: Indexed) -> (Vec<f64>, Vec<f64>, Vec<Excluded>) {
    let pairs: Vec<(u32, f64, f64)> =
        base.iter().filter_map(|&(i, b)| head.iter().find(|(j, _)| *j == i).map(|&(_, h)| (i, b, h))).collect();
    let ratios: Vec<f64> =
        pairs.iter().map(|(_, b, h)| if *b > 0.0 && *h > 0.0 { h.ln() - b.ln() } else { f64::NAN }).collect();
    let out = paired::outliers(&ratios);
    let excluded = out
        .iter()
        .map(|&k| Excluded { side: Side::Pair, repetition: pairs[k].0, value: pairs[k].2 / pairs[k].1 })
        .collect();
    let kept: Vec<&(u32, f64, f64)> =
        pairs.iter().enumerate().filter(|(k, _)| !out.contains(k)).map(|(_, p)| p).collect();
    (kept.iter().map(|p| p.1).collect(), kept.iter().map(|p| p.2).collect(), excluded)
}

/// Adjusts the p-values across `metrics` — Holm (the gate) and Benjamini–Hochberg (shown) over
/// those that could be tested — and gives each its verdict.
fn judge(metrics: &mut [MetricComparison], policy: &Policy, notes: &mut Vec<String>) {
    let tested: Vec<usize> = (0..metrics.len()).filter(|&i| metrics[i].p_welch.is_some()).collect();
    let p = |metrics: &[MetricComparison], family: &[usize]| -> Vec<f64> {
        family.iter().map(|&i| metrics[i].p_welch.expect("tested")).collect()
    };
    for (&i, q) in tested.iter().zip(benjamini_hochberg(&p(metrics, &tested))) {
        metrics[i].q_value = Some(q);
    }
    // Holm within two families: the gating metrics, which decide (reporting others beside them
    // costs the gate no power), and the reported ones.
    let (gating, reported): (Vec<usize>, Vec<usize>) =
        tested.iter().partition(|&&i| policy.gate_of(&metrics[i].scenario).contains(metrics[i].metric));
    for family in [&gating, &reported] {
        for (&i, adjusted) in family.iter().zip(holm(&p(metrics, family))) {
            metrics[i].p_adjusted = Some(adjusted);
        }
    }
    for m in metrics.iter_mut() {
        m.min_effect = policy.min_effect.of(m.metric, m.base);
        m.gates = policy.gate_of(&m.scenario).contains(m.metric);
        m.verdict = metric_verdict(m, policy.alpha);
        let family = if m.gates { gating.len() } else { reported.len() }.max(1);
        let n = m.base_values.len().min(m.head_values.len());
        if let Some(c) = &m.counts {
            let level = policy.alpha / family as f64;
            let (detectable, needed) = counts::rate_power(&c.base, &c.head, c.dispersion, level, POWER, m.min_effect);
            m.detectable = Some(detectable);
            m.underpowered = detectable > m.min_effect;
            m.repetitions_needed = needed;
        } else if let Some((ss, df)) = m.spread_terms().filter(|(_, df)| *df > 0)
            && n >= 2
        {
            let sd = (ss / df as f64).sqrt();
            let detectable = detectable_change(sd, n, family, policy.alpha, m.scale, m.design);
            m.detectable = Some(detectable);
            m.underpowered = detectable.abs() > m.min_effect;
            m.repetitions_needed = repetitions_for(sd, m.min_effect, family, policy.alpha, m.scale, m.design);
        }
        if m.p_welch.is_none() {
            notes.push(format!(
                "{} {} {}: needs at least two completed repetitions with positive values on each side",
                m.scenario,
                m.operation,
                m.metric.label()
            ));
        }
    }
}

/// Regression (improvement): worse (better), significant after adjustment, and beyond the
/// minimum effect. With the whole interval within ± the minimum effect: negligible when
/// significant, unchanged when not. Anything else is inconclusive.
fn metric_verdict(m: &MetricComparison, alpha: f64) -> MetricVerdict {
    let (Some(change), Some(low), Some(high), Some(p)) = (m.change, m.ci_low, m.ci_high, m.p_adjusted) else {
        return MetricVerdict::Inconclusive;
    };
    let worse = if m.metric.lower_is_better() { change > 0.0 } else { change < 0.0 };
    let significant = p < alpha;
    if significant && change.abs() > m.min_effect {
        return if worse { MetricVerdict::Regression } else { MetricVerdict::Improvement };
    }
    if low >= -m.min_effect && high <= m.min_effect {
        return if significant { MetricVerdict::Negligible } else { MetricVerdict::Unchanged };
    }
    MetricVerdict::Inconclusive
}

fn overall_verdict(base: &Results, head: &Results, metrics: &[MetricComparison], notes: &mut Vec<String>) -> Verdict {
    for (side, r) in [("base", base), ("head", head)] {
        if let Some(f) = &r.failure {
            notes.insert(0, format!("the {side} run failed: {}", f.message));
            return Verdict::Error;
        }
    }
    if metrics.is_empty() {
        notes.insert(0, "the runs have no scenario and operation in common".into());
        return Verdict::Error;
    }
    verdict_of(metrics)
}

/// The verdict of comparable runs from their judged metrics. Passing needs evidence that
/// nothing got worse by what matters, not the absence of evidence that something did (a
/// one-sided equivalence test on every metric).
fn verdict_of(metrics: &[MetricComparison]) -> Verdict {
    let gating = || metrics.iter().filter(|m| m.gates);
    if gating().any(|m| m.verdict == MetricVerdict::Regression) {
        Verdict::Fail
    } else if gating().any(MetricComparison::could_regress) {
        Verdict::Inconclusive
    } else {
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Environment, LatencyHistogram, LatencySummary};
    use crate::results::{OperationResult, RepetitionResult, SCHEMA};

    const POLICY: Policy = Policy::DEFAULT;

    /// A run whose repetitions have the given p50 (µs); other percentiles follow, and
    /// throughput is inversely proportional.
    fn run(p50s: &[u64]) -> Results {
        let reps = p50s
            .iter()
            .enumerate()
            .map(|(i, &p50)| RepetitionResult {
                index: i as u32 + 1,
                measured_s: 1.0,
                operations: vec![OperationResult {
                    name: "tools/call:echo".into(),
                    count: 1000,
                    errors: Default::default(),
                    error_samples: Default::default(),
                    throughput_per_s: 1e6 / p50 as f64,
                    latency_us: LatencySummary {
                        p50,
                        p90: p50 * 2,
                        p95: p50 * 2,
                        p99: p50 * 3,
                        p999: p50 * 4,
                        max: p50 * 5,
                        mean: p50 as f64,
                    },
                    histogram: LatencyHistogram::new().encode(),
                    latency_uncorrected_us: None,
                    histogram_uncorrected: None,
                    latency_ok_us: None,
                    histogram_ok: None,
                    censored_at_us: None,
                }],
                unattributed_errors: Default::default(),
                connection: Default::default(),
                load: Default::default(),
                server_resources: None,
                server_metrics: None,
                series: Vec::new(),
                spike: None,
                breakpoint: None,
                faults: Vec::new(),
                runtime: None,
                client: Default::default(),
                failure: None,
                window: None,
                shards: Vec::new(),
            })
            .collect();
        Results {
            schema: SCHEMA.into(),
            tool_version: "0".into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            git_sha: None,
            config_source: "test".into(),
            environment: Environment {
                os: "linux".into(),
                kernel: None,
                cpu_model: None,
                cores: 2,
                memory_bytes: None,
            },
            server: None,
            scenarios: vec![ScenarioResult {
                name: "s".into(),
                executor: "constant-vus".into(),
                concurrency: Some(1),
                rate_per_s: None,
                max_in_flight: None,
                iterations: None,
                warmup_s: 0.0,
                duration_s: 1.0,
                phase: None,
                repetitions: reps,
            }],
            thresholds: Vec::new(),
            failure: None,
            base_run: None,
            pairing: None,
            looks: None,
            sharding: None,
        }
    }

    #[test]
    fn a_large_consistent_slowdown_is_a_regression_on_every_metric() {
        let c = compare(&run(&[100, 102, 98, 101, 99]), &run(&[300, 305, 298, 302, 299]), &POLICY);
        assert_eq!(c.verdict, Verdict::Fail);
        assert_eq!(c.count(MetricVerdict::Regression), 4);
        let p50 = &c.metrics[0];
        assert!((p50.change.unwrap() - 2.0).abs() < 0.05);
        assert!(p50.ci_low.unwrap() > 1.5 && p50.ci_high.unwrap() < 2.5);
        // Every base repetition below every head one: the smallest exact MWU p for 5 and 5.
        assert!((p50.p_mwu.unwrap() - 2.0 / 252.0).abs() < 1e-12, "{p50:?}");
        let (low, shift, high) = (p50.hl_low.unwrap(), p50.hl_shift.unwrap(), p50.hl_high.unwrap());
        assert!(low <= shift && shift <= high && (shift - 201.0).abs() < 5.0, "{p50:?}");
        assert!(p50.q_value.unwrap() <= p50.p_adjusted.unwrap(), "BH is never stricter than Holm");
    }

    #[test]
    fn latency_at_the_timeout_is_noted_as_censored_and_the_basis_picks_the_histogram() {
        let (base, mut head) = (run(&[1000, 1010, 990, 1005, 995]), run(&[1000, 1010, 990, 1005, 995]));
        for rep in &mut head.scenarios[0].repetitions {
            let op = &mut rep.operations[0];
            // Timeouts at 1 s took the p99 there; the successes alone are as fast as the base.
            op.latency_us.p99 = 1_000_000;
            op.censored_at_us = Some(1_000_000);
            let mut ok = op.latency_us;
            ok.p99 = 3000;
            op.latency_ok_us = Some(ok);
        }
        let all = compare(&base, &head, &POLICY);
        assert!(
            all.notes.iter().any(|n| n.contains("p99 reached the 1000 ms request timeout") && n.contains("(head)"))
        );
        let p99 = |c: &Comparison| c.metrics.iter().find(|m| m.metric == Metric::P99).unwrap().verdict;
        assert_eq!(p99(&all), MetricVerdict::Regression, "every call counts by default");
        let ok = compare(&base, &head, &Policy { latency: LatencyBasis::Successes, ..POLICY });
        assert_ne!(p99(&ok), MetricVerdict::Regression, "the successes alone did not change");
    }

    #[test]
    fn another_machine_makes_a_failure_advisory_unless_strict() {
        let base = run(&[100, 102, 98, 101, 99]);
        let mut head = run(&[300, 305, 298, 302, 299]);
        head.environment.cores = 4;
        let c = compare(&base, &head, &POLICY);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.advisory);
        let how = c.environment_mismatch.as_deref().unwrap();
        assert!(how.contains("× 2 cores") && how.contains("× 4 cores"), "{how}");
        assert!(c.notes[0].contains("advisory"), "{:?}", c.notes);
        let strict = compare(&base, &head, &Policy { strict_environment: true, ..POLICY });
        assert!(strict.environment_mismatch.is_some() && !strict.advisory);
        assert!(!compare(&base, &run(&[300, 305, 298, 302, 299]), &POLICY).advisory, "same machine: binding");
    }

    #[test]
    fn same_numbers_pass_as_unchanged() {
        let c = compare(&run(&[100, 102, 98, 101, 99]), &run(&[101, 99, 100, 98, 102]), &POLICY);
        assert_eq!(c.verdict, Verdict::Pass);
        // p50, p95, p99, throughput, and the scenario's error rate (zero on both sides).
        assert_eq!(c.count(MetricVerdict::Unchanged), 5);
        let errors = c.metrics.iter().find(|m| m.metric == Metric::ErrorRate).unwrap();
        assert_eq!(
            (errors.operation.as_str(), errors.scale, errors.change),
            (ALL_OPERATIONS, Scale::Difference, Some(0.0))
        );
        assert!(c.metrics.iter().all(|m| m.metric != Metric::RssPeak), "no resources sampled: no memory rows");
    }

    #[test]
    fn only_the_gating_metrics_decide() {
        // Three times slower: every latency metric and throughput regress.
        let (base, head) = (run(&[100, 102, 98, 101, 99]), run(&[300, 305, 298, 302, 299]));
        let errors_only = Policy { gate: Gate::of(&[Metric::ErrorRate]), ..POLICY };
        let c = compare(&base, &head, &errors_only);
        assert_eq!(c.count(MetricVerdict::Regression), 4, "still judged and shown");
        assert_eq!((c.regressions(), c.verdict), (0, Verdict::Pass));
        assert!(c.metrics.iter().all(|m| m.gates == (m.metric == Metric::ErrorRate)));
        // A noisy latency metric that does not gate leaves nothing undecided.
        let noisy = compare(&run(&[100, 150, 80]), &run(&[130, 90, 200]), &errors_only);
        assert_eq!(noisy.verdict, Verdict::Pass);
        assert!(noisy.undecided().is_empty());
        assert_eq!(compare(&run(&[100, 150, 80]), &run(&[130, 90, 200]), &POLICY).verdict, Verdict::Inconclusive);
        // A scenario's own gate replaces `compare.gate` for that scenario only.
        let own = |scenario: &str| Policy {
            scenario_gates: vec![ScenarioGate { scenario: scenario.into(), gate: Gate::of(&[Metric::ErrorRate]) }],
            ..POLICY
        };
        assert_eq!(compare(&base, &head, &own("s")).verdict, Verdict::Pass);
        assert_eq!(compare(&base, &head, &own("another")).verdict, Verdict::Fail);
        assert_eq!(Gate::ALL.metrics().len(), Metric::PER_OPERATION.len() + Metric::PER_SCENARIO.len());
        // The gate round-trips as the list of metric names a config writes.
        let json = serde_json::to_string(&Gate::of(&[Metric::P99, Metric::CpuPerCall])).unwrap();
        assert_eq!(json, r#"["p99","cpu_per_call"]"#);
        assert_eq!(serde_json::from_str::<Gate>(&json).unwrap(), Gate::of(&[Metric::CpuPerCall, Metric::P99]));
    }

    /// `run` with repetitions of `calls` calls, `errors[i]` of them failed.
    fn run_failing(errors: &[u64], calls: u64) -> Results {
        let mut r = run(&vec![100; errors.len()]);
        for (rep, &e) in r.scenarios[0].repetitions.iter_mut().zip(errors) {
            rep.operations[0].count = calls;
            if e > 0 {
                rep.operations[0].errors.insert(crate::measure::ErrorKind::Timeout, e);
            }
        }
        r
    }

    fn error_row(c: &Comparison) -> &MetricComparison {
        c.metrics.iter().find(|m| m.metric == Metric::ErrorRate).unwrap()
    }

    #[test]
    fn error_rates_are_tested_on_counts_with_a_relative_minimum_effect_and_a_floor() {
        // 0% → 0.9% over 10,000 calls a side: a regression, though every repetition's rate is
        // below one percentage point.
        let c = compare(&run_failing(&[0; 4], 2500), &run_failing(&[22, 23, 22, 23], 2500), &POLICY);
        let errors = error_row(&c);
        assert_eq!(errors.verdict, MetricVerdict::Regression, "{errors:?}");
        assert_eq!(c.verdict, Verdict::Fail);
        // The same 90 errors in one repetition's burst: no evidence of a shift.
        let c = compare(&run_failing(&[0; 4], 2500), &run_failing(&[0, 0, 90, 0], 2500), &POLICY);
        let errors = error_row(&c);
        assert!(errors.counts.as_ref().unwrap().dispersion > 30.0, "{errors:?}");
        assert_ne!(errors.verdict, MetricVerdict::Regression, "{errors:?}");
        // 0.10% → 0.12% over 400,000 calls a side: significant, and only ×1.2: not a
        // regression (within ×1.5 and the 0.1 point floor, so negligible).
        let c = compare(&run_failing(&[100; 4], 100_000), &run_failing(&[120; 4], 100_000), &POLICY);
        let errors = error_row(&c);
        assert!(errors.p_adjusted.unwrap() < 0.05, "{errors:?}");
        assert_eq!(errors.min_effect, 0.001);
        assert_eq!(errors.verdict, MetricVerdict::Negligible, "{errors:?}");
        // At a high base rate the ratio governs: 10% → 14% is ×1.4, under ×1.5.
        let c = compare(&run_failing(&[1000; 4], 10_000), &run_failing(&[1400; 4], 10_000), &POLICY);
        let errors = error_row(&c);
        assert!((errors.min_effect - 0.05).abs() < 1e-12, "{errors:?}");
        assert_ne!(errors.verdict, MetricVerdict::Regression, "{errors:?}");
    }

    /// `run` with each repetition failing `errors[i]` of its 1000 calls and the server sampled
    /// at `rss[i]` MiB peak and `cpu[i]` µs per call.
    fn run_with(p50s: &[u64], errors: &[u64], rss: &[u64], cpu: &[f64]) -> Results {
        let mut r = run(p50s);
        for (i, rep) in r.scenarios[0].repetitions.iter_mut().enumerate() {
            if errors[i] > 0 {
                rep.operations[0].errors.insert(crate::measure::ErrorKind::Timeout, errors[i]);
            }
            rep.server_resources = Some(crate::measure::ResourceSummary {
                samples: 10,
                rss_peak_bytes: rss[i] << 20,
                cpu_us_per_call: cpu[i],
                ..Default::default()
            });
        }
        r
    }

    #[test]
    fn errors_memory_and_cpu_are_judged_with_their_own_minimum_effects() {
        let p50 = [100, 102, 98, 101, 99];
        let base = run_with(&p50, &[0, 0, 1, 0, 0], &[100, 101, 99, 100, 100], &[50.0, 51.0, 49.0, 50.0, 50.5]);
        // 3% more errors, 8% more memory (under memory's 10%), 30% more CPU per call.
        let head = run_with(&p50, &[30, 31, 29, 30, 32], &[108, 109, 107, 108, 108], &[65.0, 66.0, 64.0, 65.5, 65.0]);
        let c = compare(&base, &head, &POLICY);
        let row = |m: Metric| c.metrics.iter().find(|r| r.metric == m).unwrap();
        let errors = row(Metric::ErrorRate);
        assert_eq!(errors.verdict, MetricVerdict::Regression, "{errors:?}");
        // The floor: ×1.5 of a 0.02% base is less than 0.1 percentage points.
        assert!((errors.change.unwrap() - 0.0300).abs() < 0.001 && errors.min_effect == 0.001, "{errors:?}");
        let rss = row(Metric::RssPeak);
        assert!(rss.p_adjusted.unwrap() < 0.05 && rss.min_effect == 0.10, "{rss:?}");
        assert_ne!(rss.verdict, MetricVerdict::Regression, "8% is below memory's 10%: {rss:?}");
        assert_eq!(row(Metric::CpuPerCall).verdict, MetricVerdict::Regression);
        assert_eq!(c.verdict, Verdict::Fail);
        let strict = Policy { min_effect: MinEffects { memory: 0.05, ..POLICY.min_effect }, ..POLICY };
        assert_eq!(
            compare(&base, &head, &strict).metrics.iter().find(|r| r.metric == Metric::RssPeak).unwrap().verdict,
            MetricVerdict::Regression
        );
    }

    #[test]
    fn the_pooled_p99_comes_with_a_reproducible_bootstrap_interval() {
        let with_histograms = |scale: u64| {
            let mut r = run(&[100, 100, 100, 100]);
            for (i, rep) in r.scenarios[0].repetitions.iter_mut().enumerate() {
                let mut h = LatencyHistogram::new();
                for k in 0..1000u64 {
                    h.record(std::time::Duration::from_micros(scale * (100 + (k * 7 + i as u64 * 13) % 400)));
                }
                rep.operations[0].histogram = h.encode();
            }
            r
        };
        let c = compare(&with_histograms(1), &with_histograms(2), &POLICY);
        let p99 = c.metrics.iter().find(|m| m.metric == Metric::P99).unwrap().pooled.unwrap();
        assert!((p99.change - 1.0).abs() < 0.01, "{p99:?}");
        assert!(p99.ci_low <= p99.change && p99.change <= p99.ci_high && p99.iterations == 1000, "{p99:?}");
        let again = compare(&with_histograms(1), &with_histograms(2), &POLICY);
        assert_eq!(again.metrics.iter().find(|m| m.metric == Metric::P99).unwrap().pooled, Some(p99));
        assert!(c.metrics.iter().filter(|m| m.metric != Metric::P99).all(|m| m.pooled.is_none()));
    }

    #[test]
    fn a_faster_head_is_an_improvement_not_a_failure() {
        let c = compare(&run(&[300, 305, 298]), &run(&[100, 101, 99]), &POLICY);
        assert_eq!(c.verdict, Verdict::Pass);
        assert_eq!(c.count(MetricVerdict::Improvement), 4);
    }

    #[test]
    fn the_two_sides_of_one_ab_are_compared_as_pairs_and_a_disturbed_pair_is_left_out_and_said() {
        // The machine drifts by ±20% over the run, and both halves of a pair share it; the head
        // is 10% slower throughout; in pair 5 a neighbour doubled the head's latency.
        let drift = [100, 120, 90, 110, 100, 80, 115, 95];
        let head_p50: Vec<u64> =
            drift.iter().enumerate().map(|(i, d)| if i == 4 { d * 22 / 10 } else { d * 11 / 10 }).collect();
        let (mut base, mut head) = (run(&drift), run(&head_p50));
        let independent = compare(&base, &head, &POLICY);
        assert_eq!(independent.metrics[0].design, Design::Independent);
        assert_eq!(independent.verdict, Verdict::Inconclusive, "the drift hides the change from Welch's test");
        (base.pairing, head.pairing) = (Some("ab-1".into()), Some("ab-1".into()));
        let paired = compare(&base, &head, &POLICY);
        let p50 = &paired.metrics[0];
        assert_eq!(p50.design, Design::Paired);
        assert_eq!(p50.excluded, vec![Excluded { side: Side::Pair, repetition: 5, value: 2.2 }]);
        assert_eq!((p50.base_values.len(), p50.head_values.len()), (7, 7));
        assert!((p50.change.unwrap() - 0.1).abs() < 0.005, "{p50:?}");
        assert_eq!((p50.verdict, paired.verdict), (MetricVerdict::Regression, Verdict::Fail));
        let note = paired.notes.iter().find(|n| n.contains("left out")).expect("said");
        assert!(note.contains("pair 5 (tools/call:echo p50"), "{note}");
        // Another run's base is not this run's pair: independent again.
        head.pairing = Some("ab-2".into());
        assert_eq!(compare(&base, &head, &POLICY).metrics[0].design, Design::Independent);
    }

    #[test]
    fn an_undecided_scenario_asks_for_what_its_undecided_gating_metrics_need_and_a_decided_one_for_nothing() {
        let noisy = compare(&run(&[100, 150, 80]), &run(&[130, 90, 200]), &POLICY);
        let wanted = wanted_repetitions(&noisy, &["s", "not-measured"]);
        assert!(wanted[0].is_some_and(|n| n > 3), "{wanted:?}");
        assert_eq!(wanted[1], None);
        let steady = compare(&run(&[100, 102, 98, 101, 99]), &run(&[101, 99, 100, 98, 102]), &POLICY);
        assert_eq!(steady.verdict, Verdict::Pass);
        assert_eq!(wanted_repetitions(&steady, &["s"]), vec![None]);
        let slower = compare(&run(&[100, 102, 98, 101, 99]), &run(&[300, 305, 298, 302, 299]), &POLICY);
        assert_eq!(wanted_repetitions(&slower, &["s"]), vec![None], "a regression is decided");
        // One run on its own plans from its own spread.
        assert!(planned_repetitions(&run(&[100, 150, 80]), &POLICY)[0].is_some_and(|n| n > 3));
        assert_eq!(planned_repetitions(&run(&[100, 101, 100, 101, 100, 101]), &POLICY), vec![None]);
    }

    #[test]
    fn a_significant_but_tiny_change_is_not_a_regression() {
        let c = compare(&run(&[1000, 1001, 1000, 1001]), &run(&[1010, 1011, 1010, 1011]), &POLICY);
        assert_eq!(c.count(MetricVerdict::Regression), 0);
        assert_eq!(c.verdict, Verdict::Pass);
    }

    #[test]
    fn a_noisy_worse_head_is_inconclusive_not_a_pass() {
        let c = compare(&run(&[100, 150, 80]), &run(&[130, 90, 200]), &POLICY);
        assert_eq!(c.count(MetricVerdict::Regression), 0);
        assert_eq!(c.count(MetricVerdict::Inconclusive), 4);
        assert_eq!(c.verdict, Verdict::Inconclusive);
        assert!(c.wants_more_repetitions());
        // Only gating metrics hold a comparison up: by default p50 alone of the four.
        assert_eq!(c.undecided().len(), 1);
        // Gating all: the worst case first, p99, whose interval reaches furthest past +5%.
        let all = compare(&run(&[100, 150, 80]), &run(&[130, 90, 200]), &Policy { gate: Gate::ALL, ..POLICY });
        let undecided = all.undecided();
        assert_eq!(undecided.len(), 4);
        assert!(undecided.windows(2).all(|w| w[0].worst_case() >= w[1].worst_case()));
    }

    #[test]
    fn undecided_only_on_the_better_side_passes_and_a_significant_small_change_is_negligible() {
        // Faster by about 20% with a wide interval that stays below +5%: not a regression
        // beyond the minimum effect, whatever else it is.
        let c = compare(&run(&[1000, 1300, 900, 1100]), &run(&[800, 900, 700, 850]), &POLICY);
        let p50 = &c.metrics[0];
        assert_eq!(p50.verdict, MetricVerdict::Inconclusive, "{p50:?}");
        assert!(!p50.could_regress() && p50.worst_case().unwrap() < 0.05, "{p50:?}");
        // +1.0% [+0.9%, +1.1%], p < 0.001: real, and below the 5% that matters.
        let c = compare(&run(&[1000, 1001, 1000, 1001]), &run(&[1010, 1011, 1010, 1011]), &POLICY);
        assert_eq!(c.count(MetricVerdict::Negligible), 4, "p50, p95, p99, throughput: {:?}", c.metrics);
        assert_eq!(c.verdict, Verdict::Pass);
    }

    #[test]
    fn a_run_that_may_look_again_tests_each_look_at_its_share_of_alpha() {
        // Holm-adjusted p = 0.045 (SciPy: ttest_ind on logs, p = 0.00899, times the five
        // metrics tested): a regression at α = 0.05 when this is the only look.
        let (base, mut head) = (run(&[100, 110, 95, 105, 100]), run(&[118, 106, 124, 114, 128]));
        let all = Policy { gate: Gate::ALL, ..Policy::DEFAULT };
        let once = compare(&base, &head, &all);
        assert!((once.metrics[0].p_adjusted.unwrap() - 5.0 * 0.008_993_915_664_070_649).abs() < 1e-9);
        assert_eq!((once.verdict, once.look), (Verdict::Fail, None));
        // The same data as the first of looks that could reach 20 repetitions: α·ln(1 + (e −
        // 1)/4) = 0.0179 is all this look may spend, so nothing is called yet, and more
        // repetitions are wanted.
        head.looks = Some(crate::results::Looks { repetitions: vec![5], max_repetitions: 20, ended: None });
        let first = compare(&base, &head, &all);
        let look = first.look.unwrap();
        assert_eq!((look.look, look.repetitions, look.max_repetitions), (1, 5, 20));
        assert!((look.alpha - 0.05 * (0.25 * (std::f64::consts::E - 1.0)).ln_1p()).abs() < 1e-15);
        assert_eq!(first.count(MetricVerdict::Regression), 0);
        assert_eq!(first.count(MetricVerdict::Inconclusive), 4);
        assert!(first.wants_more_repetitions());
        assert!(!once.wants_more_repetitions(), "a regression is decided");
        let unchanged = compare(&run(&[100, 102, 98, 101, 99]), &run(&[101, 99, 100, 98, 102]), &all);
        assert!(!unchanged.wants_more_repetitions(), "every metric shown unchanged");
    }

    #[test]
    fn one_repetition_cannot_be_tested() {
        let c = compare(&run(&[100]), &run(&[300]), &POLICY);
        // Counts need no spread between repetitions: the error rate is tested all the same.
        let (errors, others): (Vec<_>, Vec<_>) = c.metrics.iter().partition(|m| m.metric == Metric::ErrorRate);
        assert!(others.iter().all(|m| m.p_welch.is_none() && m.verdict == MetricVerdict::Inconclusive));
        assert!(errors[0].p_welch.is_some(), "{:?}", errors[0]);
        assert_eq!(c.verdict, Verdict::Inconclusive);
        assert!(c.notes.iter().any(|n| n.contains("at least two completed repetitions")));
    }

    #[test]
    fn a_failed_run_or_nothing_in_common_is_an_error() {
        let mut head = run(&[100, 100]);
        head.failure = Some(crate::results::RunFailure {
            kind: crate::results::FailureKind::ServerExit,
            message: "boom".into(),
            stderr_tail: vec![],
        });
        let c = compare(&run(&[100, 100]), &head, &POLICY);
        assert_eq!(c.verdict, Verdict::Error);
        assert!(c.notes[0].contains("head run failed: boom"));
        let mut other = run(&[100, 100]);
        other.scenarios[0].name = "t".into();
        assert_eq!(compare(&run(&[100, 100]), &other, &POLICY).verdict, Verdict::Error);
    }
}
