//! Thresholds in k6's grammar: absolute limits checked after the run, e.g.
//!
//! ```yaml
//! thresholds:
//!   "tools/call{tool:lookup}": ["p(95)<50ms", "error_rate<1%"]
//!   "server": ["rss_peak<200MB", {threshold: "cpu_per_op<200us", abort_on_fail: true, delay: 10s}]
//! ```
//!
//! A key selects what is measured: `tools/call` (every tool call), `tools/call{tool:NAME}`,
//! optionally with `scenario:NAME`; `server` (the server's process tree) or `client` (the load
//! generator). Each expression is `metric op value`; values carry units (`ms`, `%`, `MB`) that
//! must fit the metric.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::HumanDuration;
pub use crate::measure::Quantity;

/// What a threshold's key selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Tool calls, optionally of one tool and/or one scenario.
    Calls {
        tool: Option<String>,
        scenario: Option<String>,
    },
    Server {
        scenario: Option<String>,
    },
    Client {
        scenario: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Latency percentile, from the merged histograms (µs).
    Percentile(f64),
    AvgLatency,
    MaxLatency,
    /// Failed calls / calls.
    ErrorRate,
    /// Successful calls per second (mean over repetitions, summed over selected operations).
    Throughput,
    RssPeak,
    RssSlope,
    /// CPU per call (µs).
    CpuPerOp,
    ThreadsPeak,
    FdsPeak,
}

impl Metric {
    pub fn quantity(self) -> Quantity {
        match self {
            Metric::Percentile(_) | Metric::AvgLatency | Metric::MaxLatency | Metric::CpuPerOp => Quantity::Duration,
            Metric::ErrorRate => Quantity::Ratio,
            Metric::RssPeak => Quantity::Bytes,
            Metric::RssSlope => Quantity::BytesPerSecond,
            Metric::Throughput => Quantity::PerSecond,
            Metric::ThreadsPeak | Metric::FdsPeak => Quantity::Count,
        }
    }

    fn parse(name: &str) -> Result<Metric, String> {
        if let Some(inner) = name.strip_prefix("p(").and_then(|r| r.strip_suffix(')')) {
            let p: f64 = inner.trim().parse().map_err(|_| format!("`{name}`: the percentile must be a number"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!("`{name}`: the percentile must be in (0, 100]"));
            }
            return Ok(Metric::Percentile(p));
        }
        Ok(match name {
            "avg" => Metric::AvgLatency,
            "max" => Metric::MaxLatency,
            "med" => Metric::Percentile(50.0),
            "error_rate" => Metric::ErrorRate,
            "throughput" => Metric::Throughput,
            "rss_peak" => Metric::RssPeak,
            "rss_slope" => Metric::RssSlope,
            "cpu_per_op" => Metric::CpuPerOp,
            "threads_peak" => Metric::ThreadsPeak,
            "fds_peak" => Metric::FdsPeak,
            other => return Err(format!("unknown metric `{other}`")),
        })
    }

    /// Which selectors the metric makes sense for.
    fn fits(self, selector: &Selector) -> bool {
        match selector {
            Selector::Calls { .. } => matches!(
                self,
                Metric::Percentile(_)
                    | Metric::AvgLatency
                    | Metric::MaxLatency
                    | Metric::ErrorRate
                    | Metric::Throughput
            ),
            Selector::Server { .. } => {
                matches!(
                    self,
                    Metric::RssPeak | Metric::RssSlope | Metric::CpuPerOp | Metric::ThreadsPeak | Metric::FdsPeak
                )
            }
            Selector::Client { .. } => matches!(self, Metric::CpuPerOp | Metric::RssPeak),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

impl Comparison {
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Comparison::Less => observed < limit,
            Comparison::LessOrEqual => observed <= limit,
            Comparison::Greater => observed > limit,
            Comparison::GreaterOrEqual => observed >= limit,
            Comparison::Equal => observed == limit,
            Comparison::NotEqual => observed != limit,
        }
    }
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The key as written, for reports.
    pub key: String,
    /// The expression as written, for reports.
    pub expression: String,
    pub selector: Selector,
    pub metric: Metric,
    pub comparison: Comparison,
    /// In the metric's base unit: µs, a fraction, bytes, per second or a count.
    pub limit: f64,
    /// Stop the run as soon as this threshold fails (checked after each repetition).
    pub abort_on_fail: bool,
    /// Not checked for aborting before this long into the run.
    pub delay: std::time::Duration,
}

/// A threshold as written: a bare expression or one with options.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawThreshold {
    Expression(String),
    Detailed(DetailedThreshold),
}

