//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use assert_cmd::Command;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("fixtures").join(rel)
}

/// The mcp-perfcheck binary under test.
pub fn bin() -> Command {
    Command::cargo_bin("mcp-perfcheck").expect("binary built")
}

/// `mcp-perfcheck run --config CONFIG --out OUT`.
pub fn run_cmd(config: &Path, out: &Path) -> Command {
    let mut cmd = bin();
    cmd.args(["run", "--config"]).arg(config).arg("--out").arg(out);
    cmd
}

/// Runs `yaml` as a config (it must succeed) and returns the results as JSON.
pub fn run_ok(yaml: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    run_cmd(&write_config(dir.path(), yaml), &out).assert().success();
    read_json(&out)
}

/// Tests that put load on the machine take turns, so that one does not skew another's timing.
pub fn load_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A finished command's stdout and stderr, as one text for assertions' messages.
pub fn text(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

/// Writes a config file into `dir` and returns its path.
pub fn write_config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("perf.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A config that runs the scripted Python server in `mode`, recording pids into `pid_file`.
pub fn scripted_config(mode: &str, pid_file: &Path, extra_env: &str, workload: &str) -> String {
    format!(
        r#"
server:
  command: ["python3", "{script}"]
  startup_timeout: 5s
  shutdown_timeout: 1s
  env:
    SCRIPTED_MODE: {mode}
    SCRIPTED_PID_FILE: "{pids}"
    SCRIPTED_SPAWN_CHILD: "1"
{extra_env}
workload:
{workload}
"#,
        script = fixture("peers/scripted_server.py").display(),
        pids = pid_file.display(),
    )
}

/// A short echo workload.
pub const SHORT_ECHO: &str = "
  repetitions: 1
  request_timeout: 2s
  scenarios:
    - name: s
      concurrency: 2
      duration: 500ms
      mix: [{tool: echo, arguments: {message: hi}}]
";

/// The pids a scripted server wrote.
pub fn read_pids(pid_file: &Path) -> Vec<i32> {
    std::fs::read_to_string(pid_file).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// A process is gone when /proc has no entry for it or it is a zombie awaiting its reaper.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
            state != Some('Z') && state != Some('X')
        }
        Err(_) => false,
    }
}

/// Asserts that every pid is gone (allowing a moment for the kernel to reap).
pub fn assert_all_gone(pids: &[i32]) {
    assert!(!pids.is_empty(), "the server recorded no pids: the test would prove nothing");
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<i32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "server processes left behind: {left:?}");
}

