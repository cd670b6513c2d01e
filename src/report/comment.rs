//! The markdown report: the pull-request comment and the job summary. One line that says
//! whether the change is safe, the significant changes, everything else folded, thresholds,
//! resources, server internals, mermaid charts GitHub draws, and the method. Kept under
//! GitHub's comment limit by dropping detail in a fixed order, each drop noted.

use std::collections::BTreeMap;

use serde::Serialize;

use super::format;
use super::{Report, ThresholdView, method_line, metric_row};
use crate::results::{Results, ScenarioResult};
use crate::stats::{Metric, MetricComparison, MetricVerdict, Verdict};

/// The hidden line by which the tool finds its own comment again.
pub const MARKER: &str = "<!-- mcp-perfcheck:report -->";

/// The marker of the comment for status context `context`: [`MARKER`] for the default
/// context (so comments posted before contexts had their own are still found), else one
/// naming the context, so that a matrix of jobs keeps one comment each. Characters a context
/// could use to end the HTML comment early become `-`.
pub fn marker_for(context: &str) -> String {
    if context == "mcp-perfcheck" {
        return MARKER.to_string();
    }
    let safe: String = context
        .chars()
        .take(100)
        .map(|c| if c.is_ascii_alphanumeric() || "._/ ()[]:+=@".contains(c) { c } else { '-' })
        .collect();
    format!("<!-- mcp-perfcheck:report context={safe} -->")
}

/// GitHub rejects comment bodies over 65,536 characters; this leaves room for the marker and
/// for a workflow that appends a line.
pub const MAX_CHARS: usize = 65_000;

/// Charts per comment, and categories per chart: mermaid's xychart grows unreadable beyond.
const MAX_CHARTS: usize = 6;
const MAX_CATEGORIES: usize = 12;

#[derive(Serialize)]
pub(super) struct CommentView<'a> {
    marker: &'static str,
    headline: String,
    sides: String,
    changed: Vec<BTreeMap<&'a str, String>>,
    /// How many base commits the changed rows' trend column draws (0: no column).
    trend_commits: usize,
    folded: Vec<BTreeMap<&'a str, String>>,
    folded_summary: String,
    thresholds: Vec<ThresholdView>,
    resources: Vec<BTreeMap<&'a str, String>>,
    internals: Vec<String>,
    resilience: Vec<BTreeMap<&'a str, String>>,
    charts: Vec<String>,
    notes: Vec<String>,
    method: String,
    environment: String,
    run_url: Option<String>,
    /// What was left out to fit the limit.
    omitted: Vec<String>,
}

/// The first line: an emoji a reader sees at a glance, the verdict, base and head.
pub fn headline(report: &Report<'_>) -> String {
    let c = report.comparison;
    let n = c.regressions();
    let failed_thresholds = report.head.thresholds.iter().filter(|t| !t.held).count();
    let plural = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
    let failure = [report.head, report.base].iter().find_map(|r| r.failure.as_ref().map(|f| f.kind));
    let (emoji, what) = match c.verdict {
        Verdict::Error if failure.is_some_and(|k| k != crate::results::FailureKind::Interrupted) => {
            ("🔥", "server failed".to_string())
        }
        Verdict::Error => ("🔥", "the runs could not be compared".to_string()),
        Verdict::Fail if c.advisory => ("⚠️", format!("{} on different machines (advisory)", plural(n, "regression"))),
        Verdict::Fail => ("❌", plural(n, "regression")),
        _ if failed_thresholds > 0 => ("❌", plural(failed_thresholds, "failed threshold")),
        Verdict::Inconclusive => ("⚠️", format!("inconclusive: {}", super::undecided_line(c, &format::markdown))),
        Verdict::Pass if c.environment_mismatch.is_some() => {
            ("⚠️", "no regression, but the machines differ".to_string())
        }
        Verdict::Pass => {
            let mut also = Vec::new();
            for (verdict, what) in
                [(MetricVerdict::Improvement, "improvement"), (MetricVerdict::Negligible, "negligible change")]
            {
                if c.count(verdict) > 0 {
                    also.push(plural(c.count(verdict), what));
                }
            }
            match also.is_empty() {
                true => ("✅", "no significant change".to_string()),
                false => ("✅", format!("no regression ({})", also.join(", "))),
            }
        }
    };
    let also = if n > 0 && failed_thresholds > 0 {
        format!(", {}", plural(failed_thresholds, "failed threshold"))
    } else {
        String::new()
    };
    format!("{emoji} mcp-perfcheck: {what}{also} · base {} → head {}", short_sha(&c.base), short_sha(&c.head))
}

fn short_sha(side: &crate::stats::RunInfo) -> String {
    match side.git_sha.as_deref() {
        Some(sha) => format!("`{}`", sha.chars().take(7).filter(char::is_ascii_alphanumeric).collect::<String>()),
        None => "(no commit)".to_string(),
    }
}

