use std::time::Duration;

use super::*;
use crate::load::OperationInterval;
use crate::results::Results;

const RESULTS: &str = include_str!("../../fixtures/results/reference-quick.json");

/// The value of the one sample of `name` whose labels include every one of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn tick<'a>(interval: &'a Interval, operations: &'a [String], index: u32) -> Progress<'a> {
    Progress::Tick {
        scenario: "steady",
        index,
        of: 2,
        elapsed: Duration::from_secs(2),
        warmup: Duration::from_secs(1),
        planned: Some(Duration::from_secs(5)),
        point: None,
        so_far: interval,
        operations,
        target_rate: Some(100.0),
        server: Some(Sample { rss_bytes: 1 << 20, cpu_seconds: 0.5, open_fds: 12, threads: 3, ..Default::default() }),
    }
}

fn interval(calls: u64, errors: u64) -> Interval {
    let mut op = OperationInterval { calls, ..Default::default() };
    for _ in 0..calls {
        op.latency.record(Duration::from_micros(300));
    }
    if errors > 0 {
        op.errors.insert(crate::measure::ErrorKind::Timeout, errors);
    }
    Interval { calls, errors, operations: vec![op], in_flight: 4, ..Default::default() }
}

#[test]
fn ticks_count_the_current_repetition_and_a_finished_one_its_exact_figures() {
    let live = LiveMetrics::new();
    let ops = vec!["tools/call:echo".to_string()];
    live.observe(&tick(&interval(10, 1), &ops, 1));
    live.observe(&tick(&interval(25, 2), &ops, 1));
    let text = live.render();
    let labels = ["scenario=\"steady\"", "operation=\"tools/call:echo\""];
    // A tick carries the repetition so far: it replaces, never adds to, the last one.
    assert_eq!(value(&text, "mcp_perfcheck_calls_total", &labels), Some(25.0), "{text}");
    assert_eq!(value(&text, "mcp_perfcheck_errors_total", &["kind=\"timeout\""]), Some(2.0));
    assert_eq!(value(&text, "mcp_perfcheck_call_duration_seconds_bucket", &["le=\"0.00025\""]), Some(0.0));
    assert_eq!(value(&text, "mcp_perfcheck_call_duration_seconds_bucket", &["le=\"0.0005\""]), Some(25.0));
    assert_eq!(value(&text, "mcp_perfcheck_call_duration_seconds_count", &labels), Some(25.0));
    assert_eq!(value(&text, "mcp_perfcheck_in_flight", &["scenario=\"steady\""]), Some(4.0));
    assert_eq!(value(&text, "mcp_perfcheck_target_calls_per_second", &[]), Some(100.0));
    assert_eq!(value(&text, "mcp_perfcheck_server_resident_memory_bytes", &[]), Some(1048576.0));
    assert_eq!(value(&text, "mcp_perfcheck_phase", &["phase=\"measure\""]), Some(1.0));

    // The repetition ends: its exact figures (the recorded run's first) stand; the next
    // repetition's ticks add to them.
    let results: Results = serde_json::from_str(RESULTS).unwrap();
    let rep = &results.scenarios[0].repetitions[0];
    let echo = rep.operations.iter().find(|o| o.name == "tools/call:echo").unwrap();
    live.observe(&Progress::RepetitionFinished { scenario: "steady", repetition: rep, results: &results });
    let text = live.render();
    assert_eq!(value(&text, "mcp_perfcheck_calls_total", &labels), Some(echo.count as f64), "{text}");
    assert_eq!(
        value(&text, "mcp_perfcheck_call_duration_seconds_bucket", &["tools/call:echo", "le=\"+Inf\""]),
        Some(echo.count as f64)
    );
    let p50 =
        value(&text, "mcp_perfcheck_call_duration_quantile_seconds", &["tools/call:echo", "quantile=\"0.5\""]).unwrap();
    assert!((p50 * 1e6 - echo.latency_us.p50 as f64).abs() <= echo.latency_us.p50 as f64 * 0.002, "{p50}");
    live.observe(&tick(&interval(5, 0), &ops, 2));
    assert_eq!(value(&live.render(), "mcp_perfcheck_calls_total", &labels), Some((echo.count + 5) as f64));
}

#[test]
fn buckets_are_cumulative_and_names_follow_the_conventions() {
    let live = LiveMetrics::new();
    let results: Results = serde_json::from_str(RESULTS).unwrap();
    for rep in &results.scenarios[0].repetitions {
        live.observe(&Progress::RepetitionFinished { scenario: "steady", repetition: rep, results: &results });
    }
    let text = live.render();
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("mcp_perfcheck_call_duration_seconds_bucket{") && l.contains("tools/call:echo"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), BUCKETS_S.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let (name, kind) = line["# TYPE ".len()..].split_once(' ').unwrap();
        assert!(name.starts_with("mcp_perfcheck_"), "{line}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
    }
}

#[test]
fn label_values_from_the_server_are_escaped() {
    let live = LiveMetrics::new();
    let ops = vec!["a\"b\\c\nd\u{1b}[31m".to_string()];
    live.observe(&tick(&interval(3, 0), &ops, 1));
    let text = live.render();
    assert!(text.contains("operation=\"a\\\"b\\\\c\\nd[31m\""), "{text}");
    // Every sample line is one line: name, labels, value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("mcp_perfcheck_") && line.rsplit(' ').next().unwrap().parse::<f64>().is_ok(),
            "{line}"
        );
    }
}

#[test]
fn the_grafana_dashboard_uses_only_names_the_exposition_has() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/grafana/mcp-perfcheck.json")).expect("the dashboard parses");
    let live = LiveMetrics::new();
    let ops = vec!["tools/call:echo".to_string()];
    live.observe(&tick(&interval(3, 1), &ops, 1));
    let text = live.render();
    let families: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    let mut used = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("mcp_perfcheck_"))
            {
                let family = name.strip_suffix("_bucket").unwrap_or(name);
                assert!(families.contains(&family), "{name} (panel {}) is not in the exposition", panel["title"]);
                used += 1;
            }
        }
    }
    assert!(used >= 15, "{used}");
}