/// A threshold with options (k6's object form).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetailedThreshold {
    /// The expression, e.g. `p(95)<50ms`.
    #[schemars(example = &"p(95)<50ms")]
    pub threshold: String,
    /// Stop the run at the first repetition that breaks it (after `delay`).
    #[serde(default)]
    pub abort_on_fail: bool,
    /// With `abort_on_fail`: how long into the run the threshold may be broken without aborting.
    #[serde(default)]
    pub delay: Option<HumanDuration>,
}

pub type RawThresholds = BTreeMap<String, Vec<RawThreshold>>;

/// Parses every threshold; errors name the key and the expression.
pub fn parse_all(raw: &RawThresholds) -> Result<Vec<Threshold>, String> {
    let mut out = Vec::new();
    for (key, list) in raw {
        let selector = parse_selector(key).map_err(|e| format!("field `thresholds.\"{key}\"`: {e}"))?;
        for (i, t) in list.iter().enumerate() {
            let (expr, abort_on_fail, delay) = match t {
                RawThreshold::Expression(e) => (e.as_str(), false, Default::default()),
                RawThreshold::Detailed(d) => {
                    (d.threshold.as_str(), d.abort_on_fail, d.delay.map(|d| d.0).unwrap_or_default())
                }
            };
            let at = || format!("field `thresholds.\"{key}\"[{i}]`");
            let (metric, comparison, limit) = parse_expression(expr).map_err(|e| format!("{}: `{expr}`: {e}", at()))?;
            if !metric.fits(&selector) {
                return Err(format!("{}: `{expr}`: this metric does not apply to `{key}`", at()));
            }
            out.push(Threshold {
                key: key.clone(),
                expression: expr.to_string(),
                selector: selector.clone(),
                metric,
                comparison,
                limit,
                abort_on_fail,
                delay,
            });
        }
    }
    Ok(out)
}

fn parse_selector(key: &str) -> Result<Selector, String> {
    let (name, tags) = match key.split_once('{') {
        Some((n, rest)) => (n.trim(), rest.strip_suffix('}').ok_or("a `{` needs its closing `}`")?),
        None => (key.trim(), ""),
    };
    let mut tool = None;
    let mut scenario = None;
    for tag in tags.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (k, v) = tag.split_once(':').ok_or_else(|| format!("tag `{tag}` should read name:value"))?;
        match k.trim() {
            "tool" if name == "tools/call" => tool = Some(v.trim().to_string()),
            "scenario" => scenario = Some(v.trim().to_string()),
            other => return Err(format!("unknown tag `{other}`")),
        }
    }
    match name {
        "tools/call" => Ok(Selector::Calls { tool, scenario }),
        "server" => Ok(Selector::Server { scenario }),
        "client" => Ok(Selector::Client { scenario }),
        other => Err(format!("unknown selector `{other}`; use tools/call, tools/call{{tool:NAME}}, server or client")),
    }
}

fn parse_expression(expr: &str) -> Result<(Metric, Comparison, f64), String> {
    const OPS: [(&str, Comparison); 6] = [
        ("<=", Comparison::LessOrEqual),
        (">=", Comparison::GreaterOrEqual),
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
        ("<", Comparison::Less),
        (">", Comparison::Greater),
    ];
    let (at, op, cmp) = OPS
        .iter()
        .filter_map(|(op, cmp)| expr.find(op).map(|at| (at, *op, *cmp)))
        .min_by_key(|(at, op, _)| (*at, std::cmp::Reverse(op.len())))
        .ok_or("expected `metric<value` (or <=, >, >=, ==, !=)")?;
    let metric = Metric::parse(expr[..at].trim())?;
    let limit = parse_value(expr[at + op.len()..].trim(), metric.quantity())?;
    Ok((metric, cmp, limit))
}

