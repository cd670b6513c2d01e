//! The workload engine: for each repetition and scenario, a fresh server process, the MCP
//! handshake, then the scenario's load model (see [`drive`]): closed, open or a fixed number
//! of iterations. The engine fills the [`Results`] and hands it to the caller after every
//! repetition, so a later failure loses nothing.

mod drive;
mod mix;
mod series;
mod timer;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::client::{CallError, LaunchSpec, ServerProcess, StdioClient, ToolOutcome};
use crate::config::{LoadModel, Plan, Profile, Scenario};
use crate::measure::{Environment, ErrorKind, Scraper, TreeSampler, git_head, own_usage, summarise_metrics};
use crate::results::{
    ClientCost, ConnectionStats, FailureKind, LoadStats, OperationResult, RepetitionResult, Results, RunFailure,
    SCHEMA, ScenarioResult, SeriesPoint, ServerIdentity,
};

pub use mix::CompiledMix;

use drive::{Arrivals, Live, Target, Window};
use timer::{TimerFdSleeper, TokioSleeper};

use series::SeriesBuilder;

/// What the engine reports while it works.
pub enum Progress<'a> {
    Building(&'a str),
    /// About once a second during the measured window.
    Tick {
        scenario: &'a str,
        index: u32,
        of: u32,
        elapsed: Duration,
        planned: Option<Duration>,
        point: &'a SeriesPoint,
    },
    /// A repetition ended; `results` holds everything measured so far.
    RepetitionFinished {
        scenario: &'a str,
        repetition: &'a RepetitionResult,
        results: &'a Results,
    },
}

/// Builds (if configured), then measures every scenario `repetitions` times. Never fails: a
/// failure is recorded in `Results::failure` next to everything measured before it. `progress`
/// may stop the run after a repetition by returning `Break(reason)` (an abort-on-fail threshold).
pub async fn execute(
    plan: &Plan,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> Results {
    let mut results = Results {
        schema: SCHEMA.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        git_sha: git_head(),
        config_source: plan.source.clone(),
        environment: Environment::probe(),
        server: None,
        scenarios: plan.workload.scenarios.iter().map(scenario_result).collect(),
        thresholds: Vec::new(),
        failure: None,
    };

    if let Some(build) = &plan.server.build {
        let _ = progress(Progress::Building(build));
        if let Err(failure) = run_build(build, plan, cancel).await {
            results.failure = Some(failure);
            return results;
        }
    }

    let mixes: Vec<Arc<CompiledMix>> =
        plan.workload.scenarios.iter().map(|s| Arc::new(CompiledMix::new(&s.mix))).collect();
    let reps = plan.workload.repetitions;
    // Repetition-major order: drift over the run touches every scenario alike.
    for index in 1..=reps {
        for (si, scenario) in plan.workload.scenarios.iter().enumerate() {
            let outcome = run_repetition(plan, scenario, &mixes[si], (index, reps), cancel, progress).await;
            if results.server.is_none() {
                results.server = outcome.server;
            }
            let mut abort = None;
            if let Some(rep) = outcome.repetition {
                results.scenarios[si].repetitions.push(rep);
                let rep = results.scenarios[si].repetitions.last().expect("just pushed");
                let event =
                    Progress::RepetitionFinished { scenario: &scenario.name, repetition: rep, results: &results };
                if let ControlFlow::Break(reason) = progress(event) {
                    abort = Some(RunFailure { kind: FailureKind::Aborted, message: reason, stderr_tail: Vec::new() });
                }
            }
            if let Some(failure) = outcome.failure.or(abort) {
                results.failure = Some(failure);
                return results;
            }
        }
    }
    results
}

fn scenario_result(s: &Scenario) -> ScenarioResult {
    let model = s.model();
    let (concurrency, rate_per_s, max_in_flight, iterations) = match &model {
        LoadModel::Closed { vus, .. } => (Some(vus.max().round() as u32), None, None, None),
        LoadModel::Open { rate, max_in_flight, .. } => (None, Some(mean_rate(rate)), Some(*max_in_flight), None),
        LoadModel::Iterations { concurrency, iterations } => (Some(*concurrency), None, None, Some(*iterations)),
    };
    ScenarioResult {
        name: s.name.clone(),
        executor: s.executor.name().to_string(),
        concurrency,
        rate_per_s,
        max_in_flight,
        iterations,
        warmup_s: model.warmup().as_secs_f64(),
        duration_s: model.duration().unwrap_or_default().as_secs_f64(),
        repetitions: Vec::new(),
    }
}

/// The planned mean rate over the measured window (for a constant rate, the rate).
fn mean_rate(rate: &Profile) -> f64 {
    rate.total() / rate.duration().as_secs_f64()
}

/// The mix's requests over a stdio connection.
struct StdioTarget {
    client: Arc<StdioClient>,
    mix: Arc<CompiledMix>,
    timeout: Duration,
}

impl Target for StdioTarget {
    async fn call(&self, entry: usize, n: u64) -> Result<ToolOutcome, CallError> {
        let e = &self.mix.entries[entry];
        self.client.call(e.method.name(), &e.params(n), self.timeout).await
    }
}

async fn run_build(build: &str, plan: &Plan, cancel: &CancellationToken) -> Result<(), RunFailure> {
    let fail = |message: String| RunFailure { kind: FailureKind::Build, message, stderr_tail: Vec::new() };
    // The build's output goes to our stderr, keeping stdout for the report.
    let stderr = std::io::stderr();
    let out = std::os::fd::AsFd::as_fd(&stderr).try_clone_to_owned().map_err(|e| fail(e.to_string()))?;
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(build).envs(&plan.server.env).stdout(std::process::Stdio::from(out)).kill_on_drop(true);
    if let Some(dir) = &plan.server.cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot run build command `{build}`: {e}")))?;
    tokio::select! {
        status = child.wait() => match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(fail(format!("build command `{build}` failed ({s})"))),
            Err(e) => Err(fail(format!("build command `{build}`: {e}"))),
        },
        _ = cancel.cancelled() => Err(RunFailure {
            kind: FailureKind::Interrupted,
            message: "interrupted during the build".into(),
            stderr_tail: Vec::new(),
        }),
    }
}

