//! Rendered output, checked against committed snapshots built from fixtures/results (no
//! measurement noise: the inputs are recorded runs).

use mcp_perfcheck::report::{Format, Report, exporter};
use mcp_perfcheck::results::Results;
use mcp_perfcheck::stats::{self, Policy};

use crate::common::fixture;

fn load(name: &str) -> Results {
    Results::load(&fixture(&format!("results/{name}"))).unwrap()
}

const POLICY: Policy = Policy::DEFAULT;

#[test]
fn run_report_text_and_markdown() {
    let r = load("reference-small.json");
    insta::assert_snapshot!("run_text", exporter(Format::Text).run(&r).unwrap());
    insta::assert_snapshot!("run_markdown", exporter(Format::Markdown).run(&r).unwrap());
    insta::assert_snapshot!("run_html", exporter(Format::Html).run(&r).unwrap());
    insta::assert_snapshot!("run_junit", exporter(Format::Junit).run(&r).unwrap());
}

#[test]
fn open_model_run_report_shows_rate_and_both_latencies() {
    let r = load("reference-open.json");
    insta::assert_snapshot!("run_open_text", exporter(Format::Text).run(&r).unwrap());
}

#[test]
fn comparison_report_in_every_format() {
    let (base, head) = (load("reference-quick.json"), load("reference-slow.json"));
    let c = stats::compare(&base, &head, &POLICY);
    let r = Report {
        comparison: &c,
        base: &base,
        head: &head,
        run_url: Some("https://github.com/o/r/actions/runs/7"),
        trends: None,
    };
    insta::assert_snapshot!("compare_text", exporter(Format::Text).comparison(&r).unwrap());
    insta::assert_snapshot!("compare_markdown", exporter(Format::Markdown).comparison(&r).unwrap());
    insta::assert_snapshot!("compare_json", exporter(Format::Json).comparison(&r).unwrap());
    insta::assert_snapshot!("compare_html", exporter(Format::Html).comparison(&r).unwrap());
    insta::assert_snapshot!("compare_junit", exporter(Format::Junit).comparison(&r).unwrap());
}

#[test]
fn a_noisy_head_that_could_be_much_slower_is_inconclusive_in_every_format() {
    let (base, head) = (load("reference-quick.json"), crate::common::noisy_head());
    let c = stats::compare(&base, &head, &POLICY);
    assert_eq!(c.verdict, stats::Verdict::Inconclusive);
    let p50 = c.metrics.iter().find(|m| m.operation == "tools/call:echo" && m.metric == stats::Metric::P50).unwrap();
    assert!(p50.change.unwrap() > 0.15 && p50.ci_high.unwrap() > 0.40, "{p50:?}");
    assert!(p50.underpowered && p50.repetitions_needed.is_none_or(|n| n > 4), "{p50:?}");
    let r = Report { comparison: &c, base: &base, head: &head, run_url: None, trends: None };
    let text = exporter(Format::Text).comparison(&r).unwrap();
    assert!(text.starts_with("INCONCLUSIVE: mixed "), "{text}");
    let headline = text.lines().next().unwrap();
    assert!(headline.contains("could be up to 70.2% slower") && headline.contains("repetitions a side"), "{text}");
    insta::assert_snapshot!("noisy_text", text);
    let markdown = exporter(Format::Markdown).comparison(&r).unwrap();
    assert!(markdown.contains("### ⚠️ mcp-perfcheck: inconclusive: "), "{markdown}");
    assert!(!markdown.contains("No metric changed significantly"), "the undecided rows are shown: {markdown}");
    insta::assert_snapshot!("noisy_markdown", markdown);
    let json: serde_json::Value = serde_json::from_str(&exporter(Format::Json).comparison(&r).unwrap()).unwrap();
    assert_eq!(json["verdict"], "inconclusive");
    insta::assert_snapshot!("noisy_json", serde_json::to_string_pretty(&json).unwrap());
    let junit = exporter(Format::Junit).comparison(&r).unwrap();
    assert!(junit.contains("<skipped message=\"inconclusive: could be up to "), "{junit}");
    insta::assert_snapshot!("noisy_junit", junit);
}

