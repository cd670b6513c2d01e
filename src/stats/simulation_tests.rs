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
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform().max(f64::MIN_POSITIVE), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn repetitions(&mut self, level: f64) -> Vec<f64> {
        self.repetitions_n(level, REPETITIONS)
    }

    fn repetitions_n(&mut self, level: f64, n: usize) -> Vec<f64> {
        (0..n).map(|_| level * (SPREAD * self.normal()).exp()).collect()
    }
}

/// Runs `COMPARISONS` comparisons; metric 0 of head is `slowdown` times slower. Returns how
/// many failed, and in how many metric 0 was the (or a) regression.
fn simulate(seed: u64, slowdown: f64) -> (usize, usize) {
    let comparisons = comparisons(seed, slowdown, COMPARISONS);
    let failed = comparisons.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let caught = comparisons.iter().filter(|c| c.metrics[0].verdict == MetricVerdict::Regression).count();
    (failed, caught)
}

fn comparisons(seed: u64, slowdown: f64, count: usize) -> Vec<Comparison> {
    let mut rng = Rng(SplitMix64(seed));
    (0..count)
        .map(|_| {
            let metrics: Vec<MetricComparison> = (0..METRICS)
                .map(|i| {
                    let level = 1000.0 * (1.0 + i as f64);
                    let base = rng.repetitions(level);
                    let head = rng.repetitions(if i == 0 { level * slowdown } else { level });
                    independent(&format!("op{i}"), base, head)
                })
                .collect();
            judged(metrics, POLICY, None)
        })
        .collect()
}

/// A p50 compared as two independent samples.
fn independent(operation: &str, base: Vec<f64>, head: Vec<f64>) -> MetricComparison {
    let indexed = |v: Vec<f64>| v.into_iter().zip(1..).map(|(v, i)| (i, v)).collect();
    metric_comparison("s", operation, Metric::P50, indexed(base), indexed(head), Design::Independent)
}

/// `metrics` judged under `policy` at `look` (its α, when given), as `compare` would.
fn judged(mut metrics: Vec<MetricComparison>, policy: Policy, look: Option<LookInfo>) -> Comparison {
    let run = RunInfo { git_sha: None, timestamp: String::new(), server: None, failure: None };
    judge(&mut metrics, &Policy { alpha: look.map_or(policy.alpha, |l| l.alpha), ..policy }, &mut Vec::new());
    Comparison {
        verdict: verdict_of(&metrics),
        alpha: policy.alpha,
        min_effect: policy.min_effect,
        confidence: CONFIDENCE,
        base: run.clone(),
        head: run,
        metrics,
        environment_mismatch: None,
        advisory: false,
        calibration: None,
        look,
        notes: Vec::new(),
    }
}

/// Sequential comparisons: looks at `looks` repetitions a side (cumulative), each at its share
/// of α, stopping as soon as nothing is left inconclusive. Returns the final comparisons and
/// the mean repetitions a side they took.
fn sequential(seed: u64, slowdown: f64, looks: &[u32]) -> (Vec<Comparison>, f64) {
    let mut rng = Rng(SplitMix64(seed));
    let max = *looks.last().expect("at least one look");
    let mut used = 0u64;
    let finals = (0..COMPARISONS)
        .map(|_| {
            let sides: Vec<(Vec<f64>, Vec<f64>)> = (0..METRICS)
                .map(|i| {
                    let level = 1000.0 * (1.0 + i as f64);
                    let head_level = if i == 0 { level * slowdown } else { level };
                    (rng.repetitions_n(level, max as usize), rng.repetitions_n(head_level, max as usize))
                })
                .collect();
            let mut last = None;
            for k in 1..=looks.len() {
                let n = looks[k - 1] as usize;
                let record =
                    crate::results::Looks { repetitions: looks[..k].to_vec(), max_repetitions: max, ended: None };
                let look = LookInfo {
                    look: k,
                    repetitions: n as u32,
                    max_repetitions: max,
                    alpha: look_alpha(POLICY.alpha, &record),
                };
                let metrics = sides
                    .iter()
                    .enumerate()
                    .map(|(i, (b, h))| independent(&format!("op{i}"), b[..n].to_vec(), h[..n].to_vec()))
                    .collect();
                let c = judged(metrics, POLICY, Some(look));
                let more = c.wants_more_repetitions();
                last = Some(c);
                if !more {
                    used += n as u64;
                    break;
                }
                if k == looks.len() {
                    used += n as u64;
                }
            }
            last.expect("one look at least")
        })
        .collect();
    (finals, used as f64 / COMPARISONS as f64)
}

