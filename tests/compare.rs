//! `compare` of real runs: the same server on both sides passes; a server doing 4× the work per
//! `compute` call fails with the regression's size.

use std::path::{Path, PathBuf};

use mcp_perfcheck::results::Results;
use predicates::prelude::*;

use crate::common::{bin, fixture, load_lock, read_json, run_cmd};

/// Measures each config one repetition at a time, in rotation (A B C A B C …), and gathers each
/// config's repetitions into one results file. Sequential runs on a shared VM drift as a block
/// (a +20% shift between two back-to-back runs of one build was seen here, and a first
/// repetition twice as slow as the rest while CI compiled beside it); rotating puts that drift
/// on every side alike, as the same-runner A/B mode does.
fn interleaved<const N: usize>(dir: &Path, configs: [&str; N], reps: u32) -> [PathBuf; N] {
    let one: Vec<PathBuf> = (0..N)
        .map(|k| {
            let yaml = std::fs::read_to_string(fixture(configs[k])).unwrap();
            let path = dir.join(format!("config{k}.yaml"));
            std::fs::write(&path, yaml.replace("repetitions: 4", "repetitions: 1")).unwrap();
            path
        })
        .collect();
    let mut sides: Vec<Option<Results>> = vec![None; N];
    for i in 0..N * reps as usize {
        let out = dir.join(format!("rep{i}.json"));
        run_cmd(&one[i % N], &out).assert().success();
        let mut r = Results::load(&out).unwrap();
        match &mut sides[i % N] {
            side @ None => *side = Some(r),
            Some(acc) => {
                let mut rep = r.scenarios[0].repetitions.remove(0);
                rep.index = acc.scenarios[0].repetitions.len() as u32 + 1;
                acc.scenarios[0].repetitions.push(rep);
            }
        }
    }
    std::array::from_fn(|k| {
        let path = dir.join(format!("side{k}.json"));
        sides[k].as_ref().unwrap().save(&path).unwrap();
        path
    })
}

#[test]
fn same_server_passes_and_a_slower_head_fails() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let quick = "configs/reference-quick.yaml";
    let [base, same, slow] = interleaved(dir.path(), [quick, quick, "configs/reference-slow.yaml"], 5);

    let aa = bin().arg("compare").arg(&base).arg(&same).args(["--format", "json"]).assert().code(0);
    let aa: serde_json::Value = serde_json::from_slice(&aa.get_output().stdout).unwrap();
    // Never a failure; five repetitions may be too few to show every metric within its
    // minimum effect, and then the comparison says so rather than pass.
    assert!(aa["verdict"] == "pass" || aa["verdict"] == "inconclusive", "{aa:#}");
    assert!(aa["metrics"].as_array().unwrap().iter().all(|m| m["verdict"] != "regression"));

    let ab = bin().arg("compare").arg(&base).arg(&slow).args(["--format", "json"]).assert().code(1);
    let ab: serde_json::Value = serde_json::from_slice(&ab.get_output().stdout).unwrap();
    assert_eq!(ab["verdict"], "fail");
    let p50 = ab["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["operation"] == "tools/call:compute" && m["metric"] == "p50")
        .unwrap();
    assert_eq!(p50["verdict"], "regression", "{p50:#}");
    // Four times the work per call: the slowdown is large, and its interval excludes zero.
    assert!(p50["change"].as_f64().unwrap() > 0.5, "{p50:#}");
    assert!(p50["ci_low"].as_f64().unwrap() > 0.0, "{p50:#}");
    assert!(p50["p_adjusted"].as_f64().unwrap() < 0.05);
    for key in
        ["scenario", "base", "head", "ci_high", "p_welch", "p_mwu", "q_value", "hl_shift", "base_values", "head_values"]
    {
        assert!(!p50[key].is_null(), "{key} missing in {p50:#}");
    }

    // The text form says it in one line, with the size.
    bin()
        .arg("compare")
        .arg(&base)
        .arg(&slow)
        .assert()
        .code(1)
        .stdout(predicate::str::is_match(r"^FAIL: \d+ significant regressions?").unwrap())
        .stdout(predicate::str::is_match(r"compute\s+p50\s+\S+\s+\S+\s+\+\d+\.\d%").unwrap());
    // The results files are untouched by the comparison and still identify the server.
    assert_eq!(read_json(&slow)["server"]["name"], "mcp-perfcheck-reference");
}