/// How much of the view to keep: each level drops more to fit the limit.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
pub(super) enum Detail {
    Full,
    NoFolded,
    NoCharts,
    /// Keep at most this many changed rows.
    Rows(usize),
}

pub(super) fn view<'a>(report: &Report<'a>, detail: Detail) -> CommentView<'a> {
    let c = report.comparison;
    let cell = format::markdown;
    let mut changed = Vec::new();
    let mut folded = Vec::new();
    // Regressions first, then what could still be one, then improvements; the rest folded.
    let rank = |m: &MetricComparison| match m.verdict {
        MetricVerdict::Regression if m.gates => 0,
        _ if m.gates && m.could_regress() => 1,
        MetricVerdict::Regression => 2,
        MetricVerdict::Improvement => 2,
        MetricVerdict::Negligible => 3,
        MetricVerdict::Inconclusive => 4,
        MetricVerdict::Unchanged => 5,
    };
    let mut ordered: Vec<_> = c.metrics.iter().collect();
    ordered.sort_by_key(|m| rank(m));
    let mut trend_commits = 0;
    for m in ordered {
        let mut row = metric_row(m, &cell);
        if rank(m) <= 2 {
            let trend = report.trends.and_then(|t| t.line(m));
            trend_commits = trend_commits.max(trend.as_ref().map_or(0, |t| t.chars().count().saturating_sub(4)));
            row.insert("trend", trend.unwrap_or_default());
            changed.push(row)
        } else {
            folded.push(row)
        }
    }
    let folded_summary = [(3, "negligible"), (4, "undecided on the better side or not gating"), (5, "unchanged")]
        .iter()
        .map(|(r, what)| (c.metrics.iter().filter(|m| rank(m) == *r).count(), what))
        .filter(|(k, _)| *k > 0)
        .map(|(k, what)| format!("{k} {what}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut omitted = Vec::new();
    if detail >= Detail::NoFolded && !folded.is_empty() {
        omitted.push(format!("the {} metrics without a significant change", folded.len()));
        folded.clear();
    }
    let mut charts = charts(report);
    if detail >= Detail::NoCharts && !charts.is_empty() {
        omitted.push("the charts".into());
        charts.clear();
    }
    if let Detail::Rows(keep) = detail
        && changed.len() > keep
    {
        omitted.push(format!("{} of the {} changed metrics", changed.len() - keep, changed.len()));
        changed.truncate(keep);
    }
    let env = &report.head.environment;
    CommentView {
        marker: MARKER,
        headline: headline(report),
        sides: sides(report),
        changed,
        trend_commits,
        folded,
        folded_summary,
        thresholds: super::threshold_views(report.head, &cell),
        resources: resources(report),
        internals: internals(report.head),
        resilience: resilience(report),
        charts,
        notes: c.notes.iter().map(|n| cell(n)).collect(),
        method: method_line(c),
        environment: cell(&format!(
            "{} × {} cores, {}{}",
            env.cpu_model.as_deref().unwrap_or("unknown CPU"),
            env.cores,
            env.os,
            env.kernel.as_deref().map(|k| format!(" {k}")).unwrap_or_default()
        )),
        run_url: report.run_url.filter(|u| u.starts_with("https://") || u.starts_with("http://")).map(link_target),
        omitted,
    }
}

/// A URL made safe inside `[run](…)`: no characters that end the link or start markup.
fn link_target(url: &str) -> String {
    url.chars().filter(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '<' | '>' | '"' | '`')).collect()
}

fn sides(report: &Report<'_>) -> String {
    let mut line = String::new();
    if let Some(s) = &report.head.server {
        line.push_str(&format::markdown(&format!("{} {}", s.name, s.version)));
        line.push_str(" · ");
    }
    let reps = |r: &Results| r.scenarios.iter().map(|s| s.repetitions.len()).max().unwrap_or(0);
    line.push_str(&format!("{} base and {} head repetitions", reps(report.base), reps(report.head)));
    if let Some(l) = report.comparison.look {
        line.push_str(&format!(" (look {})", l.look));
    }
    line
}

