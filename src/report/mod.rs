//! Rendering results and comparisons: one exporter per format behind [`Exporter`].
//!
//! Text and markdown are thin layers over the tera templates in `templates/` (embedded at build
//! time); JSON is the serde form of the typed values. The report only presents: it never
//! re-runs or re-measures anything.

mod comment;
pub mod format;
mod html;
pub mod inert;
mod junit;
mod resilience;

pub use comment::{MARKER, MAX_CHARS, headline as comment_headline, marker_for};
pub use junit::xml as xml_text;

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;
use tera::Tera;

use crate::measure::LatencyHistogram;
use crate::results::{RepetitionResult, Results, ScenarioResult, SeriesPoint};
use crate::stats::{Comparison, MAX_REPETITIONS, Metric, MetricComparison, MetricVerdict, Scale, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a terminal or a log.
    Text,
    /// The pull-request comment and job summary (GitHub-flavoured, with mermaid charts).
    Markdown,
    /// The serialized results or comparison, for other tools.
    Json,
    /// One self-contained page (inline SVG charts, no network).
    Html,
    /// JUnit XML: one test case per metric and threshold, for CI systems that read it.
    Junit,
}

/// A comparison with the two runs it came from: what every comparison format presents.
#[derive(Clone, Copy)]
pub struct Report<'a> {
    pub comparison: &'a Comparison,
    pub base: &'a Results,
    pub head: &'a Results,
    /// The CI run that measured it, linked from the report.
    pub run_url: Option<&'a str>,
    /// The base branch's recent values, when a store of past runs is configured.
    pub trends: Option<&'a Trends>,
}

/// The base branch's recent values of each metric, oldest first (its newest commit last),
/// read from a store of past runs: the comment draws a changed metric's trend beside the head,
/// so a reviewer sees whether the base itself was drifting.
#[derive(Debug, Clone, Default)]
pub struct Trends {
    /// (scenario, operation, metric) → values: per operation for latency and throughput, under
    /// `stats::ALL_OPERATIONS` for a scenario's own metrics.
    pub values: BTreeMap<(String, String, Metric), Vec<f64>>,
}

impl Trends {
    /// `m`'s trend as `▂▃▂▂▃▂ → ▇`: the base branch's values, then the head's, on one scale;
    /// `None` with fewer than two base values.
    pub fn line(&self, m: &MetricComparison) -> Option<String> {
        let base = self.values.get(&(m.scenario.clone(), m.operation.clone(), m.metric))?;
        if base.len() < 2 {
            return None;
        }
        let mut all = base.clone();
        all.push(m.head?);
        let spark = format::sparkline(&all);
        let (past, head) = spark.split_at(spark.char_indices().last()?.0);
        Some(format!("{past} → {head}"))
    }
}