struct RepetitionOutcome {
    repetition: Option<RepetitionResult>,
    server: Option<ServerIdentity>,
    failure: Option<RunFailure>,
}

async fn run_repetition(
    plan: &Plan,
    scenario: &Scenario,
    mix: &Arc<CompiledMix>,
    (index, of): (u32, u32),
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> RepetitionOutcome {
    let spec = LaunchSpec {
        program: plan.server.program.clone(),
        args: plan.server.args.clone(),
        env: plan.server.env.clone(),
        cwd: plan.server.cwd.clone(),
    };
    let command = plan.server.to_string();
    let failed = |kind, message: String, stderr_tail| RepetitionOutcome {
        repetition: None,
        server: None,
        failure: Some(RunFailure { kind, message, stderr_tail }),
    };
    let (mut server, stdin, stdout) = match ServerProcess::spawn(&spec) {
        Ok(s) => s,
        Err(e) => return failed(FailureKind::ServerStart, e.to_string(), Vec::new()),
    };
    let client = Arc::new(StdioClient::connect(stdin, stdout));
    let sampler = TreeSampler::start(server.id());

    // The leader's exit counts as much as EOF: a descendant may still hold the pipe open.
    let init = tokio::select! {
        r = client.initialize(plan.server.startup_timeout) => Some(r),
        status = server.wait() => Some(Err(CallError::Transport(exit_reason(status)))),
        _ = cancel.cancelled() => None,
    };
    let info = match init {
        Some(Ok(info)) => info,
        Some(Err(e)) => {
            let why = match &e {
                CallError::Timeout => format!(
                    "the server did not answer `initialize` within {} (server.startup_timeout)",
                    humantime::format_duration(plan.server.startup_timeout)
                ),
                other => format!("the server did not complete `initialize`: {other}"),
            };
            let message = with_exit_status(&mut server, why);
            let tail = server.stderr_tail().await;
            server.shutdown(plan.server.shutdown_timeout).await;
            return failed(FailureKind::ServerStart, format!("`{command}`: {message}"), tail);
        }
        None => {
            server.shutdown(plan.server.shutdown_timeout).await;
            return failed(FailureKind::Interrupted, "interrupted while starting the server".into(), Vec::new());
        }
    };
    let identity = ServerIdentity {
        name: info.name,
        version: info.version,
        protocol_version: info.protocol_version,
        command: command.clone(),
    };

    let target =
        Arc::new(StdioTarget { client: client.clone(), mix: mix.clone(), timeout: plan.workload.request_timeout.0 });
    let model = scenario.model();
    let window = Window::new(model.warmup(), model.duration().unwrap_or_default());
    // The server's own metrics: at the start of the window, every second, and once more at the end.
    let scrape_stop = CancellationToken::new();
    let scraping = plan.server.metrics_url.clone().map(|url| {
        let stop = scrape_stop.clone();
        let start = window.measure_start;
        tokio::spawn(async move {
            let scraper = Scraper::new(&url);
            let mut scrapes = Vec::new();
            tokio::select! {
                _ = tokio::time::sleep_until(start) => {}
                _ = stop.cancelled() => return summarise_metrics(&url, &scrapes),
            }
            let mut every = tokio::time::interval(Duration::from_secs(1));
            // A slow scrape delays the next one rather than causing a burst of catch-up scrapes.
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => scrapes.push((start.elapsed().as_secs_f64(), scraper.scrape().await)),
                    _ = stop.cancelled() => break,
                }
            }
            scrapes.push((start.elapsed().as_secs_f64(), scraper.scrape().await));
            summarise_metrics(&url, &scrapes)
        })
    });
    // The generator's own CPU from the start of the measured window.
    let client_cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(window.measure_start).await;
        own_usage().0
    });
    let live = Live::new(mix.operations.len(), matches!(model, LoadModel::Open { .. }));
    let mut workload = std::pin::pin!(async {
        let live = live.clone();
        match &model {
            LoadModel::Closed { vus, warmup } => {
                drive::closed(target, mix.clone(), vus.with_warmup(*warmup), window, cancel.clone(), live).await
            }
            LoadModel::Open { rate, max_in_flight, warmup } => {
                let a = Arrivals { rate: rate.with_warmup(*warmup), max_in_flight: *max_in_flight };
                let (c, m) = (cancel.clone(), mix.clone());
                match TimerFdSleeper::new() {
                    Ok(s) => drive::open(target, m, a, window, c, s, live).await,
                    // Without a timerfd (not Linux), tokio's millisecond timer still keeps the rate.
                    Err(_) => drive::open(target, m, a, window, c, TokioSleeper, live).await,
                }
            }
            LoadModel::Iterations { concurrency, iterations } => {
                drive::iterations(target, mix.clone(), *concurrency, *iterations, cancel.clone(), live).await
            }
        }
    });
    let planned = model.duration();
    let measure_start = window.measure_start.into_std();
    let mut series = SeriesBuilder::new(measure_start, planned);
    let mut ticker = tokio::time::interval_at(window.measure_start + Duration::from_secs(1), Duration::from_secs(1));
    let mut server_exited = false;
    let tally = loop {
        tokio::select! {
            tally = &mut workload => break tally,
            status = server.wait(), if !server_exited => {
                server_exited = true;
                client.close(exit_reason(status));
            }
            _ = ticker.tick() => {
                let now = std::time::Instant::now();
                let elapsed = now.saturating_duration_since(measure_start);
                let interval = live.take_interval();
                let point = series::point(&interval, 1.0, elapsed.as_secs_f64());
                series.add(now, interval);
                let _ = progress(Progress::Tick { scenario: &scenario.name, index, of, elapsed, planned, point: &point });
            }
        }
    };
    let measured_s = tally.measured.as_secs_f64();
    let window_end = std::time::Instant::now();
    let (client_cpu_end, client_rss_peak) = own_usage();
    let client_cpu = client_cpu_end - client_cpu_at_start.await.unwrap_or(client_cpu_end);
    let per_call_us = |seconds: f64| if tally.sent > 0 { seconds * 1e6 / tally.sent as f64 } else { 0.0 };
    let (server_resources, samples) = sampler.finish(measure_start, window_end);
    let server_resources = server_resources.map(|mut r| {
        r.cpu_us_per_call = per_call_us(r.cpu_seconds);
        r
    });
    scrape_stop.cancel();
    let server_metrics = match scraping {
        Some(task) => task.await.ok(),
        None => None,
    };
    series.add(window_end, live.take_interval());
    let series = series.finish(window_end, &samples);

    let stats = client.stats();
    let mut unattributed = std::collections::BTreeMap::new();
    if stats.protocol_errors > 0 {
        unattributed.insert(ErrorKind::Protocol, stats.protocol_errors);
    }
    let failure = if cancel.is_cancelled() {
        Some(RunFailure { kind: FailureKind::Interrupted, message: "interrupted".into(), stderr_tail: Vec::new() })
    } else if let Some(reason) = client.closed() {
        let message = with_exit_status(&mut server, format!("the server stopped during the workload: {reason}"));
        Some(RunFailure { kind: FailureKind::ServerExit, message, stderr_tail: server.stderr_tail().await })
    } else {
        None
    };
    drop(client);
    server.shutdown(plan.server.shutdown_timeout).await;

    let per_s = |n: u64| if measured_s > 0.0 { n as f64 / measured_s } else { 0.0 };
    let operations = mix
        .operations
        .iter()
        .zip(&tally.recorders)
        .filter(|(_, r)| r.count > 0)
        .map(|(name, r)| OperationResult {
            name: name.clone(),
            count: r.count,
            errors: r.errors.clone(),
            throughput_per_s: per_s(r.count - r.error_count()),
            latency_us: r.latency.summary(),
            histogram: r.latency.encode(),
            latency_uncorrected_us: r.uncorrected.as_ref().map(|h| h.summary()),
            histogram_uncorrected: r.uncorrected.as_ref().map(|h| h.encode()),
        })
        .collect();
    let load = LoadStats {
        sent: tally.sent,
        late_sends: tally.late,
        dropped_sends: tally.dropped,
        target_rate_per_s: match &model {
            LoadModel::Open { rate, .. } => Some(mean_rate(rate)),
            _ => None,
        },
        achieved_rate_per_s: match &model {
            LoadModel::Open { rate, .. } => tally.sent as f64 / rate.duration().as_secs_f64(),
            _ => per_s(tally.sent),
        },
        send_lag_us: tally.send_lag.as_ref().map(|h| h.summary()),
    };
    RepetitionOutcome {
        repetition: Some(RepetitionResult {
            index,
            measured_s,
            operations,
            unattributed_errors: unattributed,
            load,
            server_resources,
            server_metrics,
            series,
            client: ClientCost {
                cpu_seconds: client_cpu,
                cpu_us_per_call: per_call_us(client_cpu),
                rss_peak_bytes: client_rss_peak,
                bytes_sent: stats.bytes_sent,
                bytes_received: stats.bytes_received,
                connections_opened: 1,
            },
            connection: ConnectionStats {
                notifications: stats.notifications,
                server_requests: stats.server_requests,
                late_responses: stats.late_responses,
                malformed_sample: stats.last_malformed,
            },
            failure: failure.as_ref().map(|f| f.message.clone()),
        }),
        server: Some(identity),
        failure,
    }
}

fn exit_reason(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => format!("the server process exited ({s})"),
        Err(e) => format!("the server process could not be waited for: {e}"),
    }
}

/// Appends how the server exited, when it has.
fn with_exit_status(server: &mut ServerProcess, message: String) -> String {
    match server.try_exit_status() {
        // The reason may already say how it exited; say it once.
        Some(status) if !message.contains(&status.to_string()) => format!("{message} (server exited: {status})"),
        _ => message,
    }
}
