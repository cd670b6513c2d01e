//! The workload engine: for each repetition and scenario, a fresh server process, the MCP
//! handshake, a warm-up and a measured closed-loop workload.
//!
//! Closed model: `concurrency` workers each keep one request in flight on the shared stdio
//! pipe, so a request is sent the moment the previous one of its worker is answered and latency
//! runs from the actual send. Workers record into their own recorders; a repetition's recorders
//! are merged once it ends. The engine fills the [`Results`] and hands it to the caller after
//! every repetition, so a later failure loses nothing.

mod mix;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::client::{CallError, LaunchSpec, ServerProcess, StdioClient};
use crate::config::{Plan, Scenario};
use crate::measure::{Environment, ErrorKind, OperationRecorder, git_head};
use crate::results::{
    ConnectionStats, FailureKind, OperationResult, RepetitionResult, Results, RunFailure, SCHEMA, ScenarioResult,
    ServerIdentity,
};

pub use mix::CompiledMix;

/// What the engine reports while it works.
pub enum Progress<'a> {
    Building(&'a str),
    RepetitionStarted {
        scenario: &'a str,
        index: u32,
        of: u32,
    },
    /// A repetition ended; `results` holds everything measured so far.
    RepetitionFinished {
        scenario: &'a str,
        repetition: &'a RepetitionResult,
        results: &'a Results,
    },
}

/// Builds (if configured), then measures every scenario `repetitions` times. Never fails: a
/// failure is recorded in `Results::failure` next to everything measured before it.
pub async fn execute(plan: &Plan, cancel: &CancellationToken, progress: &mut dyn FnMut(Progress<'_>)) -> Results {
    let mut results = Results {
        schema: SCHEMA.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        git_sha: git_head(),
        config_source: plan.source.clone(),
        environment: Environment::probe(),
        server: None,
        scenarios: plan
            .workload
            .scenarios
            .iter()
            .map(|s| ScenarioResult {
                name: s.name.clone(),
                concurrency: s.concurrency,
                warmup_s: s.warmup.0.as_secs_f64(),
                duration_s: s.duration.0.as_secs_f64(),
                repetitions: Vec::new(),
            })
            .collect(),
        failure: None,
    };

    if let Some(build) = &plan.server.build {
        progress(Progress::Building(build));
        if let Err(failure) = run_build(build, plan, cancel).await {
            results.failure = Some(failure);
            return results;
        }
    }

    let mixes: Vec<CompiledMix> = plan.workload.scenarios.iter().map(|s| CompiledMix::new(&s.mix)).collect();
    let reps = plan.workload.repetitions;
    // Repetition-major order: drift over the run touches every scenario alike.
    for index in 1..=reps {
        for (si, scenario) in plan.workload.scenarios.iter().enumerate() {
            progress(Progress::RepetitionStarted { scenario: &scenario.name, index, of: reps });
            let outcome = run_repetition(plan, scenario, &mixes[si], index, cancel).await;
            if results.server.is_none() {
                results.server = outcome.server;
            }
            if let Some(rep) = outcome.repetition {
                results.scenarios[si].repetitions.push(rep);
                let rep = results.scenarios[si].repetitions.last().expect("just pushed");
                progress(Progress::RepetitionFinished { scenario: &scenario.name, repetition: rep, results: &results });
            }
            if let Some(failure) = outcome.failure {
                results.failure = Some(failure);
                return results;
            }
        }
    }
    results
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
    mix: &CompiledMix,
    index: u32,
    cancel: &CancellationToken,
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

    let start = Instant::now();
    let measure_start = start + scenario.warmup.0;
    let end = measure_start + scenario.duration.0;
    let mix = Arc::new(mix.clone());
    let calls = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..scenario.concurrency)
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                mix.clone(),
                calls.clone(),
                measure_start,
                end,
                plan.workload.request_timeout.0,
                cancel.clone(),
            ))
        })
        .collect();
    let mut workload = std::pin::pin!(async {
        let mut recorders = vec![OperationRecorder::default(); mix.operations.len()];
        for w in workers {
            let worker_recorders = w.await.expect("load worker panicked");
            for (total, part) in recorders.iter_mut().zip(&worker_recorders) {
                total.merge(part);
            }
        }
        recorders
    });
    let recorders = tokio::select! {
        recorders = &mut workload => recorders,
        status = server.wait() => {
            client.close(exit_reason(status));
            workload.await
        }
    };
    let measured_s = Instant::now().saturating_duration_since(measure_start).as_secs_f64();

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

    let operations = mix
        .operations
        .iter()
        .zip(&recorders)
        .filter(|(_, r)| r.count > 0)
        .map(|(name, r)| {
            let successes = r.count - r.error_count();
            OperationResult {
                name: name.clone(),
                count: r.count,
                errors: r.errors.clone(),
                throughput_per_s: if measured_s > 0.0 { successes as f64 / measured_s } else { 0.0 },
                latency_us: r.latency.summary(),
                histogram: r.latency.encode(),
            }
        })
        .collect();
    RepetitionOutcome {
        repetition: Some(RepetitionResult {
            index,
            measured_s,
            operations,
            unattributed_errors: unattributed,
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

/// One closed-loop worker: one request in flight at a time until `end`. Requests started
/// before `measure_start` are warm-up and not recorded.
async fn worker(
    client: Arc<StdioClient>,
    mix: Arc<CompiledMix>,
    calls: Arc<AtomicU64>,
    measure_start: Instant,
    end: Instant,
    timeout: Duration,
    cancel: CancellationToken,
) -> Vec<OperationRecorder> {
    let mut recorders = vec![OperationRecorder::default(); mix.operations.len()];
    loop {
        let sent = Instant::now();
        if sent >= end || cancel.is_cancelled() {
            break;
        }
        let (op, params) = &mix.entries[mix.pick(calls.fetch_add(1, Ordering::Relaxed))];
        let outcome = tokio::select! {
            r = client.call_tool(params, timeout) => r,
            _ = cancel.cancelled() => break,
        };
        let latency = sent.elapsed();
        let lost = matches!(outcome, Err(CallError::Transport(_)));
        if sent >= measure_start {
            let rec = &mut recorders[*op];
            match outcome {
                Ok(o) if !o.is_error => rec.success(latency),
                Ok(_) => rec.failure(ErrorKind::ToolError),
                Err(e) => rec.failure(error_kind(&e)),
            }
        }
        if lost {
            break;
        }
    }
    recorders
}

fn error_kind(e: &CallError) -> ErrorKind {
    match e {
        CallError::Timeout => ErrorKind::Timeout,
        CallError::Transport(_) => ErrorKind::Transport,
        CallError::Protocol(_) => ErrorKind::Protocol,
        CallError::JsonRpc { code, .. } => ErrorKind::JsonRpc(*code),
    }
}
