//! Change points in a series of per-commit values: E-divisive with a permutation test.
//!
//! Reference: D. S. Matteson and N. A. James, "A Nonparametric Approach for Multiple Change
//! Point Analysis of Multivariate Data", JASA 109(505), 2014, pp. 334–345: the energy
//! statistic, divisive (hierarchical) estimation, and a permutation test of each new change
//! point with the current segments shuffled separately. As used on performance series by
//! D. Daly et al., "The Use of Change Point Detection to Identify Software Performance
//! Regressions in a Continuous Integration System", ICPE 2020 (MongoDB), and Apache Otava.
//!
//! For a segment's left part `X = x[a..τ)` and right part `Y = x[τ..κ)` (`m` and `k` points)
//! and an exponent `α ∈ (0, 2]`:
//!
//! ```text
//! Ê(X, Y) = 2/(m·k) Σ|Xi − Yj|^α − 2/(m(m−1)) Σ_{i<j} |Xi − Xj|^α − 2/(k(k−1)) Σ_{i<j} |Yi − Yj|^α
//! Q̂(τ, κ) = m·k/(m + k) · Ê(X, Y)
//! ```
//!
//! Two statistics ([`Statistic`]):
//! - [`Statistic::Classic`], the paper's as MongoDB and Otava apply it: α = 1 (any change of
//!   distribution), κ the segment's end. The sums of distances within every prefix and suffix
//!   come from one pass each over a Fenwick tree of ranks: O(n log n) a scan.
//! - [`Statistic::Means`], the default: α = 2, the means case (Ê is twice the squared
//!   difference of means less its bias, so a change of level is what it finds), divided by the
//!   split's pooled within-part energy (a scale-free t², so that the shuffles, which carry the
//!   change's own spread, do not drown it), every right end κ within `max_window` points of τ
//!   (so a level that goes up and comes back is found: with κ fixed at the end both sides of
//!   a bump look alike), each segment winsorized at its median ± 3σ before it is scored, and
//!   the minimum magnitude judged on the parts' medians (one wild commit moves neither). Prefix
//!   sums of x and x² give any part's sums: O(n·max_window) a scan. On seeded synthetic series
//!   (`scripts/bench-change-points`, README) it finds a single step as often as Classic, steps
//!   that go up and down and temporary regressions far more often, and gives fewer false change
//!   points on outliers, noise and a noisier phase. A change is kept only when its interval
//!   excludes zero and both the parts' medians and means moved by the minimum magnitude.
//!
//! Values on the ratio scale are tested on their logarithms, so that a 5% step counts the same
//! at any level. Estimation: the best split over all current segments is tested against
//! `permutations` shuffles of every segment (each within itself; the statistic is the best
//! split of any segment), p = (1 + shuffles at least as good) / (1 + shuffles); at or below
//! `alpha` it is a change point and the search goes on, else it ends. Shuffling stops early
//! once p cannot reach `alpha`. Then changes smaller than `min_magnitude` (relative, or absolute
//! on the difference scale) are merged away, smallest first, the neighbours' recomputed after
//! each. Every shuffle comes from a SplitMix64 stream seeded by `seed`: the same series and
//! settings give the same change points.
//!
//! [`change_points_after`] is the incremental form: change points already known stay, and only
//! the segment after the last of them is searched (a new commit costs what its last segment
//! costs, not the whole history).

use super::Scale;
use super::bootstrap::SplitMix64;
use super::welch::{welch_difference, welch_log_ratio};

/// How change points are found and which are reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Significance level of each new change point's permutation test.
    pub alpha: f64,
    /// Shuffles per test (the smallest p-value is 1 / (permutations + 1)).
    pub permutations: u32,
    /// Fewest points on either side of a change point.
    pub min_segment: usize,
    /// Smallest change reported: relative on the ratio scale (0.03 = 3%), absolute on the
    /// difference scale (0.001 = 0.1 percentage point).
    pub min_magnitude: f64,
    pub scale: Scale,
    pub statistic: Statistic,
    /// [`Statistic::Means`]: the most points right of a split its search weighs.
    pub max_window: usize,
    pub seed: u64,
}