/// One output format.
pub trait Exporter {
    fn run(&self, results: &Results) -> anyhow::Result<String>;
    fn comparison(&self, report: &Report<'_>) -> anyhow::Result<String>;
}

/// The exporter for `format` with the templates in `template_dir` (files named like the
/// embedded ones, e.g. `comment.md.tera`) in place of the embedded ones.
pub fn exporter_with_templates(format: Format, template_dir: &std::path::Path) -> anyhow::Result<Box<dyn Exporter>> {
    let flavor = match format {
        Format::Text => Flavor::Text,
        Format::Markdown => Flavor::Markdown,
        Format::Html => Flavor::Html,
        Format::Json | Format::Junit => return Ok(exporter(format)),
    };
    let mut exporter = TemplateExporter::new(flavor);
    let entries = std::fs::read_dir(template_dir)
        .with_context(|| format!("cannot read the template directory {}", template_dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else { continue };
        let Some(name) = file.strip_suffix(".tera") else { continue };
        anyhow::ensure!(
            TEMPLATES.iter().any(|(known, _)| *known == name),
            "{}: no such template (known: {})",
            path.display(),
            TEMPLATES.iter().map(|(n, _)| format!("{n}.tera")).collect::<Vec<_>>().join(", ")
        );
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        exporter.tera.add_raw_template(name, &text).map_err(|e| {
            let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
            anyhow::anyhow!("{}: {e}{cause}", path.display())
        })?;
    }
    Ok(Box::new(inert::Inert { format, inner: Box::new(exporter) }))
}

pub fn exporter(format: Format) -> Box<dyn Exporter> {
    let inner: Box<dyn Exporter> = match format {
        Format::Text => Box::new(TemplateExporter::new(Flavor::Text)),
        Format::Markdown => Box::new(TemplateExporter::new(Flavor::Markdown)),
        Format::Json => Box::new(JsonExporter),
        Format::Html => Box::new(TemplateExporter::new(Flavor::Html)),
        Format::Junit => Box::new(junit::JunitExporter),
    };
    Box::new(inert::Inert { format, inner })
}

/// The JSON form: exactly the serialized types, for other tools to read.
struct JsonExporter;

impl Exporter for JsonExporter {
    fn run(&self, results: &Results) -> anyhow::Result<String> {
        Ok(results.to_json())
    }
    fn comparison(&self, report: &Report<'_>) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(report.comparison)? + "\n")
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Text,
    Markdown,
    /// Tera autoescapes templates named `*.html`.
    Html,
}

struct TemplateExporter {
    flavor: Flavor,
    tera: Tera,
}

const TEMPLATES: [(&str, &str); 7] = [
    ("report.html", include_str!("../../templates/report.html.tera")),
    ("run.html", include_str!("../../templates/run.html.tera")),
    ("comment.md", include_str!("../../templates/comment.md.tera")),
    ("run.txt", include_str!("../../templates/run.txt.tera")),
    ("run.md", include_str!("../../templates/run.md.tera")),
    ("compare.txt", include_str!("../../templates/compare.txt.tera")),
    ("calibration.txt", include_str!("../../templates/calibration.txt.tera")),
];

impl TemplateExporter {
    fn new(flavor: Flavor) -> Self {
        let mut tera = Tera::default();
        tera.add_raw_templates(TEMPLATES).expect("embedded templates parse");
        tera.register_filter("ljust", pad(false));
        tera.register_filter("rjust", pad(true));
        TemplateExporter { flavor, tera }
    }

    fn cell(&self, text: &str) -> String {
        match self.flavor {
            // Text keeps URLs as they are: a terminal user copies them.
            Flavor::Text | Flavor::Html => inert::line(text),
            Flavor::Markdown => format::markdown(text),
        }
    }

    fn render(&self, name: &str, view: &impl Serialize) -> anyhow::Result<String> {
        let ext = match self.flavor {
            Flavor::Text => "txt",
            Flavor::Markdown => "md",
            Flavor::Html => "html",
        };
        let context = tera::Context::from_serialize(view)?;
        self.tera.render(&format!("{name}.{ext}"), &context).with_context(|| format!("rendering template {name}.{ext}"))
    }
}

/// `ljust(width=N)` / `rjust(width=N)`: pads by characters, not bytes (µ is two bytes).
fn pad(right: bool) -> impl tera::Filter {
    move |value: &tera::Value, args: &std::collections::HashMap<String, tera::Value>| {
        let text = match value {
            tera::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let width = args.get("width").and_then(tera::Value::as_u64).unwrap_or(0) as usize;
        let fill = " ".repeat(width.saturating_sub(text.chars().count()));
        Ok(tera::Value::String(if right { fill + &text } else { text + &fill }))
    }
}

/// Column widths: the widest cell (or header) per column.
fn widths<'a>(columns: &[(&'a str, &'a str)], rows: &[BTreeMap<&'a str, String>]) -> BTreeMap<&'a str, usize> {
    columns
        .iter()
        .map(|(key, header)| {
            let widest = rows.iter().map(|r| r[key].chars().count()).max().unwrap_or(0);
            (*key, widest.max(header.chars().count()))
        })
        .collect()
}

#[derive(Serialize)]
struct FailureView {
    kind: String,
    message: String,
    stderr_tail: Vec<String>,
}

#[derive(Serialize)]
struct RunView<'a> {
    server: String,
    repetitions: String,
    config_source: String,
    git_sha: Option<String>,
    environment: String,
    rows: Vec<BTreeMap<&'a str, String>>,
    w: BTreeMap<&'a str, usize>,
    error_details: Vec<String>,
    load_details: Vec<String>,
    thresholds: Vec<ThresholdView>,
    failure: Option<FailureView>,
}

/// The run's thresholds as the templates show them; `cell` escapes what a config chose.
fn threshold_views(results: &Results, cell: &dyn Fn(&str) -> String) -> Vec<ThresholdView> {
    results
        .thresholds
        .iter()
        .map(|t| ThresholdView {
            held: t.held,
            key: cell(&t.key),
            expression: cell(&t.expression),
            observed: t.observed.map_or_else(|| "no matching data".to_string(), |v| format::quantity(v, t.quantity)),
        })
        .collect()
}

#[derive(Serialize)]
struct ThresholdView {
    held: bool,
    key: String,
    expression: String,
    observed: String,
}

const RUN_COLUMNS: [(&str, &str); 7] = [
    ("scenario", "scenario"),
    ("operation", "operation"),
    ("rate", "calls/s"),
    ("p50", "p50"),
    ("p95", "p95"),
    ("p99", "p99"),
    ("errors", "errors"),
];

