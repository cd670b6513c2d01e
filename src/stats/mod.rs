//! Comparing two runs: per scenario and operation, the repetition-level p50, p95, p99 and
//! throughput of base and head are tested (Welch's t on logarithms), the p-values are adjusted
//! across all metrics (Holm), and each metric gets a verdict against a minimum effect.
//!
//! Pure functions over results already in memory: `stats` does no I/O.

mod adjust;
mod bootstrap;
mod mwu;
#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod simulation_tests;
pub mod thresholds;
mod welch;

use serde::Serialize;

use crate::measure::Environment;
use crate::results::{Results, ScenarioResult};

pub use adjust::{benjamini_hochberg, holm};
pub use bootstrap::{BootstrapRatio, bootstrap_ratio, pooled_quantile};
pub use mwu::{HodgesLehmann, MannWhitney, hodges_lehmann, mann_whitney};
pub use welch::{LogRatioTest, geometric_mean, welch_log_ratio};

/// Confidence of the reported intervals.
pub const CONFIDENCE: f64 = 0.95;

/// How a comparison decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Family-wise significance level (Holm-adjusted p-values are compared with it).
    pub alpha: f64,
    /// Relative change below which nothing is called a regression or an improvement.
    pub min_effect: f64,
    /// When the runs' environments differ (CPU model, cores, OS), keep the verdict binding
    /// rather than advisory.
    pub strict_environment: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    P50,
    P95,
    P99,
    Throughput,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::P50, Metric::P95, Metric::P99, Metric::Throughput];

    pub fn lower_is_better(self) -> bool {
        !matches!(self, Metric::Throughput)
    }

    pub fn label(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Throughput => "throughput",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::Throughput => "calls/s",
            _ => "µs",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricVerdict {
    Regression,
    Improvement,
    Unchanged,
    Inconclusive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// No metric regressed.
    Pass,
    /// At least one metric regressed significantly and beyond the minimum effect.
    Fail,
    /// No regression shown, but some metrics could not be tested at all (too few repetitions).
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
    /// Geometric mean of the base repetitions' values.
    pub base: Option<f64>,
    pub head: Option<f64>,
    /// The repetition-level values used, so anyone can recompute the test.
    pub base_values: Vec<f64>,
    pub head_values: Vec<f64>,
    /// Relative change of head against base (0.072 = +7.2%).
    pub change: Option<f64>,
    /// 95% interval of `change`.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
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
    pub verdict: MetricVerdict,
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
    pub min_effect: f64,
    pub confidence: f64,
    pub base: RunInfo,
    pub head: RunInfo,
    pub metrics: Vec<MetricComparison>,
    /// How the two runs' machines differ, when they do (CPU model, cores, OS).
    pub environment_mismatch: Option<String>,
    /// The environments differ and the policy is not strict: the verdict informs, it does not
    /// gate.
    pub advisory: bool,
    /// Why the verdict is `error` or what limited the comparison.
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn count(&self, verdict: MetricVerdict) -> usize {
        self.metrics.iter().filter(|m| m.verdict == verdict).count()
    }
}

fn run_info(r: &Results) -> RunInfo {
    RunInfo {
        git_sha: r.git_sha.clone(),
        timestamp: r.timestamp.clone(),
        server: r.server.as_ref().map(|s| format!("{} {}", s.name, s.version)),
        failure: r.failure.as_ref().map(|f| f.message.clone()),
    }
}

/// The repetition-level values of one metric, from completed repetitions that measured the
/// operation and, for latency, had at least one successful call.
fn values(scenario: &ScenarioResult, operation: &str, metric: Metric) -> Vec<f64> {
    scenario
        .completed_repetitions()
        .filter_map(|r| r.operation(operation))
        .filter_map(|op| {
            let l = &op.latency_us;
            let latency_known = op.count > op.error_count();
            match metric {
                Metric::P50 if latency_known => Some(l.p50 as f64),
                Metric::P95 if latency_known => Some(l.p95 as f64),
                Metric::P99 if latency_known => Some(l.p99 as f64),
                Metric::Throughput => Some(op.throughput_per_s),
                _ => None,
            }
        })
        .collect()
}

/// Compares `head` with `base` under `policy`.
pub fn compare(base: &Results, head: &Results, policy: Policy) -> Comparison {
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
            for metric in Metric::ALL {
                metrics.push(metric_comparison(&hs.name, op, metric, values(bs, op, metric), values(hs, op, metric)));
            }
        }
    }
    for bs in &base.scenarios {
        if head.scenario(&bs.name).is_none() {
            notes.push(format!("scenario `{}` is not in the head run", bs.name));
        }
    }

    judge(&mut metrics, policy, &mut notes);

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
        notes,
    }
}

