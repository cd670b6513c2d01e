//! `mcp-perfcheck history` through the binary: a directory of results files with a known step,
//! every output format, the alerting exit code, the dashboard in headless Chromium, machine
//! classes kept apart, a capacity plan, the incremental state, the artifact store's runs, and the
//! pull request's trend lines. The git-branch store of forty real runs is in `tests/serial`.

use std::path::{Path, PathBuf};

use crate::common::{bin, fixture, git, read_json, repo_with_commits, text};

/// A deterministic noise factor around 1 (CV about 2%) for run `i`, value `j`.
fn noise(i: usize, j: usize) -> f64 {
    let mut z = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (j as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= z >> 31;
    z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 29;
    // The sum of four uniforms, centred: close enough to normal, sd 0.02.
    let u = |k: u32| ((z >> (16 * k)) & 0xffff) as f64 / 65535.0;
    1.0 + 0.02 * ((u(0) + u(1) + u(2) + u(3)) - 2.0) / (4.0f64 / 12.0).sqrt()
}

/// `n` runs of `reference-small.json` at commits `c00…`, one a day, written to `dir`, each
/// latency figure of `compute` multiplied by `factor(i)` and noise; `edit` may change the rest.
fn runs(
    dir: &Path,
    n: usize,
    factor: impl Fn(usize) -> f64,
    edit: impl Fn(usize, &mut serde_json::Value),
) -> Vec<PathBuf> {
    let base = read_json(&fixture("results/reference-small.json"));
    (0..n)
        .map(|i| {
            let mut r = base.clone();
            r["git_sha"] = format!("{i:02x}").repeat(20).into();
            r["timestamp"] = format!("2026-{:02}-{:02}T10:00:00Z", 1 + i / 28, 1 + i % 28).into();
            for (j, rep) in r["scenarios"][0]["repetitions"].as_array_mut().unwrap().iter_mut().enumerate() {
                for op in rep["operations"].as_array_mut().unwrap() {
                    let f = noise(i, j) * if op["name"] == "tools/call:compute" { factor(i) } else { 1.0 };
                    // The histogram a commit's percentiles come from, and its summary.
                    let scaled = crate::common::scaled_histogram(op["histogram"].as_str().unwrap(), f);
                    op["latency_us"] = serde_json::to_value(scaled.summary()).unwrap();
                    op["histogram"] = scaled.encode().into();
                }
            }
            edit(i, &mut r);
            let path = dir.join(format!("run-{i:02}.json"));
            std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
            path
        })
        .collect()
}

fn history(args: &[&str]) -> std::process::Output {
    bin().arg("history").args(args).output().unwrap()
}

/// The series of `compute`'s p50 in `history --format json` output (one per machine class).
fn compute_p50(json: &serde_json::Value) -> Vec<&serde_json::Value> {
    let series = json["series"].as_array().unwrap().iter();
    series.filter(|s| s["operation"] == "tools/call:compute" && s["metric"] == "p50").collect()
}

#[test]
fn a_step_in_one_operation_is_found_at_its_commit_in_every_format_and_alerts_when_recent() {
    let dir = tempfile::tempdir().unwrap();
    runs(dir.path(), 30, |i| if i >= 18 { 1.2 } else { 1.0 }, |_, _| {});
    let d = dir.path().to_str().unwrap();

    let out = history(&[d]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let step = "12".repeat(6);
    for metric in ["p50", "p95", "p99"] {
        let line = t
            .lines()
            .find(|l| l.contains("tools/call:compute") && l.contains(&format!(" {metric} ")) && l.contains(&step));
        assert!(line.is_some_and(|l| l.contains("regression")), "compute {metric} regressed at c18:\n{t}");
    }
    assert_eq!(t.matches("regression").count(), 3, "nothing else changed:\n{t}");
    assert!(t.contains("trends (the newest 40 commits)") && t.contains('▁') && t.contains('█'), "{t}");

    let json: serde_json::Value = serde_json::from_slice(&history(&[d, "--format", "json"]).stdout).unwrap();
    assert_eq!(json["schema"], "mcp-perfcheck/history/v1");
    assert_eq!(json["runs"], 30);
    let series = compute_p50(&json)[0];
    let c = &series["change_points"][0];
    assert_eq!((c["index"].as_u64(), c["regression"].as_bool()), (Some(18), Some(true)));
    let change = c["change"].as_f64().unwrap();
    assert!((0.15..0.25).contains(&change), "{change}");
    assert!(c["interval"][0].as_f64().unwrap() < change && change < c["interval"][1].as_f64().unwrap());
    assert_eq!(series["points"].as_array().unwrap().len(), 30);

    let md = String::from_utf8(history(&[d, "--format", "markdown"]).stdout).unwrap();
    assert!(md.contains("| commit | date |") && md.contains("🔴 regression"), "{md}");

    // The alert: a regression that began 12 commits ago is recent within 15, not within 5.
    assert_eq!(history(&[d, "--fail-on-change", "recent:15"]).status.code(), Some(1));
    let calm = history(&[d, "--fail-on-change", "recent:5"]);
    assert_eq!(calm.status.code(), Some(0), "{}", text(&calm));
    let bad = history(&[d, "--fail-on-change", "5"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("write recent:N"));
}

/// The dashboard in a real browser: headless Chromium (installed by scripts/setup-peers.sh)
/// loads the page with scripts and network off; the screenshot shows the series, the segment
/// levels, and the change points in red.
#[test]
fn the_dashboard_draws_its_series_segments_and_change_points_in_headless_chromium() {
    let _turn = crate::common::load_lock();
    let dir = tempfile::tempdir().unwrap();
    runs(dir.path(), 30, |i| if i >= 18 { 1.2 } else { 1.0 }, |_, _| {});
    let page = dir.path().join("dashboard.html");
    let out = history(&[dir.path().to_str().unwrap(), "--dashboard", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "self-contained");
    let shot = crate::common::Screenshot::of(&page, 1200, 2600);
    let count = |rgb| shot.count(rgb);
    let (blue, amber, red) = (count([0x1f, 0x6f, 0xeb]), count([0xbf, 0x87, 0x00]), count([0xd1, 0x24, 0x2f]));
    // Eleven panels of 30 points; two levels in three panels and one in eight; three dashed
    // red lines about 110 px tall, 2 px wide, half of it drawn.
    assert!(blue > 11 * 30 * 10, "series drawn: {blue} blue pixels");
    assert!(amber > 14 * 150, "segment levels drawn: {amber} amber pixels");
    assert!(red > 3 * 90, "change points drawn: {red} red pixels");
}

#[test]
fn runs_on_two_machine_classes_make_two_series_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    runs(
        dir.path(),
        24,
        |_| 1.0,
        |i, r| {
            if i >= 12 {
                r["environment"]["cpu_model"] = "Other CPU".into();
            }
        },
    );
    let out = history(&[dir.path().to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let classes: Vec<&str> =
        json["environments"].as_array().unwrap().iter().map(|e| e["class"].as_str().unwrap()).collect();
    assert_eq!(classes.len(), 2, "{classes:?}");
    assert!(classes[1].starts_with("Other CPU"), "the newest runs' class last: {classes:?}");
    let p50 = compute_p50(&json);
    assert_eq!(p50.len(), 2);
    assert!(p50.iter().all(|s| s["points"].as_array().unwrap().len() == 12), "never mixed");
    assert!(json["notes"][0].as_str().unwrap().contains("2 machine classes"), "{}", json["notes"]);
}

#[test]
fn files_with_no_commit_and_a_foreign_date_are_shown_and_a_forged_commit_is_left_out_by_name() {
    let dir = tempfile::tempdir().unwrap();
    // Runs with no commit are named by their file (here in a multi-byte name) and dated by their
    // own timestamp (here not a date at all): shortened for display, never cut mid-character.
    let files = runs(
        dir.path(),
        12,
        |_| 1.0,
        |i, r| {
            r.as_object_mut().unwrap().remove("git_sha");
            r["timestamp"] = format!("2€€€€€€€€€€{i:02}").into();
        },
    );
    for (i, f) in files.iter().enumerate() {
        std::fs::rename(f, dir.path().join(format!("ñ€€€€€€€€€-{i:02}.json"))).unwrap();
    }
    let mut forged = read_json(&fixture("results/reference-small.json"));
    forged["git_sha"] = "../../results/other".into();
    std::fs::write(dir.path().join("forged.json"), forged.to_string()).unwrap();
    let d = dir.path().to_str().unwrap();
    for format in ["text", "markdown", "html", "json"] {
        let out = history(&[d, "--format", format]);
        assert!(out.status.success(), "{format}: {}", text(&out));
        let shown = text(&out);
        assert!(shown.contains("12 run(s)") || format == "json", "{format}: {shown}");
        assert!(
            shown.contains("forged.json") && (shown.contains("git_sha") || shown.contains(r"git\_sha")),
            "{format}: the forged run named: {shown}"
        );
    }
    let dashboard = dir.path().join("d.html");
    let out = history(&[d, "--dashboard", dashboard.to_str().unwrap(), "--fail-on-change", "recent:5"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read_to_string(&dashboard).unwrap().contains("ñ€€€€€€"));
}

#[test]
fn a_capacity_plan_comes_from_the_latest_segment_of_breakpoint_runs() {
    let dir = tempfile::tempdir().unwrap();
    // An instance held about 10,000/s, then 8,000/s from run 12 on.
    runs(
        dir.path(),
        24,
        |_| 1.0,
        |i, r| {
            let s = &mut r["scenarios"][0];
            s["phase"] = "breakpoint".into();
            for (j, rep) in s["repetitions"].as_array_mut().unwrap().iter_mut().enumerate() {
                let capacity = if i >= 12 { 8000.0 } else { 10_000.0 } * noise(i, j + 7);
                rep["breakpoint"] = serde_json::json!({"capacity_per_s": capacity, "broke_at_s": 20.0, "rate_at_break_per_s": capacity * 1.1, "broken_by": "p99"});
            }
        },
    );
    let d = dir.path().to_str().unwrap();
    let out = history(&[d, "--plan", "50000/s", "--headroom", "25%", "--price", "0.40/h"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // 62,500 over a lower bound a little under 8,000: 8 instances.
    let plan = t.lines().find(|l| l.contains("instance(s) for 50,000/s")).unwrap_or_else(|| panic!("{t}"));
    assert!(plan.starts_with("steady: 8 instance(s)") && plan.contains("25% headroom"), "{plan}");
    assert!(plan.contains("since 0c0c0c0c0c0c"), "the segment since the change: {plan}");
    assert!(t.contains("cost: 3.20 an hour"), "{t}");
    assert!(t.contains("assumes stateless instances scale linearly"), "{t}");
    let capacity = t.lines().find(|l| l.contains("capacity") && l.contains("change point(s)")).unwrap();
    assert!(capacity.contains("1 change point(s)"), "{capacity}");

    // No breakpoint scenario: a clear error.
    let plain = tempfile::tempdir().unwrap();
    runs(plain.path(), 6, |_| 1.0, |_, _| {});
    let out = history(&[plain.path().to_str().unwrap(), "--plan", "100/s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no breakpoint scenario"), "{}", text(&out));
}

#[test]
fn with_a_state_file_a_longer_history_is_searched_after_what_was_found_and_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let files = runs(
        dir.path(),
        40,
        |i| {
            if i >= 30 {
                1.25
            } else if i >= 12 {
                1.12
            } else {
                1.0
            }
        },
        |_, _| {},
    );
    let state = dir.path().join("state.json");
    let args = |upto: usize| -> Vec<String> {
        let mut a: Vec<String> = files[..upto].iter().map(|f| f.display().to_string()).collect();
        a.extend(["--format", "json", "--state", state.to_str().unwrap()].map(String::from));
        a
    };
    let run = |a: Vec<String>| -> serde_json::Value {
        let out = bin().arg("history").args(&a).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let compute = |j: &serde_json::Value| -> Vec<u64> {
        compute_p50(j)[0]["change_points"].as_array().unwrap().iter().map(|c| c["index"].as_u64().unwrap()).collect()
    };
    let first = run(args(25));
    assert_eq!(compute(&first), vec![12]);
    let saved = read_json(&state);
    assert_eq!(saved["schema"], "mcp-perfcheck/history-state/v1");
    let then = run(args(40));
    assert_eq!(compute(&then), vec![12, 30]);
    let cp = &compute_p50(&then)[0]["change_points"];
    assert!(cp[0].get("p_value").is_none() && cp[1]["p_value"].as_f64().is_some(), "only the new one was tested: {cp}");
    std::fs::remove_file(&state).unwrap();
    assert_eq!(compute(&run(args(40))), vec![12, 30], "a full search agrees");
}

/// The pull-request comment's trend line: `ci` against a git-branch store of the base branch's
/// runs draws each changed metric's trend over the base's newest commits beside the head.
#[test]
fn the_comment_draws_the_base_branchs_trend_beside_the_head_for_what_changed() {
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    let shas = repo_with_commits(r, 8);
    let config = r.join("perf.yaml");
    std::fs::write(
        &config,
        "server: {command: [x]}\nworkload:\n  scenarios: [{name: steady, duration: 1s, mix: [{tool: echo}]}]\nbaseline: {store: git-branch}\n",
    )
    .unwrap();
    let (base_dir, head_dir) = (r.join("base-runs"), r.join("head-run"));
    std::fs::create_dir_all(&base_dir).unwrap();
    std::fs::create_dir_all(&head_dir).unwrap();
    // The base branch drifted: compute a little slower at every commit.
    let files = runs(
        &base_dir,
        8,
        |i| 1.0 + 0.03 * i as f64,
        |i, run| {
            run["git_sha"] = shas[i].clone().into();
        },
    );
    for f in &files {
        let save =
            bin().current_dir(r).args(["baseline", "save"]).arg(f).arg("--config").arg(&config).output().unwrap();
        assert!(save.status.success(), "{}", text(&save));
    }
    // The head: a pull request's commit, compute 50% slower than the base's newest.
    git(r, &["checkout", "-q", "-b", "feature"]);
    git(r, &["commit", "-q", "--allow-empty", "-m", "slower"]);
    let head_sha = git(r, &["rev-parse", "HEAD"]);
    let heads = runs(&head_dir, 1, |_| 1.21 * 1.5, |_, run| run["git_sha"] = head_sha.clone().into());
    let out = r.join("report");
    let ci = bin()
        .current_dir(r)
        .args(["ci", "--config"])
        .arg(&config)
        .arg("--results")
        .arg(&heads[0])
        .arg("--out-dir")
        .arg(&out)
        .args(["--trend-commits", "8", "--fail-on", "never"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_EVENT_NAME")
        .env_remove("GITHUB_BASE_REF")
        .output()
        .unwrap();
    assert!(ci.status.success(), "{}", text(&ci));
    let md = std::fs::read_to_string(out.join("mcp-perfcheck-report.md")).unwrap();
    assert!(md.contains("base's last 8 commits → head"), "{md}");
    let row = md
        .lines()
        .find(|l| l.contains("tools/call:compute") && l.contains("| p50 |"))
        .unwrap_or_else(|| panic!("{md}"));
    let trend = row.trim_end_matches('|').rsplit('|').next().unwrap().trim();
    let (base, head) = trend.split_once(" → ").unwrap_or_else(|| panic!("{row}"));
    assert_eq!(base.chars().count(), 8, "{trend}");
    assert_eq!(head, "█", "the head the highest: {trend}");
    assert!(base.starts_with('▁'), "the base rising from its lowest: {trend}");
}