impl Exporter for TemplateExporter {
    fn run(&self, results: &Results) -> anyhow::Result<String> {
        let mut rows = Vec::new();
        let mut error_details = Vec::new();
        let mut load_details = Vec::new();
        if let Some(line) = sharding_line(results) {
            load_details.push(self.cell(&line));
        }
        let mut reps = 0;
        for s in &results.scenarios {
            reps = reps.max(s.repetitions.len());
            for op in s.operation_names() {
                // Percentiles from the merged histograms of every repetition, never averaged.
                let mut merged = LatencyHistogram::new();
                let (mut count, mut rate, mut n) = (0, 0.0, 0);
                let mut censored_at: Option<u64> = None;
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                let mut samples: BTreeMap<String, &str> = BTreeMap::new();
                for r in &s.repetitions {
                    if let Some(o) = r.operation(op) {
                        merged.merge(&o.decode_histogram().map_err(anyhow::Error::msg)?);
                        censored_at = censored_at.max(o.censored_at_us);
                        count += o.count;
                        rate += o.throughput_per_s;
                        n += 1;
                        for (k, v) in &o.errors {
                            *errors.entry(k.to_string()).or_default() += v;
                        }
                        for (k, why) in &o.error_samples {
                            samples.entry(k.to_string()).or_insert(why);
                        }
                    }
                }
                let l = merged.summary();
                let failed: u64 = errors.values().sum();
                if failed > 0 {
                    let kinds: Vec<String> = errors
                        .iter()
                        .map(|(k, v)| match samples.get(k) {
                            Some(why) => format!("{k} ×{v} (first: {why})"),
                            None => format!("{k} ×{v}"),
                        })
                        .collect();
                    error_details.push(self.cell(&format!("{} {}: {}", s.name, op, kinds.join(", "))));
                }
                // A percentile at the timeout says only that those calls took at least that long.
                let latency = |v: u64| match censored_at {
                    _ if merged.is_empty() => "–".to_string(),
                    Some(t) if crate::results::at_timeout(v, t) => format!("≥{}", format::micros(t as f64)),
                    _ => format::micros(v as f64),
                };
                rows.push(BTreeMap::from([
                    ("scenario", self.cell(&s.name)),
                    ("operation", self.cell(op)),
                    ("rate", format::rate(if n > 0 { rate / n as f64 } else { 0.0 })),
                    ("p50", latency(l.p50)),
                    ("p95", latency(l.p95)),
                    ("p99", latency(l.p99)),
                    (
                        "errors",
                        if count > 0 {
                            format!("{failed} ({:.2}%)", 100.0 * failed as f64 / count as f64)
                        } else {
                            "0".into()
                        },
                    ),
                ]));
            }
            if let Some(target) = s.rate_per_s {
                load_details.push(self.cell(&open_model_line(s, target)?));
            }
            if let Some(line) = resources_line(s) {
                load_details.push(self.cell(&line));
            }
            for line in phase_lines(s) {
                load_details.push(self.cell(&line));
            }
            if let Some(line) = resilience::line(s) {
                load_details.push(self.cell(&line));
            }
            if let Some(m) = s.repetitions.iter().rev().find_map(|r| r.server_metrics.as_ref()) {
                let errors: u64 =
                    s.repetitions.iter().filter_map(|r| r.server_metrics.as_ref()).map(|m| m.scrape_errors).sum();
                let mut line =
                    format!("{}: {} counters and {} gauges from {}", s.name, m.counters.len(), m.gauges.len(), m.url);
                if errors > 0 {
                    line.push_str(&format!(
                        "; {errors} scrape(s) failed, last: {}",
                        m.last_error.as_deref().unwrap_or("unknown")
                    ));
                }
                load_details.push(self.cell(&line));
            }
            for r in &s.repetitions {
                for (k, v) in &r.unattributed_errors {
                    let sample =
                        r.connection.malformed_sample.as_deref().map(|m| format!(", e.g. {m:?}")).unwrap_or_default();
                    error_details.push(self.cell(&format!(
                        "{} repetition {}: {v} {k} error(s) outside any request (malformed output from the server{sample})",
                        s.name, r.index
                    )));
                }
            }
        }
        let env = &results.environment;
        let view = RunView {
            server: self.cell(
                &results
                    .server
                    .as_ref()
                    .map(|s| format!("{} {} (protocol {} over {})", s.name, s.version, s.protocol_version, s.transport))
                    .unwrap_or_else(|| "server not started".into()),
            ),
            repetitions: format!("{reps} repetition{}", if reps == 1 { "" } else { "s" }),
            config_source: self.cell(&results.config_source),
            git_sha: results.git_sha.clone(),
            environment: self.cell(&format!(
                "{} cores, {}{}",
                env.cores,
                env.cpu_model.as_deref().unwrap_or("unknown CPU"),
                env.kernel.as_deref().map(|k| format!(", {} {k}", env.os)).unwrap_or_default()
            )),
            w: widths(&RUN_COLUMNS, &rows),
            rows,
            error_details,
            load_details,
            thresholds: threshold_views(results, &|t| self.cell(t)),
            failure: results.failure.as_ref().map(|f| FailureView {
                kind: serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
                message: self.cell(&f.message),
                // A server's stderr goes into a code block: it must not be able to close it.
                stderr_tail: f
                    .stderr_tail
                    .iter()
                    .map(|l| if self.flavor == Flavor::Markdown { l.replace('`', "\u{2CB}") } else { l.clone() })
                    .collect(),
            }),
        };
        self.render("run", &view)
    }