/// Per scenario: base → head peak RSS, CPU per call, open fds and threads (peaks over the
/// repetitions), when the run launched the server.
fn resources<'a>(report: &Report<'a>) -> Vec<BTreeMap<&'a str, String>> {
    let mut rows = Vec::new();
    for hs in &report.head.scenarios {
        let Some(h) = peak_resources(hs) else { continue };
        let b = report.base.scenario(&hs.name).and_then(peak_resources);
        let pair = |base: Option<String>, head: String| match base {
            Some(b) if b != head => format!("{b} → {head}"),
            _ => head,
        };
        rows.push(BTreeMap::from([
            ("scenario", format::markdown(&hs.name)),
            ("rss", pair(b.as_ref().map(|b| format::bytes(b.rss)), format::bytes(h.rss))),
            ("cpu", pair(b.as_ref().map(|b| format::micros(b.cpu_per_call)), format::micros(h.cpu_per_call))),
            ("fds", pair(b.as_ref().map(|b| b.fds.to_string()), h.fds.to_string())),
            ("threads", pair(b.as_ref().map(|b| b.threads.to_string()), h.threads.to_string())),
        ]));
    }
    rows
}

/// Per scenario and figure: the server's cache and breakers, and what each fault did, base
/// and head.
fn resilience<'a>(report: &Report<'a>) -> Vec<BTreeMap<&'a str, String>> {
    let mut rows = Vec::new();
    for hs in &report.head.scenarios {
        for [scenario, figure, base, head] in super::resilience::rows(report.base.scenario(&hs.name), hs) {
            rows.push(BTreeMap::from([
                ("scenario", format::markdown(&scenario)),
                ("figure", format::markdown(&figure)),
                ("base", base),
                ("head", head),
            ]));
        }
    }
    rows
}

struct Peaks {
    rss: u64,
    cpu_per_call: f64,
    fds: u64,
    threads: u64,
}

fn peak_resources(s: &ScenarioResult) -> Option<Peaks> {
    let sampled: Vec<_> = s.repetitions.iter().filter_map(|r| r.server_resources.as_ref()).collect();
    if sampled.is_empty() {
        return None;
    }
    let cpu: Vec<f64> = sampled.iter().map(|r| r.cpu_us_per_call).filter(|c| c.is_finite() && *c > 0.0).collect();
    Some(Peaks {
        rss: sampled.iter().map(|r| r.rss_peak_bytes).max().unwrap_or(0),
        cpu_per_call: if cpu.is_empty() { 0.0 } else { cpu.iter().sum::<f64>() / cpu.len() as f64 },
        fds: sampled.iter().map(|r| r.open_fds_peak).max().unwrap_or(0),
        threads: sampled.iter().map(|r| r.threads_peak).max().unwrap_or(0),
    })
}

/// What the server's own metrics said over the head run: cache hit ratios derived from
/// `*_hits*`/`*_misses*` counter pairs, then the counters that moved (summed over repetitions).
fn internals(head: &Results) -> Vec<String> {
    let mut counters: BTreeMap<&str, f64> = BTreeMap::new();
    for s in &head.scenarios {
        for m in s.repetitions.iter().filter_map(|r| r.server_metrics.as_ref()) {
            for (name, v) in &m.counters {
                *counters.entry(name.as_str()).or_default() += v;
            }
        }
    }
    let mut lines = Vec::new();
    for (name, hits) in &counters {
        if let Some(prefix) = name.split_once("hits").map(|(p, _)| p) {
            let misses_name = name.replacen("hits", "misses", 1);
            if let Some(misses) = counters.get(misses_name.as_str())
                && hits + misses > 0.0
            {
                lines.push(format::markdown(&format!(
                    "{}hit ratio: {:.1}% ({hits:.0} hits, {misses:.0} misses)",
                    prefix,
                    100.0 * hits / (hits + misses)
                )));
            }
        }
    }
    lines.extend(
        counters.iter().filter(|(_, v)| **v != 0.0).map(|(name, v)| format::markdown(&format!("{name}: +{v:.0}"))),
    );
    lines.truncate(30);
    lines
}

