//! A history in every format: text and markdown (the change points newest first, a trend line
//! a series with its sparkline, the plans), JSON (the serde form), and the HTML dashboard (a
//! panel a series: the commits' values and spread, segment levels, change points marked with
//! their commits; inline SVG, no script, nothing fetched). Names come from results files, which
//! a server chose: each format escapes them its own way, then the whole passes `report::inert`.

use std::fmt::Write as _;

use serde::Serialize;
use tera::Tera;

use super::capacity::describe_slo;
use super::{Change, History, Series};
use crate::report::format::{markdown, p_value, percent, points, sparkline};
use crate::report::{Format, inert, xml_text};
use crate::results::{prefix, short_commit};
use crate::stats::Scale;

/// How many of the newest commits a trend line's sparkline shows.
pub const SPARK_POINTS: usize = 40;

/// `history` in `format` (JUnit has no history form).
pub fn render(history: &History, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Text => inert::document(&text(history)),
        Format::Markdown => inert::document(&markdown_doc(history)),
        Format::Json => inert::json(&(serde_json::to_string_pretty(history)? + "\n")),
        Format::Html => inert::document(&dashboard(history)?),
        Format::Junit => anyhow::bail!("a history has no JUnit form: use text, markdown, json or html"),
    })
}

/// A change as read: `+7.2%` (relative) or `+0.20 pp` (an error rate's).
fn change_text(s: &Series, change: f64) -> String {
    match s.metric.scale() {
        Scale::Ratio => percent(change),
        Scale::Difference => points(change),
    }
}

fn interval_text(s: &Series, c: &Change) -> String {
    c.interval.map_or_else(String::new, |(l, h)| format!(" [{}, {}]", change_text(s, l), change_text(s, h)))
}

fn day(date: Option<&str>) -> &str {
    date.map_or("", |d| prefix(d, 10))
}

/// Every change point of every series, newest first (by the point it starts at, then series).
fn newest_first(h: &History) -> Vec<(&Series, &Change)> {
    let mut all: Vec<(&Series, &Change)> =
        h.series.iter().flat_map(|s| s.change_points.iter().map(move |c| (s, c))).collect();
    all.sort_by(|a, b| {
        let at = |x: &(&Series, &Change)| x.1.date.clone().unwrap_or_default();
        at(b).cmp(&at(a)).then(b.1.index.cmp(&a.1.index))
    });
    all
}

fn verdict(s: &Series, c: &Change) -> &'static str {
    match (c.regression, s.gates) {
        (true, true) => "regression",
        (true, false) => "regression (not gating)",
        (false, true) => "improvement",
        (false, false) => "improvement (not gating)",
    }
}

/// One series' trend as figures: the sparkline of the newest commits, first → last value.
fn trend(s: &Series) -> (String, String) {
    let from = s.points.len().saturating_sub(SPARK_POINTS);
    let values: Vec<f64> = s.points[from..].iter().map(|p| p.value).collect();
    let (first, last) = (s.points.first().map_or(0.0, |p| p.value), s.points.last().map_or(0.0, |p| p.value));
    (sparkline(&values), format!("{} → {}", s.metric.show(first), s.metric.show(last)))
}

fn header(h: &History) -> Vec<String> {
    let mut lines = vec![format!("history of {} run(s) from {}", h.runs, h.source)];
    for e in &h.environments {
        lines.push(format!(
            "{}: {} run(s), {} … {}",
            e.class,
            e.runs,
            short_commit(&e.first_commit),
            short_commit(&e.last_commit)
        ));
    }
    lines
}

fn plan_lines(h: &History) -> Vec<String> {
    h.plans
        .iter()
        .flat_map(|p| {
            let limits = p.slo.as_ref().map_or("its own breakpoint limits".to_string(), describe_slo);
            let mut lines = vec![format!(
                "{}: {} instance(s) for {}/s with {:.0}% headroom (utilisation {:.0}% at the mean capacity); one instance {}/s [{}/s, {}/s] under {limits}, over the {} commit(s) since {}",
                p.scenario,
                p.instances,
                crate::report::format::rate(p.rate),
                p.headroom * 100.0,
                p.utilisation * 100.0,
                crate::report::format::rate(p.capacity),
                crate::report::format::rate(p.capacity_low),
                crate::report::format::rate(p.capacity_high),
                p.commits,
                short_commit(&p.since_commit),
            )];
            if let (Some(h), Some(m)) = (p.cost_per_hour, p.cost_per_month) {
                lines.push(format!("  cost: {h:.2} an hour, {m:.0} a month"));
            }
            lines.extend(p.assumptions.iter().map(|a| format!("  assumes {a}")));
            lines
        })
        .collect()
}

