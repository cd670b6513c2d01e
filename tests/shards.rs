//! A sharded run (`run --shard K/N`, `--start-at`) and its merge (`mcp-perfcheck merge`)
//! through the binary: three shard processes against one `serve --http`, merged exactly, and
//! compared with one generator at the same total rate; merges that must be refused.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use mcp_perfcheck::upstream::{Behaviour, Latency, Simulator, SimulatorConfig};

use crate::common::{bin, bin_path, load_lock, read_json, spawn_http_server, stop_http_server, write_config};

/// Each shard's rate; the config asks for three times it.
const R: f64 = 10.0;

/// The config: `lookup` of ids never seen before, so every call waits on the upstream's fixed
/// 10 ms (a call of steady length, as real tools are: see the README's "Sharding" for what
/// three generators on one machine add to calls of microseconds). Warm-up and window hold a
/// whole number of sends.
fn config(url: &str) -> String {
    format!(
        "server: {{url: \"{url}\", transport: http}}
workload:
  repetitions: 5
  scenarios:
    - name: steady
      executor: constant-arrival-rate
      rate: {rate}/s
      warmup: 400ms
      duration: 1500ms
      mix: [{{tool: lookup, arguments: {{id: {{$sequence: {{start: 1000}}}}}}}}]
",
        rate = 3.0 * R
    )
}