#[test]
fn names_chosen_by_a_server_or_config_cannot_inject_markdown() {
    let mut r = load("reference-small.json");
    let evil = "x|<script>alert(1)</script> @octocat [link](http://evil) **bold**";
    r.scenarios[0].name = evil.to_string();
    r.server.as_mut().unwrap().name = evil.to_string();
    let md = exporter(Format::Markdown).run(&r).unwrap();
    assert!(!md.contains("<script>"), "{md}");
    assert!(!md.contains("@octocat"), "{md}");
    assert!(!md.contains("[link](http"), "{md}");
    assert!(!md.contains("x|<"), "{md}");
    // Every table row keeps its column count.
    for row in md.lines().filter(|l| l.starts_with("| ")) {
        assert_eq!(row.matches(" | ").count(), 6, "{row}");
    }
}

#[test]
fn a_comparison_at_a_later_look_names_it_and_its_share_of_alpha() {
    let mut head = load("reference-slow.json");
    let reps = head.scenarios[0].repetitions.len() as u32;
    head.looks = Some(mcp_perfcheck::results::Looks {
        repetitions: vec![reps - 1, reps],
        max_repetitions: reps + 1,
        ended: Some(mcp_perfcheck::results::LooksEnded::Budget),
    });
    let base = load("reference-quick.json");
    let c = stats::compare(&base, &head, &POLICY);
    let look = c.look.unwrap();
    assert_eq!(look.look, 2);
    let r = Report { comparison: &c, base: &base, head: &head, run_url: None, trends: None };
    let text = exporter(Format::Text).comparison(&r).unwrap();
    let expected = format!(
        "Holm-adjusted p < {:.4} (look 2 of a run allowed up to {} repetitions a side: α 0.05 spent across looks, Pocock-type)",
        look.alpha,
        reps + 1
    );
    assert!(text.contains(&expected), "{text}");
    let json: serde_json::Value = serde_json::from_str(&exporter(Format::Json).comparison(&r).unwrap()).unwrap();
    assert_eq!(json["look"]["alpha"].as_f64(), Some(look.alpha));
}

