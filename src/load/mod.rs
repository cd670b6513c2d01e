//! The workload engine: for each repetition and scenario, a fresh server process, the MCP
//! handshake, then the scenario's load model (see [`drive`]): closed, open or a fixed number
//! of iterations. The engine fills the [`Results`] and hands it to the caller after every
//! repetition, so a later failure loses nothing.

mod discover;
mod drive;
mod faults;
mod mix;
mod pace;
mod phases;
mod series;
mod timer;
mod upstreams;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use std::future::Future;
use std::pin::Pin;

use crate::client::{CallError, Connection, HttpClient, LaunchSpec, Request, ServerProcess, StdioClient, ToolOutcome};
use crate::config::{LoadModel, Plan, Profile, Scenario, Transport};
use crate::measure::{
    Environment, ErrorKind, Scraper, TreeSampler, git_head, own_usage, sampler_cpu, summarise_metrics,
};
use crate::results::{
    ClientCost, ConnectionStats, FailureKind, LoadStats, Looks, LooksEnded, OperationResult, RepetitionResult, Results,
    RunFailure, SCHEMA, ScenarioResult, SeriesPoint, ServerIdentity,
};

pub use drive::Interval;
pub use mix::CompiledMix;

use drive::{Live, Schedule, StdioLink, Target, TargetLink};
use pace::{Pacer, Window};
use timer::BestSleeper;

use series::SeriesBuilder;

/// What the engine reports while it works.
pub enum Progress<'a> {
    Building(&'a str),
    /// About once a second from the start of a repetition's warm-up.
    Tick {
        /// The scenario (with its side in an A/B run).
        scenario: &'a str,
        index: u32,
        of: u32,
        /// Since the warm-up began.
        elapsed: Duration,
        warmup: Duration,
        /// Warm-up and measured window (`None`: iterations).
        planned: Option<Duration>,
        /// The last second of the measured window (`None` during warm-up).
        point: Option<&'a SeriesPoint>,
        /// Every measured call of this repetition so far.
        so_far: &'a Interval,
    },
    /// A repetition ended; `results` holds everything measured so far.
    RepetitionFinished {
        scenario: &'a str,
        repetition: &'a RepetitionResult,
        results: &'a Results,
    },
    /// A look of an extended A/B left something undecided: `more` repetitions per side follow,
    /// expected to take about `expected`.
    Extending {
        look: usize,
        repetitions: u32,
        more: u32,
        expected: Duration,
    },
    /// The looks ended (see [`LooksEnded`]) at `repetitions` per side.
    LooksEnded {
        look: usize,
        repetitions: u32,
        why: LooksEnded,
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
    execute_sides(plan, None, None, cancel, progress).await
}

/// The base of a same-runner A/B: its plan (the same workload, the server from another
/// checkout) and the commit it was built from.
pub struct BaseSide<'a> {
    pub plan: &'a Plan,
    pub git_sha: Option<String>,
    /// Seeds the order within each pair of repetitions.
    pub seed: u64,
}

/// Extra looks at an A/B run (`compare.extend`). After the planned repetitions, and after each
/// extra look, `undecided` is shown the results so far (with [`Results::looks`] up to date);
/// while it says more data could settle something, `repetitions` more per side are measured,
/// up to `max_looks` looks in all and as long as the next look is expected to end within
/// `budget` of the first.
pub struct Extension<'a> {
    pub max_looks: u32,
    pub repetitions: u32,
    pub budget: Duration,
    pub undecided: &'a mut dyn FnMut(&Results) -> bool,
}

/// A same-runner A/B: both sides are built, then each repetition of each scenario runs once
/// per side, back to back, in an order drawn at random for each pair, each on a fresh server
/// process, so that drift over the run falls on both sides alike. The head's results come back
/// with the base's in `base_run`.
pub async fn execute_ab(
    head: &Plan,
    base: BaseSide<'_>,
    extension: Option<Extension<'_>>,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> Results {
    execute_sides(head, Some(base), extension, cancel, progress).await
}

/// Which run a repetition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SideId {
    Head,
    Base,
}