/// How `head`'s machine differs from `base`'s in what moves performance: CPU model, cores, OS.
fn environment_mismatch(base: &Environment, head: &Environment) -> Option<String> {
    let describe =
        |e: &Environment| format!("{} × {} cores, {}", e.cpu_model.as_deref().unwrap_or("unknown CPU"), e.cores, e.os);
    let same = base.cpu_model == head.cpu_model && base.cores == head.cores && base.os == head.os;
    (!same).then(|| format!("base on {}, head on {}", describe(base), describe(head)))
}

/// One metric's values on both sides, tested (Welch on logarithms, Mann–Whitney,
/// Hodges–Lehmann); not yet adjusted or judged.
fn metric_comparison(
    scenario: &str,
    operation: &str,
    metric: Metric,
    base_values: Vec<f64>,
    head_values: Vec<f64>,
) -> MetricComparison {
    let test = welch_log_ratio(&base_values, &head_values, CONFIDENCE);
    let mwu = if test.is_some() { mann_whitney(&base_values, &head_values) } else { None };
    let hl = if test.is_some() { hodges_lehmann(&base_values, &head_values, CONFIDENCE) } else { None };
    let (gb, gh) = (geometric_mean(&base_values), geometric_mean(&head_values));
    MetricComparison {
        scenario: scenario.to_string(),
        operation: operation.to_string(),
        metric,
        unit: metric.unit(),
        base: gb,
        head: gh,
        change: gb.zip(gh).map(|(b, h)| h / b - 1.0),
        ci_low: test.map(|t| t.ratio_low - 1.0),
        ci_high: test.map(|t| t.ratio_high - 1.0),
        p_welch: test.map(|t| t.p_value),
        p_mwu: mwu.map(|t| t.p_value),
        p_adjusted: None,
        q_value: None,
        hl_shift: hl.map(|h| h.shift),
        hl_low: hl.map(|h| h.low),
        hl_high: hl.map(|h| h.high),
        base_values,
        head_values,
        verdict: MetricVerdict::Inconclusive,
    }
}

