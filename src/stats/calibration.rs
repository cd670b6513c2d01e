//! Calibration: what A/A comparisons (one build on both sides) say about the gate itself. The
//! share of them that fail is the empirical false-alarm rate; the spread of each metric between
//! repetitions gives the smallest change the current settings detect with 90% power.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF};

use super::power::detectable_change;
use super::{Comparison, Metric, MetricComparison, Scale, Verdict};
use crate::measure::Environment;

/// The calibration file's schema.
pub const CALIBRATION_SCHEMA: &str = "mcp-perfcheck/calibration/v1";

/// The calibration file: when, where and with what it was measured, and what it found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRecord {
    pub schema: String,
    pub timestamp: String,
    pub config_source: String,
    pub environment: Environment,
    #[serde(flatten)]
    pub calibration: Calibration,
}

/// What a comparison's report says of the latest calibration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationCite {
    pub timestamp: String,
    pub comparisons: usize,
    pub false_alarms: usize,
    pub false_alarm_rate: f64,
    pub rate_high: f64,
    /// Calibrated on another machine (CPU model, cores, OS) than the head ran on.
    pub other_environment: bool,
}

impl CalibrationRecord {
    pub fn cite(&self, head: &Environment) -> CalibrationCite {
        CalibrationCite {
            timestamp: self.timestamp.clone(),
            comparisons: self.calibration.comparisons,
            false_alarms: self.calibration.false_alarms,
            false_alarm_rate: self.calibration.false_alarm_rate,
            rate_high: self.calibration.rate_high,
            other_environment: super::environment_mismatch(&self.environment, head).is_some(),
        }
    }
}

/// The power the smallest detectable change is computed for.
pub const POWER: f64 = 0.90;

/// The outcome of `calibrate`, as written to (and read back from) the calibration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub comparisons: usize,
    pub false_alarms: usize,
    pub false_alarm_rate: f64,
    /// 95% Clopper–Pearson interval of the rate.
    pub rate_low: f64,
    pub rate_high: f64,
    pub alpha: f64,
    /// Repetitions per side in each comparison.
    pub repetitions: usize,
    pub metrics: Vec<Detectable>,
}

/// Per metric: the spread between repetitions and the smallest change detected with 90% power.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detectable {
    pub scenario: String,
    pub operation: String,
    pub metric: Metric,
    pub scale: Scale,
    /// Pooled standard deviation between repetitions: of the logarithms (ratio scale) or of
    /// the values (difference scale).
    pub sd: f64,
    /// On the scale of `change` in a comparison (0.06 = 6%, or 6 percentage points).
    pub smallest_detectable: f64,
    /// The minimum effect of the metric: a change below it is never called a regression,
    /// however well detected.
    pub min_effect: f64,
    /// The metric decides comparisons (`compare.gate`; a calibration written before the
    /// choice existed gated every metric).
    #[serde(default = "gated")]
    pub gates: bool,
}

fn gated() -> bool {
    true
}

/// Summarises A/A `comparisons`, at the median of the repetitions a side they ended with.
///
/// The detectable change is the two-sided Student power formula (paired or Welch, as the
/// comparisons were) at the significance Holm demands of a single changed metric among the m
/// of its family, α/m: `(t(1 − α/2m, df) + t(0.9, df)) · sd · √(2/n)`, mapped back through
/// `exp` on the ratio scale.
pub fn calibrate(comparisons: &[Comparison]) -> Calibration {
    let n = comparisons.len();
    let mut sizes: Vec<usize> =
        comparisons.iter().map(|c| c.metrics.iter().map(|m| m.base_values.len()).max().unwrap_or(0)).collect();
    sizes.sort_unstable();
    let repetitions = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
    let false_alarms = comparisons.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let (rate_low, rate_high) = clopper_pearson(false_alarms, n, 0.95);
    let alpha = comparisons.first().map_or(0.05, |c| c.alpha);
    let mut metrics: Vec<Detectable> = Vec::new();
    if let Some(first) = comparisons.first() {
        // Holm's families: the gating metrics, and the reported ones.
        let family =
            |gates: bool| first.metrics.iter().filter(|m| m.p_welch.is_some() && m.gates == gates).count().max(1);
        for (i, m) in first.metrics.iter().enumerate() {
            // The spread within each side of every comparison, pooled.
            let rows = comparisons
                .iter()
                .filter_map(|c| c.metrics.get(i).filter(|r| r.metric == m.metric && r.operation == m.operation));
            let (ss, df) =
                rows.filter_map(MetricComparison::spread_terms).fold((0.0, 0), |(s, d), (s2, d2)| (s + s2, d + d2));
            if df == 0 || repetitions < 2 {
                continue;
            }
            let sd = (ss / df as f64).sqrt();
            metrics.push(Detectable {
                scenario: m.scenario.clone(),
                operation: m.operation.clone(),
                metric: m.metric,
                scale: m.scale,
                sd,
                smallest_detectable: detectable_change(sd, repetitions, family(m.gates), alpha, m.scale, m.design),
                min_effect: m.min_effect,
                gates: m.gates,
            });
        }
    }
    Calibration {
        comparisons: n,
        false_alarms,
        false_alarm_rate: if n == 0 { 0.0 } else { false_alarms as f64 / n as f64 },
        rate_low,
        rate_high,
        alpha,
        repetitions,
        metrics,
    }
}

/// The exact (Clopper–Pearson) `confidence` interval of a binomial proportion k/n.
pub fn clopper_pearson(k: usize, n: usize, confidence: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let a = (1.0 - confidence) / 2.0;
    let (k, nf) = (k as f64, n as f64);
    let low = if k == 0.0 { 0.0 } else { Beta::new(k, nf - k + 1.0).expect("shape > 0").inverse_cdf(a) };
    let high = if k == nf { 1.0 } else { Beta::new(k + 1.0, nf - k).expect("shape > 0").inverse_cdf(1.0 - a) };
    (low, high)
}