    fn comparison(&self, report: &Report<'_>) -> anyhow::Result<String> {
        match self.flavor {
            Flavor::Markdown => return self.comment(report),
            Flavor::Html => return self.render("report", &html::view(report)),
            Flavor::Text => {}
        }
        let c = report.comparison;
        let rows: Vec<BTreeMap<&str, String>> = c.metrics.iter().map(|m| metric_row(m, &|t| self.cell(t))).collect();
        let columns = [
            ("scenario", "scenario"),
            ("operation", "operation"),
            ("metric", "metric"),
            ("base", "base"),
            ("head", "head"),
            ("change", "change [95% CI]"),
            ("p", "p (adj)"),
        ];
        let side = |r: &crate::stats::RunInfo| {
            let sha: String = r
                .git_sha
                .as_deref()
                .map_or("(no commit)".into(), |s| s.chars().take(12).filter(char::is_ascii_alphanumeric).collect());
            self.cell(&format!("{sha} {} {}", r.server.as_deref().unwrap_or(""), r.timestamp))
        };
        #[derive(Serialize)]
        struct View<'a> {
            headline: String,
            base: String,
            head: String,
            metrics: Vec<BTreeMap<&'a str, String>>,
            w: BTreeMap<&'a str, usize>,
            method: String,
            notes: Vec<String>,
        }
        let view = View {
            headline: headline(c, &|t| self.cell(t)),
            base: side(&c.base),
            head: side(&c.head),
            w: widths(&columns, &rows),
            metrics: rows,
            method: method_line(c),
            notes: c.notes.iter().map(|n| self.cell(n)).collect(),
        };
        self.render("compare", &view)
    }
}

impl TemplateExporter {
    /// The pull-request comment: the whole view when it fits in [`MAX_CHARS`], else with the
    /// folded rows, then the charts, then changed rows left out, each omission noted.
    fn comment(&self, report: &Report<'_>) -> anyhow::Result<String> {
        use comment::Detail;
        let changed = report.comparison.metrics.len();
        let mut levels = vec![Detail::Full, Detail::NoFolded, Detail::NoCharts];
        levels.extend([200, 50, 10, 0].into_iter().filter(|k| *k < changed).map(Detail::Rows));
        let mut body = String::new();
        for detail in levels {
            body = self.render("comment", &comment::view(report, detail))?;
            if body.chars().count() <= MAX_CHARS {
                return Ok(body);
            }
        }
        // Only the notes or names can still be too long: cut at a character boundary.
        let cut: String = body.chars().take(MAX_CHARS - 100).collect();
        Ok(format!("{cut}\n\n… (cut to fit GitHub's comment limit; the full report is in the job's artifacts)\n"))
    }
}

/// One metric as the table rows show it; `cell` escapes names a server or config chose.
fn metric_row<'a>(m: &crate::stats::MetricComparison, cell: &dyn Fn(&str) -> String) -> BTreeMap<&'a str, String> {
    let value = |v: Option<f64>| match v {
        None => "–".to_string(),
        Some(v) => format::quantity(v, m.metric.quantity()),
    };
    let change_of = |v: f64| match m.scale {
        Scale::Ratio => format::percent(v),
        Scale::Difference => format::points(v),
    };
    let change = match (m.change, m.ci_low, m.ci_high) {
        (Some(ch), Some(lo), Some(hi)) => format!("{} [{}, {}]", change_of(ch), change_of(lo), change_of(hi)),
        (Some(ch), _, _) => change_of(ch),
        _ => "–".into(),
    };
    let bar = match (m.change, m.ci_low, m.ci_high) {
        (Some(ch), Some(lo), Some(hi)) if m.min_effect > 0.0 => {
            format::forest_bar(lo / m.min_effect, hi / m.min_effect, ch / m.min_effect)
        }
        _ => String::new(),
    };
    BTreeMap::from([
        ("bar", bar),
        ("scenario", cell(&m.scenario)),
        ("operation", cell(&m.operation)),
        ("metric", m.metric.label().to_string()),
        ("base", value(m.base)),
        ("head", value(m.head)),
        ("change", change),
        ("p", m.p_adjusted.map(format::p_value).unwrap_or_else(|| "–".into())),
        (
            "verdict",
            if m.gates { m.verdict.label().to_string() } else { format!("{} (not gating)", m.verdict.label()) },
        ),
    ])
}

