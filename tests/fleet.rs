//! A real fleet: HAProxy (Debian `haproxy`, installed by scripts/setup-peers.sh) in front of
//! three `serve --http` instances that share one real redis-server (the cache's second layer
//! and the session store), with HAProxy checking each instance's `/readyz`. `mcp-perfcheck
//! run` drives the balancer while one instance is killed, one is restarted gracefully, and one
//! instance's upstream goes down; the figures are printed.

use std::path::Path;
use std::time::{Duration, Instant};

use mcp_perfcheck::upstream::{Simulator, SimulatorConfig};
use tokio::io::AsyncBufReadExt;

use crate::common::{RedisServer, bin_path, free_port, load_lock, read_json, require_peer};

/// HAProxy's check interval; the instances probe their dependencies at the same interval.
const CHECK: Duration = Duration::from_millis(200);
const MAX_IN_FLIGHT: u64 = 8;

struct Instance {
    port: u16,
    sim: Simulator,
    child: Option<tokio::process::Child>,
    /// The simulator's item loads when this instance last started.
    loads_at_start: u64,
    runtime: std::path::PathBuf,
}

/// The embedded runtime config with the catalog's entries fresh for a minute, so that one load
/// serves the whole test and every other instance reads it from Redis.
fn runtime_config(dir: &Path) -> std::path::PathBuf {
    let embedded =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/server/runtime.yaml")).unwrap();
    let long = embedded.replacen(
        "cache: { ttl: 2s, stale_while_revalidate: 2s,",
        "cache: { ttl: 60s, stale_while_revalidate: 2s,",
        1,
    );
    assert_ne!(long, embedded, "the catalog's cache line moved: update this test");
    let path = dir.join("runtime.yaml");
    std::fs::write(&path, long).unwrap();
    path
}

impl Instance {
    async fn start(&mut self, redis: &str) {
        self.loads_at_start = self.sim.stats().items;
        let mut child = tokio::process::Command::new(bin_path())
            .args(["serve", "--http", &format!("127.0.0.1:{}", self.port), "--upstream", &self.sim.url()])
            .arg("--runtime-config")
            .arg(&self.runtime)
            .args(["--session-store", redis, "--ready-interval", "200ms", "--drain-delay", "600ms"])
            .env("MCP_RUNTIME_REDIS_URL", redis)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
        assert!(line.starts_with("listening on "), "{line}");
        self.child = Some(child);
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id().unwrap() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
    }

    async fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("it exited").unwrap()
    }

    /// The catalog cache's second-layer (Redis) hits, from `/metrics`.
    async fn l2_hits(&self) -> u64 {
        let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", self.port)).await.unwrap().text().await.unwrap();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("mcp_cache_requests_total{") && l.contains("\"catalog\"") && l.contains("\"l2_hit\"")
            })
            .unwrap_or_else(|| panic!("no l2_hit sample in {text}"));
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
    }
}

struct Haproxy {
    child: std::process::Child,
    stats: u16,
}

