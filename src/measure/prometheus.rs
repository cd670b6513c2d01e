//! Scraping a server's Prometheus `/metrics` during a repetition: counters become deltas over
//! the measured window, gauges a series with their range. Histograms and summaries are left
//! for a later version (their `_sum`/`_count` lines arrive as plain samples and are kept).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A scrape must answer within this, or it counts as failed (the load goes on regardless).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most points kept per gauge.
const MAX_GAUGE_POINTS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// One scrape: `name{labels}` → (kind, value).
pub type Scrape = BTreeMap<String, (MetricKind, f64)>;

/// Reads one metrics endpoint.
pub struct Scraper {
    client: reqwest::Client,
    url: String,
}

impl Scraper {
    pub fn new(url: &str) -> Scraper {
        let client = reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build().unwrap_or_default();
        Scraper { client, url: url.to_string() }
    }

    pub async fn scrape(&self) -> Result<Scrape, String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| format!("GET {}: {e}", self.url))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {}: HTTP {status}", self.url));
        }
        let body = response.text().await.map_err(|e| format!("GET {}: {e}", self.url))?;
        parse(&body)
    }
}

/// Parses the Prometheus text format into counters and gauges.
pub fn parse(body: &str) -> Result<Scrape, String> {
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).map_err(|e| format!("not the Prometheus text format: {e}"))?;
    let mut out = Scrape::new();
    for s in parsed.samples {
        let (kind, value) = match s.value {
            prometheus_parse::Value::Counter(v) => (MetricKind::Counter, v),
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => (MetricKind::Gauge, v),
            prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => continue,
        };
        let labels = s.labels.to_string();
        let key = if labels.is_empty() { s.metric } else { format!("{}{{{labels}}}", s.metric) };
        out.insert(key, (kind, value));
    }
    Ok(out)
}

/// What the server's own metrics said over a measured window.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerMetrics {
    pub url: String,
    pub scrapes: u64,
    pub scrape_errors: u64,
    /// The last failed scrape's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Counter increase from the first to the last successful scrape.
    pub counters: BTreeMap<String, f64>,
    pub gauges: BTreeMap<String, GaugeSeries>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaugeSeries {
    pub first: f64,
    pub last: f64,
    pub min: f64,
    pub max: f64,
    /// `[seconds into the window, value]`, at most 120 points.
    pub points: Vec<[f64; 2]>,
}

/// Summarises timed scrapes (`t_s` = seconds into the measured window).
pub fn summarise(url: &str, scrapes: &[(f64, Result<Scrape, String>)]) -> ServerMetrics {
    let ok: Vec<(f64, &Scrape)> = scrapes.iter().filter_map(|(t, r)| r.as_ref().ok().map(|s| (*t, s))).collect();
    let mut m = ServerMetrics {
        url: url.to_string(),
        scrapes: scrapes.len() as u64,
        scrape_errors: (scrapes.len() - ok.len()) as u64,
        last_error: scrapes.iter().rev().find_map(|(_, r)| r.as_ref().err().cloned()),
        ..Default::default()
    };
    let (Some((_, first)), Some((_, last))) = (ok.first(), ok.last()) else { return m };
    for (key, (kind, value)) in last.iter() {
        match kind {
            MetricKind::Counter => {
                // A counter that appeared mid-window started from zero.
                let start = first.get(key).map_or(0.0, |(_, v)| *v);
                // A restart resets counters; the increase is then the value since the reset.
                m.counters.insert(key.clone(), if *value >= start { value - start } else { *value });
            }
            MetricKind::Gauge => {
                let points: Vec<[f64; 2]> = ok.iter().filter_map(|(t, s)| s.get(key).map(|(_, v)| [*t, *v])).collect();
                let step = points.len().div_ceil(MAX_GAUGE_POINTS).max(1);
                let values = points.iter().map(|p| p[1]);
                m.gauges.insert(
                    key.clone(),
                    GaugeSeries {
                        first: points.first().map_or(*value, |p| p[1]),
                        last: *value,
                        min: values.clone().fold(f64::INFINITY, f64::min),
                        max: values.fold(f64::NEG_INFINITY, f64::max),
                        points: points.into_iter().step_by(step).collect(),
                    },
                );
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "# HELP mcp_cache_requests_total Cache lookups.\n\
        # TYPE mcp_cache_requests_total counter\n\
        mcp_cache_requests_total{cache=\"items\",result=\"hit\"} 10\n\
        mcp_cache_requests_total{result=\"miss\",cache=\"items\"} 4\n\
        # TYPE process_resident_memory_bytes gauge\n\
        process_resident_memory_bytes 1048576\n";

    #[test]
    fn counters_and_gauges_parse_with_sorted_labels() {
        let s = parse(BODY).unwrap();
        assert_eq!(s["mcp_cache_requests_total{cache=\"items\",result=\"hit\"}"], (MetricKind::Counter, 10.0));
        assert_eq!(s["mcp_cache_requests_total{cache=\"items\",result=\"miss\"}"].1, 4.0);
        assert_eq!(s["process_resident_memory_bytes"], (MetricKind::Gauge, 1048576.0));
    }

    #[test]
    fn counters_become_deltas_and_gauges_series() {
        let later = BODY.replace("} 10", "} 25").replace("1048576", "2097152");
        let scrapes = vec![(0.0, parse(BODY)), (1.0, Err("GET: refused".to_string())), (2.0, parse(&later))];
        let m = summarise("http://127.0.0.1:1/metrics", &scrapes);
        assert_eq!((m.scrapes, m.scrape_errors), (3, 1));
        assert_eq!(m.last_error.as_deref(), Some("GET: refused"));
        assert_eq!(m.counters["mcp_cache_requests_total{cache=\"items\",result=\"hit\"}"], 15.0);
        assert_eq!(m.counters["mcp_cache_requests_total{cache=\"items\",result=\"miss\"}"], 0.0);
        let g = &m.gauges["process_resident_memory_bytes"];
        assert_eq!((g.first, g.last, g.min, g.max), (1048576.0, 2097152.0, 1048576.0, 2097152.0));
        assert_eq!(g.points, vec![[0.0, 1048576.0], [2.0, 2097152.0]]);
    }

    #[test]
    fn nothing_scraped_is_all_errors() {
        let m = summarise("u", &[(0.0, Err("x".into()))]);
        assert_eq!((m.scrapes, m.scrape_errors), (1, 1));
        assert!(m.counters.is_empty() && m.gauges.is_empty());
    }
}
