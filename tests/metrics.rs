//! Scraping the server's Prometheus metrics during the measured window.

use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::common::{SHORT_ECHO, fixture, load_lock, read_json, read_pids, run_cmd, scripted_config, write_config};

/// The fixture metrics endpoint, ended when dropped.
struct MetricsServer(std::process::Child);

impl Drop for MetricsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_metrics_server(dir: &std::path::Path) -> (MetricsServer, u16) {
    let port_file = dir.join("port");
    let child = std::process::Command::new("python3")
        .arg(fixture("peers/metrics_server.py"))
        .arg(&port_file)
        .spawn()
        .expect("python3 runs the metrics fixture");
    let server = MetricsServer(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|p| p.trim().parse().ok()) {
            return (server, port);
        }
        assert!(Instant::now() < deadline, "the metrics fixture did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config_with_metrics(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let workload = SHORT_ECHO.replace("duration: 500ms", "duration: 2500ms");
    let yaml = scripted_config("normal", &dir.join("pids"), "", &workload)
        .replace("  startup_timeout: 5s", &format!("  startup_timeout: 5s\n  metrics_url: \"{url}\""));
    write_config(dir, &yaml)
}

#[test]
fn counters_become_deltas_and_gauges_series() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let (_metrics, port) = start_metrics_server(dir.path());
    let out = dir.path().join("r.json");
    run_cmd(&config_with_metrics(dir.path(), &format!("http://127.0.0.1:{port}/metrics")), &out)
        .assert()
        .success()
        .stdout(predicate::str::contains("1 counters and 1 gauges from http://127.0.0.1:"));
    let m = read_json(&out)["scenarios"][0]["repetitions"][0]["server_metrics"].clone();
    let scrapes = m["scrapes"].as_u64().unwrap();
    assert!(scrapes >= 3, "start, every second, end: {m}");
    assert_eq!(m["scrape_errors"], 0);
    // First to last successful scrape: 7 per scrape in between.
    assert_eq!(m["counters"]["requests_total{route=\"/mcp\"}"], 7.0 * (scrapes - 1) as f64, "{m}");
    assert_eq!(m["gauges"]["queue_depth"]["points"].as_array().unwrap().len() as u64, scrapes);
    assert!(!read_pids(&dir.path().join("pids")).is_empty());
}

#[test]
fn failed_scrapes_are_counted_and_the_run_goes_on() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    // A port the OS just handed out and that is closed again: every scrape is refused.
    let port = crate::common::free_port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = dir.path().join("r.json");
    run_cmd(&config_with_metrics(dir.path(), &url), &out)
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("scrape(s) failed, last: GET {url}")));
    let m = read_json(&out)["scenarios"][0]["repetitions"][0]["server_metrics"].clone();
    assert_eq!(m["scrape_errors"], m["scrapes"], "{m}");
    assert!(m["counters"].as_object().unwrap().is_empty());
}
