//! Power from the noise: how small a change a comparison of this size could detect, and how
//! many repetitions a side it would take to detect the minimum effect. Both come from the
//! spread between repetitions (pooled over the two sides, of logarithms on the ratio scale),
//! with the two-sided Student power formula at the level Holm asks of one changed metric among
//! the `m` tested, α/m, and [`POWER`]:
//! `(t(1 − α/2m, 2n − 2) + t(POWER, 2n − 2)) · sd · √(2/n)`.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{POWER, Scale};

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

/// The standard deviation pooled over `sides`, on the metric's scale.
pub(super) fn pooled_sd<'a>(sides: impl IntoIterator<Item = &'a [f64]>, scale: Scale) -> Option<f64> {
    let (ss, df) = sides
        .into_iter()
        .filter_map(|side| sum_of_squares(side, scale))
        .fold((0.0, 0), |(ss, df), (s, d)| (ss + s, df + d));
    (df > 0).then(|| (ss / df as f64).sqrt())
}

/// The shift (of logarithms, or of values) a two-sided test at α/m detects with [`POWER`]
/// between two samples of `n` with standard deviation `sd`.
pub(super) fn detectable_shift(sd: f64, n: usize, m: usize, alpha: f64) -> f64 {
    let t = StudentsT::new(0.0, 1.0, (2 * n - 2) as f64).expect("n >= 2");
    (t.inverse_cdf(1.0 - alpha / (2.0 * m.max(1) as f64)) + t.inverse_cdf(POWER)) * sd * (2.0 / n as f64).sqrt()
}

/// [`detectable_shift`] on the scale of a comparison's `change` (0.06 = 6%, or 6 points).
pub fn detectable_change(sd: f64, n: usize, m: usize, alpha: f64, scale: Scale) -> f64 {
    let shift = detectable_shift(sd, n, m, alpha);
    match scale {
        Scale::Ratio => shift.exp() - 1.0,
        Scale::Difference => shift,
    }
}

/// The fewest repetitions a side at which a change of `min_effect` is detected with
/// [`POWER`]; `None` when not within [`MAX_REPETITIONS`] (or no minimum effect is set).
pub fn repetitions_for(sd: f64, min_effect: f64, m: usize, alpha: f64, scale: Scale) -> Option<u32> {
    if min_effect <= 0.0 {
        return None;
    }
    if sd == 0.0 {
        return Some(2);
    }
    // The detectable change falls as n grows: a binary search over n.
    let detects = |n: u32| detectable_change(sd, n as usize, m, alpha, scale) <= min_effect;
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
        let at = |n| detectable_change(0.04, n, 1, 0.05, Scale::Ratio);
        assert!(at(4) > at(8) && at(8) > at(16));
        // Large n: (z(0.975) + z(0.9)) · sd · √(2/n) = 3.2415 · 0.04 · √(2/100).
        assert!(((1.0 + at(100)).ln() - 3.2415 * 0.04 * (0.02f64).sqrt()).abs() < 0.001, "{}", at(100));
        let n = repetitions_for(0.04, 0.05, 1, 0.05, Scale::Ratio).unwrap();
        assert!(at(n as usize) <= 0.05 && at(n as usize - 1) > 0.05, "n = {n}");
        // The normal approximation: 2 · (3.2415 · 0.04 / ln 1.05)² ≈ 14, plus a little for t.
        assert!((14..=16).contains(&n), "n = {n}");
        assert_eq!(repetitions_for(5.0, 0.05, 1, 0.05, Scale::Ratio), None, "beyond any plan");
    }

    #[test]
    fn the_spread_is_pooled_over_both_sides_on_the_metric_scale() {
        let (a, b) = ([1.0, 3.0], [10.0, 14.0]);
        // Deviations ±1 and ±2: (2 + 8) / 2 degrees of freedom.
        assert!((pooled_sd([&a[..], &b[..]], Scale::Difference).unwrap() - 5f64.sqrt()).abs() < 1e-12);
        assert_eq!(pooled_sd([&[1.0][..]], Scale::Difference), None);
        let ratio = pooled_sd([&[1.0, std::f64::consts::E][..]], Scale::Ratio).unwrap();
        assert!((ratio - 0.5f64.sqrt()).abs() < 1e-12);
    }
}
