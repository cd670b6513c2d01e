//! The generator's own figures while a run measures, in the Prometheus text exposition format
//! (`run --live-metrics ADDR`), so a long soak or breakpoint can be watched in Prometheus and
//! Grafana as it happens (`docs/grafana/mcp-perfcheck.json` is built on these names).
//!
//! [`LiveMetrics`] is fed the engine's progress events: a tick carries each operation's calls so
//! far in the current repetition, a finished repetition its exact figures, which then replace
//! the ticks' (so that, once a repetition ends, the counters are the results file's). Counters
//! are the finished repetitions' plus the current one's. Names follow Prometheus conventions:
//! the `mcp_perfcheck_` prefix, base units (seconds, bytes), `_total` on counters. Label values
//! (scenario, operation and error names come from the config and the server) are escaped.

mod endpoint;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

pub use endpoint::Endpoint;

use crate::load::{Interval, Progress};
use crate::measure::{LatencyHistogram, Sample};
use crate::results::RepetitionResult;

/// Upper bounds of the latency histogram's buckets, seconds (then `+Inf`).
const BUCKETS_S: [f64; 17] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// What the engine has measured so far, ready to render.
#[derive(Default)]
pub struct LiveMetrics {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    scenarios: BTreeMap<String, ScenarioLive>,
}

#[derive(Default)]
struct ScenarioLive {
    /// Operations' figures over the finished repetitions.
    done: BTreeMap<String, Totals>,
    /// Operations' figures in the current repetition, as of its last tick.
    current: BTreeMap<String, Totals>,
    repetition: u32,
    planned: u32,
    phase: Phase,
    in_flight: u64,
    target_rate: Option<f64>,
    achieved_rate: f64,
    send_lag_p99_s: Option<f64>,
    server: Option<Sample>,
}

#[derive(Default, Clone, Copy, PartialEq)]
enum Phase {
    #[default]
    Warmup,
    Measure,
    Done,
}

impl Phase {
    const ALL: [(Phase, &'static str); 3] =
        [(Phase::Warmup, "warmup"), (Phase::Measure, "measure"), (Phase::Done, "done")];
}

#[derive(Default, Clone)]
struct Totals {
    calls: u64,
    errors: BTreeMap<String, u64>,
    latency: LatencyHistogram,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.calls += other.calls;
        for (k, n) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += n;
        }
        self.latency.merge(&other.latency);
    }
}

impl LiveMetrics {
    pub fn new() -> LiveMetrics {
        LiveMetrics::default()
    }

    /// Takes in one progress event of the engine.
    pub fn observe(&self, event: &Progress<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Progress::Tick {
                scenario,
                index,
                of,
                elapsed,
                warmup,
                point,
                so_far,
                operations,
                target_rate,
                server,
                ..
            } => {
                let s = state.scenarios.entry(scenario.to_string()).or_default();
                if s.repetition != *index {
                    s.current.clear();
                }
                s.repetition = *index;
                s.planned = *of;
                s.phase = if elapsed < warmup { Phase::Warmup } else { Phase::Measure };
                s.current = per_operation(so_far, operations);
                s.in_flight = so_far.in_flight;
                s.target_rate = *target_rate;
                if let Some(p) = point {
                    s.achieved_rate = p.calls_per_s;
                }
                s.send_lag_p99_s = so_far.send_lag.as_ref().and_then(|h| h.percentile(99.0)).map(|us| us as f64 / 1e6);
                if server.is_some() {
                    s.server = *server;
                }
            }
            Progress::RepetitionFinished { scenario, repetition, .. } => {
                let s = state.scenarios.entry(scenario.to_string()).or_default();
                for (name, totals) in finished(repetition) {
                    s.done.entry(name).or_default().add(&totals);
                }
                s.current.clear();
                s.in_flight = 0;
                s.phase = if s.repetition >= s.planned { Phase::Done } else { Phase::Warmup };
            }
            _ => {}
        }
    }

    /// The exposition, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let ops: Vec<(&str, String, Totals)> = state
            .scenarios
            .iter()
            .flat_map(|(scenario, s)| {
                let mut merged = s.done.clone();
                for (name, t) in &s.current {
                    merged.entry(name.clone()).or_default().add(t);
                }
                merged.into_iter().map(move |(name, t)| (scenario.as_str(), name, t))
            })
            .collect();

        family(
            &mut out,
            "mcp_perfcheck_calls_total",
            "counter",
            "Measured calls completed (answered, failed or timed out).",
        );
        for (scenario, op, t) in &ops {
            sample(&mut out, "mcp_perfcheck_calls_total", &[("scenario", scenario), ("operation", op)], t.calls as f64);
        }
        family(&mut out, "mcp_perfcheck_errors_total", "counter", "Measured calls that failed, by kind of error.");
        for (scenario, op, t) in &ops {
            for (kind, n) in &t.errors {
                let labels = [("scenario", *scenario), ("operation", op.as_str()), ("kind", kind.as_str())];
                sample(&mut out, "mcp_perfcheck_errors_total", &labels, *n as f64);
            }
        }
        let name = "mcp_perfcheck_call_duration_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "Latency of measured calls from their intended send (failures at their time to failure).",
        );
        for (scenario, op, t) in &ops {
            histogram(&mut out, name, scenario, op, &t.latency);
        }
        let name = "mcp_perfcheck_call_duration_quantile_seconds";
        family(
            &mut out,
            name,
            "gauge",
            "Latency percentiles of every measured call so far (HdrHistogram, exact to 0.1%).",
        );
        for (scenario, op, t) in &ops {
            for (q, p) in [("0.5", 50.0), ("0.95", 95.0), ("0.99", 99.0)] {
                if let Some(us) = t.latency.percentile(p) {
                    sample(
                        &mut out,
                        name,
                        &[("scenario", scenario), ("operation", op), ("quantile", q)],
                        us as f64 / 1e6,
                    );
                }
            }
        }
        scenario_gauges(&mut out, &state);
        out
    }
}