/// What a hostile server could put in front of a reader: its name, its tool names (operations)
/// and its error messages (notes, failures) hold markdown, HTML, mermaid and @-mentions.
#[test]
fn a_hostile_server_renders_harmlessly_in_every_comparison_format() {
    const EVIL: &str = "x|<script>alert(1)</script> @octocat [link](http://evil) **bold** ```\n\"] %%{init}%% <!-- mcp-perfcheck:report -->";
    let (mut base, mut head) = (load("reference-quick.json"), load("reference-slow.json"));
    for r in [&mut base, &mut head] {
        r.server.as_mut().unwrap().name = EVIL.into();
        for s in &mut r.scenarios {
            s.name = format!("s{EVIL}");
            for rep in &mut s.repetitions {
                for op in &mut rep.operations {
                    op.name = format!("tools/call:{EVIL}{}", op.name);
                }
            }
        }
    }
    head.failure = Some(mcp_perfcheck::results::RunFailure {
        kind: mcp_perfcheck::results::FailureKind::ServerExit,
        message: EVIL.into(),
        stderr_tail: vec![EVIL.into()],
    });
    let c = stats::compare(&base, &head, &POLICY);
    assert!(c.notes.iter().any(|n| n.contains("<script>")), "the note carries the raw message: {:?}", c.notes);
    let r = Report {
        comparison: &c,
        base: &base,
        head: &head,
        run_url: Some("https://x/run) [evil](http://e"),
        trends: None,
    };

    let md = exporter(Format::Markdown).comparison(&r).unwrap();
    assert!(md.starts_with("<!-- mcp-perfcheck:report -->\n### 🔥"), "{md}");
    assert_eq!(md.matches("<!-- mcp-perfcheck:report -->").count(), 1, "the marker cannot be forged: {md}");
    for bad in ["<script>", "@octocat", "[link](http", "**bold**", "[evil](http"] {
        assert!(!md.contains(bad), "{bad} in {md}");
    }
    // Every row of every table has its header's column count.
    let mut columns = None;
    for line in md.lines() {
        if !line.starts_with("| ") {
            columns = None;
            continue;
        }
        let n = line.matches(" | ").count();
        assert_eq!(*columns.get_or_insert(n), n, "{line}");
    }
    // Mermaid blocks open and close where the report put them.
    assert_eq!(md.matches("```").count() % 2, 0, "{md}");
    for block in md.split("```mermaid").skip(1) {
        let chart = block.split("```").next().unwrap();
        assert!(chart.lines().all(|l| l.matches('"').count() % 2 == 0), "{chart}");
        assert!(!chart.contains("%%") && !chart.contains('<'), "no directive or markup in a chart: {chart}");
    }

    let html = exporter(Format::Html).comparison(&r).unwrap();
    assert!(!html.contains("<script>") && !html.contains("<!-- mcp"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "escaped, not dropped");

    let junit = exporter(Format::Junit).comparison(&r).unwrap();
    assert!(!junit.contains("<script>"), "{junit}");
    let text = exporter(Format::Text).comparison(&r).unwrap();
    assert!(text.contains("FAIL") || text.contains("ERROR"), "{text}");
}

#[test]
fn an_oversized_comment_drops_detail_in_order_and_says_so() {
    // CPU-heavy: kept off the load tests' machine time.
    let _turn = crate::common::load_lock();
    let (mut base, mut head) = (load("reference-quick.json"), load("reference-slow.json"));
    for r in [&mut base, &mut head] {
        for rep in &mut r.scenarios[0].repetitions {
            let ops = rep.operations.clone();
            for i in 0..150 {
                rep.operations.extend(ops.iter().cloned().map(|mut o| {
                    o.name = format!("{}-with-a-long-descriptive-suffix-{i:03}", o.name);
                    o
                }));
            }
        }
    }
    let c = stats::compare(&base, &head, &POLICY);
    assert!(c.metrics.len() > 1000, "{}", c.metrics.len());
    let r = Report { comparison: &c, base: &base, head: &head, run_url: None, trends: None };
    let md = exporter(Format::Markdown).comparison(&r).unwrap();
    assert!(md.chars().count() <= mcp_perfcheck::report::MAX_CHARS, "{} characters", md.chars().count());
    assert!(md.starts_with(mcp_perfcheck::report::MARKER), "the marker survives");
    assert!(md.contains("### ❌ mcp-perfcheck:"), "the verdict line survives");
    assert!(md.contains("Left out to fit GitHub's comment limit:"), "{md}");
    assert!(md.contains("the charts") && md.contains("of the"), "{md}");
    assert!(md.trim_end().ends_with("</sub>"), "the method footnote survives");
}

/// The HTML report in a real browser: headless Chromium (installed by scripts/setup-peers.sh)
/// loads the file with network and scripts off, and its screenshot shows both series of bars.
#[test]
fn the_html_report_draws_its_charts_in_headless_chromium() {
    // CPU-heavy: kept off the load tests' machine time.
    let _turn = crate::common::load_lock();
    let (base, head) = (load("reference-quick.json"), load("reference-slow.json"));
    let c = stats::compare(&base, &head, &POLICY);
    let r = Report { comparison: &c, base: &base, head: &head, run_url: None, trends: None };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, exporter(Format::Html).comparison(&r).unwrap()).unwrap();
    let shot = crate::common::Screenshot::of(&page, 1000, 2000);
    let count = |rgb| shot.count(rgb);
    // Six bars a side (p50, p95, p99 of two operations), 12 px high, tens to hundreds wide.
    let (grey, blue) = (count([0x9e, 0x9e, 0x9e]), count([0x1f, 0x6f, 0xeb]));
    assert!(grey > 6 * 12 * 30, "base bars drawn: {grey} grey pixels");
    assert!(blue > grey * 2, "head bars (about three times longer) drawn: {blue} blue pixels, {grey} grey");
    // The forest plot: the three gating regressions' intervals in red (4 px thick, cut at the
    // axis beyond four minimum effects), the rest in grey, on the ± minimum-effect band.
    let (red, band) = (count([0xd1, 0x24, 0x2f]), count([0xea, 0xee, 0xf2]));
    assert!(red > 3 * 4 * 15, "regression intervals drawn: {red} red pixels");
    assert!(band > 11 * 22 * 50, "the minimum-effect band drawn: {band} pixels");
}