/// Which form of the E-divisive statistic is searched (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// α = 1, the right end at the segment's end: the paper's, as MongoDB and Otava use it.
    Classic,
    /// α = 2 standardized by the split's pooled spread, every right end within
    /// `max_window`, segments winsorized, magnitudes on medians.
    Means,
}

impl Settings {
    /// The defaults: [`Statistic::Means`], α 0.05 over 99 shuffles (p-values down to 0.01),
    /// parts of at least 5 commits, right parts of at most 30, changes of at least 3%.
    pub const DEFAULT: Settings = Settings {
        alpha: 0.05,
        permutations: 99,
        min_segment: 5,
        min_magnitude: 0.03,
        scale: Scale::Ratio,
        statistic: Statistic::Means,
        max_window: 30,
        seed: 0x6d63_705f_6370_7431,
    };

    /// Matteson and James's statistic as published (α = 1, κ at the segment's end), at the
    /// same significance and magnitudes: the reference the default is measured against.
    pub const CLASSIC: Settings = Settings { statistic: Statistic::Classic, ..Settings::DEFAULT };
}

/// A change point: the series' level changes between `index − 1` and `index`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// The first point of the new segment.
    pub index: usize,
    /// The permutation test's p-value when it was found.
    pub p_value: f64,
    /// The segment before's and after's mean (geometric on the ratio scale).
    pub before: f64,
    pub after: f64,
    /// `after / before − 1` on the ratio scale, `after − before` on the difference scale.
    pub change: f64,
    /// The change's 95% interval (Welch's t, on logarithms for the ratio scale); `None` when a
    /// side has fewer than two points or no spread.
    pub interval: Option<(f64, f64)>,
}

/// The change points of `values`, in order.
pub fn change_points(values: &[f64], settings: &Settings) -> Vec<ChangePoint> {
    change_points_after(values, &[], settings)
}