/// The figures of the scenario itself: progress, pacing and the server's resources.
fn scenario_gauges(out: &mut String, state: &State) {
    type Gauge = (&'static str, &'static str, &'static str, fn(&ScenarioLive) -> Option<f64>);
    let gauges: [Gauge; 10] = [
        ("mcp_perfcheck_repetition", "gauge", "The repetition being measured (from 1).", |s| {
            Some(f64::from(s.repetition))
        }),
        ("mcp_perfcheck_repetitions_planned", "gauge", "Repetitions planned so far.", |s| Some(f64::from(s.planned))),
        ("mcp_perfcheck_in_flight", "gauge", "The most calls in flight at once over the last 100 ms.", |s| {
            Some(s.in_flight as f64)
        }),
        ("mcp_perfcheck_target_calls_per_second", "gauge", "The rate the open model's schedule asks for now.", |s| {
            s.target_rate
        }),
        ("mcp_perfcheck_achieved_calls_per_second", "gauge", "Measured calls completed in the last second.", |s| {
            Some(s.achieved_rate)
        }),
        (
            "mcp_perfcheck_send_lag_p99_seconds",
            "gauge",
            "Open model: p99 of how late calls left, this repetition.",
            |s| s.send_lag_p99_s,
        ),
        ("mcp_perfcheck_server_resident_memory_bytes", "gauge", "The server process tree's resident memory.", |s| {
            s.server.map(|x| x.rss_bytes as f64)
        }),
        (
            "mcp_perfcheck_server_cpu_seconds_total",
            "counter",
            "The server process tree's CPU time (resets with each fresh server).",
            |s| s.server.map(|x| x.cpu_seconds),
        ),
        ("mcp_perfcheck_server_open_fds", "gauge", "Open file descriptors of the server process tree.", |s| {
            s.server.map(|x| x.open_fds as f64)
        }),
        ("mcp_perfcheck_server_threads", "gauge", "Threads of the server process tree.", |s| {
            s.server.map(|x| x.threads as f64)
        }),
    ];
    for (name, kind, help, value) in gauges {
        family(out, name, kind, help);
        for (scenario, s) in &state.scenarios {
            if let Some(v) = value(s) {
                sample(out, name, &[("scenario", scenario)], v);
            }
        }
    }
    family(out, "mcp_perfcheck_phase", "gauge", "1 for the phase a scenario is in: warmup, measure or done.");
    for (scenario, s) in &state.scenarios {
        for (phase, label) in Phase::ALL {
            sample(
                out,
                "mcp_perfcheck_phase",
                &[("scenario", scenario), ("phase", label)],
                f64::from(u8::from(s.phase == phase)),
            );
        }
    }
}

/// Each operation's share of a tick's interval, by name.
fn per_operation(so_far: &Interval, operations: &[String]) -> BTreeMap<String, Totals> {
    operations
        .iter()
        .zip(&so_far.operations)
        .filter(|(_, o)| o.calls > 0)
        .map(|(name, o)| {
            let errors = o.errors.iter().map(|(k, n)| (k.to_string(), *n)).collect();
            (name.clone(), Totals { calls: o.calls, errors, latency: o.latency.clone() })
        })
        .collect()
}

/// A finished repetition's exact figures, by operation.
fn finished(repetition: &RepetitionResult) -> Vec<(String, Totals)> {
    repetition
        .operations
        .iter()
        .map(|o| {
            let errors = o.errors.iter().map(|(k, n)| (k.to_string(), *n)).collect();
            let latency = LatencyHistogram::decode(&o.histogram).unwrap_or_default();
            (o.name.clone(), Totals { calls: o.count, errors, latency })
        })
        .collect()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let _ = write!(out, "{name}{{");
    for (i, (k, v)) in labels.iter().enumerate() {
        let _ = write!(out, "{}{k}=\"{}\"", if i > 0 { "," } else { "" }, escape(v));
    }
    let _ = writeln!(out, "}} {value}");
}

fn histogram(out: &mut String, name: &str, scenario: &str, op: &str, latency: &LatencyHistogram) {
    for le in BUCKETS_S {
        let count = latency.count_at_most((le * 1e6) as u64);
        sample(
            out,
            &format!("{name}_bucket"),
            &[("scenario", scenario), ("operation", op), ("le", &le.to_string())],
            count as f64,
        );
    }
    let n = latency.len() as f64;
    sample(out, &format!("{name}_bucket"), &[("scenario", scenario), ("operation", op), ("le", "+Inf")], n);
    // HdrHistograms keep no exact sum: the mean (to the histogram's precision) times the count.
    sample(out, &format!("{name}_sum"), &[("scenario", scenario), ("operation", op)], latency.mean_us() * n / 1e6);
    sample(out, &format!("{name}_count"), &[("scenario", scenario), ("operation", op)], n);
}

/// A label value as the exposition format wants it: backslash, double quote and line feed
/// escaped; other control characters (which no label should carry) dropped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
