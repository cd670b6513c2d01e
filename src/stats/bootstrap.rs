//! A seeded percentile bootstrap for the change in a pooled tail quantile (B. Efron, "Bootstrap
//! methods", Ann. Statist. 7, 1979).
//!
//! A p99 pooled over all of a side's requests is the figure users read, but requests within a
//! repetition are not independent samples of the machine: the bootstrap therefore resamples
//! whole repetitions, with replacement, on each side, pools the chosen ones and takes the ratio
//! of the two quantiles. The random stream is SplitMix64 (Steele, Lea and Flood, OOPSLA 2014),
//! drawn as `next() % n`, so that the same seed gives the same interval anywhere, including in
//! `fixtures/stats/generate.py`, which re-implements this to produce the reference values.

/// A ratio head/base with a percentile interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapRatio {
    /// The ratio on the data as observed.
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
}

/// Bootstraps `pooled(head) / pooled(base)`: `iterations` times, `base.len()` repetitions of base
/// and `head.len()` of head are drawn with replacement and handed to `pooled` (which pools them
/// and returns the quantile). The interval holds the central `confidence` of the ratios: the
/// values at ranks ⌊B·α/2⌋ and ⌈B·(1 − α/2)⌉ − 1 of the sorted ratios (0-based). `None` when a
/// side is empty or a pooled quantile is not positive.
pub fn bootstrap_ratio<T>(
    base: &[T],
    head: &[T],
    pooled: impl Fn(&[&T]) -> f64,
    iterations: usize,
    seed: u64,
    confidence: f64,
) -> Option<BootstrapRatio> {
    if base.is_empty() || head.is_empty() || iterations == 0 {
        return None;
    }
    let ratio_of = |b: &[&T], h: &[&T]| {
        let (qb, qh) = (pooled(b), pooled(h));
        (qb > 0.0 && qh.is_finite()).then(|| qh / qb)
    };
    let ratio = ratio_of(&base.iter().collect::<Vec<_>>(), &head.iter().collect::<Vec<_>>())?;
    let mut rng = SplitMix64(seed);
    let mut ratios = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let b = draw(&mut rng, base);
        let h = draw(&mut rng, head);
        ratios.push(ratio_of(&b, &h)?);
    }
    ratios.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    let b = iterations as f64;
    let lo = ((b * alpha / 2.0).floor() as usize).min(iterations - 1);
    let hi = ((b * (1.0 - alpha / 2.0)).ceil() as usize).clamp(1, iterations) - 1;
    Some(BootstrapRatio { ratio, low: ratios[lo], high: ratios[hi] })
}

/// `side.len()` repetitions of `side`, drawn with replacement.
fn draw<'a, T>(rng: &mut SplitMix64, side: &'a [T]) -> Vec<&'a T> {
    (0..side.len()).map(|_| &side[(rng.next_u64() % side.len() as u64) as usize]).collect()
}

/// SplitMix64: tiny, fast, and easy to reproduce in any language. Every seeded draw in the
/// statistics comes from it; it is public so that benches, examples and fuzzers draw from the
/// same stream rather than from copies of it.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1), never 0, so that its logarithm is finite.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.unit()).cos()
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The nearest-rank quantile (the smallest value with at least ⌈q·N⌉ values at or below it),
/// HdrHistogram's definition, of the pooled values of `reps`.
pub fn pooled_quantile(reps: &[&Vec<f64>], q: f64) -> f64 {
    let mut all: Vec<f64> = reps.iter().flat_map(|r| r.iter().copied()).collect();
    if all.is_empty() {
        return f64::NAN;
    }
    all.sort_by(f64::total_cmp);
    let rank = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len());
    all[rank - 1]
}

/// Histogram buckets of many repetitions on one shared value axis, each repetition held as
/// cumulative counts along it, so that the quantile of any pooled selection is a binary search
/// over summed prefix counts (no merge, no sort): what makes a thousand bootstrap draws cheap.
pub struct PooledBuckets {
    /// Distinct bucket values, ascending.
    values: Vec<u64>,
}

/// One repetition on a [`PooledBuckets`] axis: at index i, how many of its values are at or
/// below the axis' i-th value.
pub type IndexedBuckets = Vec<u64>;

impl PooledBuckets {
    /// The shared axis of `sets` (each a repetition's `(value, count)` buckets) and each set
    /// re-expressed on it, in order.
    pub fn new(sets: &[&[(u64, u64)]]) -> (PooledBuckets, Vec<IndexedBuckets>) {
        let mut values: Vec<u64> = sets.iter().flat_map(|s| s.iter().map(|b| b.0)).collect();
        values.sort_unstable();
        values.dedup();
        let cumulative = sets
            .iter()
            .map(|s| {
                let mut counts = vec![0u64; values.len()];
                for &(v, c) in s.iter() {
                    counts[values.binary_search(&v).expect("every value is on the axis")] += c;
                }
                let mut running = 0;
                for c in &mut counts {
                    running += *c;
                    *c = running;
                }
                counts
            })
            .collect();
        (PooledBuckets { values }, cumulative)
    }

    /// The nearest-rank quantile `q` of the pooled `reps` (as [`pooled_quantile`] defines it).
    pub fn quantile(&self, reps: &[&IndexedBuckets], q: f64) -> f64 {
        let below = |i: usize| reps.iter().map(|r| r[i]).sum::<u64>();
        let Some(last) = self.values.len().checked_sub(1) else { return f64::NAN };
        let total = below(last);
        if total == 0 {
            return f64::NAN;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        // The first axis index whose pooled cumulative count reaches the rank.
        let (mut lo, mut hi) = (0, last);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if below(mid) >= rank { hi = mid } else { lo = mid + 1 }
        }
        self.values[lo] as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_interval_and_it_brackets_the_ratio() {
        let base: Vec<Vec<f64>> = (0..6).map(|r| (1..=100).map(|i| f64::from(i + r)).collect()).collect();
        let head: Vec<Vec<f64>> = base.iter().map(|v| v.iter().map(|x| x * 1.5).collect()).collect();
        let p99 = |reps: &[&Vec<f64>]| pooled_quantile(reps, 0.99);
        let a = bootstrap_ratio(&base, &head, p99, 500, 7, 0.95).unwrap();
        assert_eq!(a, bootstrap_ratio(&base, &head, p99, 500, 7, 0.95).unwrap());
        assert!((a.ratio - 1.5).abs() < 0.02 && a.low <= a.ratio && a.ratio <= a.high, "{a:?}");
        assert!(bootstrap_ratio::<Vec<f64>>(&[], &head, p99, 10, 1, 0.95).is_none());
    }

    #[test]
    fn bucket_and_value_quantiles_agree() {
        let reps: Vec<Vec<f64>> = vec![vec![1.0, 2.0, 2.0, 9.0], vec![3.0, 3.0, 3.0]];
        let buckets: [&[(u64, u64)]; 2] = [&[(1, 1), (2, 2), (9, 1)], &[(3, 3)]];
        let (axis, indexed) = PooledBuckets::new(&buckets);
        for q in [0.01, 0.5, 0.75, 0.99, 1.0] {
            let v = pooled_quantile(&reps.iter().collect::<Vec<_>>(), q);
            assert_eq!(v, axis.quantile(&indexed.iter().collect::<Vec<_>>(), q), "q = {q}");
        }
        assert_eq!(axis.quantile(&[&indexed[1]], 0.5), 3.0);
    }

    #[test]
    fn splitmix64_matches_its_published_first_outputs() {
        // Seed 0: the reference implementation's first outputs.
        let mut r = SplitMix64(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