/// Fails loudly when the third-party peers are missing: CI must install them.
pub fn require_peer(path: &str) -> PathBuf {
    let p = root().join(path);
    assert!(p.exists(), "{} is missing: run scripts/setup-peers.sh (the README's test command does)", p.display());
    p
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A loopback port that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    // The OS may hand the same port to two tests running at once (it is free again as soon as
    // the probe closes): never give one out twice in this process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A config that launches the scripted Streamable HTTP server with `env` (YAML map entries).
pub fn scripted_http_config(port: u16, env: &str, workload: &str) -> String {
    format!(
        r#"
server:
  command: ["python3", "{script}", "{port}"]
  transport: http
  url: http://127.0.0.1:{port}/mcp
  startup_timeout: 10s
  shutdown_timeout: 1s
  env: {{{env}}}
workload:
{workload}
"#,
        script = fixture("peers/scripted_http_server.py").display(),
    )
}

/// A redis-server of the test's own on a free loopback port (installed by
/// scripts/setup-peers.sh), stopped by its pid when dropped.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub struct RedisServer {
    child: std::process::Child,
    pub port: u16,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is missing: run scripts/setup-peers.sh (the README's test command does)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops it now (an outage).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The path of the mcp-perfcheck binary under test (for a client that spawns it).
pub fn bin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcp-perfcheck"))
}

/// `mcp-perfcheck serve --http 127.0.0.1:0 ARGS…` as a child, and the endpoint it printed
/// (`http://127.0.0.1:PORT/mcp`). Killed if dropped; [`stop_http_server`] ends it politely.
pub async fn spawn_http_server(args: &[&str], env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(bin_path())
        .args(["serve", "--http", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    let url = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"), "{url}");
    (child, url.to_string())
}

/// SIGTERM, then a clean exit (the graceful shutdown).
pub async fn stop_http_server(mut child: tokio::process::Child) {
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status =
        tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("exited after SIGTERM").unwrap();
    assert!(status.success(), "{status}");
}

/// The head of a noisy comparison: the recorded `reference-quick.json` with every latency of
/// repetition i multiplied by `factors[i]` (histograms rebuilt, summaries recomputed): two of
/// four repetitions disturbed, as by a neighbour on a shared runner. Against the recorded run
/// as base, p50 is about +23% slower with a 95% interval reaching past +50%, not significant.
pub fn noisy_head() -> mcp_perfcheck::results::Results {
    let factors = [1.02, 1.45, 1.05, 1.45];
    let mut head = mcp_perfcheck::results::Results::load(&fixture("results/reference-quick.json")).unwrap();
    head.git_sha = Some("feedc0de00000000000000000000000000000000".into());
    for scenario in &mut head.scenarios {
        for (repetition, factor) in scenario.repetitions.iter_mut().zip(factors) {
            for op in &mut repetition.operations {
                let scaled = scaled_histogram(&op.histogram, factor);
                op.latency_us = scaled.summary();
                op.histogram = scaled.encode();
            }
        }
    }
    head
}

/// The encoded histogram `encoded` with every recorded latency multiplied by `factor`.
pub fn scaled_histogram(encoded: &str, factor: f64) -> mcp_perfcheck::measure::LatencyHistogram {
    use mcp_perfcheck::measure::LatencyHistogram;
    let recorded = LatencyHistogram::decode(encoded).unwrap();
    let mut scaled = LatencyHistogram::new();
    for (value_us, count) in recorded.buckets() {
        for _ in 0..count {
            scaled.record(std::time::Duration::from_micros((value_us as f64 * factor) as u64));
        }
    }
    scaled
}

/// The committed JSON Schema of the config.
pub const SCHEMA: &str = "schema/perf.schema.json";

/// Python's jsonschema (scripts/validate-config.py) on config files: (exit code, output).
pub fn validate_configs(files: &[PathBuf]) -> (i32, String) {
    let python = require_peer(".peers/venv/bin/python");
    let out = std::process::Command::new(python)
        .arg(root().join("scripts/validate-config.py"))
        .arg(root().join(SCHEMA))
        .args(files)
        .output()
        .expect("the validator runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `git -C DIR ARGS` with a committer identity; asserts success and returns trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new repository at `dir` on `main` with `n` empty commits; returns their shas, oldest first.
pub fn repo_with_commits(dir: &Path, n: usize) -> Vec<String> {
    git(dir, &["init", "-q", "-b", "main"]);
    (0..n)
        .map(|i| {
            git(dir, &["commit", "-q", "--allow-empty", "-m", &format!("commit {i}")]);
            git(dir, &["rev-parse", "HEAD"])
        })
        .collect()
}

/// A page rendered by headless Chromium (installed by scripts/setup-peers.sh) with scripts and
/// network off: the screenshot's pixels, to count a chart's colours in.
pub struct Screenshot {
    channels: usize,
    buf: Vec<u8>,
}

impl Screenshot {
    pub fn of(page: &Path, width: u32, height: u32) -> Screenshot {
        let dir = tempfile::tempdir().unwrap();
        let shot = dir.path().join("shot.png");
        let out = std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
            .arg(format!("--window-size={width},{height}"))
            .args(["--disable-background-networking", "--disable-component-update", "--no-first-run"])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium is installed by scripts/setup-peers.sh (scripts/test runs it)");
        assert!(out.status.success() && shot.exists(), "{}", String::from_utf8_lossy(&out.stderr));
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        Screenshot { channels: info.color_type.samples(), buf }
    }

    /// How many pixels are exactly `rgb`.
    pub fn count(&self, rgb: [u8; 3]) -> usize {
        self.buf.chunks(self.channels).filter(|p| p[..3] == rgb).count()
    }
}
