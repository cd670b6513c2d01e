//! A git-branch store of COMMITS synthetic runs for timing `history`: a repository at DIR with
//! COMMITS empty commits on `main` and the data branch `mcp-perfcheck-data` holding a results
//! file for each (`results/<sha>.json`, `index.tsv`), and DIR/perf.yaml naming the store.
//!
//! Each run has two scenarios of 6 and 5 operations (4 metrics each) and their error rate, CPU
//! per call and peak RSS: 50 metrics. Each has 10 repetitions whose operations carry real
//! HdrHistograms of 1,000 lognormal draws around their series' level, which steps by ±5–20% at
//! two commits chosen per series, with 3% noise a commit: what `history` reads and decodes.
//!
//!     cargo run --release --example history_store -- DIR [COMMITS]   (default 1000)

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use mcp_perfcheck::measure::LatencyHistogram;
use mcp_perfcheck::stats::SplitMix64;
use serde_json::{Value, json};

/// A series' level at commit `i`: a base, times each step's factor from its commit on.
struct Level {
    base: f64,
    steps: [(usize, f64); 2],
}

impl Level {
    fn new(base: f64, commits: usize, rng: &mut SplitMix64) -> Level {
        let mut step = || {
            let at = 20 + (rng.next_u64() % (commits as u64 - 40)) as usize;
            let size = 0.05 + 0.15 * rng.unit();
            (at, if rng.next_u64().is_multiple_of(2) { 1.0 + size } else { 1.0 / (1.0 + size) })
        };
        Level { base, steps: [step(), step()] }
    }

    fn at(&self, i: usize, rng: &mut SplitMix64) -> f64 {
        let stepped = self.steps.iter().filter(|(at, _)| i >= *at).fold(self.base, |l, (_, f)| l * f);
        stepped * (1.0 + 0.03 * rng.normal())
    }
}

fn git(dir: &std::path::Path, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .spawn()
        .expect("git is installed");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: history_store DIR [COMMITS]"));
    let commits: usize = args.next().map_or(1000, |c| c.parse().expect("COMMITS is a number"));
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"], None);

    // The commits on main, one a minute.
    let mut stream = String::new();
    for i in 0..commits {
        let when = 1_790_000_000 + 60 * i;
        let message = format!("commit {i}");
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter t <t@example.com> {when} +0000\ndata {}\n{message}\n",
            message.len()
        ));
    }
    git(&dir, &["fast-import", "--quiet"], Some(stream.as_bytes()));
    let shas: Vec<String> = git(&dir, &["rev-list", "--reverse", "main"], None).lines().map(String::from).collect();

    // The runs.
    let mut rng = SplitMix64(2026);
    let ops: [&[&str]; 2] = [
        &["echo", "lookup", "batch", "aggregate", "compute", "list"],
        &["search", "fetch", "summarise", "write", "read"],
    ];
    let mut levels: Vec<Vec<(Level, Level)>> = ops
        .iter()
        .map(|names| {
            names
                .iter()
                .enumerate()
                .map(|(k, _)| {
                    let base = 200.0 * (k + 1) as f64;
                    (Level::new(base, commits, &mut rng), Level::new(1000.0 / base * 200.0, commits, &mut rng))
                })
                .collect()
        })
        .collect();
    let scenario_levels: Vec<(Level, Level)> =
        (0..2).map(|_| (Level::new(40.0, commits, &mut rng), Level::new(30e6, commits, &mut rng))).collect();
    let environment =
        json!({"os": "linux", "kernel": "6.1", "cpu_model": "Synthetic CPU", "cores": 2, "memory_bytes": 8u64 << 30});
    let mut import = String::new();
    let mut index = String::new();
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, sha) in shas.iter().enumerate() {
        let scenarios: Vec<Value> = (0..2)
            .map(|s| {
                let repetitions: Vec<Value> = (1..=10)
                    .map(|index| {
                        let operations: Vec<Value> = ops[s]
                            .iter()
                            .zip(levels[s].iter_mut())
                            .map(|(name, (latency, throughput))| {
                                let median = latency.at(i, &mut rng);
                                let mut h = LatencyHistogram::new();
                                for _ in 0..1000 {
                                    let us = median * (0.35 * rng.normal()).exp();
                                    h.record(Duration::from_micros(us.max(1.0) as u64));
                                }
                                json!({"name": format!("tools/call:{name}"), "count": 1000, "errors": {},
                                       "throughput_per_s": throughput.at(i, &mut rng), "latency_us": h.summary(),
                                       "histogram": h.encode()})
                            })
                            .collect();
                        let (cpu, rss) = &scenario_levels[s];
                        json!({"index": index, "measured_s": 2.0, "operations": operations, "unattributed_errors": {},
                               "connection": {"notifications": 0, "server_requests": 0, "late_responses": 0, "malformed_sample": null},
                               "load": {"sent": 1000 * ops[s].len(), "late_sends": 0, "dropped_sends": 0, "achieved_rate_per_s": 1000.0},
                               "server_resources": {"samples": 20, "rss_peak_bytes": rss.at(i, &mut rng) as u64, "rss_final_bytes": 0,
                                   "rss_mean_bytes": 0.0, "rss_slope_bytes_per_s": 0.0, "cpu_seconds": 0.1, "threads_peak": 2,
                                   "open_fds_peak": 10, "processes_peak": 1, "cpu_us_per_call": cpu.at(i, &mut rng)},
                               "client": {"cpu_seconds": 0.05, "cpu_us_per_call": 20.0, "rss_peak_bytes": 30u64 << 20,
                                   "bytes_sent": 0, "bytes_received": 0, "connections_opened": 1},
                               "failure": null})
                    })
                    .collect();
                json!({"name": (["steady", "mixed"][s]), "executor": "constant-vus", "concurrency": 4, "warmup_s": 0.5,
                       "duration_s": 2.0, "repetitions": repetitions})
            })
            .collect();
        let results = json!({"schema": "mcp-perfcheck/results/v1", "tool_version": "0.1.0",
            "timestamp": "2026-12-01T00:00:00Z", "git_sha": sha, "config_source": "perf.yaml",
            "environment": environment, "server": null, "scenarios": scenarios, "failure": null});
        blobs.push((format!("results/{sha}.json"), serde_json::to_vec(&results).unwrap()));
        index.push_str(&format!("{sha}\t2026-12-01T00:00:00Z\n"));
    }
    blobs.push(("index.tsv".to_string(), index.into_bytes()));
    import.push_str(
        "commit refs/heads/mcp-perfcheck-data\ncommitter t <t@example.com> 1800000000 +0000\ndata 5\nstore\n",
    );
    let mut bytes = import.into_bytes();
    for (path, blob) in &blobs {
        bytes.extend_from_slice(format!("M 100644 inline {path}\ndata {}\n", blob.len()).as_bytes());
        bytes.extend_from_slice(blob);
        bytes.push(b'\n');
    }
    git(&dir, &["fast-import", "--quiet"], Some(&bytes));
    let config = dir.join("perf.yaml");
    std::fs::write(
        &config,
        "server: {command: [x]}\nworkload:\n  scenarios: [{name: steady, duration: 1s, mix: [{tool: echo}]}]\nbaseline: {store: git-branch, retention: 100000}\n",
    )
    .unwrap();
    let size: usize = blobs.iter().map(|(_, b)| b.len()).sum();
    println!(
        "{} commits, 50 metrics, 10 repetitions each: {:.0} MB of results in {}",
        shas.len(),
        size as f64 / 1e6,
        dir.display()
    );
}
