//! The HTML report: one self-contained page (inline CSS and SVG, no scripts, no network) with
//! the verdict, every metric, thresholds, a latency chart per scenario and a forest plot of the
//! changes against their minimum effects. Text reaches the
//! page only through tera's autoescaping or [`super::junit::xml`].

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::junit::xml;
use super::{Report, ThresholdView, comment, format, method_line, metric_row};
use crate::stats::{Metric, MetricComparison, MetricVerdict};

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
    /// Every tested metric's change and interval against its ± minimum-effect band.
    forest: Option<String>,
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
        title: format!(
            "mcp-perfcheck: {}",
            report.head.git_sha.as_deref().map_or("report", crate::results::short_commit)
        ),
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
        forest: forest_svg(&c.metrics),
        notes: c.notes.clone(),
        method: method_line(c),
    }
}

/// A forest plot: per metric, its 95% interval and change, in units of its own minimum
/// effect (so ratios and percentage points share one axis, and the grey band is ±1 for
/// every row), coloured by verdict: red regression, green improvement, amber a comparison
/// it keeps undecided, grey the rest.
fn forest_svg(metrics: &[MetricComparison]) -> Option<String> {
    let rows: Vec<&MetricComparison> =
        metrics.iter().filter(|m| m.min_effect > 0.0 && m.change.is_some() && m.ci_low.is_some()).collect();
    if rows.is_empty() {
        return None;
    }
    let (row_h, plot_w) = (22.0, BAR_W);
    let height = 44.0 + row_h * rows.len() as f64 + 20.0;
    let width = LABEL_W + plot_w + 170.0;
    let x = |v: f64| LABEL_W + format::forest_position(v) * plot_w;
    let (band_l, band_r, zero) = (x(-1.0), x(1.0), x(0.0));
    let bottom = 36.0 + row_h * rows.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n<title>every change with its 95% interval against the minimum effect</title>\n<text x=\"0\" y=\"16\" font-size=\"14\" font-weight=\"bold\">Changes and 95% intervals, in minimum effects (grey band: ±1; the axis compresses beyond)</text>\n<rect class=\"band\" x=\"{band_l:.1}\" y=\"28\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#eaeef2\"/>\n<line x1=\"{zero:.1}\" y1=\"28\" x2=\"{zero:.1}\" y2=\"{bottom:.1}\" stroke=\"#8c959f\" stroke-dasharray=\"3 3\"/>\n",
        band_r - band_l,
        bottom - 28.0,
    );
    for k in [-40.0, -4.0, -1.0, 1.0, 4.0, 40.0] {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#57606a\">{}{}</text>",
            x(k),
            bottom + 14.0,
            if k > 0.0 { "+" } else { "−" },
            k.abs()
        );
    }
    for (i, m) in rows.iter().enumerate() {
        let y = 40.0 + row_h * i as f64;
        let unit = |v: f64| v / m.min_effect;
        let (low, high, change) =
            (unit(m.ci_low.unwrap_or(0.0)), unit(m.ci_high.unwrap_or(0.0)), unit(m.change.unwrap_or(0.0)));
        let colour = match m.verdict {
            MetricVerdict::Regression if m.gates => "#d1242f",
            MetricVerdict::Improvement if m.gates => "#1a7f37",
            _ if m.gates && m.could_regress() => "#bf8700",
            _ => "#6e7781",
        };
        let label = format!("{} {} {}", m.scenario, m.operation.trim_start_matches("tools/call:"), m.metric.label());
        let cut = if low < -format::FOREST_REACH || high > format::FOREST_REACH { " (cut at the axis)" } else { "" };
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{:.1}\">{}</text><line class=\"interval\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"4\"/><circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}{cut}</text>",
            y + 4.0,
            xml(&label),
            x(low),
            x(high),
            x(change),
            LABEL_W + plot_w + 8.0,
            y + 4.0,
            xml(m.verdict.label()),
        );
    }
    svg.push_str("</svg>");
    Some(svg)
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
