use super::*;

/// Q̂(τ, κ) of `x` from the definition (every pair's distance to the power `alpha`), divided by
/// the pooled within-part energy when `standardized`: the oracle both scans are checked against.
fn q_by_definition(x: &[f64], t: usize, kappa: usize, alpha: i32, standardized: bool) -> f64 {
    let (xs, ys) = (&x[..t], &x[t..kappa]);
    let (m, k) = (xs.len() as f64, ys.len() as f64);
    let d = |a: f64, b: f64| (a - b).abs().powi(alpha);
    let within = |v: &[f64]| {
        let mut s = 0.0;
        for i in 0..v.len() {
            for j in i + 1..v.len() {
                s += d(v[i], v[j]);
            }
        }
        2.0 * s / (v.len() as f64 * (v.len() as f64 - 1.0))
    };
    let between: f64 = xs.iter().flat_map(|a| ys.iter().map(move |b| d(*a, *b))).sum();
    let (ex, ey) = (within(xs), within(ys));
    let q = m * k / (m + k) * (2.0 * between / (m * k) - ex - ey);
    if standardized { q / (((m - 1.0) * ex + (k - 1.0) * ey) / (m + k - 2.0)) } else { q }
}

/// A series with ties (every fifth value repeats the one before) and a step.
fn tied_series(n: usize) -> Vec<f64> {
    let mut rng = SplitMix64(7);
    let mut last = 0.0;
    (0..n)
        .map(|i| {
            if i % 5 != 4 {
                last = (rng.next_u64() % 1000) as f64 / 10.0 + if i > n / 2 { 20.0 } else { 0.0 };
            }
            last
        })
        .collect()
}

#[test]
fn the_classic_scan_is_the_energy_statistic_of_its_definition() {
    let x = tied_series(60);
    let (t, q) = best_split_classic(&x, 3).unwrap();
    let best = (3..=57).map(|s| (s, q_by_definition(&x, s, 60, 1, false))).max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!(t, best.0);
    assert!((q - best.1).abs() < 1e-9 * q.abs(), "{q} {}", best.1);
}

#[test]
fn the_means_scan_is_the_standardized_energy_statistic_of_its_definition_over_every_window() {
    let x = tied_series(48);
    let s = Settings { max_window: 12, ..Settings::DEFAULT };
    let (t, q) = best_split_means(&x, &s).unwrap();
    let mut best = (0, f64::NEG_INFINITY);
    for tau in 5..=43 {
        for kappa in tau + 5..=(tau + 12).min(48) {
            let v = q_by_definition(&x, tau, kappa, 2, true);
            if v > best.1 {
                best = (tau, v);
            }
        }
    }
    assert_eq!(t, best.0);
    assert!((q - best.1).abs() < 1e-9 * q.abs(), "{q} {}", best.1);
}

#[test]
fn winsorizing_clips_a_wild_value_and_leaves_the_rest() {
    let x = [10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 100.0];
    let w = winsorized(&x);
    assert_eq!(&w[..6], &x[..6]);
    assert!(w[6] < 15.0, "{}", w[6]);
}

/// `levels` as a series with multiplicative noise of coefficient of variation `cv`.
fn noisy(levels: &[f64], cv: f64, rng: &mut SplitMix64) -> Vec<f64> {
    levels.iter().map(|l| l * (1.0 + cv * rng.normal())).collect()
}

fn steps(spec: &[(usize, f64)]) -> Vec<f64> {
    spec.iter().flat_map(|&(n, level)| std::iter::repeat_n(level, n)).collect()
}

/// Found change points matched one to one to true ones within `margin` points: (matched,
/// found, true).
fn score(found: &[ChangePoint], truth: &[usize], margin: usize) -> (usize, usize, usize) {
    let mut unmatched: Vec<usize> = truth.to_vec();
    let mut hits = 0;
    for c in found {
        if let Some(i) = unmatched.iter().position(|&t| t.abs_diff(c.index) <= margin) {
            unmatched.remove(i);
            hits += 1;
        }
    }
    (hits, found.len(), truth.len())
}

/// Precision and recall within ±2 points, and the share of series with any change point, over
/// `n` seeded series from `make`.
fn accuracy(n: u64, make: impl Fn(&mut SplitMix64) -> (Vec<f64>, Vec<usize>)) -> (f64, f64, f64) {
    let (mut hits, mut found, mut truth, mut any) = (0, 0, 0, 0);
    for seed in 0..n {
        let mut rng = SplitMix64(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0xc0ffee);
        let (x, t) = make(&mut rng);
        let cps = change_points(&x, &Settings { seed, ..Settings::DEFAULT });
        let (h, f, tr) = score(&cps, &t, 2);
        (hits, found, truth) = (hits + h, found + f, truth + tr);
        any += usize::from(!cps.is_empty());
    }
    let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    (ratio(hits, found), ratio(hits, truth), any as f64 / n as f64)
}

#[test]
fn a_five_percent_step_in_two_percent_noise_is_found_where_it_is() {
    let (p, r, _) = accuracy(300, |rng| (noisy(&steps(&[(10, 100.0), (10, 105.0)]), 0.02, rng), vec![10]));
    assert!(p >= 0.9 && r >= 0.9, "precision {p:.3}, recall {r:.3}");
}

