//! Runs of many commits as series: per machine class, scenario, operation and metric, one
//! point a commit (the median of its repetitions' values, with their range).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Run;
use crate::measure::{LatencyBasis, LatencyHistogram, Quantity};
use crate::results::{RepetitionResult, ScenarioResult};
use crate::stats::{ALL_OPERATIONS, Scale};

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryMetric {
    P50,
    P95,
    P99,
    Throughput,
    ErrorRate,
    CpuPerCall,
    RssPeak,
    /// A `breakpoint` scenario's capacity: successful calls per second in the last second that
    /// kept its limits (or the SLO asked for).
    Capacity,
    /// A fault's recovery time, s.
    Recovery,
}

impl HistoryMetric {
    pub fn label(self) -> &'static str {
        match self {
            HistoryMetric::P50 => "p50",
            HistoryMetric::P95 => "p95",
            HistoryMetric::P99 => "p99",
            HistoryMetric::Throughput => "throughput",
            HistoryMetric::ErrorRate => "error rate",
            HistoryMetric::CpuPerCall => "CPU per call",
            HistoryMetric::RssPeak => "peak RSS",
            HistoryMetric::Capacity => "capacity",
            HistoryMetric::Recovery => "recovery",
        }
    }

    pub fn quantity(self) -> Quantity {
        match self {
            HistoryMetric::P50 | HistoryMetric::P95 | HistoryMetric::P99 | HistoryMetric::CpuPerCall => {
                Quantity::Duration
            }
            HistoryMetric::Throughput | HistoryMetric::Capacity => Quantity::PerSecond,
            HistoryMetric::ErrorRate => Quantity::Ratio,
            HistoryMetric::RssPeak => Quantity::Bytes,
            HistoryMetric::Recovery => Quantity::Count,
        }
    }

    /// Whether a rise is worse.
    pub fn lower_is_better(self) -> bool {
        !matches!(self, HistoryMetric::Throughput | HistoryMetric::Capacity)
    }

    /// Error rates can be zero: their changes are differences, every other metric's ratios.
    pub fn scale(self) -> Scale {
        if self == HistoryMetric::ErrorRate { Scale::Difference } else { Scale::Ratio }
    }

    /// The metric `compare` tests under the same name, whose gate decides whether this one
    /// alerts (capacity and recovery have none: they always alert).
    pub fn compared(self) -> Option<crate::stats::Metric> {
        use crate::stats::Metric;
        Some(match self {
            HistoryMetric::P50 => Metric::P50,
            HistoryMetric::P95 => Metric::P95,
            HistoryMetric::P99 => Metric::P99,
            HistoryMetric::Throughput => Metric::Throughput,
            HistoryMetric::ErrorRate => Metric::ErrorRate,
            HistoryMetric::CpuPerCall => Metric::CpuPerCall,
            HistoryMetric::RssPeak => Metric::RssPeak,
            HistoryMetric::Capacity | HistoryMetric::Recovery => return None,
        })
    }

    /// A value in this metric's unit, as it reads best.
    pub fn show(self, value: f64) -> String {
        match self {
            HistoryMetric::Recovery => format!("{value:.2}s"),
            m => crate::report::format::quantity(value, m.quantity()),
        }
    }
}

/// One commit's point of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub commit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The commit's value: a latency percentile of all its repetitions' calls (their merged
    /// histograms), any other metric the median of its repetition values.
    pub value: f64,
    /// The lowest and highest of them: the spread a dashboard shows.
    pub low: f64,
    pub high: f64,
    pub repetitions: usize,
}

/// Which series a value belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The machine class (`Environment::class`): series of two classes are never mixed.
    pub environment: String,
    pub scenario: String,
    /// The operation, `(all)` for a scenario's own metrics, or the fault for a recovery time.
    pub operation: String,
    pub metric: HistoryMetric,
}

impl SeriesKey {
    /// The key as one line, for messages and the stable seed of its change-point search.
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.scenario, self.operation, self.metric.label())
    }
}

/// The SLO capacity is judged by: each second of a breakpoint run must keep these.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Slo {
    /// That second's p99, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// That second's share of failed calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
}

/// Every series of `runs` (in history order), with the commits each machine class measured.
/// The runs are shared out over the machine's cores in contiguous parts (decoding a thousand
/// commits' histograms is the cost), and each part's points appended in order.
pub fn build(runs: &[Run], basis: LatencyBasis, slo: Option<&Slo>) -> BTreeMap<SeriesKey, Vec<Point>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let share = runs.len().div_ceil(threads).max(1);
    let parts: Vec<BTreeMap<SeriesKey, Vec<Point>>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            runs.chunks(share).map(|part| scope.spawn(move || build_part(part, basis, slo))).collect();
        handles.into_iter().map(|h| h.join().expect("building series does not panic")).collect()
    });
    let mut series: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
    for part in parts {
        for (key, points) in part {
            series.entry(key).or_default().extend(points);
        }
    }
    series
}

