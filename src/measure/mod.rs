//! Measurement primitives: latency histograms, the error taxonomy, per-operation recorders and
//! the environment fingerprint. Nothing here formats or presents: that is `report`'s job.

mod environment;
mod errors;
mod histogram;

use std::collections::BTreeMap;
use std::time::Duration;

pub use environment::{Environment, git_head};
pub use errors::ErrorKind;
pub use histogram::{LatencyHistogram, LatencySummary};

/// What one worker records for one operation. Workers record into their own recorders (no
/// locks on the hot path) and the recorders are merged when a repetition ends.
#[derive(Debug, Clone, Default)]
pub struct OperationRecorder {
    /// Latency of successful calls.
    pub latency: LatencyHistogram,
    /// Calls issued (successful or not).
    pub count: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl OperationRecorder {
    pub fn success(&mut self, latency: Duration) {
        self.count += 1;
        self.latency.record(latency);
    }

    pub fn failure(&mut self, kind: ErrorKind) {
        self.count += 1;
        *self.errors.entry(kind).or_default() += 1;
    }

    pub fn merge(&mut self, other: &OperationRecorder) {
        self.latency.merge(&other.latency);
        self.count += other.count;
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_recorders_adds_counts_errors_and_latencies() {
        let mut a = OperationRecorder::default();
        a.success(Duration::from_micros(100));
        a.failure(ErrorKind::Timeout);
        let mut b = OperationRecorder::default();
        b.success(Duration::from_micros(300));
        b.failure(ErrorKind::Timeout);
        b.failure(ErrorKind::JsonRpc(-32601));
        a.merge(&b);
        assert_eq!(a.count, 5);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.errors[&ErrorKind::Timeout], 2);
        assert_eq!(a.error_count(), 3);
    }
}
