//! α spent across looks: an A/B run that may add repetitions when its first comparison leaves
//! a metric inconclusive looks at its data more than once, and a test at level α at every look
//! would raise the false-alarm rate with each. Each look instead gets a share of α from the
//! Lan–DeMets spending function of Pocock type, α·ln(1 + (e − 1)·t) at information fraction
//! t = repetitions so far / most repetitions possible, and tests at the increment since the
//! previous look. The increments sum to at most α whatever the correlation between looks
//! (Bonferroni), so the procedure keeps its false-alarm rate without assuming equal spacing or
//! normal statistics; the Pocock shape spends most of α early, where most comparisons end.

use crate::results::Looks;

/// α spent by information fraction `t` (clamped to [0, 1]).
pub fn alpha_spent(alpha: f64, t: f64) -> f64 {
    alpha * (1.0 + (std::f64::consts::E - 1.0) * t.clamp(0.0, 1.0)).ln()
}

/// The significance level of the latest look in `looks`: the α spent since the previous one.
/// A run whose looks record nothing tests at α.
pub fn look_alpha(alpha: f64, looks: &Looks) -> f64 {
    let max = f64::from(looks.max_repetitions.max(1));
    match looks.repetitions.as_slice() {
        [] => alpha,
        [.., previous, last] => {
            alpha_spent(alpha, f64::from(*last) / max) - alpha_spent(alpha, f64::from(*previous) / max)
        }
        [only] => alpha_spent(alpha, f64::from(*only) / max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn looks(repetitions: &[u32], max: u32) -> Looks {
        Looks { repetitions: repetitions.to_vec(), max_repetitions: max, ended: None }
    }

    #[test]
    fn the_whole_of_alpha_is_spent_at_the_last_possible_look_and_no_more() {
        assert!((alpha_spent(0.05, 1.0) - 0.05).abs() < 1e-15);
        assert_eq!(alpha_spent(0.05, 0.0), 0.0);
        // One look that is also the last: plain α.
        assert!((look_alpha(0.05, &looks(&[10], 10)) - 0.05).abs() < 1e-15);
        let total: f64 = [&[10][..], &[10, 15], &[10, 15, 20]].iter().map(|r| look_alpha(0.05, &looks(r, 20))).sum();
        assert!((total - 0.05).abs() < 1e-15, "spent {total}");
    }

    #[test]
    fn the_pocock_shape_spends_more_early() {
        // 10 of at most 20 repetitions: α·ln(1 + (e − 1)/2) = 0.05 × 0.62011 (SciPy: log1p).
        let first = look_alpha(0.05, &looks(&[10], 20));
        assert!((first - 0.05 * (0.5 * (std::f64::consts::E - 1.0)).ln_1p()).abs() < 1e-15);
        assert!((first - 0.031_005_75).abs() < 1e-6, "{first}");
        let second = look_alpha(0.05, &looks(&[10, 15], 20));
        let third = look_alpha(0.05, &looks(&[10, 15, 20], 20));
        assert!(first > second && second > third, "{first} {second} {third}");
    }

    #[test]
    fn stopping_early_leaves_alpha_unspent() {
        // The budget ended the run at the second look: together less than α.
        let spent = look_alpha(0.05, &looks(&[10], 30)) + look_alpha(0.05, &looks(&[10, 20], 30));
        assert!(spent < 0.05 && spent > 0.0);
    }
}
