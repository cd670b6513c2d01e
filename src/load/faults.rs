//! What a scenario's faults did: per fault, the error rate and degraded share while it lasted,
//! how soon the server's breaker opened, and how long recovery took after it ended.
//!
//! The client's side comes from a [`Timeline`] of completed calls in [`BIN`]-wide bins. The
//! server's side comes from its `runtime://stats` resource (servers on the mcp-perfcheck runtime
//! offer it): read at the start and end of the measured window, it gives the cache counters and
//! each breaker's recent transitions with their wall-clock times. A server without it still gets
//! the client's figures.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::client::{Connection, Request};
use crate::results::{FaultFigures, FaultWindow, RuntimeFigures};
use crate::runtime::{STATS_URI, unix_time};

/// The timeline's resolution: recovery times are known to this.
pub const BIN: Duration = Duration::from_millis(100);
/// An hour of bins; calls after that are not placed (faults are for short scenarios).
const MAX_BINS: usize = 36_000;
/// A bin's errors count as normal up to the pre-fault rate plus three binomial standard
/// deviations plus this share of its calls (so that with no errors before, one stray error in a
/// bin of a hundred calls is still normal).
const NORMAL_SLACK: f64 = 0.01;

/// Calls, errors and degraded answers by completion time, from the start of the measured window.
#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    bins: Vec<Bin>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bin {
    calls: u64,
    errors: u64,
    degraded: u64,
}

impl Timeline {
    pub fn new(start: Instant) -> Timeline {
        Timeline { start, bins: Vec::new() }
    }

    /// A call that completed at `done`; calls of the warm-up are not placed.
    pub fn record(&mut self, done: Instant, error: bool, degraded: bool) {
        let Some(since) = done.checked_duration_since(self.start) else { return };
        let i = (since.as_nanos() / BIN.as_nanos()) as usize;
        if i >= MAX_BINS {
            return;
        }
        if self.bins.len() <= i {
            self.bins.resize(i + 1, Bin::default());
        }
        let bin = &mut self.bins[i];
        bin.calls += 1;
        bin.errors += u64::from(error);
        bin.degraded += u64::from(degraded && !error);
    }

    /// The bins covering `[from_s, to_s)`, summed.
    fn sum(&self, from_s: f64, to_s: f64) -> Bin {
        let (a, b) = (bin_index(from_s), bin_index(to_s).min(self.bins.len()));
        self.bins.get(a..b.max(a)).unwrap_or_default().iter().fold(Bin::default(), |acc, x| Bin {
            calls: acc.calls + x.calls,
            errors: acc.errors + x.errors,
            degraded: acc.degraded + x.degraded,
        })
    }
}

fn bin_index(seconds: f64) -> usize {
    (seconds.max(0.0) / BIN.as_secs_f64()).round() as usize
}

fn rate(part: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| part as f64 / of as f64)
}

/// What the server's `runtime://stats` said, as far as the figures need it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuntimeSnapshot {
    #[serde(default)]
    upstreams: Vec<UpstreamSnapshot>,
}

#[derive(Debug, Clone, Deserialize)]
struct UpstreamSnapshot {
    name: String,
    breaker: BreakerSnapshot,
    cache: CacheSnapshot,
}

#[derive(Debug, Clone, Deserialize)]
struct BreakerSnapshot {
    state: String,
    #[serde(default)]
    recent: Vec<TransitionAt>,
}

