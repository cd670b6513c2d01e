//! A load level over time: a start level, then a linear ramp to each stage's target over the
//! stage's duration (k6's `stages`). The open model reads it as an arrival rate (per second),
//! the closed model as a number of virtual users.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub start: f64,
    /// (duration, target level at its end)
    pub stages: Vec<(Duration, f64)>,
}

impl Profile {
    /// One level throughout.
    pub fn constant(level: f64, duration: Duration) -> Profile {
        Profile { start: level, stages: vec![(duration, level)] }
    }

    /// The same profile preceded by `warmup` at the start level.
    pub fn with_warmup(&self, warmup: Duration) -> Profile {
        let mut stages = Vec::with_capacity(self.stages.len() + 1);
        if !warmup.is_zero() {
            stages.push((warmup, self.start));
        }
        stages.extend(self.stages.iter().copied());
        Profile { start: self.start, stages }
    }

    /// The same profile with its level multiplied by `factor` from `at` for `hold` (steps of
    /// a millisecond up and down, which the open model's integral handles like any ramp).
    pub fn with_spike(&self, at: Duration, factor: f64, hold: Duration) -> Profile {
        const EDGE: Duration = Duration::from_millis(1);
        let end = at + hold;
        // The knots of the new profile: every original knot plus the spike's four.
        let mut knots: Vec<Duration> = vec![at, at + EDGE, end, end + EDGE];
        let mut t = Duration::ZERO;
        for (d, _) in &self.stages {
            t += *d;
            knots.push(t);
        }
        let total = t;
        knots.retain(|k| *k <= total && !k.is_zero());
        knots.sort();
        knots.dedup();
        let level = |k: Duration| {
            let base = self.at(k);
            if k > at && k <= end { base * factor } else { base }
        };
        let mut stages = Vec::with_capacity(knots.len());
        let mut previous = Duration::ZERO;
        for k in knots {
            stages.push((k - previous, level(k)));
            previous = k;
        }
        Profile { start: self.start, stages }
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|(d, _)| *d).sum()
    }

    pub fn max(&self) -> f64 {
        self.stages.iter().map(|(_, l)| *l).fold(self.start, f64::max)
    }

    /// The level `t` after the start (the last target beyond the end).
    pub fn at(&self, t: Duration) -> f64 {
        let mut from = self.start;
        let mut elapsed = Duration::ZERO;
        for &(d, to) in &self.stages {
            if t < elapsed + d {
                let f = (t - elapsed).as_secs_f64() / d.as_secs_f64();
                return from + (to - from) * f;
            }
            elapsed += d;
            from = to;
        }
        from
    }

    /// The integral of the level over the whole profile (for a rate: the number of sends).
    pub fn total(&self) -> f64 {
        let mut from = self.start;
        self.stages
            .iter()
            .map(|&(d, to)| {
                let area = (from + to) / 2.0 * d.as_secs_f64();
                from = to;
                area
            })
            .sum()
    }

    /// The integral of the level from the start to `t` (for a rate: the sends due by then).
    pub fn integral_to(&self, t: Duration) -> f64 {
        let mut from = self.start;
        let mut elapsed = Duration::ZERO;
        let mut area = 0.0;
        for &(d, to) in &self.stages {
            if t < elapsed + d {
                let part = (t - elapsed).as_secs_f64();
                let level = from + (to - from) * part / d.as_secs_f64();
                return area + (from + level) / 2.0 * part;
            }
            area += (from + to) / 2.0 * d.as_secs_f64();
            elapsed += d;
            from = to;
        }
        area
    }

    /// When the integral of the level reaches `n`: the intended time of the open model's
    /// `n`-th send (counting from 0). `None` past the end.
    pub fn time_of(&self, n: f64) -> Option<Duration> {
        let mut from = self.start;
        let mut elapsed = 0.0;
        let mut before = 0.0;
        for &(d, to) in &self.stages {
            let secs = d.as_secs_f64();
            let area = (from + to) / 2.0 * secs;
            if n < before + area {
                let left = n - before;
                let a = (to - from) / secs; // the level's slope
                // Solve from·τ + a·τ²/2 = left for τ within the stage.
                let tau = if a.abs() < 1e-12 {
                    left / from
                } else {
                    (-from + (from * from + 2.0 * a * left).max(0.0).sqrt()) / a
                };
                return Some(Duration::from_secs_f64(elapsed + tau.clamp(0.0, secs)));
            }
            before += area;
            elapsed += secs;
            from = to;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_constant_rate_spaces_sends_evenly() {
        let p = Profile::constant(100.0, secs(2.0));
        assert_eq!(p.total(), 200.0);
        assert_eq!(p.time_of(0.0), Some(secs(0.0)));
        assert_eq!(p.time_of(150.0), Some(secs(1.5)));
        assert_eq!(p.time_of(200.0), None);
        assert_eq!(p.integral_to(secs(1.5)), 150.0);
        assert_eq!(p.integral_to(secs(9.0)), 200.0);
    }

    #[test]
    fn a_ramp_sends_as_the_integral_of_its_rate() {
        // 0 → 100/s over 10 s: 500 sends, the n-th at sqrt(2n / 10) s.
        let p = Profile { start: 0.0, stages: vec![(secs(10.0), 100.0)] };
        assert_eq!(p.total(), 500.0);
        let t = p.time_of(125.0).unwrap().as_secs_f64();
        assert!((t - 5.0).abs() < 1e-9, "{t}");
        assert!((p.integral_to(secs(5.0)) - 125.0).abs() < 1e-9);
        assert_eq!(p.at(secs(5.0)), 50.0);
        // Then hold at 100/s for 2 s, then down to 0 over 2 s.
        let p = Profile { start: 0.0, stages: vec![(secs(10.0), 100.0), (secs(2.0), 100.0), (secs(2.0), 0.0)] };
        assert_eq!(p.total(), 500.0 + 200.0 + 100.0);
        assert!((p.time_of(600.0).unwrap().as_secs_f64() - 11.0).abs() < 1e-9);
        let t = p.time_of(775.0).unwrap().as_secs_f64(); // 75 of the last 100: 1 s into the ramp down
        assert!((t - 13.0).abs() < 1e-9, "{t}");
        assert_eq!(p.max(), 100.0);
        assert_eq!(p.duration(), secs(14.0));
    }

    #[test]
    fn warmup_holds_the_start_level() {
        let p = Profile { start: 50.0, stages: vec![(secs(1.0), 150.0)] }.with_warmup(secs(2.0));
        assert_eq!(p.duration(), secs(3.0));
        assert_eq!(p.at(secs(1.0)), 50.0);
        assert_eq!(p.at(secs(2.5)), 100.0);
        assert_eq!(p.total(), 100.0 + 100.0);
    }

    #[test]
    fn a_spike_multiplies_the_level_for_its_hold_and_keeps_the_length() {
        let p = Profile::constant(100.0, Duration::from_secs(10)).with_spike(
            Duration::from_secs(2),
            5.0,
            Duration::from_secs(3),
        );
        assert_eq!(p.duration(), Duration::from_secs(10));
        let level = |ms: u64| p.at(Duration::from_millis(ms));
        assert_eq!(
            (level(1000), level(2500), level(4999), level(5500), level(9999)),
            (100.0, 500.0, 500.0, 100.0, 100.0)
        );
        // 10 s at 100/s plus 3 s at 400/s more, give or take the 1 ms edges.
        assert!((p.total() - 2200.0).abs() < 1.0, "{}", p.total());
    }
}
