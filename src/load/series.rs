//! The per-second time series of a repetition's measured window, for charts: calls per second,
//! errors and latency percentiles per bucket (from the bucket's own histogram, never an average
//! of seconds), with the server's RSS and CPU from the process sampler. Buckets widen so that a
//! long soak keeps at most [`crate::results::SERIES_MAX_POINTS`] points.

use std::time::{Duration, Instant};

use super::drive::Interval;
use crate::measure::Sample;
use crate::results::{SeriesPoint, series_bucket_s};

/// The point for what `interval` recorded over `seconds`, ending `t_s` into the window.
pub fn point(interval: &Interval, seconds: f64, t_s: f64) -> SeriesPoint {
    let summary = interval.latency.summary();
    SeriesPoint {
        t_s,
        calls_per_s: if seconds > 0.0 { interval.calls as f64 / seconds } else { 0.0 },
        errors: interval.errors,
        p50_us: summary.p50,
        p99_us: summary.p99,
        rss_bytes: None,
        cpu_percent: None,
    }
}

/// Builds the series from intervals taken about once a second.
pub struct SeriesBuilder {
    measure_start: Instant,
    bucket: Duration,
    current: Interval,
    /// End of the current bucket, on a fixed grid from `measure_start`.
    current_end: Instant,
    /// When the last bucket was closed (ticks arrive a little late; rates use the real span).
    last_close: Instant,
    /// The last closed bucket, kept whole until the end so a short tail can join it.
    pending: Option<(Interval, Instant, Instant)>,
    points: Vec<SeriesPoint>,
}

/// A tick this close to a bucket's end closes it: ticks are late by timer jitter, and waiting
/// for the next one would merge two buckets into one point.
const TICK_TOLERANCE: Duration = Duration::from_millis(100);

impl SeriesBuilder {
    /// `planned`: the measured window's length when known (it sets the bucket width).
    pub fn new(measure_start: Instant, planned: Option<Duration>) -> SeriesBuilder {
        let seconds = planned.map_or(1, |d| series_bucket_s(d.as_secs()));
        let bucket = Duration::from_secs(seconds);
        SeriesBuilder {
            measure_start,
            bucket,
            current: Interval::default(),
            current_end: measure_start + bucket,
            last_close: measure_start,
            pending: None,
            points: Vec::new(),
        }
    }

    /// Adds what was recorded up to `now`; closes the bucket once `now` reaches its end.
    pub fn add(&mut self, now: Instant, interval: Interval) {
        self.current.merge(&interval);
        if now + TICK_TOLERANCE >= self.current_end {
            self.close(now);
        }
    }

    fn close(&mut self, end: Instant) {
        self.emit_pending();
        self.pending = Some((std::mem::take(&mut self.current), self.last_close, end));
        self.last_close = end;
        while self.current_end <= end + TICK_TOLERANCE {
            self.current_end += self.bucket;
        }
    }

    fn emit_pending(&mut self) {
        if let Some((interval, start, end)) = self.pending.take() {
            let seconds = end.saturating_duration_since(start).as_secs_f64();
            let t_s = end.saturating_duration_since(self.measure_start).as_secs_f64();
            self.points.push(point(&interval, seconds, t_s));
        }
    }

    /// The width of the series' buckets.
    pub fn bucket(&self) -> Duration {
        self.bucket
    }