/// Columns padded to their widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> =
            r.iter().zip(&widths).map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count()))).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn text(h: &History) -> String {
    let mut out = header(h).join("\n") + "\n";
    for n in &h.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let changes = newest_first(h);
    if changes.is_empty() {
        out.push_str("\nno change points\n");
    } else {
        let _ = writeln!(out, "\n{} change point(s), newest first:", changes.len());
        let mut rows = vec![
            ["commit", "date", "scenario", "operation", "metric", "before", "after", "change [95% CI]", "p", ""]
                .map(String::from)
                .to_vec(),
        ];
        for (s, c) in &changes {
            rows.push(vec![
                short_commit(&c.commit).to_string(),
                day(c.date.as_deref()).to_string(),
                inert::line(&s.scenario),
                inert::line(&s.operation),
                s.metric.label().to_string(),
                s.metric.show(c.before),
                s.metric.show(c.after),
                format!("{}{}", change_text(s, c.change), interval_text(s, c)),
                c.p_value.map_or("-".into(), p_value),
                verdict(s, c).to_string(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    let _ = writeln!(out, "\ntrends (the newest {SPARK_POINTS} commits):");
    let mut rows = Vec::new();
    for s in &h.series {
        let (spark, span) = trend(s);
        rows.push(vec![
            inert::line(&s.scenario),
            inert::line(&s.operation),
            s.metric.label().to_string(),
            spark,
            span,
            format!("{} change point(s)", s.change_points.len()),
        ]);
    }
    out.push_str(&table(&rows));
    let plans = plan_lines(h);
    if !plans.is_empty() {
        let _ = writeln!(out, "\ncapacity plan:");
        for l in plans {
            let _ = writeln!(out, "{l}");
        }
    }
    out
}

fn markdown_doc(h: &History) -> String {
    let mut out = String::from("## mcp-perfcheck history\n\n");
    for l in header(h) {
        let _ = writeln!(out, "{}  ", markdown(&l));
    }
    for n in &h.notes {
        let _ = writeln!(out, "\n> {}", markdown(n));
    }
    let changes = newest_first(h);
    if changes.is_empty() {
        out.push_str("\nNo change points.\n");
    } else {
        let _ = writeln!(out, "\n### Change points, newest first\n");
        out.push_str("| commit | date | scenario | operation | metric | before | after | change [95% CI] | p | |\n");
        out.push_str("|---|---|---|---|---|---:|---:|---:|---:|---|\n");
        for (s, c) in &changes {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {}{} | {} | {} |",
                short_commit(&c.commit),
                day(c.date.as_deref()),
                markdown(&s.scenario),
                markdown(&s.operation),
                s.metric.label(),
                s.metric.show(c.before),
                s.metric.show(c.after),
                change_text(s, c.change),
                interval_text(s, c),
                c.p_value.map_or("–".into(), p_value),
                match (c.regression, s.gates) {
                    (true, true) => "🔴 regression",
                    (true, false) => "regression (not gating)",
                    (false, true) => "🟢 improvement",
                    (false, false) => "improvement (not gating)",
                }
            );
        }
    }
    let _ = writeln!(out, "\n### Trends (the newest {SPARK_POINTS} commits)\n");
    out.push_str(
        "| scenario | operation | metric | trend | first → last | change points |\n|---|---|---|---|---|---:|\n",
    );
    for s in &h.series {
        let (spark, span) = trend(s);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {spark} | {span} | {} |",
            markdown(&s.scenario),
            markdown(&s.operation),
            s.metric.label(),
            s.change_points.len()
        );
    }
    let plans = plan_lines(h);
    if !plans.is_empty() {
        out.push_str("\n### Capacity plan\n\n");
        for l in plans {
            let _ = writeln!(out, "- {}", markdown(l.trim_start()));
        }
    }
    out
}

/// The dashboard's view: text escaped by tera, each panel's SVG built (and escaped) here.
#[derive(Serialize)]
struct DashboardView {
    header: Vec<String>,
    notes: Vec<String>,
    changes: Vec<[String; 8]>,
    panels: Vec<Panel>,
    plans: Vec<String>,
}

#[derive(Serialize)]
struct Panel {
    title: String,
    subtitle: String,
    svg: String,
}

fn dashboard(h: &History) -> anyhow::Result<String> {
    let changes = newest_first(h)
        .into_iter()
        .map(|(s, c)| {
            [
                short_commit(&c.commit).to_string(),
                day(c.date.as_deref()).to_string(),
                format!("{} · {} · {}", s.scenario, s.operation, s.metric.label()),
                s.metric.show(c.before),
                s.metric.show(c.after),
                format!("{}{}", change_text(s, c.change), interval_text(s, c)),
                verdict(s, c).to_string(),
                match (c.regression, s.gates) {
                    (_, false) => "quiet",
                    (true, true) => "regression",
                    (false, true) => "improvement",
                }
                .to_string(),
            ]
        })
        .collect();
    let panels = h
        .series
        .iter()
        .map(|s| Panel {
            title: format!("{} · {} · {}", s.scenario, s.operation, s.metric.label()),
            subtitle: format!(
                "{} commit(s), {} change point(s), latest {}{}",
                s.points.len(),
                s.change_points.len(),
                s.points.last().map_or(String::new(), |p| s.metric.show(p.value)),
                if h.environments.len() > 1 { format!(" · {}", s.environment) } else { String::new() }
            ),
            svg: chart(s),
        })
        .collect();
    let view = DashboardView { header: header(h), notes: h.notes.clone(), changes, panels, plans: plan_lines(h) };
    let mut tera = Tera::default();
    tera.add_raw_template("history.html", include_str!("../../templates/history.html.tera"))?;
    Ok(tera.render("history.html", &tera::Context::from_serialize(&view)?)?)
}

const W: f64 = 560.0;
const H: f64 = 150.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 14.0;

/// One series as inline SVG: each commit's spread (grey) and value (blue), each segment's
/// level (amber), each change point (red for a regression, green for an improvement) with its
/// commit.
fn chart(s: &Series) -> String {
    let n = s.points.len();
    let (lo, hi) = s.points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| (l.min(p.low), h.max(p.high)));
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-6).max(f64::MIN_POSITIVE);
    let (lo, hi) = (lo - pad, hi + pad);
    let step = if n > 1 { (W - LEFT - RIGHT) / (n - 1) as f64 } else { 0.0 };
    let x = |i: usize| LEFT + step * i as f64;
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v - lo) / (hi - lo));
    let mut svg = format!(
        r##"<svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="#f6f8fa"/>"##,
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    for (v, at) in [(hi - pad, TOP + 9.0), (lo + pad, H - BOTTOM)] {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{at:.1}" font-size="10" text-anchor="end" fill="#57606a">{}</text>"##,
            LEFT - 4.0,
            xml_text(&s.metric.show(v))
        );
    }
    for (i, p) in s.points.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#afb8c1" stroke-width="2"/>"##,
            x(i),
            y(p.low),
            y(p.high)
        );
    }
    // Segment levels: the mean between change points, on the metric's scale.
    let mut bounds: Vec<usize> = vec![0];
    bounds.extend(s.change_points.iter().map(|c| c.index));
    bounds.push(n);
    for w in bounds.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b <= a {
            continue;
        }
        let values = s.points[a..b].iter().map(|p| p.value);
        let level = match s.metric.scale() {
            Scale::Ratio => (values.map(|v| v.max(f64::MIN_POSITIVE).ln()).sum::<f64>() / (b - a) as f64).exp(),
            Scale::Difference => values.sum::<f64>() / (b - a) as f64,
        };
        let _ = write!(
            svg,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{2:.1}" y2="{2:.1}" stroke="#bf8700" stroke-width="3"/>"##,
            x(a),
            x(b - 1).max(x(a) + 2.0),
            y(level)
        );
    }
    let line: Vec<String> =
        s.points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value))).collect();
    let _ = write!(svg, r##"<polyline points="{}" fill="none" stroke="#1f6feb" stroke-width="1.5"/>"##, line.join(" "));
    for (i, p) in s.points.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="#1f6feb"><title>{} {}</title></circle>"##,
            x(i),
            y(p.value),
            xml_text(short_commit(&p.commit)),
            xml_text(&s.metric.show(p.value))
        );
    }
    for c in &s.change_points {
        let at = x(c.index) - step / 2.0;
        let colour = if c.regression { "#d1242f" } else { "#1a7f37" };
        let _ = write!(
            svg,
            r##"<line x1="{at:.1}" x2="{at:.1}" y1="{TOP}" y2="{}" stroke="{colour}" stroke-width="2" stroke-dasharray="4 3"/><text x="{at:.1}" y="{}" font-size="10" text-anchor="middle" fill="{colour}">{} {}</text>"##,
            H - BOTTOM,
            TOP - 6.0,
            xml_text(prefix(&c.commit, 8)),
            xml_text(&change_text(s, c.change))
        );
    }
    svg.push_str("</svg>");
    svg
}