#[test]
fn steps_up_and_down_and_a_temporary_regression_are_found() {
    let spec = [(10, 100.0), (10, 105.0), (10, 99.75), (10, 104.7)];
    let (p, r, _) = accuracy(500, |rng| (noisy(&steps(&spec), 0.02, rng), vec![10, 20, 30]));
    assert!(p >= 0.9 && r >= 0.8, "alternating steps: precision {p:.3}, recall {r:.3}");
    let (p, r, _) =
        accuracy(200, |rng| (noisy(&steps(&[(15, 100.0), (6, 108.0), (15, 100.0)]), 0.02, rng), vec![15, 21]));
    assert!(p >= 0.95 && r >= 0.95, "a bump: precision {p:.3}, recall {r:.3}");
}

#[test]
fn noise_alone_and_outliers_alone_rarely_give_a_change_point() {
    let (_, _, any) = accuracy(600, |rng| (noisy(&[100.0; 40], 0.02, rng), vec![]));
    assert!(any <= 0.01, "{:.1}% of noise-only series had a change point", any * 100.0);
    let (_, _, any) = accuracy(400, |rng| {
        let mut x = noisy(&[100.0; 30], 0.02, rng);
        for _ in 0..2 {
            let at = (rng.next_u64() % 30) as usize;
            x[at] *= 1.3;
        }
        (x, vec![])
    });
    assert!(any <= 0.025, "{:.1}% of series with two outliers had a change point", any * 100.0);
}

#[test]
fn a_slow_drift_is_caught() {
    let drift: Vec<f64> = (0..40).map(|i| 100.0 * (1.0 + 0.1 * f64::from(i) / 39.0)).collect();
    let (_, _, any) = accuracy(200, |rng| (noisy(&drift, 0.02, rng), vec![]));
    assert!(any >= 0.95, "{:.1}% of 10% drifts over 40 commits flagged", any * 100.0);
}

#[test]
fn the_default_finds_more_than_the_classic_statistic() {
    let step = |rng: &mut SplitMix64| noisy(&steps(&[(15, 100.0), (6, 108.0), (15, 100.0)]), 0.02, rng);
    let found = |settings: Settings| {
        (0..100u64)
            .filter(|&seed| {
                let mut rng = SplitMix64(seed ^ 0xbeef);
                !change_points(&step(&mut rng), &Settings { seed, ..settings }).is_empty()
            })
            .count()
    };
    let (means, classic) = (found(Settings::DEFAULT), found(Settings::CLASSIC));
    assert!(means >= 95 && classic < 50, "a bump found in {means} of 100 by the default, {classic} by the classic");
}

#[test]
fn a_small_change_is_merged_away_and_a_larger_one_reported_with_its_figures() {
    // 2%: below the 3% minimum.
    let x = steps(&[(15, 100.0), (15, 102.0)]);
    assert!(change_points(&x, &Settings::DEFAULT).is_empty());
    let mut rng = SplitMix64(5);
    let x = noisy(&steps(&[(15, 100.0), (15, 110.0)]), 0.01, &mut rng);
    let found = change_points(&x, &Settings::DEFAULT);
    assert_eq!(found.iter().map(|c| c.index).collect::<Vec<_>>(), vec![15]);
    let c = found[0];
    assert!((c.change - 0.10).abs() < 0.01 && c.p_value <= 0.05, "{c:?}");
    let (lo, hi) = c.interval.unwrap();
    assert!(lo < c.change && c.change < hi && lo > 0.05, "{lo} {hi}");
    assert!((c.after / c.before - 1.0 - c.change).abs() < 1e-9, "the change is the ratio of the levels");
}

#[test]
fn the_incremental_search_keeps_what_it_knew_and_looks_only_after_it() {
    let mut rng = SplitMix64(11);
    let x = noisy(&steps(&[(12, 100.0), (12, 110.0), (12, 95.0)]), 0.01, &mut rng);
    let all = change_points(&x, &Settings::DEFAULT);
    assert_eq!(all.iter().map(|c| c.index).collect::<Vec<_>>(), vec![12, 24]);
    // Known up to 24 points: the change at 12; the new points bring the one at 24.
    let known: Vec<usize> = change_points(&x[..24], &Settings::DEFAULT).iter().map(|c| c.index).collect();
    assert_eq!(known, vec![12]);
    let next = change_points_after(&x, &known, &Settings::DEFAULT);
    assert_eq!(next.iter().map(|c| c.index).collect::<Vec<_>>(), vec![12, 24]);
    assert!(next[0].p_value.is_nan() && next[1].p_value <= 0.05, "the known one was not tested again");
    assert!((next[1].change - (95.0 / 110.0 - 1.0)).abs() < 0.02, "{}", next[1].change);
}

#[test]
fn the_same_seed_gives_the_same_answer_and_an_unusable_series_none() {
    let mut rng = SplitMix64(3);
    let x = noisy(&steps(&[(8, 100.0), (8, 106.0)]), 0.02, &mut rng);
    assert_eq!(change_points(&x, &Settings::DEFAULT), change_points(&x, &Settings::DEFAULT));
    let zero = [1.0, 0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    assert!(change_points(&zero, &Settings::DEFAULT).is_empty(), "a zero on the ratio scale");
    assert!(change_points(&[1.0; 9], &Settings::DEFAULT).is_empty(), "too short to split");
    // On the difference scale zeros are fine: an error rate from 0 to 2%.
    let errors = steps(&[(10, 0.0), (10, 0.02)]);
    let s = Settings { scale: Scale::Difference, min_magnitude: 0.001, ..Settings::DEFAULT };
    let found = change_points(&errors, &s);
    assert_eq!(found.iter().map(|c| (c.index, (c.change * 1000.0).round())).collect::<Vec<_>>(), vec![(10, 20.0)]);
}