/// Mermaid `xychart-beta` blocks: per scenario the latency percentiles of base (line) and head
/// (bars); for ramps the head's throughput over time; for soaks its RSS over time.
fn charts(report: &Report<'_>) -> Vec<String> {
    let c = report.comparison;
    let mut charts = Vec::new();
    for hs in &report.head.scenarios {
        let rows: Vec<_> = c
            .metrics
            .iter()
            .filter(|m| m.scenario == hs.name && matches!(m.metric, Metric::P50 | Metric::P95 | Metric::P99))
            .filter(|m| m.base.is_some() && m.head.is_some())
            .take(MAX_CATEGORIES)
            .collect();
        if !rows.is_empty() {
            let labels: Vec<String> = rows
                .iter()
                .map(|m| format!("{} {}", m.operation.trim_start_matches("tools/call:"), m.metric.label()))
                .collect();
            let ms = |v: Option<f64>| v.unwrap_or(0.0) / 1000.0;
            charts.push(xychart(
                &format!("{} latency (ms): bars head, line base", hs.name),
                &labels,
                "ms",
                &[
                    ("bar", rows.iter().map(|m| ms(m.head)).collect()),
                    ("line", rows.iter().map(|m| ms(m.base)).collect()),
                ],
            ));
        }
        let series = hs.repetitions.iter().find(|r| !r.series.is_empty()).map(|r| &r.series);
        let Some(series) = series else { continue };
        let points: Vec<_> = thin(series, MAX_CATEGORIES * 2);
        let labels: Vec<String> = points.iter().map(|p| format!("{:.0}s", p.t_s)).collect();
        if hs.executor.starts_with("ramping") || hs.phase.as_deref() == Some("breakpoint") {
            charts.push(xychart(
                &format!("{} throughput over the ramp (calls/s, head)", hs.name),
                &labels,
                "calls/s",
                &[("line", points.iter().map(|p| p.calls_per_s).collect())],
            ));
        }
        if hs.phase.as_deref() == Some("soak") && points.iter().any(|p| p.rss_bytes.is_some()) {
            let mib = |p: &crate::results::SeriesPoint| p.rss_bytes.unwrap_or(0) as f64 / (1024.0 * 1024.0);
            charts.push(xychart(
                &format!("{} server RSS over the soak (MiB, head)", hs.name),
                &labels,
                "MiB",
                &[("line", points.iter().map(|p| mib(p)).collect())],
            ));
        }
    }
    charts.truncate(MAX_CHARTS);
    charts
}

/// At most `n` points, evenly spread, the last included.
fn thin<T>(points: &[T], n: usize) -> Vec<&T> {
    if points.len() <= n {
        return points.iter().collect();
    }
    (0..n).map(|i| &points[(i * (points.len() - 1)) / (n - 1)]).collect()
}

fn xychart(title: &str, labels: &[String], unit: &str, series: &[(&str, Vec<f64>)]) -> String {
    let quoted: Vec<String> = labels.iter().map(|l| format!("\"{}\"", mermaid_text(l))).collect();
    let top = series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0f64, f64::max);
    let mut block = format!(
        "```mermaid\nxychart-beta\n    title \"{}\"\n    x-axis [{}]\n    y-axis \"{}\" 0 --> {}\n",
        mermaid_text(title),
        quoted.join(", "),
        mermaid_text(unit),
        nice_ceiling(top)
    );
    for (kind, values) in series {
        let values: Vec<String> = values.iter().map(|v| format!("{:.3}", v)).collect();
        block.push_str(&format!("    {kind} [{}]\n", values.join(", ")));
    }
    block.push_str("```");
    block
}

/// Text inside a mermaid string: letters, digits and a few marks; the rest becomes a space, so
/// a name cannot close the string, start a directive or leave the code block.
fn mermaid_text(text: &str) -> String {
    let kept: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | ':' | '.' | '_' | '-' | '/' | '(' | ')' | ',') {
                c
            } else {
                ' '
            }
        })
        .take(60)
        .collect();
    kept.trim().to_string()
}

/// A round axis top above `v`: 1, 2 or 5 times a power of ten.
fn nice_ceiling(v: f64) -> String {
    if v <= 0.0 || !v.is_finite() {
        return "1".into();
    }
    let magnitude = 10f64.powf(v.log10().floor());
    let top = [1.0, 2.0, 5.0, 10.0].iter().map(|k| k * magnitude).find(|t| *t >= v * 1.05).unwrap_or(10.0 * magnitude);
    let text = format!("{top:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_strings_cannot_escape() {
        assert_eq!(mermaid_text("a\"] ; click x call alert()"), "a     click x call alert()");
        assert_eq!(mermaid_text("```\n%%{init}%%"), "init");
        assert_eq!(nice_ceiling(0.83), "1");
        assert_eq!(nice_ceiling(1.2), "2");
        assert_eq!(nice_ceiling(4100.0), "5000");
    }

    #[test]
    fn thinning_keeps_the_ends() {
        let v: Vec<u32> = (0..100).collect();
        let t = thin(&v, 5);
        assert_eq!(t.iter().map(|x| **x).collect::<Vec<_>>(), [0, 24, 49, 74, 99]);
    }
}

#[cfg(test)]
mod marker_tests {
    use super::*;

    #[test]
    fn each_context_has_its_own_marker_and_none_contains_another() {
        assert_eq!(marker_for("mcp-perfcheck"), MARKER);
        let (a, b) = (marker_for("perf (ubuntu)"), marker_for("perf (macos)"));
        assert_eq!(a, "<!-- mcp-perfcheck:report context=perf (ubuntu) -->");
        for (x, y) in [(&a, &b), (&b, &a)] {
            assert!(!x.contains(y.as_str()) && !x.contains(MARKER) && !MARKER.contains(x.as_str()));
        }
        assert_eq!(marker_for("x --> <b>"), "<!-- mcp-perfcheck:report context=x --- -b- -->");
    }
}
