//! Checking k6-style thresholds against a run's results: absolute limits, no statistics.
//!
//! Latency percentiles come from the merged histograms of every matching operation and
//! repetition (never an average of percentiles); error rate is failed over issued calls;
//! throughput is the mean over repetitions of the selected operations' summed rates; server and
//! client figures take the highest peak and the mean CPU per call over repetitions.

use crate::config::{Selector, Threshold, ThresholdMetric as Metric};
use crate::measure::LatencyHistogram;
use crate::results::{LatencyBasis, RepetitionResult, Results, ScenarioResult, ThresholdOutcome};

/// Evaluates every threshold against `results`, latency on `basis`.
pub fn evaluate(results: &Results, thresholds: &[Threshold], basis: LatencyBasis) -> Vec<ThresholdOutcome> {
    thresholds
        .iter()
        .map(|t| {
            let observed = observe(results, t, basis);
            ThresholdOutcome {
                key: t.key.clone(),
                expression: t.expression.clone(),
                observed,
                quantity: t.metric.quantity(),
                held: observed.is_some_and(|v| t.comparison.holds(v, t.limit)),
            }
        })
        .collect()
}

/// The first `abort_on_fail` threshold that is due (its `delay` passed, `elapsed` into the run)
/// and fails on the results so far: why the run should stop, if it should.
pub fn abort_reason(
    results: &Results,
    thresholds: &[Threshold],
    basis: LatencyBasis,
    elapsed: std::time::Duration,
) -> Option<String> {
    let due: Vec<Threshold> = thresholds.iter().filter(|t| t.abort_on_fail && elapsed >= t.delay).cloned().collect();
    evaluate(results, &due, basis)
        .into_iter()
        .find(|o| !o.held)
        .map(|o| format!("aborted: threshold `{}: {}` failed (abort_on_fail)", o.key, o.expression))
}

fn scenario_matches(s: &ScenarioResult, wanted: &Option<String>) -> bool {
    wanted.as_ref().is_none_or(|w| *w == s.name)
}

fn repetitions<'a>(results: &'a Results, scenario: &'a Option<String>) -> impl Iterator<Item = &'a RepetitionResult> {
    results.scenarios.iter().filter(move |s| scenario_matches(s, scenario)).flat_map(|s| s.repetitions.iter())
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn max(values: impl Iterator<Item = f64>) -> Option<f64> {
    values.fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
}

/// The measured value for a threshold, in its base unit.
fn observe(results: &Results, t: &Threshold, basis: LatencyBasis) -> Option<f64> {
    match &t.selector {
        Selector::Calls { tool, scenario } => {
            let wanted = tool.as_ref().map(|t| format!("tools/call:{t}"));
            let matches = |name: &str| name.starts_with("tools/call:") && wanted.as_deref().is_none_or(|w| w == name);
            let ops = || repetitions(results, scenario).flat_map(|r| r.operations.iter()).filter(|o| matches(&o.name));
            match t.metric {
                Metric::Percentile(_) | Metric::AvgLatency | Metric::MaxLatency => {
                    let mut merged = LatencyHistogram::new();
                    for op in ops() {
                        merged.merge(&op.decode_histogram_on(basis).ok()?);
                    }
                    match t.metric {
                        Metric::Percentile(p) => merged.percentile(p).map(|v| v as f64),
                        Metric::AvgLatency => (!merged.is_empty()).then(|| merged.summary().mean),
                        _ => (!merged.is_empty()).then(|| merged.summary().max as f64),
                    }
                }
                Metric::ErrorRate => {
                    let (failed, count) = ops().fold((0, 0), |(f, c), o| (f + o.error_count(), c + o.count));
                    (count > 0).then(|| failed as f64 / count as f64)
                }
                Metric::Throughput => mean(
                    repetitions(results, scenario)
                        .filter(|r| r.operations.iter().any(|o| matches(&o.name)))
                        .map(|r| r.operations.iter().filter(|o| matches(&o.name)).map(|o| o.throughput_per_s).sum()),
                ),
                _ => None,
            }
        }
        Selector::Server { scenario } => {
            let res = || repetitions(results, scenario).filter_map(|r| r.server_resources.as_ref());
            match t.metric {
                Metric::RssPeak => max(res().map(|r| r.rss_peak_bytes as f64)),
                Metric::RssSlope => max(res().map(|r| r.rss_slope_bytes_per_s)),
                Metric::CpuPerOp => mean(res().map(|r| r.cpu_us_per_call)),
                Metric::ThreadsPeak => max(res().map(|r| r.threads_peak as f64)),
                Metric::FdsPeak => max(res().map(|r| r.open_fds_peak as f64)),
                _ => None,
            }
        }
        Selector::Client { scenario } => {
            let reps = || repetitions(results, scenario);
            match t.metric {
                Metric::CpuPerOp => mean(reps().map(|r| r.client.cpu_us_per_call)),
                Metric::RssPeak => max(reps().map(|r| r.client.rss_peak_bytes as f64)),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const RESULTS: &str = include_str!("../../fixtures/results/reference-quick.json");

    fn check(key: &str, expression: &str) -> ThresholdOutcome {
        let yaml = format!(
            "server: {{command: [x]}}\nworkload: {{scenarios: [{{name: s, duration: 1s, mix: [{{tool: echo}}]}}]}}\nthresholds:\n  \"{key}\": [\"{expression}\"]\n"
        );
        let plan = Config::from_yaml(&yaml, "t.yaml").unwrap().into_plan("t".into(), "/x".as_ref(), ".".as_ref());
        evaluate(&Results::from_json(RESULTS).unwrap(), &plan.thresholds, LatencyBasis::All).remove(0)
    }

    #[test]
    fn latency_comes_from_merged_histograms() {
        let results = Results::from_json(RESULTS).unwrap();
        let mut merged = LatencyHistogram::new();
        for r in &results.scenarios[0].repetitions {
            merged.merge(&r.operation("tools/call:echo").unwrap().decode_histogram().unwrap());
        }
        let p95 = merged.percentile(95.0).unwrap() as f64;
        let o = check("tools/call{tool:echo}", "p(95)<1s");
        assert_eq!(o.observed, Some(p95));
        assert!(o.held);
        assert!(!check("tools/call{tool:echo}", "p(95)<1us").held);
    }

    #[test]
    fn error_rate_throughput_and_resources() {
        let o = check("tools/call", "error_rate<1%");
        assert_eq!((o.observed, o.held), (Some(0.0), true));
        let o = check("tools/call", "throughput>1/s");
        assert!(o.observed.unwrap() > 100.0 && o.held);
        let o = check("server", "rss_peak<1GB");
        assert!(o.observed.unwrap() > 1e6 && o.held);
        assert!(!check("server", "cpu_per_op<1us").held);
        assert!(check("client", "cpu_per_op<1s").held);
    }

    #[test]
    fn nothing_matching_fails_the_threshold() {
        let o = check("tools/call{tool:nope}", "p(95)<1s");
        assert_eq!((o.observed, o.held), (None, false));
        assert!(!check("server{scenario:other}", "rss_peak<1GB").held);
    }
}
