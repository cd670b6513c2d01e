//! Welch's t-test on the logarithms of two samples (the ratio of their geometric means with a
//! confidence interval), and on raw values for metrics that may be zero (the difference of
//! means).
//!
//! Reference: B. L. Welch, "The generalization of 'Student's' problem when several different
//! population variances are involved", Biometrika 34 (1947); degrees of freedom by the
//! Welch–Satterthwaite equation. Working on logarithms makes the effect a ratio ("+7%"), which
//! is how latency and throughput changes are read, and tames their right skew.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The outcome of comparing `head` with `base`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogRatioTest {
    /// Geometric mean of head over geometric mean of base.
    pub ratio: f64,
    pub ratio_low: f64,
    pub ratio_high: f64,
    /// Two-sided p-value of "the geometric means are equal".
    pub p_value: f64,
    pub df: f64,
}

/// Geometric mean of positive values; `None` if empty or any value is not positive.
pub fn geometric_mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan() || *v <= 0.0 || v.is_infinite()) {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

/// Welch's t-test on `ln(base)` and `ln(head)` with a two-sided `confidence` interval for the
/// ratio. `None` when either side has fewer than two values or a value that is not positive.
pub fn welch_log_ratio(base: &[f64], head: &[f64], confidence: f64) -> Option<LogRatioTest> {
    geometric_mean(base)?;
    geometric_mean(head)?;
    let ln = |v: &[f64]| v.iter().map(|x| x.ln()).collect::<Vec<_>>();
    let t = welch_difference(&ln(base), &ln(head), confidence)?;
    Some(LogRatioTest {
        ratio: t.difference.exp(),
        ratio_low: t.low.exp(),
        ratio_high: t.high.exp(),
        p_value: t.p_value,
        df: t.df,
    })
}

/// Welch's t-test on the values themselves: the difference of means head − base.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DifferenceTest {
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    /// Two-sided p-value of "the means are equal".
    pub p_value: f64,
    pub df: f64,
}

/// Welch's t-test on raw values, for metrics that may be zero (error rates), with a two-sided
/// `confidence` interval for the difference of means. `None` when either side has fewer than
/// two values or a value that is not finite.
pub fn welch_difference(base: &[f64], head: &[f64], confidence: f64) -> Option<DifferenceTest> {
    if base.len() < 2 || head.len() < 2 || base.iter().chain(head).any(|v| !v.is_finite()) {
        return None;
    }
    let (ma, va) = mean_var(base.iter().copied());
    let (mb, vb) = mean_var(head.iter().copied());
    let (na, nb) = (base.len() as f64, head.len() as f64);
    let diff = mb - ma;
    let (sa, sb) = (va / na, vb / nb);
    let se = (sa + sb).sqrt();
    if se == 0.0 {
        // No spread on either side: the difference is exact (the limit of the test as the
        // spread vanishes).
        let p_value = if diff == 0.0 { 1.0 } else { 0.0 };
        return Some(DifferenceTest { difference: diff, low: diff, high: diff, p_value, df: f64::INFINITY });
    }
    let df = (sa + sb).powi(2) / (sa.powi(2) / (na - 1.0) + sb.powi(2) / (nb - 1.0));
    let t = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    let p_value = (2.0 * t.sf(diff.abs() / se)).min(1.0);
    let half = t.inverse_cdf(1.0 - (1.0 - confidence) / 2.0) * se;
    Some(DifferenceTest { difference: diff, low: diff - half, high: diff + half, p_value, df })
}

/// Mean and unbiased sample variance.
fn mean_var(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        ((a - b) / b).abs() < tol
    }

    /// Reference values from SciPy 1.x:
    /// `r = scipy.stats.ttest_ind(np.log(head), np.log(base), equal_var=False)`,
    /// `np.exp(r.confidence_interval(0.95))`, for the samples below.
    #[test]
    fn matches_scipy_welch_on_logs() {
        let base = [10.0, 11.0, 12.0, 10.5, 11.5];
        let head = [12.0, 13.0, 12.5, 13.5, 14.0];
        let r = welch_log_ratio(&base, &head, 0.95).unwrap();
        assert!(close(r.ratio, 1.1825161179595998, 1e-9), "{r:?}");
        assert!(close(r.p_value, 0.004337965078718585, 1e-6), "{r:?}");
        assert!(close(r.df, 7.784787279836375, 1e-9), "{r:?}");
        assert!(close(r.ratio_low, 1.0723483110064003, 1e-6), "{r:?}");
        assert!(close(r.ratio_high, 1.3040020251646542, 1e-6), "{r:?}");
    }

    #[test]
    fn identical_samples_show_no_change() {
        let v = [5.0, 6.0, 7.0];
        let r = welch_log_ratio(&v, &v, 0.95).unwrap();
        assert_eq!(r.ratio, 1.0);
        assert!(r.p_value > 0.999);
        assert!(r.ratio_low < 1.0 && r.ratio_high > 1.0);
    }

    #[test]
    fn zero_spread_is_exact() {
        let r = welch_log_ratio(&[2.0, 2.0], &[4.0, 4.0], 0.95).unwrap();
        assert_eq!(r.p_value, 0.0);
        assert!(close(r.ratio, 2.0, 1e-12));
        let r = welch_log_ratio(&[2.0, 2.0], &[2.0, 2.0], 0.95).unwrap();
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn too_few_or_non_positive_values_give_no_test() {
        assert!(welch_log_ratio(&[1.0], &[1.0, 2.0], 0.95).is_none());
        assert!(welch_log_ratio(&[0.0, 1.0], &[1.0, 2.0], 0.95).is_none());
        assert_eq!(geometric_mean(&[1.0, 4.0]), Some(2.0));
        assert_eq!(geometric_mean(&[]), None);
    }
}