fn empty_results(plan: &Plan, git_sha: Option<String>) -> Results {
    Results {
        schema: SCHEMA.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        timestamp: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        git_sha,
        config_source: plan.source.clone(),
        environment: Environment::probe(),
        server: None,
        scenarios: plan.workload.scenarios.iter().map(scenario_result).collect(),
        thresholds: Vec::new(),
        failure: None,
        base_run: None,
        looks: None,
    }
}

fn side_mut(results: &mut Results, side: SideId) -> &mut Results {
    match side {
        SideId::Head => results,
        SideId::Base => results.base_run.as_deref_mut().expect("an A/B run has a base"),
    }
}

fn side_ref(results: &Results, side: SideId) -> &Results {
    match side {
        SideId::Head => results,
        SideId::Base => results.base_run.as_deref().expect("an A/B run has a base"),
    }
}

/// A scenario without a mix gets one from the server's tool list, at its first repetition.
fn initial_mixes(plan: &Plan) -> Vec<Option<Arc<CompiledMix>>> {
    plan.workload.scenarios.iter().map(|s| (!s.mix.is_empty()).then(|| Arc::new(CompiledMix::new(&s.mix)))).collect()
}

async fn execute_sides(
    head: &Plan,
    base: Option<BaseSide<'_>>,
    mut extension: Option<Extension<'_>>,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> Results {
    let mut results = empty_results(head, git_head());
    let mut sides = vec![(SideId::Head, head)];
    let mut order_seed = 0;
    if let Some(b) = &base {
        results.base_run = Some(Box::new(empty_results(b.plan, b.git_sha.clone())));
        sides.push((SideId::Base, b.plan));
        order_seed = b.seed;
    }

    for &(side, plan) in sides.iter().rev() {
        if let Some(build) = &plan.server.build {
            let _ = progress(Progress::Building(build));
            if let Err(failure) = run_build(build, plan, cancel).await {
                side_mut(&mut results, side).failure = Some(failure);
                return results;
            }
        }
    }

    let mut mixes: Vec<Vec<Option<Arc<CompiledMix>>>> = sides.iter().map(|(_, plan)| initial_mixes(plan)).collect();
    let first = head.workload.repetitions;
    if let Some(e) = &extension {
        let max_repetitions = first + e.repetitions * e.max_looks.saturating_sub(1);
        results.looks = Some(Looks { repetitions: Vec::new(), max_repetitions, ended: None });
    }
    let mut reps = first;
    let mut index = 1;
    let measuring = std::time::Instant::now();
    let mut first_look_at = None;
    loop {
        // Repetition-major order: drift over the run touches every scenario alike.
        while index <= reps {
            for (si, scenario) in head.workload.scenarios.iter().enumerate() {
                let mut order: Vec<usize> = (0..sides.len()).collect();
                let pair = u64::from(index) * head.workload.scenarios.len() as u64 + si as u64;
                if sides.len() == 2 && mix::splitmix64(order_seed.wrapping_add(pair)) & 1 == 1 {
                    order.reverse();
                }
                for k in order {
                    let (side, plan) = sides[k];
                    let label = match side {
                        SideId::Head if sides.len() == 2 => format!("{} (head)", scenario.name),
                        SideId::Head => scenario.name.clone(),
                        SideId::Base => format!("{} (base)", scenario.name),
                    };
                    let at = (index, reps);
                    let outcome = run_repetition(plan, scenario, &label, &mut mixes[k][si], at, cancel, progress).await;
                    let target = side_mut(&mut results, side);
                    if target.server.is_none() {
                        target.server = outcome.server;
                    }
                    let mut abort = None;
                    if let Some(rep) = outcome.repetition {
                        target.scenarios[si].repetitions.push(rep);
                        let rep = side_ref(&results, side).scenarios[si].repetitions.last().expect("just pushed");
                        let event =
                            Progress::RepetitionFinished { scenario: &label, repetition: rep, results: &results };
                        if let ControlFlow::Break(reason) = progress(event) {
                            abort = Some(RunFailure {
                                kind: FailureKind::Aborted,
                                message: reason,
                                stderr_tail: Vec::new(),
                            });
                        }
                    }
                    if let Some(failure) = outcome.failure.or(abort) {
                        side_mut(&mut results, side).failure = Some(failure);
                        return results;
                    }
                }
            }
            index += 1;
        }
        let Some(ext) = extension.as_mut() else { break };
        let looks = results.looks.as_mut().expect("set with the extension");
        looks.repetitions.push(reps);
        let look = looks.repetitions.len();
        let first_look_at = *first_look_at.get_or_insert_with(std::time::Instant::now);
        let per_repetition = measuring.elapsed() / reps;
        let expected = per_repetition * ext.repetitions;
        let why = if !(ext.undecided)(&results) {
            Some(LooksEnded::Decided)
        } else if look as u32 >= ext.max_looks {
            Some(LooksEnded::MaxLooks)
        } else if first_look_at.elapsed() + expected > ext.budget {
            Some(LooksEnded::Budget)
        } else {
            None
        };
        if let Some(why) = why {
            results.looks.as_mut().expect("set with the extension").ended = Some(why);
            let _ = progress(Progress::LooksEnded { look, repetitions: reps, why });
            break;
        }
        let _ = progress(Progress::Extending { look, repetitions: reps, more: ext.repetitions, expected });
        reps += ext.repetitions;
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
        phase: match (&s.spike, &s.breakpoint, s.soak) {
            (Some(_), _, _) => Some("spike".to_string()),
            (_, Some(_), _) => Some("breakpoint".to_string()),
            (_, _, true) => Some("soak".to_string()),
            _ => None,
        },
        repetitions: Vec::new(),
    }
}

