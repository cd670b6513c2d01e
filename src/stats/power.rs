//! Power from the noise: how small a change a comparison of this size could detect, and how
//! many repetitions a side it would take to detect the minimum effect. Both come from the
//! spread between repetitions (pooled over the two sides, of logarithms on the ratio scale),
//! with the two-sided Student power formula at the level Holm asks of one changed metric among
//! the `m` tested, α/m, and [`POWER`]:
//! `(t(1 − α/2m, 2n − 2) + t(POWER, 2n − 2)) · sd · √(2/n)`. For paired repetitions the
//! degrees of freedom are n − 1 and `sd` is that of the pairs' differences over √2 (what one
//! side's spread would be if the pairs shared nothing), so the same formula holds.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{POWER, Scale};

/// How the two sides' repetitions relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// Two independent samples (a stored baseline): Welch's t.
    Independent,
    /// Repetition i of each side ran back to back (a same-runner A/B): the paired t.
    Paired,
}

impl Design {
    fn df(self, n: usize) -> f64 {
        match self {
            Design::Independent => (2 * n - 2) as f64,
            Design::Paired => (n - 1) as f64,
        }
    }
}

/// The most repetitions a side a plan is ever given.
pub const MAX_REPETITIONS: u32 = 200;

/// One side's sum of squared deviations and degrees of freedom, on the metric's scale
/// (logarithms of the positive values on the ratio scale). `None` below two values.
pub(super) fn sum_of_squares(values: &[f64], scale: Scale) -> Option<(f64, usize)> {
    let values: Vec<f64> = match scale {
        Scale::Ratio => values.iter().filter(|v| **v > 0.0).map(|v| v.ln()).collect(),
        Scale::Difference => values.to_vec(),
    };
    if values.len() < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some((values.iter().map(|v| (v - mean).powi(2)).sum(), values.len() - 1))
}

/// The shift (of logarithms, or of values) a two-sided test at α/m detects with [`POWER`]
/// between two samples of `n` with standard deviation `sd`.
pub(super) fn detectable_shift(sd: f64, n: usize, m: usize, alpha: f64, design: Design) -> f64 {
    let t = StudentsT::new(0.0, 1.0, design.df(n)).expect("n >= 2");
    (t.inverse_cdf(1.0 - alpha / (2.0 * m.max(1) as f64)) + t.inverse_cdf(POWER)) * sd * (2.0 / n as f64).sqrt()
}

/// [`detectable_shift`] on the scale of a comparison's `change` (0.06 = 6%, or 6 points).
pub fn detectable_change(sd: f64, n: usize, m: usize, alpha: f64, scale: Scale, design: Design) -> f64 {
    let shift = detectable_shift(sd, n, m, alpha, design);
    match scale {
        Scale::Ratio => shift.exp() - 1.0,
        Scale::Difference => shift,
    }
}

/// The fewest repetitions a side at which a change of `min_effect` is detected with
/// [`POWER`]; `None` when not within [`MAX_REPETITIONS`] (or no minimum effect is set).
pub fn repetitions_for(sd: f64, min_effect: f64, m: usize, alpha: f64, scale: Scale, design: Design) -> Option<u32> {
    if min_effect <= 0.0 {
        return None;
    }
    if sd == 0.0 {
        return Some(2);
    }
    // The detectable change falls as n grows: a binary search over n.
    let detects = |n: u32| detectable_change(sd, n as usize, m, alpha, scale, design) <= min_effect;
    if !detects(MAX_REPETITIONS) {
        return None;
    }
    let (mut low, mut high) = (2, MAX_REPETITIONS);
    while low < high {
        let mid = (low + high) / 2;
        if detects(mid) { high = mid } else { low = mid + 1 }
    }
    Some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detectable_change_shrinks_as_one_over_root_n_and_the_plan_reaches_the_minimum_effect() {
        // sd 4% of logarithms, one metric, α 0.05.
        let at = |n| detectable_change(0.04, n, 1, 0.05, Scale::Ratio, Design::Independent);
        assert!(at(4) > at(8) && at(8) > at(16));
        // Large n: (z(0.975) + z(0.9)) · sd · √(2/n) = 3.2415 · 0.04 · √(2/100).
        assert!(((1.0 + at(100)).ln() - 3.2415 * 0.04 * (0.02f64).sqrt()).abs() < 0.001, "{}", at(100));
        let n = repetitions_for(0.04, 0.05, 1, 0.05, Scale::Ratio, Design::Independent).unwrap();
        assert!(at(n as usize) <= 0.05 && at(n as usize - 1) > 0.05, "n = {n}");
        // The normal approximation: 2 · (3.2415 · 0.04 / ln 1.05)² ≈ 14, plus a little for t.
        assert!((14..=16).contains(&n), "n = {n}");
        assert_eq!(repetitions_for(5.0, 0.05, 1, 0.05, Scale::Ratio, Design::Independent), None, "beyond any plan");
        // Paired: n − 1 degrees of freedom instead of 2n − 2, so a little more at small n.
        let paired = |n| detectable_change(0.04, n, 1, 0.05, Scale::Ratio, Design::Paired);
        assert!(paired(4) > at(4) && (paired(200) - at(200)).abs() < 0.001);
    }

    #[test]
    fn the_sum_of_squares_is_on_the_metric_scale() {
        // Deviations ±1: 2 over 1 degree of freedom; on logarithms of 1 and e, ±0.5.
        assert_eq!(sum_of_squares(&[1.0, 3.0], Scale::Difference), Some((2.0, 1)));
        assert_eq!(sum_of_squares(&[1.0], Scale::Difference), None);
        let (ss, df) = sum_of_squares(&[1.0, std::f64::consts::E], Scale::Ratio).unwrap();
        assert!((ss - 0.5).abs() < 1e-12 && df == 1);
    }
}