    /// Closes the series: what came after the last bucket (the calls still in flight when the
    /// window closed) joins that bucket when it is shorter than half a bucket, else makes a
    /// point of its own. Then adds RSS and CPU from the sampler's readings.
    pub fn finish(mut self, now: Instant, samples: &[(Instant, Sample)]) -> Vec<SeriesPoint> {
        if self.current.calls > 0 {
            let tail_is_short = now.saturating_duration_since(self.last_close) < self.bucket / 2;
            match &mut self.pending {
                Some((last, _, end)) if tail_is_short => {
                    last.merge(&self.current);
                    *end = now;
                }
                _ => self.close(now),
            }
        }
        self.emit_pending();
        let at = |t: Instant| samples.iter().rev().find(|(s, _)| *s <= t).map(|(s, sample)| (*s, *sample));
        let mut previous_end = self.measure_start;
        for p in &mut self.points {
            let end = self.measure_start + Duration::from_secs_f64(p.t_s);
            if let (Some((t1, s1)), Some((t0, s0))) = (at(end), at(previous_end)) {
                p.rss_bytes = Some(s1.rss_bytes);
                let dt = t1.saturating_duration_since(t0).as_secs_f64();
                p.cpu_percent = (dt > 0.0).then(|| 100.0 * (s1.cpu_seconds - s0.cpu_seconds) / dt);
            }
            previous_end = end;
        }
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(calls: u64, latency_us: u64) -> Interval {
        let mut iv = Interval { calls, ..Default::default() };
        for _ in 0..calls {
            iv.latency.record(Duration::from_micros(latency_us));
        }
        iv
    }

    #[test]
    fn seconds_become_points_with_their_own_percentiles() {
        let t0 = Instant::now();
        let mut b = SeriesBuilder::new(t0, Some(Duration::from_secs(3)));
        b.add(t0 + Duration::from_secs(1), interval(100, 1000));
        b.add(t0 + Duration::from_secs(2), interval(50, 9000));
        b.add(t0 + Duration::from_millis(2500), interval(10, 2000));
        let sample = |s: u64, rss: u64, cpu: f64| {
            (t0 + Duration::from_secs(s), Sample { rss_bytes: rss, cpu_seconds: cpu, ..Default::default() })
        };
        let samples = [sample(0, 10, 0.0), sample(1, 20, 0.5), sample(2, 30, 0.75)];
        let points = b.finish(t0 + Duration::from_millis(2500), &samples);
        assert_eq!(points.len(), 3);
        assert_eq!((points[0].calls_per_s, points[1].calls_per_s), (100.0, 50.0));
        assert!(points[1].p99_us.abs_diff(9000) <= 9, "{:?}", points[1]);
        assert_eq!(points[2].t_s, 2.5);
        assert_eq!(points[2].calls_per_s, 20.0, "10 calls in the last half second");
        assert_eq!((points[0].rss_bytes, points[1].rss_bytes), (Some(20), Some(30)));
        assert_eq!(points[0].cpu_percent, Some(50.0));
        assert_eq!(points[1].cpu_percent, Some(25.0));
    }

    #[test]
    fn a_late_tick_does_not_shift_later_buckets() {
        let t0 = Instant::now();
        let mut b = SeriesBuilder::new(t0, Some(Duration::from_secs(4)));
        for (ms, calls) in [(1003, 10), (2040, 10), (3001, 10), (4002, 10)] {
            b.add(t0 + Duration::from_millis(ms), interval(calls, 100));
        }
        let points = b.finish(t0 + Duration::from_millis(4002), &[]);
        assert_eq!(points.len(), 4, "{points:?}");
        assert!((points[2].calls_per_s - 10.0 / 0.961).abs() < 1e-9, "rates use the real span");
    }

    #[test]
    fn the_calls_in_flight_at_the_end_join_the_last_bucket() {
        let t0 = Instant::now();
        let mut b = SeriesBuilder::new(t0, Some(Duration::from_secs(2)));
        b.add(t0 + Duration::from_secs(1), interval(100, 1000));
        b.add(t0 + Duration::from_secs(2), interval(100, 1000));
        b.add(t0 + Duration::from_millis(2004), interval(6, 50_000));
        let points = b.finish(t0 + Duration::from_millis(2004), &[]);
        assert_eq!(points.len(), 2, "{points:?}");
        assert!((points[1].calls_per_s - 106.0 / 1.004).abs() < 1e-9);
        assert!(points[1].p99_us >= 49_000, "the tail's latencies count: {:?}", points[1]);
    }

    #[test]
    fn long_windows_get_wider_buckets() {
        let t0 = Instant::now();
        let mut b = SeriesBuilder::new(t0, Some(Duration::from_secs(600)));
        for s in 1..=600 {
            b.add(t0 + Duration::from_secs(s), interval(1, 100));
        }
        let points = b.finish(t0 + Duration::from_secs(600), &[]);
        assert_eq!(points.len(), 120);
        assert_eq!(points[0].t_s, 5.0, "5 s buckets");
        assert_eq!(points[0].calls_per_s, 1.0);
    }
}
