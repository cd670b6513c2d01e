//! Mann–Whitney U (H. B. Mann and D. R. Whitney, Ann. Math. Statist. 18, 1947) and the
//! Hodges–Lehmann shift with its distribution-free interval (Hodges and Lehmann, Ann. Math.
//! Statist. 34, 1963; the interval as in Hollander and Wolfe, and R's `wilcox.test`).
//!
//! A robustness check beside Welch's t: it assumes no distribution, so one wild repetition
//! cannot carry it. Conventions are SciPy's `mannwhitneyu(head, base)`: `u` counts the pairs
//! where head exceeds base (ties half), the p-value is two-sided; the exact null distribution is
//! used when there are no ties and both samples have at most [`EXACT_MAX`] values, else the
//! normal approximation with tie and continuity corrections.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use statrs::distribution::{ContinuousCDF, Normal};

/// Largest sample (on each side) for which the exact distribution is used.
pub const EXACT_MAX: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// Pairs (base, head) with head > base, ties counted half.
    pub u: f64,
    /// Two-sided p-value of "neither side tends to be larger".
    pub p_value: f64,
    /// Whether the exact null distribution was used.
    pub exact: bool,
}

/// The two-sided Mann–Whitney U test of `head` against `base`. `None` when a side is empty.
pub fn mann_whitney(base: &[f64], head: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (head.len(), base.len());
    if n1 == 0 || n2 == 0 || base.iter().chain(head).any(|v| v.is_nan()) {
        return None;
    }
    let (ranks, tie_term) = ranks(base, head);
    let head_rank_sum: f64 = ranks[n2..].iter().sum();
    let u = head_rank_sum - (n1 * (n1 + 1)) as f64 / 2.0;
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let big = u.max(n1f * n2f - u);
    if tie_term == 0.0 && n1 <= EXACT_MAX && n2 <= EXACT_MAX {
        // P(U >= big) under the null, doubled; `big` is an integer without ties.
        let upper = upper_tail(n1, n2);
        return Some(MannWhitney { u, p_value: (2.0 * upper[big as usize]).min(1.0), exact: true });
    }
    let n = n1f + n2f;
    let mean = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let p_value = if var <= 0.0 {
        1.0
    } else {
        let z = (big - mean - 0.5) / var.sqrt();
        (2.0 * Normal::standard().sf(z)).min(1.0)
    };
    Some(MannWhitney { u, p_value, exact: false })
}

/// Midranks of `base` then `head` pooled, and the tie term Σ(t³ − t) over groups of ties.
fn ranks(base: &[f64], head: &[f64]) -> (Vec<f64>, f64) {
    let pooled: Vec<f64> = base.iter().chain(head).copied().collect();
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    order.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
    let mut ranks = vec![0.0; pooled.len()];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && pooled[order[j + 1]] == pooled[order[i]] {
            j += 1;
        }
        let midrank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = midrank;
        }
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    (ranks, tie_term)
}

/// P(U ≥ u) for every u, for samples of `n1` and `n2`: computed once per pair of sizes on
/// each thread, since one comparison tests many metrics with the same repetition counts.
fn upper_tail(n1: usize, n2: usize) -> Rc<Vec<f64>> {
    /// Upper tails by sample sizes.
    type Tails = HashMap<(usize, usize), Rc<Vec<f64>>>;
    thread_local! {
        static TAILS: RefCell<Tails> = RefCell::new(HashMap::new());
    }
    TAILS.with(|tails| {
        Rc::clone(tails.borrow_mut().entry((n1, n2)).or_insert_with(|| {
            let counts = null_counts(n1, n2);
            let total: f64 = counts.iter().sum();
            let mut tail = vec![0.0; counts.len()];
            let mut above = 0.0;
            for (u, c) in counts.iter().enumerate().rev() {
                above += c;
                tail[u] = above / total;
            }
            Rc::new(tail)
        }))
    })
}