#[test]
fn comparing_with_a_broken_baseline_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("base.json");
    std::fs::write(&broken, "{\"schema\": \"mcp-perfcheck/results/v0\"}").unwrap();
    bin()
        .arg("compare")
        .arg(&broken)
        .arg(fixture("results/reference-small.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("schema is `mcp-perfcheck/results/v0`"));
}

#[test]
fn a_regression_measured_on_another_machine_is_advisory_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    // The recorded slow run, as if it had run on a 4-core machine.
    let mut slow = read_json(&fixture("results/reference-slow.json"));
    slow["environment"]["cores"] = serde_json::json!(4);
    let head = dir.path().join("head.json");
    std::fs::write(&head, serde_json::to_string_pretty(&slow).unwrap()).unwrap();
    let base = fixture("results/reference-quick.json");
    let compare = || {
        let mut cmd = bin();
        cmd.arg("compare").arg(&base).arg(&head);
        cmd
    };
    compare()
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ADVISORY FAIL"))
        .stdout(predicate::str::contains("× 2 cores").and(predicate::str::contains("× 4 cores")));
    compare().arg("--strict-environment").assert().code(1).stdout(predicate::str::starts_with("FAIL"));
}

#[test]
fn an_inconclusive_comparison_exits_0_unless_told_to_fail_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("noisy.json");
    std::fs::write(&head, crate::common::noisy_head().to_json()).unwrap();
    let base = fixture("results/reference-quick.json");
    let compare = |args: &[&str]| bin().arg("compare").arg(&base).arg(&head).args(args).assert();
    compare(&[]).code(0).stdout(predicate::str::starts_with("INCONCLUSIVE: "));
    compare(&["--fail-on", "inconclusive"]).code(1);
    compare(&["--fail-on", "never"]).code(0);
    // A real regression still fails by default.
    bin().arg("compare").arg(&base).arg(fixture("results/reference-slow.json")).assert().code(1);
}

#[test]
fn runs_of_the_embedded_default_are_judged_with_its_scenario_gates() {
    // The noisy head's latency leaves `mixed` undecided; named `outage` and run by the
    // embedded default, whose outage scenario gates on errors and memory alone, it decides.
    let dir = tempfile::tempdir().unwrap();
    let as_outage = |mut r: Results, source: &str, name: &str| {
        r.config_source = source.into();
        r.scenarios[0].name = "outage".into();
        let path = dir.path().join(name);
        r.save(&path).unwrap();
        path
    };
    let embedded = mcp_perfcheck::config::DEFAULT_SOURCE;
    let base = Results::load(&fixture("results/reference-quick.json")).unwrap();
    let compare = |base: &Path, head: &Path| bin().arg("compare").arg(base).arg(head).assert();
    let (b, h) =
        (as_outage(base.clone(), embedded, "b.json"), as_outage(crate::common::noisy_head(), embedded, "h.json"));
    compare(&b, &h).code(0).stdout(predicate::str::starts_with("PASS"));
    let (b, h) =
        (as_outage(base, "perf.yaml", "b2.json"), as_outage(crate::common::noisy_head(), "perf.yaml", "h2.json"));
    compare(&b, &h).code(0).stdout(predicate::str::starts_with("INCONCLUSIVE: outage"));
}

#[test]
fn every_format_renders_from_the_command_line_and_templates_can_be_replaced() {
    let (base, head) = (fixture("results/reference-quick.json"), fixture("results/reference-slow.json"));
    let output = |args: &[&str]| bin().arg("compare").arg(&base).arg(&head).args(args).output().unwrap();
    let md = output(&["--format", "markdown"]);
    assert_eq!(md.status.code(), Some(1));
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(md.starts_with("<!-- mcp-perfcheck:report -->\n### ❌ mcp-perfcheck: 3 regressions"), "{md}");
    let html = String::from_utf8(output(&["--format", "html"]).stdout).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"), "{html}");
    let junit = String::from_utf8(output(&["--format", "junit"]).stdout).unwrap();
    assert!(junit.contains("<testsuites name=\"mcp-perfcheck\" tests=\"11\" failures=\"3\">"), "{junit}");
    // Not a terminal: no colour, whatever NO_COLOR says.
    let text = String::from_utf8(output(&[]).stdout).unwrap();
    assert!(!text.contains('\u{1b}') && text.starts_with("FAIL: 3 significant regressions"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("comment.md.tera"), "{{ marker }}\nOur gate says: {{ headline }}\n").unwrap();
    let custom = output(&["--format", "markdown", "--template-dir", dir.path().to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(custom.stdout).unwrap().lines().nth(1).unwrap(),
        "Our gate says: ❌ mcp-perfcheck: 3 regressions · base `d0594e8` → head `d0594e8`"
    );

    let with_templates = || {
        bin()
            .arg("compare")
            .arg(&base)
            .arg(&head)
            .args(["--format", "markdown", "--template-dir"])
            .arg(dir.path())
            .assert()
    };
    std::fs::write(dir.path().join("coment.md.tera"), "typo").unwrap();
    with_templates().code(2).stderr(
        predicate::str::contains("coment.md.tera: no such template (known: ")
            .and(predicate::str::contains("comment.md.tera")),
    );
    std::fs::remove_file(dir.path().join("coment.md.tera")).unwrap();
    std::fs::write(dir.path().join("comment.md.tera"), "{% if %}").unwrap();
    with_templates().code(2).stderr(predicate::str::contains("comment.md.tera:"));
}