/// Adjusts the p-values across `metrics` — Holm (the gate) and Benjamini–Hochberg (shown) over
/// those that could be tested — and gives each its verdict.
fn judge(metrics: &mut [MetricComparison], policy: Policy, notes: &mut Vec<String>) {
    let tested: Vec<usize> = (0..metrics.len()).filter(|&i| metrics[i].p_welch.is_some()).collect();
    let p: Vec<f64> = tested.iter().map(|&i| metrics[i].p_welch.expect("tested")).collect();
    for ((&i, adjusted), q) in tested.iter().zip(holm(&p)).zip(benjamini_hochberg(&p)) {
        metrics[i].p_adjusted = Some(adjusted);
        metrics[i].q_value = Some(q);
    }
    for m in metrics.iter_mut() {
        m.verdict = metric_verdict(m, policy);
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

/// Regression: worse, significant after adjustment, and beyond the minimum effect. Unchanged:
/// the whole interval within ± the minimum effect. Anything else is inconclusive.
fn metric_verdict(m: &MetricComparison, policy: Policy) -> MetricVerdict {
    let (Some(change), Some(low), Some(high), Some(p)) = (m.change, m.ci_low, m.ci_high, m.p_adjusted) else {
        return MetricVerdict::Inconclusive;
    };
    let worse = if m.metric.lower_is_better() { change > 0.0 } else { change < 0.0 };
    if p < policy.alpha && change.abs() > policy.min_effect {
        return if worse { MetricVerdict::Regression } else { MetricVerdict::Improvement };
    }
    if low >= -policy.min_effect && high <= policy.min_effect {
        return MetricVerdict::Unchanged;
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
    if metrics.iter().any(|m| m.verdict == MetricVerdict::Regression) {
        return Verdict::Fail;
    }
    // A metric without a test (too few repetitions) is no evidence either way; one whose
    // interval is merely wide was tested and showed no regression, and its row says so.
    if metrics.iter().any(|m| m.p_welch.is_none()) { Verdict::Inconclusive } else { Verdict::Pass }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Environment, LatencyHistogram, LatencySummary};
    use crate::results::{OperationResult, RepetitionResult, SCHEMA};

    const POLICY: Policy = Policy { alpha: 0.05, min_effect: 0.05, strict_environment: false };

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
                }],
                unattributed_errors: Default::default(),
                connection: Default::default(),
                load: Default::default(),
                server_resources: None,
                server_metrics: None,
                series: Vec::new(),
                spike: None,
                breakpoint: None,
                client: Default::default(),
                failure: None,
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
        }
    }

    #[test]
    fn a_large_consistent_slowdown_is_a_regression_on_every_metric() {
        let c = compare(&run(&[100, 102, 98, 101, 99]), &run(&[300, 305, 298, 302, 299]), POLICY);
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
    fn another_machine_makes_a_failure_advisory_unless_strict() {
        let base = run(&[100, 102, 98, 101, 99]);
        let mut head = run(&[300, 305, 298, 302, 299]);
        head.environment.cores = 4;
        let c = compare(&base, &head, POLICY);
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.advisory);
        let how = c.environment_mismatch.as_deref().unwrap();
        assert!(how.contains("× 2 cores") && how.contains("× 4 cores"), "{how}");
        assert!(c.notes[0].contains("advisory"), "{:?}", c.notes);
        let strict = compare(&base, &head, Policy { strict_environment: true, ..POLICY });
        assert!(strict.environment_mismatch.is_some() && !strict.advisory);
        assert!(!compare(&base, &run(&[300, 305, 298, 302, 299]), POLICY).advisory, "same machine: binding");
    }

    #[test]
    fn same_numbers_pass_as_unchanged() {
        let c = compare(&run(&[100, 102, 98, 101, 99]), &run(&[101, 99, 100, 98, 102]), POLICY);
        assert_eq!(c.verdict, Verdict::Pass);
        assert_eq!(c.count(MetricVerdict::Unchanged), 4);
    }

    #[test]
    fn a_faster_head_is_an_improvement_not_a_failure() {
        let c = compare(&run(&[300, 305, 298]), &run(&[100, 101, 99]), POLICY);
        assert_eq!(c.verdict, Verdict::Pass);
        assert_eq!(c.count(MetricVerdict::Improvement), 4);
    }

    #[test]
    fn a_significant_but_tiny_change_is_not_a_regression() {
        let c = compare(&run(&[1000, 1001, 1000, 1001]), &run(&[1010, 1011, 1010, 1011]), POLICY);
        assert_eq!(c.count(MetricVerdict::Regression), 0);
        assert_eq!(c.verdict, Verdict::Pass);
    }

    #[test]
    fn noisy_worse_head_is_inconclusive_per_metric_but_no_regression() {
        let c = compare(&run(&[100, 150, 80]), &run(&[130, 90, 200]), POLICY);
        assert_eq!(c.count(MetricVerdict::Regression), 0);
        assert_eq!(c.count(MetricVerdict::Inconclusive), 4);
        assert_eq!(c.verdict, Verdict::Pass);
    }

    #[test]
    fn one_repetition_cannot_be_tested() {
        let c = compare(&run(&[100]), &run(&[300]), POLICY);
        assert!(c.metrics.iter().all(|m| m.p_welch.is_none() && m.verdict == MetricVerdict::Inconclusive));
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
        let c = compare(&run(&[100, 100]), &head, POLICY);
        assert_eq!(c.verdict, Verdict::Error);
        assert!(c.notes[0].contains("head run failed: boom"));
        let mut other = run(&[100, 100]);
        other.scenarios[0].name = "t".into();
        assert_eq!(compare(&run(&[100, 100]), &other, POLICY).verdict, Verdict::Error);
    }
}