impl Haproxy {
    fn start(dir: &Path, listen: u16, backends: &[u16]) -> Haproxy {
        let haproxy = require_peer("/usr/sbin/haproxy"); // Path::join keeps an absolute path
        let stats = free_port();
        let interval = CHECK.as_millis();
        let mut cfg = format!(
            "global\n  maxconn 512\ndefaults\n  mode http\n  timeout connect 500ms\n  timeout client 10s\n  timeout server 10s\n  retries 3\n  option redispatch\n\
             frontend mcp\n  bind 127.0.0.1:{listen}\n  default_backend fleet\n\
             frontend stats\n  bind 127.0.0.1:{stats}\n  stats enable\n  stats uri /stats\n\
             backend fleet\n  balance roundrobin\n  option httpchk GET /readyz\n  http-check expect status 200\n  default-server inter {interval}ms fall 1 rise 1\n"
        );
        for (i, port) in backends.iter().enumerate() {
            cfg.push_str(&format!("  server s{} 127.0.0.1:{port} check\n", i + 1));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let child = std::process::Command::new(haproxy)
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", listen)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not listen on {listen}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Haproxy { child, stats }
    }

    /// Each server's status (`UP`, `DOWN`, …) from the stats CSV.
    async fn status(&self) -> Vec<(String, String)> {
        let csv =
            reqwest::get(format!("http://127.0.0.1:{}/stats;csv", self.stats)).await.unwrap().text().await.unwrap();
        csv.lines()
            .filter(|l| l.starts_with("fleet,s"))
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[1].to_string(), f[17].to_string())
            })
            .collect()
    }

    async fn wait_for(&self, server: &str, status: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.status().await.iter().any(|(s, st)| s == server && st.starts_with(status)) {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "{server} not {status} within {within:?}: {:?}", self.status().await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mcp-perfcheck run` through the balancer: lookups of one id and echoes, at a
/// constant rate, for `duration`.
fn run(dir: &Path, name: &str, listen: u16, era: &str) -> tokio::process::Child {
    let yaml = format!(
        "server:\n  transport: http\n  url: http://127.0.0.1:{listen}/mcp\n  era: {era}\nworkload:\n  repetitions: 1\n  scenarios:\n    - name: {name}\n      executor: constant-arrival-rate\n      rate: 200/s\n      max_in_flight: {MAX_IN_FLIGHT}\n      warmup: 200ms\n      duration: 3s\n      mix:\n        - tool: lookup\n          arguments: {{id: \"fleet-1\"}}\n        - tool: echo\n          arguments: {{message: \"hi\"}}\n"
    );
    let config = dir.join(format!("{name}.yaml"));
    std::fs::write(&config, yaml).unwrap();
    tokio::process::Command::new(bin_path())
        .args(["run", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.join(format!("{name}.json")))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Calls and failed calls of a finished run.
async fn finished(dir: &Path, name: &str, mut child: tokio::process::Child) -> (u64, u64) {
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await.expect("the run ended").unwrap();
    let r = read_json(&dir.join(format!("{name}.json")));
    let ops = r["scenarios"][0]["repetitions"][0]["operations"].as_array().cloned().unwrap_or_default();
    let calls = ops.iter().map(|o| o["count"].as_u64().unwrap()).sum();
    let errors = ops.iter().flat_map(|o| o["errors"].as_object().unwrap().values()).map(|n| n.as_u64().unwrap()).sum();
    assert!(status.code().is_some(), "the run was not killed: {status}");
    let spoken = if name.ends_with("-handshake") { "2025-11-25" } else { "2026-07-28" };
    assert_eq!(r["server"]["protocol_version"], spoken, "{name}");
    (calls, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The load lock is held for the whole test on purpose: other load tests wait on their own
// threads, not on this runtime's.
#[allow(clippy::await_holding_lock)]
async fn a_fleet_behind_haproxy_rides_out_a_kill_a_graceful_restart_and_a_dead_upstream() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let mut fleet = Vec::new();
    let runtime = runtime_config(dir.path());
    for _ in 0..3 {
        let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
        let mut instance =
            Instance { port: free_port(), sim, child: None, loads_at_start: 0, runtime: runtime.clone() };
        instance.start(&redis.url()).await;
        fleet.push(instance);
    }
    let listen = free_port();
    let ports: Vec<u16> = fleet.iter().map(|i| i.port).collect();
    let lb = Haproxy::start(dir.path(), listen, &ports);
    for s in ["s1", "s2", "s3"] {
        lb.wait_for(s, "UP", Duration::from_secs(5)).await;
    }

    // Both eras: the stateless 2026-07-28 revision, then the 2025-11-25 handshake, whose
    // sessions live in Redis, so that a session whose instance goes away carries on elsewhere.
    for era in ["auto", "handshake"] {
        if era == "handshake" {
            // s3 back in rotation, on a live upstream.
            let fresh = Simulator::start(SimulatorConfig::default()).await.unwrap();
            fleet[2].sim = fresh;
            fleet[2].signal(nix::sys::signal::Signal::SIGTERM);
            let _ = fleet[2].wait().await;
            fleet[2].start(&redis.url()).await;
            lb.wait_for("s3", "UP", Duration::from_secs(3)).await;
        }
        let name = |event: &str| format!("{event}-{era}");

        // 1. A graceful restart of s2: SIGTERM (readiness drops, the balancer takes it out
        //    during the drain delay, in-flight calls finish), then started again on its port.
        let running = run(dir.path(), &name("graceful"), listen, era);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        fleet[1].signal(nix::sys::signal::Signal::SIGTERM);
        let out = lb.wait_for("s2", "DOWN", Duration::from_secs(2)).await;
        assert!(fleet[1].wait().await.success());
        fleet[1].start(&redis.url()).await;
        let back = lb.wait_for("s2", "UP", Duration::from_secs(3)).await;
        let (calls, errors) = finished(dir.path(), &name("graceful"), running).await;
        println!(
            "{era}: graceful restart of s2: {calls} calls, {errors} failed; out of rotation {out:?} after SIGTERM, back {back:?} after its restart"
        );
        assert!(calls > 400, "{calls}");
        assert_eq!(errors, 0, "{era}: a graceful restart fails no call");

        // 2. SIGKILL of s1: what was in flight on it may fail, nothing else.
        let running = run(dir.path(), &name("kill"), listen, era);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        fleet[0].signal(nix::sys::signal::Signal::SIGKILL);
        let _ = fleet[0].wait().await;
        let out = lb.wait_for("s1", "DOWN", Duration::from_secs(2)).await;
        let (calls, errors) = finished(dir.path(), &name("kill"), running).await;
        println!(
            "{era}: SIGKILL of s1: {calls} calls, {errors} failed (at most {MAX_IN_FLIGHT} in flight in all); out of rotation {out:?} after the kill"
        );
        assert!(calls > 400, "{calls}");
        assert!(errors <= MAX_IN_FLIGHT, "{era}: only calls in flight on s1 may fail: {errors}");
        fleet[0].start(&redis.url()).await;
        lb.wait_for("s1", "UP", Duration::from_secs(3)).await;

        // 3. s3's upstream goes down: its /readyz turns 503 and the balancer takes it out
        //    within two check intervals; its lookups meanwhile are served from the cache.
        let running = run(dir.path(), &name("upstream"), listen, era);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let down_at = Instant::now();
        let sim = std::mem::replace(&mut fleet[2].sim, Simulator::start(SimulatorConfig::default()).await.unwrap());
        sim.stop().await;
        lb.wait_for("s3", "DOWN", Duration::from_secs(2)).await;
        let out = down_at.elapsed();
        let (calls, errors) = finished(dir.path(), &name("upstream"), running).await;
        println!(
            "{era}: s3's upstream down: {calls} calls, {errors} failed; s3 out of rotation {out:?} after the outage began"
        );
        assert!(out <= CHECK * 2 + Duration::from_millis(100), "{era}: taken out within two check intervals: {out:?}");
        assert_eq!(errors, 0, "{era}: lookups are served from the cache, then by the other instances");
    }

    // One load from an upstream served the fleet: s1 and s2 restarted with empty memory and
    // read the id from Redis without asking their upstreams.
    let loads: Vec<u64> = fleet.iter().map(|i| i.sim.stats().items).collect();
    let mut from_redis = 0;
    for (i, instance) in fleet.iter().enumerate().take(2) {
        let (since_start, l2_hits) = (loads[i] - instance.loads_at_start, instance.l2_hits().await);
        println!("s{}: upstream loads since its last start {since_start}, Redis hits {l2_hits}", i + 1);
        if since_start == 0 {
            assert!(l2_hits >= 1, "s{} served the id without loading it, so from Redis", i + 1);
            from_redis += 1;
        }
    }
    println!("upstream loads of the id across the fleet: {loads:?}");
    assert!(loads.iter().sum::<u64>() <= 3, "{loads:?}");
    assert!(from_redis >= 1, "an instance that never loaded the key served it from Redis");
    for instance in &mut fleet {
        instance.signal(nix::sys::signal::Signal::SIGTERM);
        let _ = instance.wait().await;
    }
}