/// Every string of `fixtures/hostile/strings.json` where a server or a fork chooses text (its
/// name and version, scenario and tool names, failure messages and stderr, a repetition's
/// failure, a malformed line), through every format, runs and comparisons: nothing that could
/// act on a log, a terminal, a reader or GitHub's renderer survives.
#[test]
fn the_hostile_corpus_is_inert_in_every_format() {
    let corpus: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(fixture("hostile/strings.json")).unwrap()).unwrap();
    let evil = corpus.join(" ");
    let (mut base, mut head) = (load("reference-quick.json"), load("reference-slow.json"));
    for r in [&mut base, &mut head] {
        let server = r.server.as_mut().unwrap();
        (server.name, server.version) = (corpus[0].clone(), evil.clone());
        for (i, s) in r.scenarios.iter_mut().enumerate() {
            s.name = corpus[i % corpus.len()].clone();
            for rep in &mut s.repetitions {
                for (j, op) in rep.operations.iter_mut().enumerate() {
                    op.name = format!("{}{}", corpus[(j + 1) % corpus.len()], op.name);
                }
                rep.connection.malformed_sample = Some(evil.clone());
            }
        }
    }
    head.scenarios[0].repetitions[0].failure = Some(evil.clone());
    head.failure = Some(mcp_perfcheck::results::RunFailure {
        kind: mcp_perfcheck::results::FailureKind::ServerExit,
        message: evil.clone(),
        stderr_tail: corpus.clone(),
    });
    let c = stats::compare(&base, &head, &POLICY);
    let r = Report { comparison: &c, base: &base, head: &head, run_url: None, trends: None };
    for format in [Format::Text, Format::Markdown, Format::Html, Format::Junit, Format::Json] {
        for (what, out) in
            [("run", exporter(format).run(&head).unwrap()), ("comparison", exporter(format).comparison(&r).unwrap())]
        {
            let at = |bad: &str| format!("{format:?} {what}: {bad}\n{out}");
            for l in out.lines() {
                assert!(!l.trim_start().starts_with("::") && !l.contains("##["), "{}", at(l));
            }
            assert!(!out.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{}", at("a control"));
            let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            assert!(!out.chars().any(bidi), "{}", at("a bidi control"));
            match format {
                Format::Markdown => {
                    // Outside code blocks (a server's stderr is shown in one, where GitHub
                    // renders nothing, and its backticks cannot close it).
                    let rendered: String = out.split("```").step_by(2).collect();
                    for bad in
                        ["@octocat", "@evil", "https://evil", "www.evil", "<a href", "<img", "$\\sqrt", "<injected"]
                    {
                        assert!(!rendered.contains(bad), "{}", at(bad));
                    }
                    assert!(out.matches("<!-- mcp-perfcheck:report -->").count() <= 1, "{}", at("a second marker"));
                }
                Format::Html | Format::Junit => {
                    for bad in ["<a href", "<img", "<injected", "<!-- mcp"] {
                        assert!(!out.contains(bad), "{}", at(bad));
                    }
                }
                Format::Json => {
                    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
                    assert!(value.to_string().contains("invoice\u{202e}gpj.exe"), "the data itself is kept, escaped");
                }
                // Text keeps URLs copyable; what GitHub renders (markdown) is where links are defused.
                Format::Text => {}
            }
        }
    }
}
