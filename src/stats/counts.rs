//! Error rates tested on counts: errors out of calls in each repetition, not the repetitions'
//! rates as if they were measurements. A rate over thousands of calls is known far better
//! than the spread of a handful of per-repetition rates says (0% → 0.9% over 10,000 calls a
//! side is no accident), while a burst confined to one repetition is not a shift of the
//! whole. A quasi-binomial model holds both: the binomial variance scaled by a dispersion φ
//! estimated from how far the repetitions scatter around their side's rate (Pearson's χ²
//! over the residual degrees of freedom, as R's `glm(family = quasibinomial)` and
//! statsmodels' `scale = "X2"` do), floored at 1 so that repetitions that agree too well never
//! make the test bolder than the binomial one.
//!
//! - Test: the score test of equal rates, `(p_h − p_b) / √(φ p̄ (1 − p̄) (1/N_b + 1/N_h))`
//!   with p̄ the rate of both sides pooled; normal when φ = 1 (then it is the χ² test of the
//!   2×2 table without continuity correction), Student's t on the residual degrees of freedom
//!   when φ was estimated above 1.
//! - Interval of the difference: Agresti and Caffo (2000), "Simple and effective confidence
//!   intervals for proportions and differences of proportions result from adding two
//!   successes and two failures", The American Statistician 54(4): the Wald interval of
//!   (K + 1)/(N + 2) on each side, good coverage even at a rate of zero, scaled by √φ.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Errors and calls of one repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub errors: u64,
    pub calls: u64,
}

/// The comparison of two sides' error rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateTest {
    pub base_rate: f64,
    pub head_rate: f64,
    /// The interval of `head_rate − base_rate`.
    pub low: f64,
    pub high: f64,
    pub p_value: f64,
    /// φ: 1 when the repetitions scatter no more than binomially.
    pub dispersion: f64,
}

/// Compares the error rates of `head` with `base`; `None` without calls on either side.
pub fn error_rate_test(base: &[Counts], head: &[Counts], confidence: f64) -> Option<RateTest> {
    let total = |side: &[Counts]| side.iter().fold((0u64, 0u64), |(k, n), c| (k + c.errors, n + c.calls));
    let ((kb, nb), (kh, nh)) = (total(base), total(head));
    if nb == 0 || nh == 0 {
        return None;
    }
    let (pb, ph) = (kb as f64 / nb as f64, kh as f64 / nh as f64);
    let dispersion = dispersion(&[(base, pb), (head, ph)]);
    let df = (base.len() + head.len()).saturating_sub(2);
    let estimated = dispersion > 1.0 && df > 0;
    let quantile = |q: f64| {
        if estimated {
            StudentsT::new(0.0, 1.0, df as f64).expect("df > 0").inverse_cdf(q)
        } else {
            Normal::standard().inverse_cdf(q)
        }
    };
    let tail = |z: f64| {
        if estimated {
            2.0 * StudentsT::new(0.0, 1.0, df as f64).expect("df > 0").sf(z.abs())
        } else {
            2.0 * Normal::standard().sf(z.abs())
        }
    };
    let pooled = (kb + kh) as f64 / (nb + nh) as f64;
    let null_variance = dispersion * pooled * (1.0 - pooled) * (1.0 / nb as f64 + 1.0 / nh as f64);
    let p_value = if null_variance > 0.0 { tail((ph - pb) / null_variance.sqrt()).min(1.0) } else { 1.0 };
    let adjusted = |k: u64, n: u64| (k as f64 + 1.0) / (n as f64 + 2.0);
    let (ab, ah) = (adjusted(kb, nb), adjusted(kh, nh));
    let se = (dispersion * (ab * (1.0 - ab) / (nb as f64 + 2.0) + ah * (1.0 - ah) / (nh as f64 + 2.0))).sqrt();
    let half = quantile(1.0 - (1.0 - confidence) / 2.0) * se;
    Some(RateTest { base_rate: pb, head_rate: ph, low: ah - ab - half, high: ah - ab + half, p_value, dispersion })
}

