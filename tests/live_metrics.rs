//! `run --live-metrics`: a real Prometheus (Debian's, from scripts/setup-peers.sh) scrapes the
//! run while it measures, and the counts it stored agree with the results file.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::common::{bin, free_port, load_lock, read_json};

/// A Prometheus server on loopback, ended when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, and waits until it is ready.
    fn start(target: &str) -> Prometheus {
        let binary = which("prometheus")
            .expect("prometheus is missing: run scripts/setup-peers.sh as root (the README's test command does)");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: mcp-perfcheck\n    static_configs: [{{targets: [\"{target}\"]}}]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prometheus = Prometheus { child, port, _dir: dir };
        // Ready, and scraping: its scrape manager takes up to 5 s to start on the targets (they
        // are down until the run listens).
        let deadline = Instant::now() + Duration::from_secs(30);
        let scraping = |p: &Prometheus| {
            p.get("/api/v1/targets").is_some_and(|(status, body)| status == 200 && body.contains("\"health\":\"down\""))
        };
        while !scraping(&prometheus) {
            assert!(Instant::now() < deadline, "Prometheus did not start scraping within 30 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    /// GET `path`: the status and the body.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    }

    /// An instant query through the HTTP API: each series' labels and value.
    fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let encoded: String = promql
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let (status, body) = self.get(&format!("/api/v1/query?query={encoded}")).expect("Prometheus answers");
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        answer["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["metric"].clone(), s["value"][1].as_str().unwrap().parse().unwrap()))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| std::path::Path::new(d).join(program)).find(|p| p.is_file())
}

#[test]
fn a_real_prometheus_scrapes_the_run_and_its_counts_match_the_results_file() {
    let _turn = load_lock();
    let live_port = free_port();
    let target = format!("127.0.0.1:{live_port}");
    let prometheus = Prometheus::start(&target);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    bin()
        .args(["run", "--live-metrics", &target, "--out"])
        .arg(&out)
        .args(["--repetitions", "2", "--duration", "2s", "--warmup", "500ms"])
        .args(["--tool", r#"echo={"message":"hi"}"#, "--tool", r#"compute={"iterations":2000}"#])
        .args(["--", "@self", "serve"])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("live metrics at http://{target}/metrics")));
    let results = read_json(&out);
    let reps = results["scenarios"][0]["repetitions"].as_array().unwrap();
    let measured_s: f64 = reps.iter().map(|r| r["measured_s"].as_f64().unwrap()).sum();

    // The target is gone now: its series are stale, so read the most each ever reached.
    let stored = prometheus.query("max_over_time(mcp_perfcheck_calls_total[5m])");
    assert_eq!(stored.len(), 2, "{stored:?}");
    for (labels, value) in &stored {
        assert_eq!(labels["scenario"], "quick");
        assert_eq!(labels["job"], "mcp-perfcheck");
        let op = labels["operation"].as_str().unwrap();
        let count: u64 = reps
            .iter()
            .flat_map(|r| r["operations"].as_array().unwrap())
            .filter(|o| o["name"] == op)
            .map(|o| o["count"].as_u64().unwrap())
            .sum();
        // Within one scrape interval's calls (the run waits for a scrape of its final figures,
        // so they normally agree exactly).
        let per_interval = count as f64 / measured_s;
        assert!((count as f64 - value).abs() <= per_interval, "{op}: Prometheus {value}, results {count}");
    }
    let histogram = prometheus.query("max_over_time(mcp_perfcheck_call_duration_seconds_count[5m])");
    let calls: f64 = stored.iter().map(|(_, v)| v).sum();
    let observed: f64 = histogram.iter().map(|(_, v)| v).sum();
    assert_eq!(calls, observed, "the histogram counts every call");
    let rss = prometheus.query("max_over_time(mcp_perfcheck_server_resident_memory_bytes[5m])");
    assert!(rss.first().is_some_and(|(_, v)| *v > 1e6), "{rss:?}");
    let p99 = prometheus.query("max_over_time(mcp_perfcheck_call_duration_quantile_seconds{quantile=\"0.99\"}[5m])");
    assert!(p99.iter().all(|(_, v)| *v > 0.0 && *v < 1.0), "{p99:?}");

    // Every query of the Grafana dashboard is one this Prometheus accepts.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::root().join("docs/grafana/mcp-perfcheck.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$scenario", ".*").replace("$__rate_interval", "5s");
            prometheus.query(&expr);
        }
    }
}
