//! Seeded simulations of the default policy on synthetic repetition data: its false-alarm rate
//! over A/A comparisons, and its power against a 10% slowdown of one metric.
//!
//! Each metric's repetition values are log-normal around a level, with a between-repetition
//! spread of `SPREAD` (4%, what p50 latency shows between fresh server processes on a quiet
//! machine). One comparison has ten metrics.

use super::bootstrap::SplitMix64;
use super::*;

const METRICS: usize = 10;
const COMPARISONS: usize = 1000;
const SPREAD: f64 = 0.04;
const REPETITIONS: usize = 10;
const POLICY: Policy = Policy::DEFAULT;

/// The bootstrap's SplitMix64 with Box–Muller normals: reproducible without a dependency.
struct Rng(SplitMix64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        (self.0.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform().max(f64::MIN_POSITIVE), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn repetitions(&mut self, level: f64) -> Vec<f64> {
        (0..REPETITIONS).map(|_| level * (SPREAD * self.normal()).exp()).collect()
    }
}

/// Runs `COMPARISONS` comparisons; metric 0 of head is `slowdown` times slower. Returns how
/// many failed, and in how many metric 0 was the (or a) regression.
fn simulate(seed: u64, slowdown: f64) -> (usize, usize) {
    let mut rng = Rng(SplitMix64(seed));
    let (mut failed, mut caught) = (0, 0);
    for _ in 0..COMPARISONS {
        let mut metrics: Vec<MetricComparison> = (0..METRICS)
            .map(|i| {
                let level = 1000.0 * (1.0 + i as f64);
                let base = rng.repetitions(level);
                let head = rng.repetitions(if i == 0 { level * slowdown } else { level });
                metric_comparison("s", &format!("op{i}"), Metric::P50, base, head)
            })
            .collect();
        judge(&mut metrics, POLICY, &mut Vec::new());
        if metrics.iter().any(|m| m.verdict == MetricVerdict::Regression) {
            failed += 1;
        }
        if metrics[0].verdict == MetricVerdict::Regression {
            caught += 1;
        }
    }
    (failed, caught)
}

#[test]
fn a_a_comparisons_rarely_fail() {
    let (failed, _) = simulate(1, 1.0);
    let rate = failed as f64 / COMPARISONS as f64;
    println!("A/A false alarms: {failed} of {COMPARISONS} comparisons of {METRICS} metrics ({:.1}%)", rate * 100.0);
    assert!(rate <= 0.05, "false-alarm rate {rate}");
}

#[test]
fn a_ten_percent_slowdown_of_one_metric_is_caught() {
    let (_, caught) = simulate(2, 1.10);
    let power = caught as f64 / COMPARISONS as f64;
    println!("10% slowdown caught in {caught} of {COMPARISONS} comparisons ({:.1}%)", power * 100.0);
    assert!(power >= 0.90, "power {power}");
}
