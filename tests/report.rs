//! Rendered output, checked against committed snapshots built from fixtures/results (no
//! measurement noise: the inputs are recorded runs).

use mcp_perfcheck::report::{Format, exporter};
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
}

#[test]
fn open_model_run_report_shows_rate_and_both_latencies() {
    let r = load("reference-open.json");
    insta::assert_snapshot!("run_open_text", exporter(Format::Text).run(&r).unwrap());
}

#[test]
fn comparison_report_in_every_format() {
    let c = stats::compare(&load("reference-quick.json"), &load("reference-slow.json"), POLICY);
    insta::assert_snapshot!("compare_text", exporter(Format::Text).comparison(&c).unwrap());
    insta::assert_snapshot!("compare_markdown", exporter(Format::Markdown).comparison(&c).unwrap());
    insta::assert_snapshot!("compare_json", exporter(Format::Json).comparison(&c).unwrap());
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
    let c = stats::compare(&load("reference-quick.json"), &head, POLICY);
    let look = c.look.unwrap();
    assert_eq!(look.look, 2);
    let text = exporter(Format::Text).comparison(&c).unwrap();
    let expected = format!(
        "Holm-adjusted p < {:.4} (look 2 of a run allowed up to {} repetitions a side: α 0.05 spent across looks, Pocock-type)",
        look.alpha,
        reps + 1
    );
    assert!(text.contains(&expected), "{text}");
    let json: serde_json::Value = serde_json::from_str(&exporter(Format::Json).comparison(&c).unwrap()).unwrap();
    assert_eq!(json["look"]["alpha"].as_f64(), Some(look.alpha));
}