/// The method footnote: repetitions, tests, α (and the look's share), minimum effects, the
/// latest calibration.
fn method_line(c: &Comparison) -> String {
    let base_reps = c.metrics.iter().map(|m| m.base_values.len()).max().unwrap_or(0);
    let head_reps = c.metrics.iter().map(|m| m.head_values.len()).max().unwrap_or(0);
    let test = if c.metrics.iter().any(|m| m.design == crate::stats::Design::Paired) {
        "paired t-test on logarithms (repetitions of the same index ran back to back)"
    } else {
        "Welch's t-test on logarithms"
    };
    let excluded: usize = c.metrics.iter().map(|m| m.excluded.len()).sum();
    let outliers = if excluded > 0 {
        format!(", {excluded} disturbed repetition value(s) left out (modified z-score > {})", crate::stats::OUTLIER_Z)
    } else {
        String::new()
    };
    format!(
        "Method: repetition-level values ({} base, {} head), {test}{outliers}, errors quasi-binomial on counts, {:.0}% intervals, Holm-adjusted p < {} over the gating metrics, minimum effect {} latency, {} throughput, {} memory, {} CPU, errors ×{} and {} more.",
        base_reps,
        head_reps,
        c.confidence * 100.0,
        match &c.look {
            Some(l) => format!(
                "{:.4} (look {} of a run allowed up to {} repetitions a side: α {} spent across looks, Pocock-type)",
                l.alpha, l.look, l.max_repetitions, c.alpha
            ),
            None => c.alpha.to_string(),
        },
        unsigned(format::percent(c.min_effect.latency)),
        unsigned(format::percent(c.min_effect.throughput)),
        unsigned(format::percent(c.min_effect.memory)),
        unsigned(format::percent(c.min_effect.cpu)),
        c.min_effect.error_ratio,
        unsigned(format::points(c.min_effect.error_rate)),
    ) + &match &c.calibration {
        Some(k) => format!(
            " Calibrated false-alarm rate: {} of {} A/A comparisons ({:.1}%, at most {:.1}% at 95% confidence), {}{}.",
            k.false_alarms,
            k.comparisons,
            k.false_alarm_rate * 100.0,
            k.rate_high * 100.0,
            k.timestamp,
            if k.other_environment { ", on another machine" } else { "" }
        ),
        None => " Not calibrated on record (`mcp-perfcheck calibrate` measures the false-alarm rate).".into(),
    }
}

/// The text comparison with colour for a terminal: the verdict line, and each metric's verdict
/// (red regression, green improvement, yellow inconclusive). The caller decides when: never
/// with `NO_COLOR` or when the output is not a terminal.
pub fn colour_text(text: &str) -> String {
    use anstyle::{AnsiColor, Style};
    let paint = |style: Style, s: &str| format!("{}{s}{}", style.render(), style.render_reset());
    let red = AnsiColor::Red.on_default().bold();
    let green = AnsiColor::Green.on_default().bold();
    let yellow = AnsiColor::Yellow.on_default();
    let mut out = String::with_capacity(text.len() + 64);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (body, newline) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        if i == 0 {
            let style = match body.split(':').next().unwrap_or("") {
                "PASS" => green,
                "FAIL" | "ERROR" => red,
                _ => yellow.bold(),
            };
            out.push_str(&paint(style, body));
        } else if let Some((word, style)) = [("regression", red), ("improvement", green), ("inconclusive", yellow)]
            .into_iter()
            .find(|(w, _)| body.ends_with(&format!("  {w}")))
        {
            out.push_str(&body[..body.len() - word.len()]);
            out.push_str(&paint(style, word));
        } else {
            out.push_str(body);
        }
        out.push_str(newline);
    }
    out
}

/// The summary `calibrate` prints (text).
pub fn calibration_text(r: &crate::stats::CalibrationRecord) -> anyhow::Result<String> {
    use crate::stats::Scale;
    let c = &r.calibration;
    let rows: Vec<BTreeMap<&str, String>> = c
        .metrics
        .iter()
        .map(|d| {
            let size = |v: f64| match d.scale {
                Scale::Ratio => unsigned(format::percent(v)),
                Scale::Difference => unsigned(format::points(v)),
            };
            BTreeMap::from([
                ("scenario", d.scenario.clone()),
                ("operation", d.operation.clone()),
                ("metric", d.metric.label().to_string()),
                ("detectable", size(d.smallest_detectable)),
                ("min_effect", size(d.min_effect)),
                ("gate", gate_word(d).to_string()),
            ])
        })
        .collect();
    let columns = [
        ("scenario", "scenario"),
        ("operation", "operation"),
        ("metric", "metric"),
        ("detectable", "detectable (90% power)"),
    ];
    #[derive(Serialize)]
    struct View<'a> {
        summary: String,
        metrics: Vec<BTreeMap<&'a str, String>>,
        w: BTreeMap<&'a str, usize>,
    }
    let view = View {
        summary: format!(
            "False alarms: {} of {} A/A comparisons ({:.1}%; 95% interval {:.1}%–{:.1}%) at α = {}, {} repetitions a side.",
            c.false_alarms,
            c.comparisons,
            c.false_alarm_rate * 100.0,
            c.rate_low * 100.0,
            c.rate_high * 100.0,
            c.alpha,
            c.repetitions
        ),
        w: widths(&columns, &rows),
        metrics: rows,
    };
    TemplateExporter::new(Flavor::Text).render("calibration", &view)
}

