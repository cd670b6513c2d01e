//! How the simulated upstream answers: a latency distribution, an error rate with its status,
//! all drawn from a seeded sequence, so that a run's answers are reproducible.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A latency distribution, written `fixed:2ms`, `uniform:1ms..5ms` or `lognormal:2ms,0.5`
/// (median, then the spread σ of the underlying normal: 0.5 puts p99 at about 3.2× the median).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Latency {
    Fixed(Duration),
    Uniform { min: Duration, max: Duration },
    LogNormal { median: Duration, spread: f64 },
}

impl schemars::JsonSchema for Latency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Latency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A latency distribution: fixed:D, uniform:MIN..MAX, or lognormal:MEDIAN,SPREAD (the spread σ of the underlying normal: 0.5 puts p99 at about 3.2× the median).",
            "pattern": r"^\s*(fixed:|uniform:|lognormal:)",
            "examples": ["fixed:2ms", "uniform:1ms..5ms", "lognormal:2ms,0.5"],
        })
    }
}

impl Latency {
    /// The latency for draw `u` and `v`, two uniforms in [0, 1).
    fn sample(&self, u: f64, v: f64) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => min + (max.saturating_sub(min)).mul_f64(u),
            Latency::LogNormal { median, spread } => {
                // Box–Muller: a standard normal from two uniforms (1 − u keeps ln away from 0).
                let z = (-2.0 * (1.0 - u).ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                median.mul_f64((spread * z).exp().min(1e6))
            }
        }
    }
}

impl TryFrom<String> for Latency {
    type Error = String;
    fn try_from(text: String) -> Result<Latency, String> {
        text.parse()
    }
}

impl From<Latency> for String {
    fn from(l: Latency) -> String {
        l.to_string()
    }
}

impl std::str::FromStr for Latency {
    type Err = String;
    fn from_str(text: &str) -> Result<Latency, String> {
        let duration = |s: &str| {
            humantime::parse_duration(s.trim()).map_err(|e| format!("latency `{text}`: `{s}` is not a duration: {e}"))
        };
        let (kind, args) = text
            .split_once(':')
            .ok_or_else(|| format!("latency `{text}`: expected fixed:2ms, uniform:1ms..5ms or lognormal:2ms,0.5"))?;
        match kind.trim() {
            "fixed" => Ok(Latency::Fixed(duration(args)?)),
            "uniform" => {
                let (min, max) =
                    args.split_once("..").ok_or_else(|| format!("latency `{text}`: expected uniform:MIN..MAX"))?;
                let (min, max) = (duration(min)?, duration(max)?);
                if min > max {
                    return Err(format!("latency `{text}`: the minimum is above the maximum"));
                }
                Ok(Latency::Uniform { min, max })
            }
            "lognormal" => {
                let (median, spread) = args
                    .split_once(',')
                    .ok_or_else(|| format!("latency `{text}`: expected lognormal:MEDIAN,SPREAD"))?;
                let spread: f64 =
                    spread.trim().parse().map_err(|_| format!("latency `{text}`: `{spread}` is not a number"))?;
                if !(0.0..=5.0).contains(&spread) {
                    return Err(format!("latency `{text}`: the spread must be in [0, 5]"));
                }
                Ok(Latency::LogNormal { median: duration(median)?, spread })
            }
            other => Err(format!("latency `{text}`: unknown distribution `{other}` (fixed, uniform, lognormal)")),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = |d: Duration| humantime::format_duration(d).to_string();
        match *self {
            Latency::Fixed(x) => write!(f, "fixed:{}", d(x)),
            Latency::Uniform { min, max } => write!(f, "uniform:{}..{}", d(min), d(max)),
            Latency::LogNormal { median, spread } => write!(f, "lognormal:{},{spread}", d(median)),
        }
    }
}

/// What the upstream does with each request when no fault says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    pub latency: Latency,
    /// The share of requests answered with `error_status` (0.01 = 1%).
    pub error_rate: f64,
    pub error_status: u16,
}

impl Default for Behaviour {
    /// A healthy upstream: 1 ms, no errors.
    fn default() -> Self {
        Behaviour { latency: Latency::Fixed(Duration::from_millis(1)), error_rate: 0.0, error_status: 503 }
    }
}

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    pub latency: Duration,
    /// `Some(status)`: answer with this error.
    pub error: Option<u16>,
}

/// The seeded sequence requests draw from: request n always gets the n-th draw.
#[derive(Debug)]
pub struct Dice {
    seed: u64,
    next: AtomicU64,
}

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice { seed, next: AtomicU64::new(0) }
    }

    pub fn draw(&self, behaviour: &Behaviour) -> Draw {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let unit =
            |k: u64| (splitmix(self.seed ^ n.wrapping_mul(3).wrapping_add(k)) >> 11) as f64 / (1u64 << 53) as f64;
        let latency = behaviour.latency.sample(unit(0), unit(1));
        let error = (unit(2) < behaviour.error_rate).then_some(behaviour.error_status);
        Draw { latency, error }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile(mut xs: Vec<Duration>, q: f64) -> Duration {
        xs.sort();
        xs[((xs.len() - 1) as f64 * q) as usize]
    }

    #[test]
    fn distributions_parse_and_print_the_same() {
        for text in ["fixed:2ms", "uniform:1ms..5ms", "lognormal:2ms,0.5"] {
            let l: Latency = text.parse().unwrap();
            assert_eq!(l.to_string(), text);
        }
        assert_eq!(
            "uniform:5ms..1ms".parse::<Latency>().unwrap_err(),
            "latency `uniform:5ms..1ms`: the minimum is above the maximum"
        );
        assert!("gamma:1ms".parse::<Latency>().unwrap_err().contains("unknown distribution `gamma`"));
    }

    #[test]
    fn draws_are_reproducible_and_follow_their_distribution() {
        let b = Behaviour { latency: "lognormal:2ms,0.5".parse().unwrap(), error_rate: 0.1, error_status: 503 };
        let draws = |seed| {
            let dice = Dice::new(seed);
            (0..20_000).map(|_| dice.draw(&b)).collect::<Vec<_>>()
        };
        let (a, again, other) = (draws(7), draws(7), draws(8));
        assert_eq!(a, again, "the same seed, the same answers");
        assert_ne!(a, other);
        let latencies: Vec<_> = a.iter().map(|d| d.latency).collect();
        let median = quantile(latencies.clone(), 0.5).as_secs_f64() * 1e3;
        let p99 = quantile(latencies, 0.99).as_secs_f64() * 1e3;
        assert!((1.9..2.1).contains(&median), "median {median} ms");
        // exp(0.5 × 2.326) = 3.20
        assert!((5.9..6.9).contains(&p99), "p99 {p99} ms");
        let errors = a.iter().filter(|d| d.error == Some(503)).count();
        assert!((1_850..2_150).contains(&errors), "{errors} errors of 20,000 at 10%");
        let uniform = Behaviour { latency: "uniform:1ms..3ms".parse().unwrap(), ..Behaviour::default() };
        let dice = Dice::new(1);
        assert!(
            (0..1000)
                .map(|_| dice.draw(&uniform).latency)
                .all(|l| l >= Duration::from_millis(1) && l <= Duration::from_millis(3))
        );
    }
}
