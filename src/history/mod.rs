//! History: the results of many commits as series, their change points, the capacity trend
//! and what it plans, and the dashboard.
//!
//! `runs` (one results file a commit, in history order: the git-branch store's first-parent
//! order, or by date) become series per machine class, scenario, operation and metric
//! ([`series`]); each series is searched for change points by `stats::change_points` (pure,
//! seeded by the series' own key, so the same history gives the same answer); [`capacity`]
//! plans instances from breakpoint scenarios; [`render`] writes text, markdown, JSON and the
//! HTML dashboard. Nothing here measures or reads a store: `cli/history.rs` gathers the runs.

mod capacity;
mod render;
mod series;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use capacity::{CapacityPlan, PlanRequest, plan};
pub use render::render;
pub use series::{HistoryMetric, Point, SeriesKey, Slo};

use crate::measure::LatencyBasis;
use crate::results::Results;
use crate::stats::{ChangePointSettings, change_points_after};

/// The JSON form's schema.
pub const SCHEMA: &str = "mcp-perfcheck/history/v1";

/// One measured commit, in history order.
pub struct Run {
    pub commit: String,
    /// When the commit was made (or measured, when the commit is not known), RFC 3339.
    pub date: Option<String>,
    pub results: Results,
}

/// How the series are searched.
#[derive(Debug, Clone)]
pub struct Options {
    /// The change-point settings (`scale` is set per metric: error rates on the difference
    /// scale, with `min_error_rate` as their smallest change).
    pub change_points: ChangePointSettings,
    /// The smallest change of an error rate reported, absolute (0.001 = 0.1 percentage point).
    pub min_error_rate: f64,
    pub basis: LatencyBasis,
    /// Capacity judged by this SLO instead of each breakpoint scenario's own limits.
    pub slo: Option<Slo>,
    /// Which metrics gate (`compare`'s policy): only their regressions alert.
    pub policy: crate::stats::Policy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            change_points: ChangePointSettings::DEFAULT,
            min_error_rate: 0.001,
            basis: LatencyBasis::All,
            slo: None,
            policy: crate::stats::Policy::DEFAULT,
        }
    }
}

/// A history analysed: every series with its change points, and what the reader should know.
#[derive(Debug, Serialize)]
pub struct History {
    pub schema: &'static str,
    /// Where the runs came from.
    pub source: String,
    /// Runs read (commits measured).
    pub runs: usize,
    /// Each machine class and how many of the runs it measured, most recent class last.
    pub environments: Vec<EnvironmentRuns>,
    pub series: Vec<Series>,
    pub notes: Vec<String>,
    /// With `--plan`: the instances each breakpoint scenario's capacity asks for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<CapacityPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentRuns {
    pub class: String,
    pub runs: usize,
    pub first_commit: String,
    pub last_commit: String,
}

/// One series and its change points.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub environment: String,
    pub scenario: String,
    pub operation: String,
    pub metric: HistoryMetric,
    /// Whether the metric gates in this scenario (as in `compare`: p95, p99 and closed-model
    /// throughput swing with a machine's neighbours and are reported, not alerted on; capacity
    /// and recovery always gate).
    pub gates: bool,
    /// The smallest regression that alerts: the policy's minimum effect for the metric (a
    /// smaller change is one `compare` would call negligible).
    pub alert_above: f64,
    pub points: Vec<Point>,
    pub change_points: Vec<Change>,
}

/// A change point of a series.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The point (commit) the new level starts at.
    pub index: usize,
    pub commit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The segment before's and after's level (geometric means; means for error rates).
    pub before: f64,
    pub after: f64,
    /// Relative (`+0.072` = +7.2%), absolute for error rates.
    pub change: f64,
    /// Its 95% interval, when each side has two points or more and some spread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<(f64, f64)>,
    /// The permutation test's p-value when the change point was found (absent for one kept
    /// from an earlier analysis with `--state`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// The worse way for this metric.
    pub regression: bool,
}

impl Series {
    pub fn key(&self) -> SeriesKey {
        SeriesKey {
            environment: self.environment.clone(),
            scenario: self.scenario.clone(),
            operation: self.operation.clone(),
            metric: self.metric,
        }
    }

    /// A regression of a gating metric, beyond its minimum effect, whose new level began
    /// within the last `n` points.
    pub fn recent_regression(&self, n: usize) -> Option<&Change> {
        let from = self.points.len().saturating_sub(n);
        self.change_points
            .iter()
            .rev()
            .find(|c| self.gates && c.regression && c.index >= from && c.change.abs() >= self.alert_above)
    }
}

/// What an earlier analysis found, to search a longer history incrementally: per series, the
/// commits it covered and the commits its change points start at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub schema: String,
    pub series: BTreeMap<String, SeriesState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeriesState {
    /// The last commit analysed and how many points led up to it.
    pub last_commit: String,
    pub points: usize,
    pub change_points: Vec<String>,
}

/// The state file's schema.
pub const STATE_SCHEMA: &str = "mcp-perfcheck/history-state/v1";