/// Whether a calibrated metric gates, and whether it can at these repetitions.
fn gate_word(d: &crate::stats::Detectable) -> &'static str {
    match (d.gates, d.smallest_detectable <= d.min_effect) {
        (true, true) => "gates",
        (true, false) => "gates, underpowered",
        (false, _) => "reported only",
    }
}

fn unsigned(text: String) -> String {
    text.trim_start_matches('+').to_string()
}

/// A shard's place in its run, or what a merge of shards joined.
fn sharding_line(results: &Results) -> Option<String> {
    let x = results.sharding.as_ref()?;
    let hash = x.config_hash.get(..12).unwrap_or(&x.config_hash);
    Some(match x.index {
        Some(k) => format!(
            "shard {k}/{} of a sharded run (config {hash}…): its own share of the load; `mcp-perfcheck merge` joins every shard's file",
            x.count
        ),
        None => format!(
            "merged from {} shards (config {hash}…); their measured windows started up to {} ms apart",
            x.count,
            x.skew_ms.unwrap_or(0)
        ),
    })
}

/// How well an open-model scenario held its rate, and what coordinated omission would have hidden.
fn open_model_line(s: &ScenarioResult, target: f64) -> anyhow::Result<String> {
    let (mut late, mut dropped) = (0, 0);
    let (mut corrected, mut uncorrected) = (LatencyHistogram::new(), LatencyHistogram::new());
    for r in &s.repetitions {
        late += r.load.late_sends;
        dropped += r.load.dropped_sends;
        for o in &r.operations {
            corrected.merge(&o.decode_histogram().map_err(anyhow::Error::msg)?);
            if let Some(h) = &o.histogram_uncorrected {
                uncorrected.merge(&LatencyHistogram::decode(h).map_err(anyhow::Error::msg)?);
            }
        }
    }
    // Each repetition's own figure: a breakpoint run that stopped early sent over less time.
    let mean = |f: &dyn Fn(&crate::results::LoadStats) -> f64| {
        s.repetitions.iter().map(|r| f(&r.load)).sum::<f64>() / s.repetitions.len().max(1) as f64
    };
    let achieved = mean(&|l| l.achieved_rate_per_s);
    // A shard's target is its share of the scenario's rate.
    let target = if s.repetitions.iter().all(|r| r.load.target_rate_per_s.is_some()) && !s.repetitions.is_empty() {
        mean(&|l| l.target_rate_per_s.unwrap_or(target))
    } else {
        target
    };
    Ok(format!(
        "{}: target {}/s, achieved {}/s; {} late and {} dropped sends; p99 {} from the intended send, {} from the actual send",
        s.name,
        format::rate(target),
        format::rate(achieved),
        format::thousands(late),
        format::thousands(dropped),
        format::micros(corrected.summary().p99 as f64),
        format::micros(uncorrected.summary().p99 as f64),
    ))
}

/// The server's and the generator's resources, over the scenario's repetitions: the highest
/// peaks, and CPU per call as the mean of the repetitions' values.
fn resources_line(s: &ScenarioResult) -> Option<String> {
    let server: Vec<_> = s.repetitions.iter().filter_map(|r| r.server_resources.as_ref()).collect();
    if server.is_empty() {
        return None;
    }
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Some(format!(
        "{}: server peak RSS {}, {} CPU per call, up to {} threads, {} open fds, {} process(es); generator {} CPU per call",
        s.name,
        format::bytes(server.iter().map(|r| r.rss_peak_bytes).max().unwrap_or(0)),
        format::micros(mean(server.iter().map(|r| r.cpu_us_per_call).collect())),
        server.iter().map(|r| r.threads_peak).max().unwrap_or(0),
        server.iter().map(|r| r.open_fds_peak).max().unwrap_or(0),
        server.iter().map(|r| r.processes_peak).max().unwrap_or(0),
        format::micros(mean(s.repetitions.iter().map(|r| r.client.cpu_us_per_call).collect())),
    ))
}