#[test]
fn calibration_recovers_the_spread_and_its_detectable_change_is_detected_nine_times_in_ten() {
    let c = calibrate(&comparisons(3, 1.0, 200));
    assert_eq!((c.comparisons, c.repetitions, c.metrics.len()), (200, REPETITIONS, METRICS));
    assert!(c.false_alarm_rate <= 0.05 && c.rate_low <= c.false_alarm_rate && c.false_alarm_rate <= c.rate_high);
    let d = &c.metrics[0];
    assert!((d.sd / SPREAD - 1.0).abs() < 0.05, "spread {} recovered as {}", SPREAD, d.sd);
    // A change of exactly that size, simulated afresh, is caught about 90% of the time.
    let (_, caught) = simulate(4, 1.0 + d.smallest_detectable);
    let power = caught as f64 / COMPARISONS as f64;
    println!("smallest detectable {:.2}%: caught in {:.1}%", d.smallest_detectable * 100.0, power * 100.0);
    assert!((0.85..=0.96).contains(&power), "power at the detectable change: {power}");
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

/// The looks `compare.extend: {max_looks: 3}` takes over ten repetitions: 10, 15, 20 a side.
const LOOKS: [u32; 3] = [10, 15, 20];

#[test]
fn extra_looks_keep_the_false_alarm_rate() {
    let (finals, mean) = sequential(5, 1.0, &LOOKS);
    let failed = finals.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let rate = failed as f64 / COMPARISONS as f64;
    println!(
        "A/A with up to 3 looks: {failed} false alarms of {COMPARISONS} ({:.1}%), {mean:.1} repetitions a side on average",
        rate * 100.0
    );
    assert!(rate <= 0.05, "false-alarm rate {rate}");
}

#[test]
fn extra_looks_catch_a_ten_percent_slowdown_and_settle_more_metrics() {
    let (finals, mean) = sequential(6, 1.10, &LOOKS);
    let caught = finals.iter().filter(|c| c.metrics[0].verdict == MetricVerdict::Regression).count();
    let power = caught as f64 / COMPARISONS as f64;
    println!(
        "10% slowdown with up to 3 looks: caught in {caught} of {COMPARISONS} ({:.1}%), {mean:.1} repetitions a side on average",
        power * 100.0
    );
    assert!(power >= 0.90, "power {power}");
    // What the looks are for: fewer comparisons end with an undecided metric than with one look.
    let (aa, _) = sequential(7, 1.0, &LOOKS);
    let open_after_looks = aa.iter().filter(|c| c.wants_more_repetitions()).count();
    let open_after_one = comparisons(7, 1.0, COMPARISONS).iter().filter(|c| c.wants_more_repetitions()).count();
    println!(
        "A/A comparisons left with an inconclusive metric: {open_after_one} after one look, {open_after_looks} after up to 3"
    );
    assert!(open_after_looks < open_after_one, "{open_after_looks} vs {open_after_one}");
}

/// Spread of the machine's drift between pairs of a same-runner A/B: both halves of a pair see
/// it, the repetitions' own `SPREAD` comes on top.
const DRIFT: f64 = 0.08;
/// One repetition in this many is disturbed by a neighbour (its value ×1.5).
const DISTURBED_ONE_IN: u64 = 20;

/// A/B comparisons on a drifting machine with disturbed repetitions, judged as pairs and as
/// independent samples; metric 0 of head is `slowdown` times slower.
fn drifting(seed: u64, slowdown: f64) -> (Vec<Comparison>, Vec<Comparison>) {
    let mut rng = Rng(SplitMix64(seed));
    let mut paired = Vec::new();
    let mut independent = Vec::new();
    for _ in 0..COMPARISONS {
        let mut sides = Vec::new();
        for i in 0..METRICS {
            let level = 1000.0 * (1.0 + i as f64);
            let head_level = if i == 0 { level * slowdown } else { level };
            let (mut b, mut h) = (Vec::new(), Vec::new());
            for rep in 1..=REPETITIONS as u32 {
                let drift = (DRIFT * rng.normal()).exp();
                let one = |level: f64, rng: &mut Rng| {
                    let disturbed = rng.0.next_u64().is_multiple_of(DISTURBED_ONE_IN);
                    level * drift * (SPREAD * rng.normal()).exp() * if disturbed { 1.5 } else { 1.0 }
                };
                b.push((rep, one(level, &mut rng)));
                h.push((rep, one(head_level, &mut rng)));
            }
            sides.push((b, h));
        }
        let judged_as = |design| {
            let metrics = sides
                .iter()
                .enumerate()
                .map(|(i, (b, h))| metric_comparison("s", &format!("op{i}"), Metric::P50, b.clone(), h.clone(), design))
                .collect();
            judged(metrics, POLICY, None)
        };
        paired.push(judged_as(Design::Paired));
        independent.push(judged_as(Design::Independent));
    }
    (paired, independent)
}

#[test]
fn pairs_on_a_drifting_machine_keep_the_false_alarm_rate() {
    let (paired, independent) = drifting(8, 1.0);
    let failed = |cs: &[Comparison]| cs.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let passed = |cs: &[Comparison]| cs.iter().filter(|c| c.verdict == Verdict::Pass).count();
    println!(
        "A/A on a drifting machine: paired {} false alarms and {} passes of {COMPARISONS}; independent {} and {}",
        failed(&paired),
        passed(&paired),
        failed(&independent),
        passed(&independent)
    );
    assert!(failed(&paired) as f64 / COMPARISONS as f64 <= 0.05);
    assert!(passed(&paired) > passed(&independent), "pairs decide more A/A comparisons");
}

#[test]
fn pairs_catch_a_slowdown_that_drift_hides_from_welch() {
    let (paired, independent) = drifting(9, 1.10);
    let caught = |cs: &[Comparison]| cs.iter().filter(|c| c.metrics[0].verdict == MetricVerdict::Regression).count();
    let excluded: usize = paired.iter().map(|c| c.metrics.iter().map(|m| m.excluded.len()).sum::<usize>()).sum();
    println!(
        "10% slowdown on a drifting machine: caught in {} of {COMPARISONS} as pairs, {} as independent samples ({excluded} disturbed pairs left out)",
        caught(&paired),
        caught(&independent)
    );
    // Ten repetitions, one pair in ten disturbed: most slowdowns are caught as pairs, few as
    // independent samples, whose spread the drift triples.
    assert!(caught(&paired) as f64 / COMPARISONS as f64 >= 0.75);
    assert!(caught(&independent) * 2 < caught(&paired));
    assert!(excluded > 0, "disturbed repetitions are found");
}
