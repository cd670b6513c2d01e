//! Paired repetitions, and repetitions a neighbour disturbed.
//!
//! A same-runner A/B measures repetition i of the base and of the head back to back, in an
//! order drawn at random for each pair. On a shared runner most of the spread between
//! repetitions is the machine's own drift (another tenant, a frequency change), which both
//! halves of a pair share; the paired t-test on the differences of logarithms takes it out,
//! where Welch's test on two independent samples counts it as noise (on a 2-core VM: 3.7%
//! instead of 6.5% for a compute call's p50, measured by `calibrate`).
//!
//! A repetition that a neighbour disturbed (its latency doubled for a second) is found by the
//! modified z-score of B. Iglewicz and D. C. Hoaglin, "How to Detect and Handle Outliers" (ASQC,
//! 1993): |0.6745 · (x − median) / MAD| > 3.5, on logarithms. The rule is robust (the outlier
//! does not widen the scale it is judged by) and under normal noise flags about one value in
//! two thousand. Flagged repetitions are left out of the test and listed in the report.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::welch::LogRatioTest;

/// The modified z-score beyond which a value is an outlier (Iglewicz & Hoaglin).
pub const OUTLIER_Z: f64 = 3.5;

/// Fewer values than this say too little about their own spread to call one an outlier.
pub const MIN_FOR_OUTLIERS: usize = 6;

/// The least spread (of logarithms: 1%) the rule judges by. Repetitions that agree more
/// closely differ by the instrument's resolution (a p50 of 25 µs moves in 4% steps), not by a
/// neighbour's doing.
pub const MIN_SCALE: f64 = 0.01;

/// The indices of `values` whose modified z-score exceeds [`OUTLIER_Z`]; none below
/// [`MIN_FOR_OUTLIERS`] values. When more than half the values are equal (MAD 0) the mean
/// absolute deviation, scaled to agree with the MAD under normality (× 1.2533), stands in; the
/// scale is never taken below [`MIN_SCALE`]. Meant for logarithms.
pub fn outliers(values: &[f64]) -> Vec<usize> {
    if values.len() < MIN_FOR_OUTLIERS || values.iter().any(|v| !v.is_finite()) {
        return Vec::new();
    }
    let median = median(values);
    let deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    let mad = self::median(&deviations);
    // 0.6745 · d / MAD, or d / (1.2533 · meanAD) when the MAD is 0.
    let scale = if mad > 0.0 { mad / 0.6745 } else { 1.253_314 * deviations.iter().sum::<f64>() / values.len() as f64 };
    let scale = scale.max(MIN_SCALE);
    (0..values.len()).filter(|&i| deviations[i] / scale > OUTLIER_Z).collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

/// The paired t-test on `ln(head) − ln(base)` over `pairs` of (base, head): the ratio of the
/// geometric means with a two-sided `confidence` interval. `None` below two pairs or with a
/// value that is not positive.
pub fn paired_log_ratio(pairs: &[(f64, f64)], confidence: f64) -> Option<LogRatioTest> {
    if pairs.len() < 2 || pairs.iter().any(|(b, h)| !(*b > 0.0 && *h > 0.0 && b.is_finite() && h.is_finite())) {
        return None;
    }
    let d: Vec<f64> = pairs.iter().map(|(b, h)| h.ln() - b.ln()).collect();
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let se = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
    let df = n - 1.0;
    if se == 0.0 {
        let p_value = if mean == 0.0 { 1.0 } else { 0.0 };
        let r = mean.exp();
        return Some(LogRatioTest { ratio: r, ratio_low: r, ratio_high: r, p_value, df });
    }
    let t = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    let p_value = (2.0 * t.sf(mean.abs() / se)).min(1.0);
    let half = t.inverse_cdf(1.0 - (1.0 - confidence) / 2.0) * se;
    Some(LogRatioTest {
        ratio: mean.exp(),
        ratio_low: (mean - half).exp(),
        ratio_high: (mean + half).exp(),
        p_value,
        df,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disturbed_repetition_is_an_outlier_and_ordinary_spread_is_not() {
        // Echo p50s of 16 repetitions on the 2-core VM, one of them during a neighbour's burst.
        let p50 = [23.0, 26.0, 22.0, 24.0, 27.0, 23.0, 25.0, 24.0, 27.0, 45.0, 28.0, 26.0, 26.0, 26.0, 24.0, 25.0];
        let logs: Vec<f64> = p50.iter().map(|v: &f64| v.ln()).collect();
        assert_eq!(outliers(&logs), vec![9]);
        assert!(outliers(&logs[..9]).is_empty(), "no burst, no outlier");
        assert!(outliers(&logs[..5]).is_empty(), "too few to judge");
    }

    #[test]
    fn equal_values_fall_back_to_the_mean_absolute_deviation() {
        // MAD 0: seven equal values; the one apart is still seen, and equal values alone are fine.
        assert_eq!(outliers(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0]), vec![7]);
        assert!(outliers(&[3.0; 8]).is_empty());
        // Half a percent apart where the rest agree exactly: resolution, not a neighbour.
        assert!(outliers(&[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.005, -0.005]).is_empty());
    }

    /// SciPy 1.17: `r = scipy.stats.ttest_rel(np.log(head), np.log(base))`,
    /// `np.exp(r.confidence_interval(0.95))`, for the pairs below.
    #[test]
    fn matches_scipy_paired_t_on_logs() {
        let base = [10.0, 11.0, 12.0, 10.5, 11.5];
        let head = [12.0, 13.0, 12.5, 13.5, 14.0];
        let pairs: Vec<(f64, f64)> = base.into_iter().zip(head).collect();
        let r = paired_log_ratio(&pairs, 0.95).unwrap();
        let close = |a: f64, b: f64| ((a - b) / b).abs() < 1e-9;
        assert!(close(r.ratio, 1.1825161179595998), "{r:?}");
        assert!(close(r.p_value, PAIRED_P), "{r:?}");
        assert!(close(r.ratio_low, PAIRED_LOW) && close(r.ratio_high, PAIRED_HIGH), "{r:?}");
        assert_eq!(r.df, 4.0);
    }

    const PAIRED_P: f64 = 0.00849265830285278;
    const PAIRED_LOW: f64 = 1.0737692371412375;
    const PAIRED_HIGH: f64 = 1.3022764304154781;

    #[test]
    fn drift_shared_by_the_pairs_is_not_noise() {
        // Each pair moves with the machine (×1 … ×1.5), the head is 5% slower in every pair:
        // paired, the change is exact; Welch would see a spread of ±15%.
        let pairs: Vec<(f64, f64)> = [1.0, 1.2, 1.5, 1.1, 1.3].iter().map(|d| (100.0 * d, 105.0 * d)).collect();
        let r = paired_log_ratio(&pairs, 0.95).unwrap();
        assert!((r.ratio - 1.05).abs() < 1e-12 && r.p_value < 1e-50, "{r:?}");
        assert!(r.ratio_high - r.ratio_low < 1e-9, "{r:?}");
        assert!(paired_log_ratio(&pairs[..1], 0.95).is_none());
        assert!(paired_log_ratio(&[(0.0, 1.0), (1.0, 1.0)], 0.95).is_none());
    }
}
