//! A fixed-bucket histogram cheap enough to record on every call (one atomic add per field),
//! read as Prometheus buckets: pool waits (`mcp_pool_wait_seconds`) and batch sizes
//! (`mcp_batch_size`).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
/// A Prometheus-style histogram with fixed bucket bounds, updated without locks.
pub struct Histogram {
    /// Upper bounds, ascending; a last, implicit bucket is +Inf.
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// The sum, in millionths of the unit (so it stays an integer atomic).
    sum_micros: AtomicU64,
}

/// Bucket bounds for waits, in seconds: 100 µs to 5 s.
pub const WAIT_SECONDS: &[f64] =
    &[0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Bucket bounds for batch sizes.
pub const BATCH_SIZE: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A histogram as read: cumulative counts per upper bound, then the total count and sum.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Per upper bound, the count of values at most that bound (cumulative).
    pub buckets: Vec<(f64, u64)>,
    /// Values recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
}

impl Histogram {
    /// A histogram with `bounds` (ascending) as bucket upper bounds.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn record(&self, value: f64) {
        let i = self.bounds.partition_point(|&b| b < value);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((value.max(0.0) * 1e6).round() as u64, Ordering::Relaxed);
    }

    /// Its buckets, count and sum now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let count = cumulative + self.counts[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot { buckets, count, sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inclusive_of_their_upper_bound() {
        let h = Histogram::new(BATCH_SIZE);
        for v in [1.0, 2.0, 3.0, 200.0] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(&s.buckets[..3], &[(1.0, 1), (2.0, 2), (4.0, 3)]);
        assert_eq!(s.buckets.last(), Some(&(128.0, 3)), "200 is only in +Inf");
        assert_eq!((s.count, s.sum), (4, 206.0));
    }
}
