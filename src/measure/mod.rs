//! Measurement primitives: latency histograms, the error taxonomy, per-operation recorders, the
//! server's process-tree sampler and the environment fingerprint. Nothing here formats or presents: that is `report`'s job.

mod environment;
mod errors;
mod histogram;
mod process;
mod prometheus;

use std::collections::BTreeMap;
use std::time::Duration;

pub use environment::{Environment, git_head};
pub use errors::ErrorKind;
pub use histogram::{LatencyHistogram, LatencySummary};
pub use process::{ResourceSummary, Sample, TreeSampler, own_usage, sampler_cpu};
pub use prometheus::{GaugeSeries, Scrape, Scraper, ServerMetrics, summarise as summarise_metrics};

/// The kind of quantity a measured value is, which decides the units it is written and shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Microseconds.
    Duration,
    /// A fraction (0.01 = 1%).
    Ratio,
    Bytes,
    BytesPerSecond,
    PerSecond,
    Count,
}

/// Which calls latency percentiles are taken over, for comparisons and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LatencyBasis {
    /// Every call: failures at their time to failure, timeouts at the timeout (wrk2's rule:
    /// a server that degrades until calls time out must not look faster).
    #[default]
    All,
    /// Successful calls only (k6's `http_req_duration{expected_response:true}`).
    Successes,
}

/// What the load loop records for one operation.
#[derive(Debug, Clone, Default)]
pub struct OperationRecorder {
    /// Every call from its intended send time (corrected for coordinated omission): answers,
    /// errors at the time they were known, timeouts at their deadline. In the closed model
    /// intended and actual send coincide.
    pub latency: LatencyHistogram,
    /// Successful calls only, from their intended send.
    pub latency_ok: LatencyHistogram,
    /// Open model only: every call from its actual send, which hides the wait before it.
    pub uncorrected: Option<LatencyHistogram>,
    /// Calls issued (successful or not).
    pub count: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first message seen for each kind of error, so that a report can say what went wrong.
    pub error_samples: BTreeMap<ErrorKind, String>,
}

impl OperationRecorder {
    /// A recorder that also keeps the uncorrected histogram (open model).
    pub fn with_uncorrected() -> Self {
        OperationRecorder { uncorrected: Some(LatencyHistogram::new()), ..Default::default() }
    }

    fn call(&mut self, from_intended: Duration, from_sent: Duration) {
        self.count += 1;
        self.latency.record(from_intended);
        if let Some(h) = &mut self.uncorrected {
            h.record(from_sent);
        }
    }

    /// A successful call: `from_intended` is measured from its intended send time, `from_sent`
    /// from the moment it was actually sent.
    pub fn success(&mut self, from_intended: Duration, from_sent: Duration) {
        self.call(from_intended, from_sent);
        self.latency_ok.record(from_intended);
    }

    /// A failed call, timed until its failure was known.
    pub fn failure(&mut self, kind: ErrorKind, from_intended: Duration, from_sent: Duration) {
        self.call(from_intended, from_sent);
        *self.errors.entry(kind).or_default() += 1;
    }

    /// A failed call whose error says why; the first message of each kind is kept.
    pub fn failure_because(
        &mut self,
        kind: ErrorKind,
        from_intended: Duration,
        from_sent: Duration,
        why: impl FnOnce() -> String,
    ) {
        self.failure(kind, from_intended, from_sent);
        self.error_samples.entry(kind).or_insert_with(why);
    }

    pub fn merge(&mut self, other: &OperationRecorder) {
        self.latency.merge(&other.latency);
        self.latency_ok.merge(&other.latency_ok);
        match (&mut self.uncorrected, &other.uncorrected) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.uncorrected = Some(theirs.clone()),
            _ => {}
        }
        self.count += other.count;
        for (kind, n) in &other.errors {
            *self.errors.entry(*kind).or_default() += n;
        }
        for (kind, why) in &other.error_samples {
            self.error_samples.entry(*kind).or_insert_with(|| why.clone());
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn merging_recorders_adds_counts_errors_and_latencies() {
        let mut a = OperationRecorder::default();
        a.success(Duration::from_micros(100), Duration::from_micros(100));
        a.failure(ErrorKind::Timeout, SECOND, SECOND);
        let mut b = OperationRecorder::with_uncorrected();
        b.success(Duration::from_micros(900), Duration::from_micros(300));
        b.failure(ErrorKind::Timeout, SECOND, SECOND);
        b.failure(ErrorKind::JsonRpc(-32601), SECOND, SECOND);
        a.merge(&b);
        assert_eq!(a.count, 5);
        assert_eq!(a.latency.len(), 5, "failures are in the latency histogram too");
        assert_eq!(a.latency_ok.len(), 2);
        assert_eq!(a.errors[&ErrorKind::Timeout], 2);
        assert_eq!(a.error_count(), 3);
        assert_eq!(a.uncorrected.as_ref().map(LatencyHistogram::len), Some(3));
    }

    #[test]
    fn the_first_message_of_each_kind_of_error_is_kept_through_merges() {
        let mut a = OperationRecorder::default();
        a.failure_because(ErrorKind::Transport, SECOND, SECOND, || "connection reset".into());
        a.failure_because(ErrorKind::Transport, SECOND, SECOND, || unreachable!("only the first message is made"));
        let mut b = OperationRecorder::default();
        b.failure_because(ErrorKind::Transport, SECOND, SECOND, || "broken pipe".into());
        b.failure_because(ErrorKind::Timeout, SECOND, SECOND, || "no answer".into());
        a.merge(&b);
        assert_eq!(a.errors[&ErrorKind::Transport], 3);
        assert_eq!(a.error_samples[&ErrorKind::Transport], "connection reset");
        assert_eq!(a.error_samples[&ErrorKind::Timeout], "no answer");
    }

    #[test]
    fn the_uncorrected_histogram_keeps_the_time_from_the_actual_send() {
        let mut r = OperationRecorder::with_uncorrected();
        r.success(Duration::from_millis(800), Duration::from_millis(2));
        assert_eq!(r.latency.summary().max / 1000, 800);
        assert_eq!(r.uncorrected.unwrap().summary().max / 1000, 2);
    }
}