/// What a spike, breakpoint or soak scenario concluded, one line per repetition (a soak: one
/// line over all of them).
fn phase_lines(s: &ScenarioResult) -> Vec<String> {
    let mut lines = Vec::new();
    for r in &s.repetitions {
        if let Some(p) = &r.spike {
            let recovery = match p.recovery_s {
                Some(t) => format!("recovered within {t:.1}s after it"),
                None => "not recovered by the end of the window".to_string(),
            };
            lines.push(format!(
                "{} #{}: spike ×{} from {:.1}s to {:.1}s: p99 {} before, worst {}; {recovery}",
                s.name,
                r.index,
                p.factor,
                p.at_s,
                p.end_s,
                format::micros(p.baseline_p99_us as f64),
                format::micros(p.peak_p99_us as f64),
            ));
        }
        if let Some(b) = &r.breakpoint {
            let how = match (b.broke_at_s, &b.broken_by, b.rate_at_break_per_s) {
                (Some(t), Some(why), Some(rate)) => {
                    format!("broke at {t:.1}s ({why}) with {}/s scheduled", format::rate(rate))
                }
                _ => "every limit held to the end of the ramp: the capacity is at least this".to_string(),
            };
            lines.push(format!("{} #{}: capacity {} calls/s; {how}", s.name, r.index, format::rate(b.capacity_per_s)));
        }
    }
    if s.phase.as_deref() == Some("soak") {
        let server: Vec<_> = s.repetitions.iter().filter_map(|r| r.server_resources.as_ref()).collect();
        let n = server.len().max(1) as f64;
        let rss = server.iter().map(|r| r.rss_slope_bytes_per_s).sum::<f64>() / n * 60.0;
        let fds = server.iter().map(|r| r.open_fds_slope_per_s).sum::<f64>() / n * 60.0;
        let sign = if rss < 0.0 { "-" } else { "+" };
        lines.push(format!(
            "{}: soak slopes: server RSS {sign}{}/min, open fds {fds:+.1}/min (least squares, mean of {} repetition(s))",
            s.name,
            format::bytes(rss.abs() as u64),
            server.len()
        ));
    }
    lines
}

/// A progress line during a repetition: the last second's rate, p99 and errors.
pub fn tick_line(
    scenario: &str,
    index: u32,
    of: u32,
    elapsed: std::time::Duration,
    planned: Option<std::time::Duration>,
    point: Option<&SeriesPoint>,
) -> String {
    let of_time = planned.map(|p| format!("/{}s", p.as_secs())).unwrap_or_default();
    let what = point.map_or_else(|| "warming up".to_string(), tick_message);
    format!("[{scenario}] repetition {index}/{of} {}s{of_time}: {what}", elapsed.as_secs())
}

/// The last second in a few words: rate, p99, errors.
pub fn tick_message(point: &SeriesPoint) -> String {
    format!(
        "{} calls/s, p99 {}, errors: {}",
        format::rate(point.calls_per_s),
        format::micros(point.p99_us as f64),
        point.errors
    )
}

/// Calls/s, errors and the p99 of every measured call so far (a scenario's histograms merged).
pub fn so_far_message(calls: u64, errors: u64, seconds: f64, latency: &LatencyHistogram) -> String {
    let rate = if seconds > 0.0 { calls as f64 / seconds } else { 0.0 };
    let p99 = latency.percentile(99.0).map_or_else(|| "–".to_string(), |v| format::micros(v as f64));
    format!("{} calls/s, p99 so far {p99}, errors: {errors}", format::rate(rate))
}

/// One line per finished repetition, for progress on stderr.
pub fn progress_line(scenario: &str, total: u32, r: &RepetitionResult) -> String {
    let count: u64 = r.operations.iter().map(|o| o.count).sum();
    let errors: u64 = r.operations.iter().map(|o| o.error_count()).sum();
    let rate: f64 = r.operations.iter().map(|o| o.throughput_per_s).sum();
    let p99 = r.operations.iter().map(|o| o.latency_us.p99).max().unwrap_or(0);
    let mut line = format!(
        "[{scenario}] repetition {}/{total}: {} calls, {} calls/s, worst p99 {}, errors: {errors}",
        r.index,
        format::thousands(count),
        format::rate(rate),
        format::micros(p99 as f64)
    );
    if let Some(target) = r.load.target_rate_per_s {
        line.push_str(&format!(
            ", {}/s of {}/s sent, {} late",
            format::rate(r.load.achieved_rate_per_s),
            format::rate(target),
            r.load.late_sends
        ));
    }
    if let Some(f) = &r.failure {
        line.push_str(&format!(" — {f}"));
    }
    inert::line(&line)
}