/// What a comparison of error counts can see: the difference of rates it detects with
/// `power` at two-sided level `alpha`, and the repetitions a side (of as many calls as these
/// had) that detect `min_effect`; a change from the base's rate, (K + 1)/(N + 2), with the
/// dispersion.
pub fn rate_power(
    base: &[Counts],
    head: &[Counts],
    dispersion: f64,
    alpha: f64,
    power: f64,
    min_effect: f64,
) -> (f64, Option<u32>) {
    let calls = |side: &[Counts]| side.iter().map(|c| c.calls).sum::<u64>() as f64;
    let errors: u64 = base.iter().map(|c| c.errors).sum();
    let (nb, nh) = (calls(base), calls(head));
    let p = (errors as f64 + 1.0) / (nb + 2.0);
    let normal = Normal::standard();
    let z = normal.inverse_cdf(1.0 - alpha / 2.0) + normal.inverse_cdf(power);
    let variance = dispersion * p * (1.0 - p);
    let detectable = z * (variance * (1.0 / nb.max(1.0) + 1.0 / nh.max(1.0))).sqrt();
    let per_repetition = (nb + nh) / (base.len() + head.len()).max(1) as f64;
    let needed = (min_effect > 0.0 && per_repetition > 0.0).then(|| {
        // z·√(variance · 2/(R·c)) ≤ min_effect.
        (2.0 * variance * z * z / (per_repetition * min_effect * min_effect)).ceil().max(2.0)
    });
    (detectable, needed.filter(|r| *r <= super::MAX_REPETITIONS as f64).map(|r| r as u32))
}

/// Pearson's χ² of every repetition around its side's rate, over the residual degrees of
/// freedom; at least 1.
fn dispersion(sides: &[(&[Counts], f64)]) -> f64 {
    let reps: usize = sides.iter().map(|(s, _)| s.len()).sum();
    if reps <= sides.len() {
        return 1.0;
    }
    let chi2: f64 = sides
        .iter()
        .flat_map(|(side, p)| side.iter().map(move |c| (c, *p)))
        .filter(|(c, p)| c.calls > 0 && *p > 0.0 && *p < 1.0)
        .map(|(c, p)| {
            let expected = c.calls as f64 * p;
            (c.errors as f64 - expected).powi(2) / (expected * (1.0 - p))
        })
        .sum();
    (chi2 / (reps - sides.len()) as f64).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reps(errors: &[u64], calls: u64) -> Vec<Counts> {
        errors.iter().map(|&errors| Counts { errors, calls }).collect()
    }

    #[test]
    fn from_none_to_nine_in_a_thousand_over_ten_thousand_calls_a_side_is_significant() {
        let t = error_rate_test(&reps(&[0; 4], 2500), &reps(&[22, 23, 22, 23], 2500), 0.95).unwrap();
        assert_eq!((t.base_rate, t.head_rate), (0.0, 0.009));
        assert_eq!(t.dispersion, 1.0, "the repetitions agree");
        assert!(t.p_value < 1e-10, "{t:?}");
        assert!(t.low > 0.005 && t.high < 0.013, "{t:?}");
    }

    #[test]
    fn the_same_errors_in_one_burst_are_no_evidence_of_a_shift() {
        let t = error_rate_test(&reps(&[0; 4], 2500), &reps(&[0, 0, 90, 0], 2500), 0.95).unwrap();
        assert_eq!(t.head_rate, 0.009);
        assert!(t.dispersion > 30.0, "{t:?}");
        assert!(t.p_value > 0.05, "{t:?}");
        assert!(t.low < 0.0, "{t:?}");
    }

    #[test]
    fn nothing_failed_on_either_side_is_no_change() {
        let t = error_rate_test(&reps(&[0; 3], 1000), &reps(&[0; 3], 1000), 0.95).unwrap();
        assert_eq!((t.p_value, t.dispersion), (1.0, 1.0));
        assert!(t.low < 0.0 && t.high > 0.0 && t.high < 0.002, "{t:?}");
        assert_eq!(error_rate_test(&[], &reps(&[0], 10), 0.95), None);
    }
}