fn run_shards(config: &Path, dir: &Path, start_at: &str) -> Vec<PathBuf> {
    let children: Vec<(PathBuf, std::process::Child)> = (1..=3)
        .map(|k| {
            let out = dir.join(format!("shard-{k}.json"));
            let child = std::process::Command::new(bin_path())
                .args(["run", "--config"])
                .arg(config)
                .args(["--shard", &format!("{k}/3"), "--start-at", start_at, "--slot-gap", "500ms", "--out"])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (out, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(out, child)| {
            let done = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&done.stderr);
            assert!(done.status.success(), "{}: {stderr}", out.display());
            assert!(!stderr.contains("after the common start"), "a shard started late: {stderr}");
            out
        })
        .collect()
}

/// Every latency histogram of a results file (scenario, repetition, operation), decoded with
/// the hdrhistogram crate alone.
fn histograms(results: &serde_json::Value, field: &str) -> Vec<((String, u64, String), Histogram<u64>)> {
    let mut out = Vec::new();
    for s in results["scenarios"].as_array().unwrap() {
        for r in s["repetitions"].as_array().unwrap() {
            for op in r["operations"].as_array().unwrap() {
                let bytes = base64::engine::general_purpose::STANDARD.decode(op[field].as_str().unwrap()).unwrap();
                let h: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap();
                let key =
                    (s["name"].as_str().unwrap().to_string(), r["index"].as_u64().unwrap(), op["name"].to_string());
                out.push((key, h));
            }
        }
    }
    out
}

fn buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // the lock only orders whole tests; nothing else in this one takes it
async fn three_shards_with_a_common_start_merge_exactly_and_agree_with_one_generator() {
    let _turn = load_lock();
    let behaviour =
        Behaviour { latency: Latency::Fixed(Duration::from_millis(10)), error_rate: 0.0, error_status: 503 };
    let sim =
        Simulator::start(SimulatorConfig { listen: "127.0.0.1:0".parse().unwrap(), behaviour, seed: 1 }).await.unwrap();
    let (server, url) = spawn_http_server(&["--upstream", &sim.url()], &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &config(&url));

    let start = SystemTime::now() + Duration::from_secs(3);
    let start_at = humantime::format_rfc3339_millis(start).to_string();
    let (config2, dir2, at) = (config.clone(), dir.path().to_path_buf(), start_at.clone());
    let shards = tokio::task::spawn_blocking(move || run_shards(&config2, &dir2, &at)).await.unwrap();
    let merged = dir.path().join("merged.json");
    let out = bin().arg("merge").args(&shards).arg("--out").arg(&merged).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let whole = dir.path().join("whole.json");
    let (config2, whole2) = (config.clone(), whole.clone());
    let one =
        tokio::task::spawn_blocking(move || crate::common::run_cmd(&config2, &whole2).output().unwrap()).await.unwrap();
    assert!(one.status.success(), "{}", String::from_utf8_lossy(&one.stderr));
    stop_http_server(server).await;
    sim.stop().await;

    let m = read_json(&merged);
    let parts: Vec<serde_json::Value> = shards.iter().map(|p| read_json(p)).collect();
    assert_eq!(m["sharding"]["count"], 3);
    assert_eq!(m["sharding"]["start_at"], parts[0]["sharding"]["start_at"]);
    let reps = m["scenarios"][0]["repetitions"].as_array().unwrap();
    assert_eq!(reps.len(), 5);
    let mut skews = Vec::new();
    for rep in reps {
        // The merged rate is the configured one: every shard sent its share on time.
        let achieved = rep["load"]["achieved_rate_per_s"].as_f64().unwrap();
        assert!((achieved - 3.0 * R).abs() <= 0.01 * 3.0 * R, "achieved {achieved}/s of {}/s", 3.0 * R);
        assert_eq!(rep["load"]["sent"], (3.0 * R * 1.5) as u64, "a whole number of sends in the window");
        let starts: Vec<u64> =
            rep["shards"].as_array().unwrap().iter().map(|p| p["window"]["start_unix_ms"].as_u64().unwrap()).collect();
        skews.push(starts.iter().max().unwrap() - starts.iter().min().unwrap());
        assert_eq!(rep["window"]["planned_start_unix_ms"], rep["shards"][0]["window"]["planned_start_unix_ms"]);
    }
    assert!(skews.iter().all(|&s| s <= 50), "the shards' windows started together: skews {skews:?} ms");

    // Bucket for bucket, the merged histograms are the shards' added up, done here alone.
    for field in ["histogram", "histogram_ok", "histogram_uncorrected"] {
        let merged = histograms(&m, field);
        assert_eq!(merged.len(), 5);
        for (key, h) in &merged {
            let mut sum = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            for part in &parts {
                let (_, theirs) = histograms(part, field).into_iter().find(|(k, _)| k == key).unwrap();
                sum.add(theirs).unwrap();
            }
            assert_eq!(buckets(h), buckets(&sum), "{field} {key:?}");
            assert_eq!(h.len(), (3.0 * R * 1.5) as u64, "{field} {key:?}: every call of every shard");
        }
    }

    // Against one generator at the same total rate, the default policy finds no regression.
    let compared = bin().args(["compare", "--format", "json"]).arg(&whole).arg(&merged).output().unwrap();
    let verdict: serde_json::Value = serde_json::from_slice(&compared.stdout).unwrap();
    let regressions: Vec<String> = verdict["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["verdict"] == "regression" && x["gates"] == true)
        .map(|x| format!("{} {}: {}", x["operation"], x["metric"], x["change"]))
        .collect();
    assert!(compared.status.success() && regressions.is_empty(), "{:?}: {regressions:?}", verdict["verdict"]);
    assert_ne!(verdict["verdict"], "fail");
    let p50 = |v: &serde_json::Value| {
        v["metrics"].as_array().unwrap().iter().find(|x| x["metric"] == "p50").unwrap()["change"].as_f64().unwrap()
    };
    eprintln!(
        "three shards at {R}/s: p50 {:+.1}% against one generator at {}/s; skews {skews:?} ms",
        p50(&verdict) * 100.0,
        3.0 * R
    );
}

/// Three shard files of `iterations` calls split three ways, each launching its own server
/// (`@self serve`); shard 3 by its completion index, as a Kubernetes Indexed Job's pod.
fn iteration_shards(dir: &Path, iterations: u32, name: &str) -> Vec<PathBuf> {
    let yaml = format!(
        "server: {{command: [\"@self\", \"serve\"]}}
workload:
  repetitions: 2
  scenarios:
    - {{name: smoke, executor: iterations, iterations: {iterations}, concurrency: 2, mix: [{{tool: echo, arguments: {{message: hi}}}}]}}
thresholds:
  tools/call: [\"throughput>1000000/s\"]
"
    );
    let config = dir.join(format!("{name}.yaml"));
    std::fs::write(&config, yaml).unwrap();
    (1..=3)
        .map(|k| {
            let out = dir.join(format!("{name}-{k}.json"));
            let mut cmd = crate::common::run_cmd(&config, &out);
            if k == 3 {
                cmd.args(["--shards", "3"]).env("JOB_COMPLETION_INDEX", "2");
            } else {
                cmd.args(["--shard", &format!("{k}/3")]);
            }
            // The threshold would fail each shard's part; a shard leaves it to the merge.
            let done = cmd.output().unwrap();
            assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
            assert!(String::from_utf8_lossy(&done.stderr).contains("checked on the merged figures"));
            out
        })
        .collect()
}

fn merge(files: &[&PathBuf], out: &Path, config: Option<&Path>) -> Output {
    let mut cmd = bin();
    cmd.arg("merge").args(files).arg("--out").arg(out);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.output().unwrap()
}

#[test]
fn merges_of_other_configs_missing_or_repeated_shards_are_refused_naming_the_cause() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let a = iteration_shards(dir.path(), 31, "a");
    let b = iteration_shards(dir.path(), 30, "b");
    let out = dir.path().join("merged.json");

    // Every shard of one config: 31 calls split 11, 10, 10, per repetition.
    let done = merge(&[&a[0], &a[1], &a[2]], &out, None);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let m = read_json(&out);
    for rep in m["scenarios"][0]["repetitions"].as_array().unwrap() {
        let counts: Vec<u64> =
            rep["shards"].as_array().unwrap().iter().map(|p| p["load"]["sent"].as_u64().unwrap()).collect();
        assert_eq!(counts, vec![11, 10, 10]);
        assert_eq!(rep["operations"][0]["count"], 31);
    }
    assert_eq!(m["thresholds"], serde_json::Value::Null, "no threshold judged on one shard's part");
    let text = String::from_utf8_lossy(&done.stderr);
    assert!(text.contains("no --config"), "{text}");
    // With the config, its threshold is judged on the merge (and fails: exit 1).
    let done = merge(&[&a[0], &a[1], &a[2]], &out, Some(&dir.path().join("a.yaml")));
    assert_eq!(done.status.code(), Some(1), "{}", String::from_utf8_lossy(&done.stderr));
    assert_eq!(read_json(&out)["thresholds"][0]["held"], false);

    std::fs::remove_file(&out).unwrap();
    let refused = |files: &[&PathBuf], config: Option<&Path>| {
        let done = merge(files, &out, config);
        assert_eq!(done.status.code(), Some(2), "{}", String::from_utf8_lossy(&done.stdout));
        assert!(!out.exists(), "nothing written");
        String::from_utf8_lossy(&done.stderr).to_string()
    };
    let e = refused(&[&a[0], &a[1], &b[2]], None);
    assert!(e.contains("different configs") && e.contains("b-3.json"), "{e}");
    let e = refused(&[&a[0], &a[2]], None);
    assert!(e.contains("shard(s) 2 of 3 missing"), "{e}");
    let e = refused(&[&a[0], &a[1], &a[1], &a[2]], None);
    assert!(e.contains("shard 2 of 3 is given twice"), "{e}");
    let e = refused(&[&a[0], &a[1], &a[2]], Some(&dir.path().join("b.yaml")));
    assert!(e.contains("not the config the shards ran"), "{e}");
    // A forged shard's scenario name is quoted, but cut short and unable to act in a log.
    let mut forged = read_json(&a[2]);
    forged["scenarios"][0]["name"] = format!("\u{1b}[2J\n::error::pwned {}", "x".repeat(100_000)).into();
    let forged_file = dir.path().join("forged.json");
    std::fs::write(&forged_file, forged.to_string()).unwrap();
    let e = refused(&[&a[0], &a[1], &forged_file], None);
    assert!(e.contains("different scenarios") && e.contains("forged.json") && e.contains("more bytes"), "{e:.300}");
    assert!(e.len() < 5_000 && !e.contains('\u{1b}'), "{} bytes", e.len());
    assert!(e.lines().all(|l| !l.trim_start().starts_with("::")), "{e:.300}");

    // The Action's merge mode: the merge compared with a stored baseline by `ci --results`,
    // here the same merge kept as a file baseline, and the report written.
    let merged = dir.path().join("merged.json");
    assert!(merge(&[&a[0], &a[1], &a[2]], &merged, None).status.success());
    let yaml = std::fs::read_to_string(dir.path().join("a.yaml")).unwrap().replace(
        "thresholds:\n  tools/call: [\"throughput>1000000/s\"]\n",
        "baseline: {store: file, path: merged.json}\n",
    );
    let config = dir.path().join("ci.yaml");
    std::fs::write(&config, yaml).unwrap();
    let report = dir.path().join("report");
    let done = bin()
        .args(["ci", "--config"])
        .arg(&config)
        .arg("--results")
        .arg(&merged)
        .arg("--out-dir")
        .arg(&report)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_EVENT_NAME")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&done.stdout).to_string() + &String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{text}");
    assert!(text.contains("another config"), "the merge's config differs from ci.yaml and it is said: {text}");
    let markdown = std::fs::read_to_string(report.join("mcp-perfcheck-report.md")).unwrap();
    assert!(markdown.contains("smoke"), "{markdown}");
    assert_eq!(read_json(&report.join("mcp-perfcheck-results.json"))["sharding"]["count"], 3, "the merge is the head");
    // Without a stored baseline there is nothing to compare a merge with.
    let a = dir.path().join("a.yaml");
    let done = bin().args(["ci", "--config"]).arg(&a).arg("--results").arg(&merged).output().unwrap();
    assert_eq!(done.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&done.stderr).contains("compared with a stored baseline"));
}

#[test]
fn a_shard_that_misses_the_common_start_says_by_how_much_and_its_file_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "server: {command: [\"@self\", \"serve\"]}
workload:
  repetitions: 1
  scenarios:
    - {name: s, concurrency: 1, warmup: 100ms, duration: 300ms, mix: [{tool: echo, arguments: {message: hi}}]}
",
    );
    let past = humantime::format_rfc3339_millis(SystemTime::now() - Duration::from_secs(5)).to_string();
    let out = dir.path().join("late.json");
    let done = crate::common::run_cmd(&config, &out).args(["--shard", "1/2", "--start-at", &past]).output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    let said: u64 = stderr
        .split("repetition 1 starts ")
        .nth(1)
        .and_then(|rest| rest.split(" ms after the common start").next())
        .unwrap_or_else(|| panic!("no lateness said: {stderr}"))
        .parse()
        .unwrap();
    assert!((5000..15000).contains(&said), "{said} ms late");
    let window = &read_json(&out)["scenarios"][0]["repetitions"][0]["window"];
    let late = window["start_unix_ms"].as_u64().unwrap() - window["planned_start_unix_ms"].as_u64().unwrap();
    assert!(late >= said && late < said + 1000, "the file's window is {late} ms late, the warning said {said}");
}
