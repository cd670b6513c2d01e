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
                let outcome = why.as_deref().map_or(Outcome::Passed, |w| Outcome::Failure("run failed", w));
                case("run", &s.name, outcome, Some(&out))
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
                    let out = format!("{}: {detail}", m.verdict.label());
                    let outcome = if !m.gates {
                        Outcome::Passed
                    } else if m.verdict == MetricVerdict::Regression {
                        Outcome::Failure("regression", &detail)
                    } else if m.could_regress() {
                        // Neither a failure nor a pass: CI test views show it apart.
                        Outcome::Skipped(format!("inconclusive: {}", super::could_be(m)))
                    } else {
                        Outcome::Passed
                    };
                    case(&m.operation, m.metric.label(), outcome, Some(&out))
                })
                .collect();
            suites.push(suite(s, &cases));
        }
        suites.push(suite("thresholds", &threshold_cases(report.head)));
        Ok(document(&suites))
    }
}

fn threshold_cases(results: &Results) -> Vec<String> {
    results
        .thresholds
        .iter()
        .map(|t: &ThresholdOutcome| {
            let observed = t.observed.map_or("no matching data".into(), |v| format::quantity(v, t.quantity));
            let why = format!("observed {observed}");
            let outcome = if t.held { Outcome::Passed } else { Outcome::Failure("threshold failed", &why) };
            case(&t.key, &t.expression, outcome, Some(&why))
        })
        .collect()
}

/// How a test case came out.
enum Outcome<'a> {
    Passed,
    /// Type and message.
    Failure(&'a str, &'a str),
    /// Undecided, with why.
    Skipped(String),
}

/// A `<testcase>`, with a `<failure>` or `<skipped>` by its outcome and the figures in
/// `<system-out>`.
fn case(classname: &str, name: &str, outcome: Outcome<'_>, out: Option<&str>) -> String {
    let mut body = String::new();
    match outcome {
        Outcome::Passed => {}
        Outcome::Failure(kind, message) => {
            let _ = writeln!(body, "      <failure type=\"{}\" message=\"{}\"/>", xml(kind), xml(message));
        }
        Outcome::Skipped(message) => {
            let _ = writeln!(body, "      <skipped message=\"{}\"/>", xml(&message));
        }
    }
    if let Some(out) = out {
        let _ = writeln!(body, "      <system-out>{}</system-out>", xml(out));
    }
    let open = format!("    <testcase classname=\"{}\" name=\"{}\"", xml(classname), xml(name));
    if body.is_empty() { format!("{open}/>") } else { format!("{open}>\n{body}    </testcase>") }
}

fn suite(name: &str, cases: &[String]) -> String {
    let failures = cases.iter().filter(|c| c.contains("<failure")).count();
    let skipped = cases.iter().filter(|c| c.contains("<skipped")).count();
    let mut out = format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n",
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
pub fn xml(text: &str) -> String {
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
