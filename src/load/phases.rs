//! What the spike and breakpoint phases conclude from the per-second picture of a repetition.

use crate::config::Breakpoint;
use crate::results::{BreakpointResult, SeriesPoint, SpikeResult};

/// A p99 counts as recovered within this factor of the pre-spike p99 (and at least this many
/// µs above it, so that sub-millisecond noise is not read as a lasting effect).
const RECOVERED_FACTOR: f64 = 1.5;
const RECOVERED_SLACK_US: f64 = 1000.0;

/// Spike from `at_s` to `end_s` (seconds into the measured window) over a series of buckets
/// `bucket_s` wide: the p99 before it, the worst p99 until it was over, and how long after it ended the
/// first clean bucket (no errors, p99 back near the baseline) closed. The recovery time is an
/// upper bound with the bucket width as resolution.
pub fn spike_outcome(points: &[SeriesPoint], at_s: f64, end_s: f64, factor: f64, bucket_s: f64) -> SpikeResult {
    // Buckets close a little after their nominal end (timer lag): a quarter bucket of slack.
    let slack = bucket_s / 4.0;
    let mut before: Vec<u64> = points.iter().filter(|p| p.t_s <= at_s + slack).map(|p| p.p99_us).collect();
    before.sort_unstable();
    let baseline = before.get(before.len() / 2).copied().unwrap_or(0);
    let limit = (baseline as f64 * RECOVERED_FACTOR).max(baseline as f64 + RECOVERED_SLACK_US);
    let recovered_at = points
        .iter()
        .filter(|p| p.t_s - bucket_s >= end_s - slack)
        .find(|p| p.errors == 0 && p.calls_per_s > 0.0 && (p.p99_us as f64) <= limit)
        .map(|p| p.t_s);
    // The worst second from the spike's start until the recovery: the backlog it leaves drains
    // after it ends, and that is part of its cost.
    let peak = points
        .iter()
        .filter(|p| p.t_s > at_s + slack && recovered_at.is_none_or(|r| p.t_s < r))
        .map(|p| p.p99_us)
        .max()
        .unwrap_or(0);
    let recovery_s = recovered_at.map(|t| t - end_s);
    SpikeResult { at_s, end_s, factor, baseline_p99_us: baseline, peak_p99_us: peak, recovery_s }
}

/// Watches the seconds of a breakpoint run.
pub struct BreakpointWatch {
    limits: Breakpoint,
    result: BreakpointResult,
}

impl BreakpointWatch {
    pub fn new(limits: &Breakpoint) -> BreakpointWatch {
        BreakpointWatch { limits: limits.clone(), result: BreakpointResult::default() }
    }

    /// Judges one second; `rate_per_s` is the rate scheduled at its end. Returns whether it
    /// broke a limit (the run should stop).
    pub fn check(&mut self, point: &SeriesPoint, rate_per_s: f64) -> bool {
        if self.result.broke_at_s.is_some() {
            return true;
        }
        let calls = point.calls_per_s;
        let error_rate = if calls > 0.0 { point.errors as f64 / calls } else { 0.0 };
        let broken = match (&self.limits.p99, &self.limits.error_rate) {
            (Some(p99), _) if point.p99_us as f64 > p99.0.as_secs_f64() * 1e6 => {
                Some(format!("p99 {:.2}ms above {}", point.p99_us as f64 / 1000.0, humantime::format_duration(p99.0)))
            }
            (_, Some(max)) if error_rate > max.fraction() => {
                Some(format!("error rate {:.2}% above {:.2}%", error_rate * 100.0, max.fraction() * 100.0))
            }
            _ => None,
        };
        match broken {
            Some(why) => {
                self.result.broke_at_s = Some(point.t_s);
                self.result.rate_at_break_per_s = Some(rate_per_s);
                self.result.broken_by = Some(why);
                true
            }
            None => {
                self.result.capacity_per_s = calls - point.errors as f64;
                false
            }
        }
    }

    pub fn finish(self) -> BreakpointResult {
        self.result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HumanDuration, Percent};
    use std::time::Duration;

    fn point(t_s: f64, calls_per_s: f64, errors: u64, p99_us: u64) -> SeriesPoint {
        SeriesPoint { t_s, calls_per_s, errors, p50_us: p99_us / 2, p99_us, rss_bytes: None, cpu_percent: None }
    }

    #[test]
    fn recovery_is_the_first_clean_second_after_the_spike() {
        let p99s = [2000, 2100, 1900, 30_000, 60_000, 20_000, 9000, 2500, 2000, 2000];
        // Buckets close a few ms late, as they do.
        let points: Vec<_> = p99s.iter().enumerate().map(|(i, &p)| point(i as f64 + 1.003, 100.0, 0, p)).collect();
        let s = spike_outcome(&points, 3.0, 5.0, 5.0, 1.0);
        assert_eq!((s.baseline_p99_us, s.peak_p99_us), (2000, 60_000));
        // Buckets ending at 6 s (20 ms) and 7 s (9 ms) are still slow; the one ending at 8 s is back.
        assert!((s.recovery_s.unwrap() - 3.003).abs() < 1e-9, "{s:?}");
        let never: Vec<_> =
            (1..=6).map(|i| point(f64::from(i), 100.0, 0, if i <= 3 { 2000 } else { 50_000 })).collect();
        assert_eq!(spike_outcome(&never, 3.0, 4.0, 5.0, 1.0).recovery_s, None);
    }

    #[test]
    fn the_breakpoint_is_the_first_second_over_a_limit_and_capacity_the_last_under() {
        let limits =
            Breakpoint { p99: Some(HumanDuration(Duration::from_millis(50))), error_rate: Some(Percent(0.01)) };
        let mut watch = BreakpointWatch::new(&limits);
        assert!(!watch.check(&point(1.0, 100.0, 0, 5_000), 100.0));
        assert!(!watch.check(&point(2.0, 200.0, 1, 20_000), 200.0));
        assert!(watch.check(&point(3.0, 300.0, 0, 80_000), 300.0));
        let r = watch.finish();
        assert_eq!((r.capacity_per_s, r.broke_at_s, r.rate_at_break_per_s), (199.0, Some(3.0), Some(300.0)));
        assert_eq!(r.broken_by.unwrap(), "p99 80.00ms above 50ms");
        let mut errors = BreakpointWatch::new(&limits);
        assert!(errors.check(&point(1.0, 100.0, 5, 1_000), 100.0));
        assert!(errors.finish().broken_by.unwrap().starts_with("error rate 5.00%"));
    }
}