/// The change points of `values` given that those at `known` (sorted indices, from an earlier
/// analysis of a prefix of the series) stand: only the segment after the last known one is
/// searched. The known ones come back with their figures recomputed on the longer series.
pub fn change_points_after(values: &[f64], known: &[usize], settings: &Settings) -> Vec<ChangePoint> {
    let s = Settings { min_segment: settings.min_segment.max(2), ..*settings };
    let transformed: Option<Vec<f64>> = match s.scale {
        Scale::Ratio => values.iter().map(|v| (*v > 0.0 && v.is_finite()).then(|| v.ln())).collect(),
        Scale::Difference => values.iter().map(|v| v.is_finite().then_some(*v)).collect(),
    };
    // A series with a value that is not positive (ratio) or not finite cannot be tested.
    let Some(x) = transformed else { return Vec::new() };
    let mut bounds: Vec<usize> = known.iter().copied().filter(|&i| i > 0 && i < x.len()).collect();
    bounds.sort_unstable();
    bounds.dedup();
    let fixed = bounds.len();
    let start = bounds.last().copied().unwrap_or(0);
    let mut p_values: Vec<(usize, f64)> = Vec::new();
    let mut rng = SplitMix64(s.seed ^ (x.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // The segments still searched: those after the known change points.
    let mut segments: Vec<(usize, usize)> = vec![(start, x.len())];
    loop {
        let best = segments
            .iter()
            .filter_map(|&(a, b)| best_split(&x[a..b], &s).map(|(t, q)| (a + t, q)))
            .max_by(|l, r| l.1.total_cmp(&r.1));
        let Some((at, q)) = best else { break };
        let p = permutation_p(&x, &segments, q, &s, &mut rng);
        if p > s.alpha {
            break;
        }
        p_values.push((at, p));
        let i = segments.iter().position(|&(a, b)| a < at && at < b).expect("the split lies in a segment");
        let (a, b) = segments[i];
        segments.splice(i..=i, [(a, at), (at, b)]);
    }
    let mut found: Vec<usize> = p_values.iter().map(|(i, _)| *i).collect();
    found.sort_unstable();
    merge_small(&x, &bounds, &mut found, &s);
    let all: Vec<usize> = bounds[..fixed].iter().copied().chain(found).collect();
    describe(values, &x, &all, &p_values, &s)
}

/// The split of `x` with the largest statistic (both parts at least `min_segment` long) and
/// that statistic.
fn best_split(x: &[f64], s: &Settings) -> Option<(usize, f64)> {
    scan(&prepared(x, s), s)
}

/// A segment as its statistic reads it: winsorized for [`Statistic::Means`]. A function of its
/// values alone, so a segment is prepared once and its shuffles shuffle the prepared values.
fn prepared(x: &[f64], s: &Settings) -> Vec<f64> {
    match s.statistic {
        Statistic::Classic => x.to_vec(),
        Statistic::Means => winsorized(x),
    }
}

/// The best split of a prepared segment.
fn scan(x: &[f64], s: &Settings) -> Option<(usize, f64)> {
    if x.len() < 2 * s.min_segment {
        return None;
    }
    match s.statistic {
        Statistic::Classic => best_split_classic(x, s.min_segment),
        Statistic::Means => best_split_means(x, s),
    }
}

/// α = 1 with κ at the segment's end: Q̂(τ) for every τ from the within-part sums of every
/// prefix and suffix.
fn best_split_classic(x: &[f64], min_segment: usize) -> Option<(usize, f64)> {
    let n = x.len();
    let (prefix, suffix) = within_sums(x);
    let total = prefix[n];
    (min_segment..=n - min_segment)
        .map(|t| {
            let (m, k) = (t as f64, (n - t) as f64);
            let (wx, wy) = (prefix[t], suffix[t]);
            let between = total - wx - wy;
            let e = 2.0 * between / (m * k) - 2.0 * wx / (m * (m - 1.0)) - 2.0 * wy / (k * (k - 1.0));
            (t, m * k / (m + k) * e)
        })
        .max_by(|l, r| l.1.total_cmp(&r.1).then(r.0.cmp(&l.0)))
}

/// α = 2 over every (τ, κ) with κ − τ ≤ `max_window`, Q̂ over the split's pooled within-part
/// energy. With squared distances, Σ_{i<j in a part} (xi − xj)² = m Σx² − (Σx)², so prefix
/// sums of x and x² give every part's figures in O(1).
fn best_split_means(x: &[f64], s: &Settings) -> Option<(usize, f64)> {
    let (n, ms) = (x.len(), s.min_segment);
    let mut p1 = vec![0.0; n + 1];
    let mut p2 = vec![0.0; n + 1];
    for i in 0..n {
        p1[i + 1] = p1[i] + x[i];
        p2[i + 1] = p2[i] + x[i] * x[i];
    }
    // Reciprocals, so that the scan's inner loop divides nothing.
    let inv: Vec<f64> = (0..=n).map(|j| if j == 0 { 0.0 } else { 1.0 / j as f64 }).collect();
    // A part's mean squared distance over its pairs, twice its variance: 2(mΣx² − (Σx)²)/(m(m−1)).
    let energy = |a: usize, b: usize| {
        let m = b - a;
        let (s1, s2) = (p1[b] - p1[a], p2[b] - p2[a]);
        2.0 * (m as f64 * s2 - s1 * s1).max(0.0) * inv[m] * inv[m - 1]
    };
    // The best so far as (t, q, pooled): q/pooled compared by cross-multiplying (pooled > 0).
    let mut best: Option<(usize, f64, f64)> = None;
    for t in ms..=n - ms {
        let m = t as f64;
        let (ex, mx) = (energy(0, t), p1[t] * inv[t]);
        let last = if s.max_window == 0 { n } else { (t + s.max_window).min(n) };
        for kappa in t + ms..=last {
            let k = kappa - t;
            let kf = k as f64;
            let (ey, my) = (energy(t, kappa), (p1[kappa] - p1[t]) * inv[k]);
            // With α = 2, Ê = 2(mx − my)² less the parts' own spread over their sizes.
            let q = m * kf * inv[t + k] * (2.0 * (mx - my).powi(2) - ex * inv[t] - ey * inv[k]);
            let pooled = (((m - 1.0) * ex + (kf - 1.0) * ey) * inv[t + k - 2]).max(1e-300);
            if best.is_none_or(|(_, bq, bp)| q * bp > bq * pooled) {
                best = Some((t, q, pooled));
            }
        }
    }
    best.map(|(t, q, pooled)| (t, q / pooled))
}

/// The values clipped to their median ± 3σ (σ from the median absolute deviation): one
/// wild point then moves a short part's mean as a plausible one would. A function of the
/// values alone, not of their order, so the permutation test stays exact.
fn winsorized(x: &[f64]) -> Vec<f64> {
    let m = median(x);
    let mad = median(&x.iter().map(|v| (v - m).abs()).collect::<Vec<_>>());
    let reach = 3.0 * 1.4826 * mad;
    if reach <= 0.0 {
        return x.to_vec();
    }
    x.iter().map(|v| v.clamp(m - reach, m + reach)).collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// For every `t`, Σ_{i<j<t} |xi − xj| (prefix) and Σ_{t≤i<j} |xi − xj| (suffix).
fn within_sums(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = x.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut rank = vec![0; n];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let sums = |indices: &mut dyn Iterator<Item = usize>| {
        let mut tree = Fenwick::new(n);
        let mut out = Vec::with_capacity(n + 1);
        let mut w = 0.0;
        out.push(0.0);
        for i in indices {
            let (count_below, sum_below) = tree.below(rank[i]);
            let (count_all, sum_all) = (tree.count, tree.sum);
            let (count_above, sum_above) = (count_all - count_below, sum_all - sum_below);
            w += x[i] * count_below as f64 - sum_below + sum_above - x[i] * count_above as f64;
            tree.add(rank[i], x[i]);
            out.push(w);
        }
        out
    };
    let prefix = sums(&mut (0..n));
    let mut suffix = sums(&mut (0..n).rev());
    suffix.reverse();
    (prefix, suffix)
}

/// Counts and sums of the values inserted, by rank.
struct Fenwick {
    counts: Vec<u32>,
    sums: Vec<f64>,
    count: u32,
    sum: f64,
}

impl Fenwick {
    fn new(n: usize) -> Fenwick {
        Fenwick { counts: vec![0; n + 1], sums: vec![0.0; n + 1], count: 0, sum: 0.0 }
    }

    fn add(&mut self, rank: usize, value: f64) {
        let mut i = rank + 1;
        while i < self.counts.len() {
            self.counts[i] += 1;
            self.sums[i] += value;
            i += i & i.wrapping_neg();
        }
        self.count += 1;
        self.sum += value;
    }

    /// Count and sum of the values of rank below `rank`.
    fn below(&self, rank: usize) -> (u32, f64) {
        let (mut count, mut sum, mut i) = (0, 0.0, rank);
        while i > 0 {
            count += self.counts[i];
            sum += self.sums[i];
            i -= i & i.wrapping_neg();
        }
        (count, sum)
    }
}

/// The permutation p-value of a best split of Q̂ `observed` over `segments` of `x`: every
/// segment shuffled within itself, the best split of any of them each time.
fn permutation_p(x: &[f64], segments: &[(usize, usize)], observed: f64, s: &Settings, rng: &mut SplitMix64) -> f64 {
    let mut at_least = 0u32;
    // p = (1 + at_least) / (1 + R) exceeds α once at_least reaches this: stop there.
    let ceiling = (s.alpha * f64::from(s.permutations + 1) - 1.0).floor().max(0.0) as u32 + 1;
    // Each shuffle of a shuffled copy is as uniform as a shuffle of the original.
    let mut shuffled: Vec<Vec<f64>> = segments.iter().map(|&(a, b)| prepared(&x[a..b], s)).collect();
    let mut done = 0u32;
    for _ in 0..s.permutations {
        let mut best = f64::NEG_INFINITY;
        for segment in &mut shuffled {
            for i in (1..segment.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                segment.swap(i, j);
            }
            if let Some((_, q)) = scan(segment, s) {
                best = best.max(q);
            }
        }
        done += 1;
        if best >= observed {
            at_least += 1;
            if at_least >= ceiling {
                break;
            }
        }
    }
    // Stopped early: the p-value is at least this (reported as what was seen so far).
    f64::from(1 + at_least) / f64::from(1 + done.max(at_least))
}

/// The magnitude of the change at `found[i]` between its neighbouring boundaries.
fn magnitude(x: &[f64], lo: usize, at: usize, hi: usize, scale: Scale) -> f64 {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let d = mean(&x[at..hi]) - mean(&x[lo..at]);
    match scale {
        Scale::Ratio => d.exp() - 1.0,
        Scale::Difference => d,
    }
}

/// Like [`magnitude`], on the parts' medians ([`Statistic::Means`]: one wild commit moves
/// neither side's).
fn median_magnitude(x: &[f64], lo: usize, at: usize, hi: usize, scale: Scale) -> f64 {
    let d = median(&x[at..hi]) - median(&x[lo..at]);
    match scale {
        Scale::Ratio => d.exp() - 1.0,
        Scale::Difference => d,
    }
}

/// [`Statistic::Means`]: how far the level moved by the smaller of the medians' and the means'
/// change, and nothing when the change's 95% interval (Welch's t on the parts) holds zero. A
/// change of level moves both and shows beyond the parts' noise; one wild commit moves only the
/// mean, a metric that flips between two levels run by run only the median.
fn confirmed_magnitude(x: &[f64], lo: usize, at: usize, hi: usize, scale: Scale) -> f64 {
    let (before, after) = (&x[lo..at], &x[at..hi]);
    if welch_difference(before, after, 0.95).is_some_and(|t| t.low <= 0.0 && 0.0 <= t.high) {
        return 0.0;
    }
    median_magnitude(x, lo, at, hi, scale).abs().min(magnitude(x, lo, at, hi, scale).abs())
}

/// Drops the found change points whose change is below the minimum magnitude, smallest first,
/// recomputing the neighbours' after each (two small steps the same way may make one that
/// counts). The known boundaries bound the first segment and never move.
fn merge_small(x: &[f64], known: &[usize], found: &mut Vec<usize>, s: &Settings) {
    loop {
        let edges: Vec<usize> = known.iter().chain(found.iter()).copied().collect();
        let smallest = found
            .iter()
            .enumerate()
            .map(|(i, &at)| {
                let pos = known.len() + i;
                let lo = if pos == 0 { 0 } else { edges[pos - 1] };
                let hi = edges.get(pos + 1).copied().unwrap_or(x.len());
                let m = match s.statistic {
                    Statistic::Means => confirmed_magnitude(x, lo, at, hi, s.scale),
                    Statistic::Classic => magnitude(x, lo, at, hi, s.scale).abs(),
                };
                (i, m)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match smallest {
            Some((i, m)) if m < s.min_magnitude => {
                found.remove(i);
            }
            _ => return,
        }
    }
}

/// Each change point's figures between its neighbours.
fn describe(values: &[f64], x: &[f64], all: &[usize], p_values: &[(usize, f64)], s: &Settings) -> Vec<ChangePoint> {
    all.iter()
        .enumerate()
        .map(|(i, &at)| {
            let lo = if i == 0 { 0 } else { all[i - 1] };
            let hi = all.get(i + 1).copied().unwrap_or(values.len());
            let (before, after) = (&values[lo..at], &values[at..hi]);
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let (b, a, interval) = match s.scale {
                Scale::Ratio => {
                    let gm = |v: &[f64]| (v.iter().map(|y| y.ln()).sum::<f64>() / v.len() as f64).exp();
                    let t = welch_log_ratio(before, after, 0.95);
                    (gm(before), gm(after), t.map(|t| (t.ratio_low - 1.0, t.ratio_high - 1.0)))
                }
                Scale::Difference => {
                    let t = welch_difference(before, after, 0.95);
                    (mean(before), mean(after), t.map(|t| (t.low, t.high)))
                }
            };
            let interval = interval.filter(|(l, h)| l.is_finite() && h.is_finite());
            ChangePoint {
                index: at,
                p_value: p_values.iter().find(|(j, _)| *j == at).map_or(f64::NAN, |(_, p)| *p),
                before: b,
                after: a,
                change: magnitude(x, lo, at, hi, s.scale),
                interval,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "change_points_tests.rs"]
mod tests;
