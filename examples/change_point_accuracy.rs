//! How well `stats::change_points` finds known change points: the six patterns of issue 22 on
//! seeded synthetic series (multiplicative Gaussian noise, a coefficient of variation of 2%),
//! SERIES of each, at the default settings and with Matteson & James's classic statistic at
//! the same significance and magnitude. A found change point matches a true one within ±M
//! commits (one to one); precision is matched over found, recall matched over true; for the
//! patterns without a change of level the figure is the share of series given any.
//!
//!     cargo run --release --example change_point_accuracy -- [SERIES]   (default 1000)
//!
//! `scripts/bench-change-points` runs it; the README quotes its output.

use mcp_perfcheck::stats::{ChangePoint, ChangePointSettings, SplitMix64, change_points};

fn noisy(levels: &[f64], cv: f64, rng: &mut SplitMix64) -> Vec<f64> {
    levels.iter().map(|l| l * (1.0 + cv * rng.normal())).collect()
}

fn steps(spec: &[(usize, f64)]) -> Vec<f64> {
    spec.iter().flat_map(|&(n, level)| std::iter::repeat_n(level, n)).collect()
}

/// A pattern: its name, what it is, and a series with its true change points.
type Pattern = (&'static str, &'static str, fn(&mut SplitMix64) -> (Vec<f64>, Vec<usize>));

const PATTERNS: [Pattern; 6] = [
    ("step", "+5% after 10 commits, 10 after", |r| (noisy(&steps(&[(10, 100.0), (10, 105.0)]), 0.02, r), vec![10])),
    ("steps", "+5%, −5%, +5% every 10 commits", |r| {
        (noisy(&steps(&[(10, 100.0), (10, 105.0), (10, 99.75), (10, 104.7)]), 0.02, r), vec![10, 20, 30])
    }),
    ("outliers", "30 commits level, two of them +30%", |r| {
        let mut x = noisy(&[100.0; 30], 0.02, r);
        for _ in 0..2 {
            let at = (r.next_u64() % 30) as usize;
            x[at] *= 1.3;
        }
        (x, vec![])
    }),
    ("variance", "40 commits level, the noise ×4 after 20", |r| {
        let mut x = noisy(&[100.0; 20], 0.02, r);
        x.extend(noisy(&[100.0; 20], 0.08, r));
        (x, vec![])
    }),
    ("drift", "+10% over 40 commits, linearly", |r| {
        let levels: Vec<f64> = (0..40).map(|i| 100.0 * (1.0 + 0.1 * f64::from(i) / 39.0)).collect();
        (noisy(&levels, 0.02, r), vec![])
    }),
    ("noise", "40 commits level", |r| (noisy(&[100.0; 40], 0.02, r), vec![])),
];

fn matched(found: &[ChangePoint], truth: &[usize], margin: usize) -> usize {
    let mut left = truth.to_vec();
    found
        .iter()
        .filter(|c| match left.iter().position(|&t| t.abs_diff(c.index) <= margin) {
            Some(i) => {
                left.remove(i);
                true
            }
            None => false,
        })
        .count()
}

fn main() {
    let series: u64 = std::env::args().nth(1).map_or(1000, |a| a.parse().expect("SERIES is a number"));
    println!(
        "{series} seeded series a pattern, noise CV 2%; P precision, R recall within ±M commits; any: series given a change point"
    );
    for (label, settings) in
        [("default (means)", ChangePointSettings::DEFAULT), ("classic", ChangePointSettings::CLASSIC)]
    {
        println!(
            "\n{label}: alpha {}, {} shuffles, segments >= {}, changes >= {:.0}%",
            settings.alpha,
            settings.permutations,
            settings.min_segment,
            settings.min_magnitude * 100.0
        );
        for (name, what, make) in PATTERNS {
            let (mut hits, mut found, mut truth, mut any) = ([0usize; 3], 0usize, 0usize, 0u64);
            for seed in 0..series {
                let mut rng = SplitMix64(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x0ddba11);
                let (x, t) = make(&mut rng);
                let cps = change_points(&x, &ChangePointSettings { seed, ..settings });
                for (m, h) in hits.iter_mut().enumerate() {
                    *h += matched(&cps, &t, m);
                }
                found += cps.len();
                truth += t.len();
                any += u64::from(!cps.is_empty());
            }
            let ratio = |a: usize, b: usize| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
            if truth == 0 {
                println!("  {name:<9} {what:<40} any {:>5.1}%", 100.0 * any as f64 / series as f64);
            } else {
                let pr: Vec<String> = (0..3)
                    .map(|m| format!("±{m}: P {:.3} R {:.3}", ratio(hits[m], found), ratio(hits[m], truth)))
                    .collect();
                println!("  {name:<9} {what:<40} {}", pr.join("   "));
            }
        }
    }
}