/// A load loop, run on a current-thread runtime of its own on its own thread (wrk's event
/// loop): the connection's readiness, the loop and its timers on one thread, with no hop
/// between threads per wake-up. Over stdio the pipes are re-registered with that runtime for
/// the window; over HTTP the connections the pool opens during the window are driven there.
/// On the shared multi-threaded runtime the same loop spent a third more CPU per call over
/// stdio, and about 1.7 times as much over HTTP, most of it waking tasks across threads.
struct LoopJob {
    conn: Arc<Connection>,
    mix: Arc<CompiledMix>,
    schedule: Schedule,
    stop: CancellationToken,
}

impl LoopJob {
    async fn run(self, live: Live) -> drive::Tally {
        let main = tokio::runtime::Handle::current();
        let job = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let LoopJob { conn, mix, schedule, stop } = self;
            runtime.block_on(async move {
                let mut sleeper = BestSleeper::new();
                match &*conn {
                    Connection::Stdio(client) => {
                        let mut pipes = client.pipes().await;
                        pipes.rebind()?;
                        let mut link = StdioLink { pipes: &mut pipes, mix: &mix };
                        let tally = drive::run(&mut link, &mix, schedule, &stop, &mut sleeper, &live).await;
                        // Back to the engine's runtime for what follows (the end-of-window reads).
                        let _main = main.enter();
                        pipes.rebind()?;
                        Ok(tally)
                    }
                    Connection::Http(_) => {
                        let target = Arc::new(ConnTarget { conn: conn.clone(), mix: mix.clone() });
                        let mut link = TargetLink::new(target);
                        Ok(drive::run(&mut link, &mix, schedule, &stop, &mut sleeper, &live).await)
                    }
                }
            })
        });
        match job.await {
            Ok(Ok(tally)) => tally,
            Ok(Err::<_, std::io::Error>(e)) => panic!("cannot run the load loop on its own thread: {e}"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// The schedule of a load model over its whole window, warm-up included.
fn pace_model(model: &LoadModel) -> pace::Model {
    match model {
        LoadModel::Closed { vus, warmup } => pace::Model::Closed { vus: vus.with_warmup(*warmup) },
        LoadModel::Open { rate, max_in_flight, warmup } => {
            pace::Model::Open { rate: rate.with_warmup(*warmup), max_in_flight: *max_in_flight }
        }
        LoadModel::Iterations { concurrency, iterations } => {
            pace::Model::Iterations { total: *iterations, concurrency: *concurrency }
        }
    }
}

/// The planned mean rate over the measured window (for a constant rate, the rate).
fn mean_rate(rate: &Profile) -> f64 {
    rate.total() / rate.duration().as_secs_f64()
}

/// The mix's requests over the repetition's connection, one future per call (Streamable HTTP).
struct ConnTarget {
    conn: Arc<Connection>,
    mix: Arc<CompiledMix>,
}

impl Target for ConnTarget {
    fn is_closed(&self) -> bool {
        self.conn.closed().is_some()
    }

    async fn call(&self, entry: usize, n: u64, timeout: Duration) -> Result<ToolOutcome, CallError> {
        let e = &self.mix.entries[entry];
        let params = e.params(n);
        let req = Request { method: e.method.name(), name: e.name.as_deref(), params: &params };
        self.conn.call(req, timeout).await
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

/// The server under test for one repetition: the process started for it (none when the
/// configured URL serves on its own) and the connection to it.
struct Session {
    server: Option<ServerProcess>,
    /// Samples the server's process tree from its start, so that readings precede the window.
    sampler: Option<TreeSampler>,
    conn: Arc<Connection>,
    identity: ServerIdentity,
}

/// Starts the server (if configured) and completes the MCP handshake.
async fn open_session(plan: &Plan, cancel: &CancellationToken) -> Result<Session, RunFailure> {
    let spec = (!plan.server.command.is_empty()).then(|| LaunchSpec {
        program: plan.server.command[0].clone(),
        args: plan.server.command[1..].to_vec(),
        env: plan.server.env.clone(),
        cwd: plan.server.cwd.clone(),
    });
    let command = plan.server.to_string();
    let fail = |kind, message: String, stderr_tail| RunFailure { kind, message, stderr_tail };
    let startup = plan.server.startup_timeout;
    let (mut server, connecting) = match (plan.server.transport, spec) {
        (Transport::Stdio, Some(spec)) => {
            let (server, stdin, stdout) = ServerProcess::spawn_stdio(&spec)
                .map_err(|e| fail(FailureKind::ServerStart, e.to_string(), Vec::new()))?;
            let client = StdioClient::connect(stdin, stdout).map_err(|e| {
                fail(FailureKind::ServerStart, format!("cannot use the server's pipes: {e}"), Vec::new())
            })?;
            let connecting: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
                let info = client.connect_session(startup).await?;
                Ok((Connection::Stdio(Box::new(client)), info))
            });
            (Some(server), connecting)
        }
        (Transport::Stdio, None) => unreachable!("validated: stdio servers have a command"),
        (Transport::Http, spec) => {
            let url = plan.server.url.clone().expect("validated: http servers have a url");
            let server = match spec {
                Some(spec) => Some(
                    ServerProcess::spawn(&spec)
                        .map_err(|e| fail(FailureKind::ServerStart, e.to_string(), Vec::new()))?,
                ),
                None => None,
            };
            let launched = server.is_some();
            let connecting: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(async move {
                let deadline = tokio::time::Instant::now() + startup;
                if launched {
                    wait_until_accepting(&url, deadline).await?;
                }
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                let (client, info) = HttpClient::connect(&url, remaining).await?;
                Ok((Connection::Http(Box::new(client)), info))
            });
            (server, connecting)
        }
    };

    let sampler = server.as_ref().map(|s| TreeSampler::start(s.id()));
    // The leader's exit counts as much as a closed pipe: a descendant may still hold it open.
    let outcome = tokio::select! {
        r = connecting => Some(r),
        status = exited(&mut server) => Some(Err(CallError::Transport(exit_reason(status)))),
        _ = cancel.cancelled() => None,
    };
    let shutdown = plan.server.shutdown_timeout;
    let handshake = "`server/discover` or `initialize`";
    match outcome {
        Some(Ok((conn, info))) => Ok(Session {
            server,
            sampler,
            conn: Arc::new(conn),
            identity: ServerIdentity {
                name: info.name,
                version: info.version,
                protocol_version: info.protocol_version,
                command,
                transport: match plan.server.transport {
                    Transport::Stdio => "stdio",
                    Transport::Http => "http",
                }
                .to_string(),
            },
        }),
        Some(Err(e)) => {
            let why = match &e {
                CallError::Timeout => format!(
                    "the server did not complete the MCP handshake ({handshake}) within {} (server.startup_timeout)",
                    humantime::format_duration(startup)
                ),
                other => format!("the server did not complete the MCP handshake ({handshake}): {other}"),
            };
            let (message, tail) = match &mut server {
                Some(s) => {
                    let message = with_exit_status(s, why);
                    let tail = s.stderr_tail().await;
                    s.shutdown(shutdown).await;
                    (message, tail)
                }
                None => (why, Vec::new()),
            };
            Err(fail(FailureKind::ServerStart, format!("`{command}`: {message}"), tail))
        }
        None => {
            if let Some(s) = &mut server {
                s.shutdown(shutdown).await;
            }
            Err(fail(FailureKind::Interrupted, "interrupted while starting the server".into(), Vec::new()))
        }
    }
}

/// Waits until `url`'s host and port accept TCP connections (a launched HTTP server is up).
async fn wait_until_accepting(url: &str, deadline: tokio::time::Instant) -> Result<(), CallError> {
    let uri: http::Uri = url.parse().map_err(|e| CallError::Transport(format!("`{url}`: {e}")))?;
    let host = uri.host().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(80);
    loop {
        match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(probe)) => {
                // A port in the ephemeral range with nothing listening yet can be "connected" to
                // itself (TCP simultaneous open): that is not the server, and while it lasts the
                // server cannot bind its port. Closing with a reset leaves no TIME_WAIT behind.
                let itself = connected_to_itself(&probe);
                let _ = probe.set_zero_linger();
                if !itself {
                    return Ok(());
                }
            }
            Ok(Err(_)) => {}
            Err(_) => return Err(CallError::Timeout),
        }
        if tokio::time::Instant::now() + STARTUP_POLL >= deadline {
            return Err(CallError::Timeout);
        }
        tokio::time::sleep(STARTUP_POLL).await;
    }
}