fn build_part(runs: &[Run], basis: LatencyBasis, slo: Option<&Slo>) -> BTreeMap<SeriesKey, Vec<Point>> {
    let mut series: BTreeMap<SeriesKey, Vec<Point>> = BTreeMap::new();
    for run in runs {
        let environment = run.results.environment.class();
        for scenario in &run.results.scenarios {
            let pooled = pooled_latencies(scenario, basis);
            for ((operation, metric), values) in values_of(scenario, basis, slo) {
                let exact = pooled.get(&(operation.clone(), metric)).copied();
                let key =
                    SeriesKey { environment: environment.clone(), scenario: scenario.name.clone(), operation, metric };
                if let Some(point) = point(run, values, exact) {
                    series.entry(key).or_default().push(point);
                }
            }
        }
    }
    series
}

/// A commit's point: `exact` when the commit has one (a latency percentile of all its
/// repetitions' calls), else the median of its repetition values; with their range. `None` for
/// no values.
fn point(run: &Run, mut values: Vec<f64>, exact: Option<f64>) -> Option<Point> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    Some(Point {
        commit: run.commit.clone(),
        date: run.date.clone(),
        value: exact.unwrap_or(median),
        low: values[0],
        high: values[n - 1],
        repetitions: n,
    })
}

/// Each operation's p50, p95 and p99 over every call of the scenario's completed repetitions,
/// from their merged histograms (never a median of percentiles: a repetition's p99 of a few
/// dozen calls is nearly its slowest call). An operation whose histograms do not decode (a file
/// is read for its figures only) gets none, and its points fall back to the repetitions' median.
fn pooled_latencies(s: &ScenarioResult, basis: LatencyBasis) -> BTreeMap<(String, HistoryMetric), f64> {
    let mut merged: BTreeMap<&str, Option<LatencyHistogram>> = BTreeMap::new();
    for r in s.completed_repetitions() {
        for op in &r.operations {
            let slot = merged.entry(&op.name).or_insert_with(|| Some(LatencyHistogram::new()));
            match (slot.as_mut(), op.decode_histogram_on(basis)) {
                (Some(total), Ok(h)) => total.merge(&h),
                _ => *slot = None,
            }
        }
    }
    let mut out = BTreeMap::new();
    for (name, h) in merged {
        let Some(h) = h.filter(|h| !h.is_empty()) else { continue };
        let summary = h.summary();
        for (metric, v) in
            [(HistoryMetric::P50, summary.p50), (HistoryMetric::P95, summary.p95), (HistoryMetric::P99, summary.p99)]
        {
            out.insert((name.to_string(), metric), v as f64);
        }
    }
    out
}

/// A scenario's repetition values by (operation, metric), from its completed repetitions.
fn values_of(
    s: &ScenarioResult,
    basis: LatencyBasis,
    slo: Option<&Slo>,
) -> BTreeMap<(String, HistoryMetric), Vec<f64>> {
    let mut out: BTreeMap<(String, HistoryMetric), Vec<f64>> = BTreeMap::new();
    let mut push = |op: &str, metric, value: f64| out.entry((op.to_string(), metric)).or_default().push(value);
    for r in s.completed_repetitions() {
        for op in &r.operations {
            let l = op.latency(basis);
            push(&op.name, HistoryMetric::P50, l.p50 as f64);
            push(&op.name, HistoryMetric::P95, l.p95 as f64);
            push(&op.name, HistoryMetric::P99, l.p99 as f64);
            push(&op.name, HistoryMetric::Throughput, op.throughput_per_s);
        }
        let calls: u64 = r.operations.iter().map(|o| o.count).sum();
        let errors: u64 =
            r.operations.iter().map(|o| o.error_count()).sum::<u64>() + r.unattributed_errors.values().sum::<u64>();
        if calls > 0 {
            push(ALL_OPERATIONS, HistoryMetric::ErrorRate, errors as f64 / calls as f64);
        }
        if let Some(res) = &r.server_resources {
            push(ALL_OPERATIONS, HistoryMetric::CpuPerCall, res.cpu_us_per_call);
            push(ALL_OPERATIONS, HistoryMetric::RssPeak, res.rss_peak_bytes as f64);
        }
        if let Some(capacity) = capacity(r, slo) {
            push(ALL_OPERATIONS, HistoryMetric::Capacity, capacity);
        }
        for (i, f) in r.faults.iter().enumerate() {
            if let Some(recovery) = f.figures.as_ref().and_then(|x| x.recovery_s) {
                push(&format!("{} {} #{}", f.upstream, f.kind, i + 1), HistoryMetric::Recovery, recovery);
            }
        }
    }
    out
}

/// A breakpoint repetition's capacity: as the run judged it, or under `slo` from its seconds
/// (the successful calls per second of the last second before the first that broke it).
pub fn capacity(r: &RepetitionResult, slo: Option<&Slo>) -> Option<f64> {
    let b = r.breakpoint.as_ref()?;
    let Some(slo) = slo else { return Some(b.capacity_per_s) };
    let mut held = None;
    for p in &r.series {
        let error_rate = if p.calls_per_s > 0.0 { p.errors as f64 / p.calls_per_s } else { 0.0 };
        let broke = slo.p99_us.is_some_and(|l| p.p99_us as f64 > l) || slo.error_rate.is_some_and(|l| error_rate > l);
        if broke {
            return held.or(Some(0.0));
        }
        held = Some(p.calls_per_s - p.errors as f64);
    }
    held
}