/// Counts of each value 0..=n1·n2 of U over all arrangements of two samples of `n1` and `n2`
/// distinct values (the exact null distribution, unnormalised), by the recurrence
/// c(u; m, n) = c(u − n; m − 1, n) + c(u; m, n − 1).
fn null_counts(n1: usize, n2: usize) -> Vec<f64> {
    // table[n] holds the counts for (m, n) as m grows row by row.
    let mut table: Vec<Vec<f64>> = (0..=n2).map(|_| vec![1.0]).collect();
    for m in 1..=n1 {
        let mut next: Vec<Vec<f64>> = Vec::with_capacity(n2 + 1);
        next.push(vec![1.0]); // n = 0: U is always 0
        for n in 1..=n2 {
            let mut counts = vec![0.0; m * n + 1];
            for (u, c) in table[n].iter().enumerate() {
                counts[u + n] += c; // (m − 1, n) shifted by n: the new largest value is from the first sample
            }
            for (u, c) in next[n - 1].iter().enumerate() {
                counts[u] += c; // (m, n − 1): the largest value is from the second sample
            }
            next.push(counts);
        }
        table = next;
    }
    table.pop().expect("n2 + 1 rows")
}

/// The Hodges–Lehmann estimate of the shift head − base and its distribution-free interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HodgesLehmann {
    /// Median of all pairwise differences head − base.
    pub shift: f64,
    pub low: f64,
    pub high: f64,
    /// The interval's exact coverage under the null distribution (≥ the asked confidence, as
    /// far as the sample sizes allow).
    pub achieved_confidence: f64,
}

/// The shift head − base, with a `confidence` interval from order statistics of the pairwise
/// differences at the exact U distribution's critical value (R's `wilcox.test(conf.int = TRUE)`
/// for samples without ties). `None` when a side is empty or larger than [`EXACT_MAX`].
pub fn hodges_lehmann(base: &[f64], head: &[f64], confidence: f64) -> Option<HodgesLehmann> {
    let (n1, n2) = (head.len(), base.len());
    if n1 == 0 || n2 == 0 || n1 > EXACT_MAX || n2 > EXACT_MAX {
        return None;
    }
    let mut diffs: Vec<f64> = head.iter().flat_map(|h| base.iter().map(move |b| h - b)).collect();
    if diffs.iter().any(|d| d.is_nan()) {
        return None;
    }
    diffs.sort_by(f64::total_cmp);
    let k = diffs.len();
    let shift = if k % 2 == 1 { diffs[k / 2] } else { (diffs[k / 2 - 1] + diffs[k / 2]) / 2.0 };
    // P(U <= u) = P(U >= n1·n2 − u): the null distribution is symmetric.
    let tail = upper_tail(n1, n2);
    let top = n1 * n2;
    let at_most = |u: usize| tail[top - u];
    // qu: the smallest u with P(U <= u) >= alpha/2 (R's qwilcox), at least 1.
    let alpha = 1.0 - confidence;
    let qu = (0..=top).find(|&u| at_most(u) >= alpha / 2.0).unwrap_or(0).max(1);
    let below = at_most(qu - 1);
    Some(HodgesLehmann { shift, low: diffs[qu - 1], high: diffs[k - qu], achieved_confidence: 1.0 - 2.0 * below })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exact_distribution_counts_every_arrangement() {
        // C(m + n, m) arrangements, symmetric about m·n/2.
        let c = null_counts(3, 4);
        assert_eq!(c.iter().sum::<f64>(), 35.0);
        assert_eq!(c, c.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(&c[..3], &[1.0, 1.0, 2.0]);
    }

    #[test]
    fn separated_samples_give_the_smallest_p() {
        let t = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0, 7.0]).unwrap();
        assert!(t.exact && t.u == 12.0);
        assert!((t.p_value - 2.0 / 35.0).abs() < 1e-15, "{t:?}");
        let same = mann_whitney(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
        assert!(!same.exact && same.p_value == 1.0, "{same:?}");
        assert!(mann_whitney(&[], &[1.0]).is_none());
    }
}
