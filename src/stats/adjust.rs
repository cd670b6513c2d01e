//! Adjusting the p-values of one comparison's many metrics, so that testing many does not
//! multiply false alarms:
//! - Holm's step-down procedure (S. Holm, "A simple sequentially rejective multiple test
//!   procedure", Scand. J. Statistics 6, 1979) controls the family-wise error rate: the gate;
//! - Benjamini–Hochberg (J. R. Statist. Soc. B 57, 1995) controls the false discovery rate:
//!   the q-values shown beside it.

/// Holm-adjusted p-values, in the input order.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; m];
    let mut running_max: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let value = ((m - rank) as f64 * p_values[i]).min(1.0);
        running_max = running_max.max(value);
        adjusted[i] = running_max;
    }
    adjusted
}

/// Benjamini–Hochberg q-values, in the input order (R's `p.adjust(method = "BH")`).
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    // From the largest p down, each q is the smallest m·p/rank seen so far.
    order.sort_by(|&a, &b| p_values[b].total_cmp(&p_values[a]));
    let mut adjusted = vec![0.0; m];
    let mut running_min: f64 = 1.0;
    for (i, &index) in order.iter().enumerate() {
        let rank = m - i;
        running_min = running_min.min(m as f64 * p_values[index] / rank as f64);
        adjusted[index] = running_min;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: R `p.adjust(c(0.01, 0.04, 0.03, 0.005), method = "holm")`
    /// = 0.030 0.060 0.060 0.020.
    #[test]
    fn matches_r_p_adjust_holm() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (a, e) in adj.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adj:?}");
        }
    }

    #[test]
    fn empty_and_capped() {
        assert!(holm(&[]).is_empty());
        assert_eq!(holm(&[0.6, 0.9]), vec![1.0, 1.0]);
    }
}