/// A value in the metric's base unit.
fn parse_value(text: &str, quantity: Quantity) -> Result<f64, String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(text.len());
    let (number, unit) = (text[..split].trim(), text[split..].trim());
    let n: f64 = number.parse().map_err(|_| format!("`{text}` is not a number with a unit"))?;
    let factor = match (quantity, unit) {
        (Quantity::Duration, "us" | "µs") => 1.0,
        (Quantity::Duration, "ms") => 1e3,
        (Quantity::Duration, "s") => 1e6,
        (Quantity::Ratio, "%") => 0.01,
        (Quantity::Ratio, "") => 1.0,
        (Quantity::Bytes | Quantity::BytesPerSecond, u) => {
            let u = if quantity == Quantity::BytesPerSecond {
                u.strip_suffix("/s").ok_or("give bytes per second, e.g. 1MB/s")?
            } else {
                u
            };
            match u {
                "B" => 1.0,
                "KB" => 1e3,
                "MB" => 1e6,
                "GB" => 1e9,
                "KiB" => 1024.0,
                "MiB" => 1024.0 * 1024.0,
                "GiB" => 1024.0 * 1024.0 * 1024.0,
                _ => return Err(format!("`{text}`: give a size unit (B, KB, MB, GB, KiB, MiB, GiB)")),
            }
        }
        (Quantity::PerSecond, "/s" | "") => 1.0,
        (Quantity::Count, "") => 1.0,
        (Quantity::Duration, _) => return Err(format!("`{text}`: give a time unit (us, ms, s)")),
        (q, _) => return Err(format!("`{text}`: unexpected unit for a {}", quantity_name(q))),
    };
    Ok(n * factor)
}

fn quantity_name(q: Quantity) -> &'static str {
    match q {
        Quantity::Duration => "duration",
        Quantity::Ratio => "ratio",
        Quantity::Bytes => "size",
        Quantity::BytesPerSecond => "rate of bytes",
        Quantity::PerSecond => "rate",
        Quantity::Count => "count",
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.expression)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(key: &str, expr: &str) -> Result<Threshold, String> {
        let raw = RawThresholds::from([(key.to_string(), vec![RawThreshold::Expression(expr.to_string())])]);
        parse_all(&raw).map(|mut v| v.remove(0))
    }

    #[test]
    fn k6_expressions_parse_into_base_units() {
        let t = one("tools/call{tool:lookup}", "p(95)<50ms").unwrap();
        assert_eq!(t.selector, Selector::Calls { tool: Some("lookup".into()), scenario: None });
        assert_eq!((t.metric, t.comparison, t.limit), (Metric::Percentile(95.0), Comparison::Less, 50_000.0));
        assert_eq!(one("tools/call", "error_rate<1%").unwrap().limit, 0.01);
        assert_eq!(one("server", "rss_peak<200MB").unwrap().limit, 200e6);
        assert_eq!(one("server", "cpu_per_op<=200us").unwrap().comparison, Comparison::LessOrEqual);
        assert_eq!(one("server{scenario:soak}", "rss_slope<1MiB/s").unwrap().limit, 1024.0 * 1024.0);
        assert_eq!(one("tools/call", "throughput>=1000/s").unwrap().limit, 1000.0);
        assert_eq!(one("tools/call", "p(99.9) < 1.5s").unwrap().metric, Metric::Percentile(99.9));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(one("tools/call", "p(95)<50").unwrap_err().contains("give a time unit"));
        assert!(one("tools/call", "p95<50ms").unwrap_err().contains("unknown metric `p95`"));
        assert!(one("tools/call", "rss_peak<1MB").unwrap_err().contains("does not apply to `tools/call`"));
        assert!(one("tool/call", "p(95)<1ms").unwrap_err().contains("unknown selector `tool/call`"));
        assert!(one("server{tool:x}", "rss_peak<1MB").unwrap_err().contains("unknown tag `tool`"));
        assert!(one("server", "rss_peak<1 parsec").unwrap_err().contains("size unit"));
        assert!(one("tools/call", "p(95)").unwrap_err().contains("expected `metric<value`"));
        let e = one("tools/call", "p(150)<1ms").unwrap_err();
        assert!(e.starts_with("field `thresholds.\"tools/call\"[0]`"), "{e}");
    }

    #[test]
    fn comparisons_hold_as_written() {
        assert!(Comparison::Less.holds(1.0, 2.0) && !Comparison::Less.holds(2.0, 2.0));
        assert!(Comparison::GreaterOrEqual.holds(2.0, 2.0));
        assert!(Comparison::NotEqual.holds(1.0, 2.0));
    }
}
