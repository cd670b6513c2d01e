//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, no network) with
//! the verdict, every metric, thresholds and a latency chart per scenario. Text reaches the
//! page only through tera's autoescaping or [`super::junit::xml`].

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::junit::xml;
use super::{Report, ThresholdView, comment, format, method_line, metric_row};
use crate::stats::{Metric, MetricComparison};

#[derive(Serialize)]
pub(super) struct HtmlView<'a> {
    title: String,
    headline: String,
    failing: bool,
    sides: String,
    metrics: Vec<BTreeMap<&'a str, String>>,
    thresholds: Vec<ThresholdView>,
    /// Complete `<svg>` elements, built here with every text escaped.
    charts: Vec<String>,
    notes: Vec<String>,
    method: String,
}

pub(super) fn view<'a>(report: &Report<'a>) -> HtmlView<'a> {
    let c = report.comparison;
    let plain = |t: &str| t.to_string();
    let mut scenarios: Vec<&str> = Vec::new();
    for m in &c.metrics {
        if !scenarios.contains(&m.scenario.as_str()) {
            scenarios.push(&m.scenario);
        }
    }
    let headline = comment::headline(report);
    HtmlView {
        title: format!("mcp-perfcheck: {}", report.head.git_sha.as_deref().map_or("report", |s| &s[..s.len().min(12)])),
        failing: headline.starts_with('❌') || headline.starts_with('🔥'),
        // Without the emoji (a page has colour for that, and not every system has the font).
        headline: headline.split_once(' ').map_or(headline.as_str(), |(_, rest)| rest).replace('`', ""),
        sides: format!(
            "base {} · head {}",
            c.base.git_sha.as_deref().unwrap_or("(no commit)"),
            c.head.git_sha.as_deref().unwrap_or("(no commit)")
        ),
        metrics: c.metrics.iter().map(|m| metric_row(m, &plain)).collect(),
        thresholds: super::threshold_views(report.head, &plain),
        charts: scenarios
            .iter()
            .filter_map(|s| {
                let rows: Vec<&MetricComparison> = c
                    .metrics
                    .iter()
                    .filter(|m| m.scenario == *s && matches!(m.metric, Metric::P50 | Metric::P95 | Metric::P99))
                    .filter(|m| m.base.is_some() && m.head.is_some())
                    .collect();
                (!rows.is_empty()).then(|| latency_svg(s, &rows))
            })
            .collect(),
        notes: c.notes.clone(),
        method: method_line(c),
    }
}

const LABEL_W: f64 = 260.0;
const BAR_W: f64 = 420.0;
const ROW_H: f64 = 34.0;

/// Horizontal bars per operation and percentile: base (grey) above head (blue), to one scale.
fn latency_svg(scenario: &str, rows: &[&MetricComparison]) -> String {
    let top = rows.iter().flat_map(|m| [m.base, m.head]).flatten().fold(0.0f64, f64::max).max(1.0);
    let height = 40.0 + ROW_H * rows.len() as f64 + 24.0;
    let width = LABEL_W + BAR_W + 110.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n<title>{} latency, base and head</title>\n<text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"bold\">{} — latency (grey: base, blue: head)</text>\n",
        xml(scenario),
        xml(scenario)
    );
    for (i, m) in rows.iter().enumerate() {
        let y = 32.0 + ROW_H * i as f64;
        let label = format!("{} {}", m.operation.trim_start_matches("tools/call:"), m.metric.label());
        let _ = writeln!(svg, "<text x=\"0\" y=\"{:.1}\">{}</text>", y + 18.0, xml(&label));
        for (k, (value, colour)) in [(m.base, "#9e9e9e"), (m.head, "#1f6feb")].into_iter().enumerate() {
            let v = value.unwrap_or(0.0);
            let w = (v / top * BAR_W).max(1.0);
            let by = y + 4.0 + 13.0 * k as f64;
            let _ = writeln!(
                svg,
                "<rect class=\"bar\" x=\"{LABEL_W}\" y=\"{by:.1}\" width=\"{w:.1}\" height=\"12\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                LABEL_W + w + 4.0,
                by + 10.0,
                xml(&format::micros(v))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}