/// What an undecided metric could be at worst, in words: "could be up to +51.3% slower".
pub fn could_be(m: &MetricComparison) -> String {
    let Some(worst) = m.worst_case() else {
        return "could not be tested (it needs at least two completed repetitions a side)".to_string();
    };
    let by = match m.scale {
        Scale::Ratio => format::percent(worst.abs()).trim_start_matches('+').to_string(),
        Scale::Difference => format::points(worst.abs()).trim_start_matches('+').to_string(),
    };
    let worse = match m.metric {
        Metric::P50 | Metric::P95 | Metric::P99 => "slower",
        Metric::Throughput => "less throughput",
        Metric::ErrorRate => "more errors",
        Metric::RssPeak => "more memory",
        Metric::CpuPerCall => "more CPU per call",
    };
    format!("could be up to {by} {worse}")
}

/// Why a comparison is inconclusive, naming the metric that could be worst and what would
/// decide: "mixed echo p50 could be up to 51.3% slower (and 2 more); rerun with ~14
/// repetitions a side to decide". `cell` escapes the names a server or config chose.
pub fn undecided_line(c: &Comparison, cell: &dyn Fn(&str) -> String) -> String {
    let undecided = c.undecided();
    let Some(first) = undecided.first() else { return String::new() };
    let mut line = format!("{} {}", cell(&metric_name(first)), could_be(first));
    if undecided.len() > 1 {
        line.push_str(&format!(" (and {} more)", undecided.len() - 1));
    }
    let needed = undecided.iter().map(|m| m.repetitions_needed).try_fold(0u32, |most, n| n.map(|n| most.max(n)));
    match needed {
        Some(n) if n > 0 => line.push_str(&format!("; rerun with ~{n} repetitions a side to decide")),
        _ => line.push_str(&format!(
            "; not even {MAX_REPETITIONS} repetitions a side would decide at this spread: quieten the machine"
        )),
    }
    line
}

/// "mixed echo p50": the scenario, the operation without its `tools/call:` prefix, the metric.
fn metric_name(m: &MetricComparison) -> String {
    let operation = m.operation.strip_prefix("tools/call:").unwrap_or(&m.operation);
    format!("{} {} {}", m.scenario, operation, m.metric.label())
}

/// The one line that says whether the change is safe; `cell` escapes names.
pub fn headline(c: &Comparison, cell: &dyn Fn(&str) -> String) -> String {
    let n = c.regressions();
    let improved = c.count(MetricVerdict::Improvement);
    let negligible = c.count(MetricVerdict::Negligible);
    let open = |gating: bool| {
        c.metrics.iter().filter(|m| m.verdict == MetricVerdict::Inconclusive && m.gates == gating).count()
    };
    let (unsure, unsure_elsewhere) = (open(true), open(false));
    let mut extra = Vec::new();
    if improved > 0 {
        extra.push(format!("{improved} improved"));
    }
    if negligible > 0 {
        extra.push(format!("{negligible} negligible"));
    }
    if unsure > 0 {
        extra.push(format!("{unsure} undecided only on the better side"));
    }
    if unsure_elsewhere > 0 {
        extra.push(format!("{unsure_elsewhere} undecided, not gating"));
    }
    let extra = if extra.is_empty() { String::new() } else { format!(" ({})", extra.join(", ")) };
    if c.advisory && c.verdict == Verdict::Fail {
        return format!(
            "ADVISORY FAIL: {n} significant regression{} on different machines (see the note)",
            if n == 1 { "" } else { "s" }
        );
    }
    match c.verdict {
        Verdict::Pass if improved + negligible + unsure + unsure_elsewhere == 0 => {
            "PASS: no significant change".to_string()
        }
        Verdict::Pass => format!("PASS: no regression{extra}"),
        Verdict::Fail => format!("FAIL: {n} significant regression{}", if n == 1 { "" } else { "s" }),
        Verdict::Inconclusive => format!("INCONCLUSIVE: {}", undecided_line(c, cell)),
        Verdict::Error => "ERROR: the runs could not be compared".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_marks_the_verdict_and_each_metric_verdict_only() {
        let text = "FAIL: 1 significant regression\nbase x\n\nmixed  echo  p50  +9%  regression\nmixed  echo  p95  +1%  unchanged\n";
        let c = super::colour_text(text);
        let plain: String = ["\u{1b}[1m", "\u{1b}[31m", "\u{1b}[32m", "\u{1b}[33m", "\u{1b}[0m"]
            .iter()
            .fold(c.clone(), |acc, code| acc.replace(code, ""));
        assert_eq!(plain, text, "colour adds escapes and nothing else");
        assert!(c.lines().next().unwrap().contains("\u{1b}[31m"), "{c:?}");
        assert!(c.contains("+9%  \u{1b}[1m\u{1b}[31mregression\u{1b}[0m\n"), "{c:?}");
        assert!(c.contains("+1%  unchanged\n"), "{c:?}");
    }
}