/// Every series of `runs` with its change points. With `state`, a series whose earlier points
/// are those the state covered keeps the change points it found then and is searched only after
/// the last of them.
pub fn analyse(source: String, runs: &[Run], options: &Options, state: Option<&State>) -> History {
    let built = series::build(runs, options.basis, options.slo.as_ref());
    let mut notes = Vec::new();
    let environments = environments(runs);
    if environments.len() > 1 {
        let classes: Vec<String> = environments.iter().map(|e| format!("{} ({} runs)", e.class, e.runs)).collect();
        notes.push(format!(
            "the runs come from {} machine classes, each with series of its own (never mixed): {}",
            environments.len(),
            classes.join("; ")
        ));
    }
    let keyed: Vec<(SeriesKey, Vec<Point>)> = built.into_iter().collect();
    let found = search_all(&keyed, options, state);
    let series = keyed
        .into_iter()
        .zip(found)
        .map(|((key, points), change_points)| Series {
            gates: key.metric.compared().is_none_or(|m| options.policy.gate_of(&key.scenario).contains(m)),
            alert_above: match key.metric.compared() {
                Some(m) => options.policy.min_effect.of(m, None),
                None => options.policy.min_effect.latency,
            },
            environment: key.environment,
            scenario: key.scenario,
            operation: key.operation,
            metric: key.metric,
            points,
            change_points,
        })
        .collect();
    History { schema: SCHEMA, source, runs: runs.len(), environments, series, notes, plans: Vec::new() }
}

/// The runs' values by scenario, operation and `compare`'s metric, oldest first, for the runs
/// measured on `environment` (a machine class: another class's values are not comparable):
/// the pull-request comment's trend lines.
pub fn trends(runs: &[Run], environment: &str, basis: LatencyBasis) -> crate::report::Trends {
    let values = series::build(runs, basis, None)
        .into_iter()
        .filter(|(k, _)| k.environment == environment)
        .filter_map(|(k, points)| {
            let metric = k.metric.compared()?;
            Some(((k.scenario, k.operation, metric), points.iter().map(|p| p.value).collect()))
        })
        .collect();
    crate::report::Trends { values }
}

/// The state that lets the next analysis of a longer history search only what is new.
pub fn state_of(history: &History) -> State {
    let series = history
        .series
        .iter()
        .filter_map(|s| {
            let last = s.points.last()?;
            let state = SeriesState {
                last_commit: last.commit.clone(),
                points: s.points.len(),
                change_points: s.change_points.iter().map(|c| c.commit.clone()).collect(),
            };
            Some((state_key(&s.key()), state))
        })
        .collect();
    State { schema: STATE_SCHEMA.to_string(), series }
}

fn state_key(k: &SeriesKey) -> String {
    format!("{}\u{1f}{}\u{1f}{}\u{1f}{:?}", k.environment, k.scenario, k.operation, k.metric)
}

fn environments(runs: &[Run]) -> Vec<EnvironmentRuns> {
    let mut out: Vec<EnvironmentRuns> = Vec::new();
    for run in runs {
        let class = run.results.environment.class();
        match out.iter_mut().find(|e| e.class == class) {
            Some(e) => {
                e.runs += 1;
                e.last_commit = run.commit.clone();
            }
            None => out.push(EnvironmentRuns {
                class,
                runs: 1,
                first_commit: run.commit.clone(),
                last_commit: run.commit.clone(),
            }),
        }
    }
    // The class of the newest run last: the one a plan or an alert is about.
    if let Some(newest) = runs.last().map(|r| r.results.environment.class()) {
        out.sort_by_key(|e| e.class == newest);
    }
    out
}

/// The change points of every series, the series taken in turn by one worker a core (their
/// costs differ: a series with many change points takes many permutation tests).
fn search_all(keyed: &[(SeriesKey, Vec<Point>)], options: &Options, state: Option<&State>) -> Vec<Vec<Change>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(keyed.len().max(1));
    let next = AtomicUsize::new(0);
    let mut found: Vec<(usize, Vec<Change>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((key, points)) = keyed.get(i) else { break };
                        mine.push((i, search(key, points, options, state)));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a change-point search does not panic")).collect()
    });
    found.sort_by_key(|(i, _)| *i);
    found.into_iter().map(|(_, c)| c).collect()
}

/// One series' change points.
fn search(key: &SeriesKey, points: &[Point], options: &Options, state: Option<&State>) -> Vec<Change> {
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    let mut settings = options.change_points;
    settings.scale = key.metric.scale();
    if key.metric == HistoryMetric::ErrorRate {
        settings.min_magnitude = options.min_error_rate;
    }
    settings.seed ^= fnv1a(&state_key(key));
    // An earlier analysis of this series' first points: its change points stand, and only
    // what follows the last of them is searched (with none, that is the whole series).
    let known: Vec<usize> = state
        .and_then(|s| s.series.get(&state_key(key)))
        .filter(|s| s.points > 0 && s.points <= points.len() && points[s.points - 1].commit == s.last_commit)
        .and_then(|s| s.change_points.iter().map(|c| points[..s.points].iter().position(|p| p.commit == *c)).collect())
        .unwrap_or_default();
    let found = change_points_after(&values, &known, &settings);
    found
        .into_iter()
        .map(|c| Change {
            index: c.index,
            commit: points[c.index].commit.clone(),
            date: points[c.index].date.clone(),
            before: c.before,
            after: c.after,
            change: c.change,
            interval: c.interval,
            p_value: c.p_value.is_finite().then_some(c.p_value),
            regression: if key.metric.lower_is_better() { c.change > 0.0 } else { c.change < 0.0 },
        })
        .collect()
}

/// FNV-1a: a hash that is the same on every platform and Rust version (the seed of a series'
/// change-point search must not move between runs of the tool).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
