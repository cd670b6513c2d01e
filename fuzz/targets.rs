//! Fuzz targets: every parser of input that a server under test, a fork or an upstream
//! controls, fed arbitrary bytes and mutations of real inputs (proptest generates them). Each
//! target must end in `Ok` or an error, never a panic:
//!
//! - `report`: a `ci --mode measure` report with a `workflow_run` event, through everything
//!   `--mode publish` does short of the API (`cli::publish_offline`: parse, check, compare,
//!   render every format);
//! - `results`: a results file (`Results::from_json`), then its run report in every format, and
//!   a history of eight runs of it in every format;
//! - `event`: an event payload (`Event::parse`);
//! - `config`: a config (`Config::from_yaml`);
//! - `message`: a JSON-RPC message sent to the reference server (`server::jsonrpc::classify`,
//!   and `oversized` on its head): every error answer it gives must carry a valid id or null.
//!
//! Shared by `tests/fuzz.rs` (a short seeded run in `cargo test`) and
//! `examples/fuzz_parsers.rs` (`scripts/fuzz-parsers`: minutes, outside `cargo test`).

use std::path::Path;

use mcp_perfcheck::config::Config;
use mcp_perfcheck::github::Event;
use mcp_perfcheck::report::{Format, exporter};
use mcp_perfcheck::results::Results;
use mcp_perfcheck::stats::SplitMix64;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Real inputs to mutate.
pub struct Seeds {
    pub results: Vec<String>,
    pub report: String,
    pub event: String,
    pub configs: Vec<String>,
    pub hostile: Vec<String>,
    pub messages: Vec<String>,
}

impl Seeds {
    pub fn load(root: &Path) -> Seeds {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        let results: Vec<String> =
            ["quick", "slow", "open"].iter().map(|n| read(&format!("fixtures/results/reference-{n}.json"))).collect();
        let base: Value = serde_json::from_str(&results[0]).unwrap();
        let head: Value = serde_json::from_str(&results[1]).unwrap();
        let report = json!({
            "schema": "mcp-perfcheck/ci-report/v1",
            "pr_number": 7,
            "head_sha": "2222222222222222222222222222222222222222",
            "run_url": "https://github.com/acme/server/actions/runs/9001",
            "policy": serde_json::to_value(mcp_perfcheck::stats::Policy::DEFAULT).unwrap(),
            "base": base,
            "head": head,
        })
        .to_string();
        let configs = ["reference-slow.yaml", "reference-open.yaml", "everything-http.yaml"]
            .iter()
            .map(|n| read(&format!("fixtures/configs/{n}")))
            .chain([read("src/config/default.yaml")])
            .collect();
        Seeds {
            results,
            report,
            event: read("fixtures/github/events/workflow_run.json"),
            configs,
            hostile: serde_json::from_str(&read("fixtures/hostile/strings.json")).unwrap(),
            messages: [
                r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}"#,
                r#"{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
                r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"x"}}"#,
                r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// One input for one target.
#[derive(Debug, Clone)]
pub enum Input {
    Report { report: String, event: String },
    Results(String),
    Event(String),
    Config(String),
    Message(String),
}

impl Input {
    pub fn target(&self) -> &'static str {
        match self {
            Input::Report { .. } => "report",
            Input::Results(_) => "results",
            Input::Event(_) => "event",
            Input::Config(_) => "config",
            Input::Message(_) => "message",
        }
    }
}

/// Runs `input` through its target: whether it was accepted (parsed, and for a report or
/// results file rendered). Errors are expected; a panic is the finding.
pub fn check(input: &Input) -> bool {
    match input {
        Input::Report { report, event } => mcp_perfcheck::cli::publish_offline(report, event).is_ok(),
        Input::Results(text) => Results::from_json(text).is_ok_and(|r| {
            let reports = [Format::Text, Format::Markdown, Format::Html, Format::Junit, Format::Json]
                .into_iter()
                .all(|f| exporter(f).run(&r).is_ok());
            reports && history_renders(r)
        }),
        Input::Event(text) => {
            let a = Event::parse("workflow_run", text, None).is_ok();
            Event::parse("pull_request", text, None).is_ok() || a
        }
        Input::Config(text) => Config::from_yaml(text, "fuzz.yaml").is_ok(),
        Input::Message(text) => {
            use mcp_perfcheck::server::jsonrpc::{Verdict, classify, oversized};
            let valid_id = |id: &Option<Value>| match id {
                None | Some(Value::String(_)) => true,
                Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
                Some(other) => panic!("an answer with the id {other}"),
            };
            let head = &text.as_bytes()[..text.len() / 2];
            assert!(valid_id(&oversized(head, head.len()).id));
            match classify(text.as_bytes()) {
                Verdict::Message(_) => true,
                Verdict::Reply(r) => {
                    assert!(valid_id(&r.id) && r.to_json()["jsonrpc"] == "2.0");
                    false
                }
                Verdict::Ignore(_) => false,
            }
        }
    }
}

