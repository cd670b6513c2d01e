//! Latency histograms with fixed memory: HdrHistogram, 1 µs to 60 s, 3 significant digits.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

const LOWEST_US: u64 = 1;
const HIGHEST_US: u64 = 60_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

/// The percentiles every report shows, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        LatencyHistogram(
            Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS).expect("static bounds are valid"),
        )
    }

    /// Records one latency; values beyond 60 s are clamped to the top bucket.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(LOWEST_US);
        self.0.saturating_record(us);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.0.add(&other.0).expect("histograms share bounds");
    }

    /// Empties the histogram, keeping its memory.
    pub fn clear(&mut self) {
        self.0.reset();
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// How many recorded values are at most `us` (to the histogram's precision): a Prometheus
    /// bucket's cumulative count.
    pub fn count_at_most(&self, us: u64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.count_between(0, us.min(HIGHEST_US))
    }

    /// The mean of the recorded values, µs (0 when empty).
    pub fn mean_us(&self) -> f64 {
        if self.0.is_empty() { 0.0 } else { self.0.mean() }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at `percentile` (0–100], µs; `None` when empty.
    pub fn percentile(&self, percentile: f64) -> Option<u64> {
        (!self.0.is_empty()).then(|| self.0.value_at_quantile(percentile / 100.0))
    }

    pub fn summary(&self) -> LatencySummary {
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        let q = |quantile| self.0.value_at_quantile(quantile);
        LatencySummary {
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: self.0.max(),
            mean: self.0.mean(),
        }
    }

    /// The recorded buckets as (highest equivalent value µs, count), ascending: enough to pool
    /// histograms cheaply many times over (the bootstrap of a pooled quantile).
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.0.iter_recorded().map(|v| (self.0.highest_equivalent(v.value_iterated_to()), v.count_at_value())).collect()
    }

    /// HdrHistogram's V2+DEFLATE encoding in base64: readable by every HdrHistogram library.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&self.0, &mut bytes).expect("serializing to memory cannot fail");
        BASE64.encode(bytes)
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        let bytes = BASE64.decode(text.trim()).map_err(|e| format!("histogram is not valid base64: {e}"))?;
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram is not a valid HdrHistogram encoding: {e:?}"))?;
        // Our own bounds already (every file this tool writes): no copy needed.
        if decoded.low() == LOWEST_US && decoded.high() == HIGHEST_US && decoded.sigfig() == SIGNIFICANT_DIGITS {
            return Ok(LatencyHistogram(decoded));
        }
        // Into our own bounds, so that any two decoded histograms merge: a file may carry
        // another precision or range (another tool's, or a crafted one).
        let mut ours = LatencyHistogram::new();
        ours.0.add(&decoded).map_err(|e| format!("histogram values are out of range (1 µs to 60 s): {e:?}"))?;
        Ok(ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_give_back_the_histograms_percentiles() {
        let mut h = LatencyHistogram::new();
        for us in (1..5000u64).map(|i| 100 + i * i % 7919) {
            h.record(Duration::from_micros(us));
        }
        let buckets = h.buckets();
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), h.len());
        for q in [0.5, 0.99] {
            let rank = (q * h.len() as f64).ceil() as u64;
            let mut seen = 0;
            let at = buckets.iter().find(|b| {
                seen += b.1;
                seen >= rank
            });
            assert_eq!(at.unwrap().0, h.percentile(q * 100.0).unwrap());
        }
    }

    #[test]
    fn percentiles_come_from_recorded_values() {
        let mut h = LatencyHistogram::new();
        for us in 1..=1000 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.p50, 500);
        assert_eq!(s.p99, 990);
        assert_eq!(s.max, 1000);
        assert!((s.mean - 500.5).abs() < 1.0);
    }

    #[test]
    fn encoding_round_trips_and_merging_adds_counts() {
        let mut a = LatencyHistogram::new();
        a.record(Duration::from_millis(3));
        a.record(Duration::from_secs(120)); // beyond the top: clamped, not lost
        let b = LatencyHistogram::decode(&a.encode()).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b.summary(), a.summary());
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.len(), 4);
        assert!(LatencyHistogram::decode("not base64!").is_err());
        // Another precision and range: normalized to ours, or refused beyond 60 s.
        let mut wide = Histogram::<u64>::new_with_bounds(1, 1 << 40, 2).unwrap();
        wide.record(2_000).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&wide, &mut bytes).unwrap();
        let back = LatencyHistogram::decode(&BASE64.encode(&bytes)).unwrap();
        assert_eq!((back.len(), back.0.high()), (1, a.0.high()));
        wide.record(1 << 39).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&wide, &mut bytes).unwrap();
        assert!(LatencyHistogram::decode(&BASE64.encode(&bytes)).unwrap_err().contains("out of range"));
    }

    #[test]
    fn empty_histogram_summarises_to_zeros() {
        assert_eq!(LatencyHistogram::new().summary(), LatencySummary::default());
    }
}
