//! JUnit XML, for CI systems that show test reports: one test suite per scenario, one test case
//! per compared metric (a regression fails) and per threshold (a failed one fails).

use std::fmt::Write;

use super::{Exporter, Report, format, metric_row};
use crate::results::{Results, ThresholdOutcome};
use crate::stats::MetricVerdict;

pub(super) struct JunitExporter;

impl Exporter for JunitExporter {
    fn run(&self, results: &Results) -> anyhow::Result<String> {
        // One case per scenario (it ran to the end, or the run's failure), then the thresholds.
        let cases: Vec<String> = results
            .scenarios
            .iter()
            .map(|s| {
                let failed = s.repetitions.iter().find_map(|r| r.failure.clone());
                let why = results.failure.as_ref().map(|f| f.message.clone()).or(failed);
                let out = format!("{} repetition(s) measured", s.repetitions.len());
                case("run", &s.name, why.as_deref().map(|w| ("run failed", w)), Some(&out))
            })
            .collect();
        Ok(document(&[suite("run", &cases), suite("thresholds", &threshold_cases(results))]))
    }

    fn comparison(&self, report: &Report<'_>) -> anyhow::Result<String> {
        let c = report.comparison;
        let mut scenarios: Vec<&str> = Vec::new();
        for m in &c.metrics {
            if !scenarios.contains(&m.scenario.as_str()) {
                scenarios.push(&m.scenario);
            }
        }
        let mut suites = Vec::new();
        for s in scenarios {
            let cases: Vec<String> = c
                .metrics
                .iter()
                .filter(|m| m.scenario == s)
                .map(|m| {
                    let row = metric_row(m, &|t| t.to_string());
                    let detail =
                        format!("{} → {}, change {}, adjusted p {}", row["base"], row["head"], row["change"], row["p"]);
                    let failure = (m.verdict == MetricVerdict::Regression).then_some(("regression", detail.as_str()));
                    let out = format!("{}: {detail}", verdict(m.verdict));
                    case(&m.operation, m.metric.label(), failure, Some(&out))
                })
                .collect();
            suites.push(suite(s, &cases));
        }
        suites.push(suite("thresholds", &threshold_cases(report.head)));
        Ok(document(&suites))
    }
}

fn verdict(v: MetricVerdict) -> &'static str {
    match v {
        MetricVerdict::Regression => "regression",
        MetricVerdict::Improvement => "improvement",
        MetricVerdict::Unchanged => "unchanged",
        MetricVerdict::Inconclusive => "inconclusive",
    }
}

fn threshold_cases(results: &Results) -> Vec<String> {
    results
        .thresholds
        .iter()
        .map(|t: &ThresholdOutcome| {
            let observed = t.observed.map_or("no matching data".into(), |v| format::quantity(v, t.quantity));
            let why = format!("observed {observed}");
            case(&t.key, &t.expression, (!t.held).then_some(("threshold failed", why.as_str())), Some(&why))
        })
        .collect()
}

/// A `<testcase>`, with a `<failure>` when `failure` is given (type, message) and the figures
/// in `<system-out>`.
fn case(classname: &str, name: &str, failure: Option<(&str, &str)>, out: Option<&str>) -> String {
    let mut body = String::new();
    if let Some((kind, message)) = failure {
        let _ = writeln!(body, "      <failure type=\"{}\" message=\"{}\"/>", xml(kind), xml(message));
    }
    if let Some(out) = out {
        let _ = writeln!(body, "      <system-out>{}</system-out>", xml(out));
    }
    let open = format!("    <testcase classname=\"{}\" name=\"{}\"", xml(classname), xml(name));
    if body.is_empty() { format!("{open}/>") } else { format!("{open}>\n{body}    </testcase>") }
}

fn suite(name: &str, cases: &[String]) -> String {
    let failures = cases.iter().filter(|c| c.contains("<failure")).count();
    let mut out = format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
        xml(name),
        cases.len()
    );
    for c in cases {
        let _ = writeln!(out, "{c}");
    }
    out.push_str("  </testsuite>");
    out
}

fn document(suites: &[String]) -> String {
    let tests: usize = suites.iter().map(|s| s.matches("<testcase").count()).sum();
    let failures: usize = suites.iter().map(|s| s.matches("<failure").count()).sum();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"mcp-perfcheck\" tests=\"{tests}\" failures=\"{failures}\">\n{}\n</testsuites>\n",
        suites.join("\n")
    )
}

/// Text for an XML attribute or element: markup escaped, characters XML 1.0 forbids dropped.
pub(super) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped_and_control_characters_dropped() {
        assert_eq!(xml("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
    }
}