fn connected_to_itself(stream: &tokio::net::TcpStream) -> bool {
    stream.local_addr().ok() == stream.peer_addr().ok()
}

/// How often a launched HTTP server's port is tried while it starts.
const STARTUP_POLL: Duration = Duration::from_millis(25);

/// Resolves when the server we started exits; never, when we started none.
async fn exited(server: &mut Option<ServerProcess>) -> std::io::Result<std::process::ExitStatus> {
    match server {
        Some(s) => s.wait().await,
        None => std::future::pending().await,
    }
}

async fn run_repetition(
    plan: &Plan,
    scenario: &Scenario,
    label: &str,
    mix: &mut Option<Arc<CompiledMix>>,
    (index, of): (u32, u32),
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> RepetitionOutcome {
    // The upstream simulators first: the server is launched with their addresses.
    let simulators = match upstreams::start(&plan.server.upstreams).await {
        Ok(s) => s,
        Err(message) => {
            let failure = RunFailure { kind: FailureKind::ServerStart, message, stderr_tail: Vec::new() };
            return RepetitionOutcome { repetition: None, server: None, failure: Some(failure) };
        }
    };
    let launched_plan = upstreams::substitute(plan, &simulators);
    let plan = &launched_plan;
    let Session { mut server, sampler, conn, identity } = match open_session(plan, cancel).await {
        Ok(s) => s,
        Err(failure) => return RepetitionOutcome { repetition: None, server: None, failure: Some(failure) },
    };
    let mix = match mix {
        Some(m) => m.clone(),
        None => match discover::listed_tools(&conn, plan.workload.request_timeout.0).await {
            Ok(entries) if !entries.is_empty() => mix.insert(Arc::new(CompiledMix::new(&entries))).clone(),
            found => {
                let message = match found {
                    Ok(_) => "the scenario names no mix and the server lists no tools".to_string(),
                    Err(e) => format!("the scenario names no mix and `tools/list` failed: {e}"),
                };
                drop(conn);
                if let Some(s) = &mut server {
                    s.shutdown(plan.server.shutdown_timeout).await;
                }
                let failure = RunFailure { kind: FailureKind::ServerStart, message, stderr_tail: Vec::new() };
                return RepetitionOutcome { repetition: None, server: Some(identity), failure: Some(failure) };
            }
        },
    };
    let mix = &mix;

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
    let mut faults = upstreams::schedule(&scenario.faults, &simulators, window.measure_start);
    let live = Live::new(mix.operations.len(), matches!(model, LoadModel::Open { .. }));
    if !faults.is_empty() {
        live.keep_timeline(window.measure_start);
    }
    // A server given simulated upstreams runs on a resilience runtime: its statistics at the
    // start of the window (and at the end, below) give the cache and breaker figures.
    let runtime_at_start = (!plan.server.upstreams.is_empty()).then(|| {
        let (conn, timeout) = (conn.clone(), plan.workload.request_timeout.0);
        tokio::spawn(async move {
            tokio::time::sleep_until(window.measure_start).await;
            faults::read_runtime(&conn, timeout).await
        })
    });
    // Ends the workload early (a breakpoint run past its limit) without it counting as an interrupt.
    let stop = cancel.child_token();
    let mut breakpoint = scenario.breakpoint.as_ref().map(phases::BreakpointWatch::new);
    let pacer = Pacer::new(pace_model(&model), window);
    let timeout = plan.workload.request_timeout.0;
    let planned = model.duration();
    let measure_start = window.measure_start.into_std();
    let mut series = SeriesBuilder::new(measure_start, planned);
    let mut ticker = tokio::time::interval_at(window.measure_start + Duration::from_secs(1), Duration::from_secs(1));
    // Progress during warm-up too, on a grid of its own (the measured ticks stay on the window's).
    let mut warming = tokio::time::interval_at(window.start + Duration::from_secs(1), Duration::from_secs(1));
    let warmup = window.measure_start - window.start;
    let planned_all = planned.map(|p| p + warmup);
    let mut so_far = Interval::default();
    let mut server_exited = false;
    // The load holds the connection until it ends (and drops it there).
    let tally = {
        let schedule = Schedule { pacer, timeout, measure_start: window.measure_start };
        let job = LoopJob { conn: conn.clone(), mix: mix.clone(), schedule, stop: stop.clone() };
        let mut workload = std::pin::pin!(job.run(live.clone()));
        loop {
            tokio::select! {
                tally = &mut workload => break tally,
                status = exited(&mut server), if !server_exited => {
                    server_exited = true;
                    conn.close(exit_reason(status));
                }
                _ = warming.tick(), if tokio::time::Instant::now() + Duration::from_millis(500) < window.measure_start => {
                    let elapsed = window.start.elapsed();
                    let tick = Progress::Tick {
                        scenario: label, index, of, elapsed, warmup, planned: planned_all, point: None, so_far: &so_far,
                    };
                    let _ = progress(tick);
                }
                _ = ticker.tick() => {
                    let now = std::time::Instant::now();
                    let elapsed = now.saturating_duration_since(measure_start);
                    let interval = live.take_interval();
                    let point = series::point(&interval, 1.0, elapsed.as_secs_f64());
                    so_far.merge(&interval);
                    series.add(now, interval);
                    if let (Some(watch), LoadModel::Open { rate, .. }) = (&mut breakpoint, &model)
                        && watch.check(&point, rate.at(elapsed))
                    {
                        stop.cancel();
                    }
                    let tick = Progress::Tick {
                        scenario: label,
                        index,
                        of,
                        elapsed: elapsed + warmup,
                        warmup,
                        planned: planned_all,
                        point: Some(&point),
                        so_far: &so_far,
                    };
                    let _ = progress(tick);
                }
            }
        }
    };
    let measured_s = tally.measured.as_secs_f64();
    let window_end = std::time::Instant::now();
    let (client_cpu_end, client_rss_peak) = own_usage();
    let process_cpu = client_cpu_end - client_cpu_at_start.await.unwrap_or(client_cpu_end);
    let per_call_us = |seconds: f64| if tally.sent > 0 { seconds * 1e6 / tally.sent as f64 } else { 0.0 };
    let (server_resources, samples) = match sampler {
        Some(sampler) => sampler.finish(measure_start, window_end),
        None => (None, Vec::new()),
    };
    let sampler_cpu = sampler_cpu(&samples, measure_start, window_end);
    let client_cpu = (process_cpu - sampler_cpu).max(0.0);
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
    let bucket_s = series.bucket().as_secs_f64();
    let series = series.finish(window_end, &samples);
    let spike = scenario.spike.as_ref().map(|s| {
        let at = s.at.0.as_secs_f64();
        phases::spike_outcome(&series, at, at + s.hold.0.as_secs_f64(), s.factor, bucket_s)
    });
    let breakpoint = breakpoint.map(phases::BreakpointWatch::finish);
    let stopped_early = breakpoint.as_ref().is_some_and(|b| b.broke_at_s.is_some());
    let runtime_at_end = match runtime_at_start {
        Some(_) if conn.closed().is_none() => faults::read_runtime(&conn, plan.workload.request_timeout.0).await,
        _ => None,
    };
    let runtime_at_start = match runtime_at_start {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    let start_ms = faults::unix_ms(window.measure_start);
    let runtime =
        runtime_at_start.as_ref().zip(runtime_at_end.as_ref()).map(|(a, b)| faults::runtime_figures(a, b, start_ms));
    if let Some(timeline) = &tally.timeline {
        faults::figures(&mut faults, timeline, measured_s, runtime_at_end.as_ref().map(|r| (r, start_ms)));
    }

    conn.disconnect(plan.server.shutdown_timeout).await;
    let stats = conn.stats();
    let mut unattributed = std::collections::BTreeMap::new();
    if stats.protocol_errors > 0 {
        unattributed.insert(ErrorKind::Protocol, stats.protocol_errors);
    }
    let failure = if cancel.is_cancelled() {
        Some(RunFailure { kind: FailureKind::Interrupted, message: "interrupted".into(), stderr_tail: Vec::new() })
    } else if let Some(reason) = conn.closed() {
        let why = format!("the server stopped during the workload: {reason}");
        let (message, stderr_tail) = match &mut server {
            Some(s) => (with_exit_status(s, why), s.stderr_tail().await),
            None => (why, Vec::new()),
        };
        Some(RunFailure { kind: FailureKind::ServerExit, message, stderr_tail })
    } else {
        None
    };
    drop(conn);
    if let Some(s) = &mut server {
        s.shutdown(plan.server.shutdown_timeout).await;
    }

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
            error_samples: r.error_samples.iter().map(|(k, why)| (*k, sample(why))).collect(),
            throughput_per_s: per_s(r.count - r.error_count()),
            latency_us: r.latency.summary(),
            histogram: r.latency.encode(),
            latency_ok_us: Some(r.latency_ok.summary()),
            histogram_ok: Some(r.latency_ok.encode()),
            censored_at_us: r.errors.contains_key(&ErrorKind::Timeout).then_some(timeout.as_micros() as u64),
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
            LoadModel::Open { rate, .. } if !stopped_early => tally.sent as f64 / rate.duration().as_secs_f64(),
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
            spike,
            breakpoint,
            faults,
            runtime,
            client: ClientCost {
                cpu_seconds: client_cpu,
                cpu_us_per_call: per_call_us(client_cpu),
                sampler_cpu_seconds: sampler_cpu,
                rss_peak_bytes: client_rss_peak,
                bytes_sent: stats.bytes_sent,
                bytes_received: stats.bytes_received,
                connections_opened: stats.connections_opened,
            },
            connection: ConnectionStats {
                notifications: stats.notifications,
                server_requests: stats.server_requests,
                late_responses: stats.late_responses,
                malformed_sample: stats.last_malformed,
                session_reinitializations: stats.reinitializations,
            },
            failure: failure.as_ref().map(|f| f.message.clone()),
        }),
        server: Some(identity),
        failure,
    }
}

/// An error message cut to a length fit for a results file.
fn sample(why: &str) -> String {
    const MAX: usize = 300;
    if why.len() <= MAX {
        return why.to_string();
    }
    let mut end = MAX;
    while !why.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &why[..end])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_probe_connected_to_itself_is_not_taken_for_the_server() {
        // Bind a port, then connect to that same port with nothing listening: TCP's simultaneous
        // open connects the socket to itself, as a readiness probe can by chance.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(free).unwrap();
        let stream = socket.connect(free).await.expect("simultaneous open on loopback");
        assert!(connected_to_itself(&stream));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let real = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        assert!(!connected_to_itself(&real));
        // With nothing listening, the wait ends in a timeout, never in a false "ready".
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let url = format!("http://127.0.0.1:{closed}/mcp");
        assert!(matches!(wait_until_accepting(&url, deadline).await, Err(CallError::Timeout)));
    }
}