/// `history` over eight runs of `results`, labelled as a run without a commit is (by its file's
/// name, here its timestamp: any text) and dated by its timestamp, in every format.
fn history_renders(results: Results) -> bool {
    use mcp_perfcheck::history::{Options, Run, analyse, render};
    let label = results.git_sha.clone().unwrap_or_else(|| results.timestamp.clone());
    let runs: Vec<Run> = (0..8)
        .map(|i| Run { commit: format!("{label}{i}"), date: Some(results.timestamp.clone()), results: results.clone() })
        .collect();
    let history = analyse("fuzz".into(), &runs, &Options::default(), None);
    [Format::Text, Format::Markdown, Format::Html, Format::Json].into_iter().all(|f| render(&history, f).is_ok())
}

/// A value to put where another was: extremes, wrong types, hostile text.
fn replacement(rng: &mut SplitMix64, hostile: &[String]) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(u64::MAX),
        3 => json!(1e308),
        4 => json!(-1e-308),
        5 => json!(0),
        6 => json!(""),
        7 => json!("x".repeat(1 + rng.below(20_000))),
        8 => json!([]),
        9 => json!({}),
        10 => json!(true),
        _ => json!(hostile[rng.below(hostile.len())]),
    }
}

/// Mutates one node reached by a random walk from `v`.
fn mutate_once(v: &mut Value, rng: &mut SplitMix64, hostile: &[String], depth: usize) {
    let descend = depth < 12 && rng.below(5) != 0;
    match v {
        Value::Object(map) if !map.is_empty() && descend => {
            let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
            match rng.below(8) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, replacement(rng, hostile));
                }
                _ => mutate_once(map.get_mut(&key).unwrap(), rng, hostile, depth + 1),
            }
        }
        Value::Array(items) if !items.is_empty() && descend => {
            let i = rng.below(items.len());
            match rng.below(8) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let copy = items[i].clone();
                    for _ in 0..1 + rng.below(3) {
                        items.push(copy.clone());
                    }
                }
                _ => mutate_once(&mut items[i], rng, hostile, depth + 1),
            }
        }
        // Mostly a value of the same kind, which keeps the input parseable and takes it
        // further in (the comparison, the renderers); sometimes anything.
        Value::String(_) if rng.below(4) != 0 => {
            *v = match rng.below(3) {
                0 => json!("x".repeat(1 + rng.below(5_000))),
                _ => json!(hostile[rng.below(hostile.len())]),
            }
        }
        Value::Number(_) if rng.below(4) != 0 => {
            *v = match rng.below(6) {
                0 => json!(0),
                1 => json!(u64::MAX),
                2 => json!(1e300),
                3 => json!(-1),
                4 => json!(0.5),
                _ => json!(rng.next_u64() % 1_000_000),
            }
        }
        _ => *v = replacement(rng, hostile),
    }
}

/// `seed` (JSON, or YAML that is turned into JSON) mutated a few times by `rng_seed`, written
/// back as text, sometimes cut short.
fn mutated(seed: &str, rng_seed: u64, hostile: &[String]) -> String {
    let mut rng = SplitMix64(rng_seed);
    let mut value: Value = serde_json::from_str(seed)
        .or_else(|_| serde_yaml::from_str::<Value>(seed))
        .unwrap_or(Value::String(seed.to_string()));
    for _ in 0..1 + rng.below(6) {
        mutate_once(&mut value, &mut rng, hostile, 0);
    }
    let mut text = value.to_string();
    if rng.below(10) == 0 {
        let mut cut = rng.below(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Text for a target: arbitrary bytes (as UTF-8, lossily), or a mutation of one of `seeds`.
fn text(seeds: Vec<String>, hostile: Vec<String>) -> impl Strategy<Value = String> {
    let n = seeds.len();
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..2048).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        6 => (0..n, any::<u64>()).prop_map(move |(i, r)| mutated(&seeds[i], r, &hostile)),
    ]
}

/// Inputs for every target.
pub fn inputs(seeds: &Seeds) -> impl Strategy<Value = Input> + use<> {
    let h = seeds.hostile.clone();
    prop_oneof![
        3 => (text(vec![seeds.report.clone()], h.clone()), text(vec![seeds.event.clone()], h.clone()))
            .prop_map(|(report, event)| Input::Report { report, event }),
        2 => text(seeds.results.clone(), h.clone()).prop_map(Input::Results),
        1 => text(vec![seeds.event.clone()], h.clone()).prop_map(Input::Event),
        1 => text(seeds.configs.clone(), h.clone()).prop_map(Input::Config),
        2 => text(seeds.messages.clone(), h).prop_map(Input::Message),
    ]
}