#[derive(Debug, Clone, Deserialize)]
struct TransitionAt {
    to: String,
    at_unix_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct CacheSnapshot {
    hits: u64,
    misses: u64,
    stale: u64,
}

/// Reads the server's runtime statistics; `None` when it has none (or answers nonsense).
pub async fn read_runtime(conn: &Connection, timeout: Duration) -> Option<RuntimeSnapshot> {
    #[derive(Deserialize)]
    struct ReadResult {
        contents: Vec<Content>,
    }
    #[derive(Deserialize)]
    struct Content {
        text: Option<String>,
    }
    let params = format!(r#"{{"uri":"{STATS_URI}"}}"#);
    // `name`: the URI, for HTTP's Mcp-Name header.
    let request = Request { method: "resources/read", name: Some(STATS_URI), params: &params };
    let raw = conn.request(request, timeout).await.ok()?;
    let read: ReadResult = serde_json::from_str(raw.get()).ok()?;
    serde_json::from_str(read.contents.first()?.text.as_deref()?).ok()
}

/// Wall-clock milliseconds of an instant, for lining the server's timestamps up with ours.
pub fn unix_ms(at: Instant) -> f64 {
    unix_time(at, Instant::now()).as_secs_f64() * 1e3
}

/// The cache and breaker figures over the window, from snapshots at its start and end.
/// `measure_start_ms`: the window's start in Unix milliseconds.
pub fn runtime_figures(start: &RuntimeSnapshot, end: &RuntimeSnapshot, measure_start_ms: f64) -> RuntimeFigures {
    let cache = |s: &RuntimeSnapshot| {
        s.upstreams.iter().fold(CacheSnapshot::default(), |a, u| CacheSnapshot {
            hits: a.hits + u.cache.hits,
            misses: a.misses + u.cache.misses,
            stale: a.stale + u.cache.stale,
        })
    };
    let (a, b) = (cache(start), cache(end));
    let (hits, stale, misses) =
        (b.hits.saturating_sub(a.hits), b.stale.saturating_sub(a.stale), b.misses.saturating_sub(a.misses));
    let breaker_opens = end
        .upstreams
        .iter()
        .flat_map(|u| &u.breaker.recent)
        .filter(|t| t.to == "open" && t.at_unix_ms as f64 >= measure_start_ms)
        .count() as u64;
    RuntimeFigures {
        cache_hits: hits,
        cache_stale: stale,
        cache_misses: misses,
        cache_hit_ratio: rate(hits + stale, hits + stale + misses),
        breaker_opens,
        breakers_open_at_end: end
            .upstreams
            .iter()
            .filter(|u| u.breaker.state != "closed")
            .map(|u| format!("{}: {}", u.name, u.breaker.state))
            .collect(),
    }
}

/// Fills in each fault's figures. `window_s`: the measured window's length; `runtime`: the
/// server's statistics at the end of the window, if it has them.
pub fn figures(
    faults: &mut [FaultWindow],
    timeline: &Timeline,
    window_s: f64,
    runtime: Option<(&RuntimeSnapshot, f64)>,
) {
    let starts: Vec<f64> = faults.iter().map(|f| f.start_s).collect();
    let first_start = starts.iter().copied().fold(f64::INFINITY, f64::min);
    // Normal is the error rate before any fault (none measured: no errors at all).
    let before = timeline.sum(0.0, first_start.min(window_s));
    let normal = rate(before.errors, before.calls).unwrap_or(0.0);
    for fault in faults.iter_mut() {
        let during = timeline.sum(fault.start_s, fault.end_s);
        // Recovery is looked for until the next fault starts or the window ends.
        let horizon = starts.iter().copied().filter(|&s| s >= fault.end_s).fold(window_s, f64::min);
        let breaker = runtime.and_then(|(snapshot, start_ms)| breaker_times(snapshot, fault, start_ms));
        let errors_normal_s = errors_back_to_normal(timeline, fault.end_s, horizon, normal);
        let closed_s = match breaker {
            Some(BreakerTimes { closed_after_end_s, .. }) => closed_after_end_s,
            None => Some(0.0),
        };
        fault.figures = Some(FaultFigures {
            calls: during.calls,
            error_rate: rate(during.errors, during.calls),
            degraded_share: rate(during.degraded, during.calls),
            breaker_opened_after_s: breaker.and_then(|b| b.opened_after_start_s),
            breaker_closed_after_s: breaker.and_then(|b| b.closed_after_end_s),
            recovery_s: errors_normal_s.zip(closed_s).map(|(e, c)| e.max(c)),
        });
    }
}

#[derive(Debug, Clone, Copy)]
struct BreakerTimes {
    /// From the fault's start to the first opening within it (`None`: it never opened).
    opened_after_start_s: Option<f64>,
    /// From the fault's end until the breaker was closed again (0 when it never opened or was
    /// closed by then; `None`: still not closed when the window ended).
    closed_after_end_s: Option<f64>,
}

/// The fault's upstream's breaker, or — when the server names its upstreams otherwise — the
/// first breaker that opened during the fault.
fn breaker_times(snapshot: &RuntimeSnapshot, fault: &FaultWindow, start_ms: f64) -> Option<BreakerTimes> {
    let at_s = |t: &TransitionAt| (t.at_unix_ms as f64 - start_ms) / 1e3;
    let opened_in = |u: &&UpstreamSnapshot| {
        u.breaker.recent.iter().any(|t| t.to == "open" && (fault.start_s..fault.end_s).contains(&at_s(t)))
    };
    let upstream = snapshot
        .upstreams
        .iter()
        .find(|u| u.name == fault.upstream)
        .or_else(|| snapshot.upstreams.iter().find(opened_in))?;
    let transitions: Vec<(f64, &str)> = upstream.breaker.recent.iter().map(|t| (at_s(t), t.to.as_str())).collect();
    let opened = transitions.iter().find(|(s, to)| *to == "open" && (fault.start_s..fault.end_s).contains(s));
    let Some(&(opened_s, _)) = opened else {
        return Some(BreakerTimes { opened_after_start_s: None, closed_after_end_s: Some(0.0) });
    };
    // The last state it entered after opening, and when; closed by the end of the fault: 0.
    let closed_after_end_s = match transitions.iter().rfind(|(s, _)| *s >= opened_s) {
        Some(&(s, "closed")) => Some((s - fault.end_s).max(0.0)),
        _ => None,
    };
    Some(BreakerTimes { opened_after_start_s: Some(opened_s - fault.start_s), closed_after_end_s })
}

/// From `end_s`, how long until every bin up to `horizon_s` has errors within what the `normal`
/// rate explains; `None` when the last bin still does not.
fn errors_back_to_normal(timeline: &Timeline, end_s: f64, horizon_s: f64, normal: f64) -> Option<f64> {
    let (first, last) = (bin_index(end_s), bin_index(horizon_s).min(timeline.bins.len()));
    let abnormal = |b: &Bin| {
        let n = b.calls as f64;
        b.errors as f64 > n * normal + 3.0 * (n * normal * (1.0 - normal)).sqrt() + n * NORMAL_SLACK
    };
    let bins = timeline.bins.get(first..last)?;
    match bins.iter().rposition(abnormal) {
        None => Some(0.0),
        Some(i) if first + i + 1 < last => Some((i + 1) as f64 * BIN.as_secs_f64()),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests;
