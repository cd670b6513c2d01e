//! One repetition of one scenario: the upstream simulators and a fresh server, the readers that
//! run beside the load (the server's metrics, the generator's CPU, the runtime's statistics at
//! the window's start), the load loop on a thread of its own watched second by second
//! (progress, the series, a breakpoint), and what it all measured made into a
//! `RepetitionResult`.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::drive::{self, Interval, Live, Schedule, StdioLink, Target, TargetLink};
use super::pace::{self, Pacer, Window};
use super::series::{self, SeriesBuilder};
use super::session::{Session, exit_reason, exited, open_session, with_exit_status};
use super::timer::BestSleeper;
use super::{CompiledMix, Progress, discover, faults, mean_rate, phases, upstreams};
use crate::client::{CallError, Connection, Request, ToolOutcome};
use crate::config::{LoadModel, Plan, Scenario};
use crate::measure::{ErrorKind, Scraper, own_usage, sampler_cpu, summarise_metrics};
use crate::results::{
    ClientCost, ConnectionStats, FailureKind, LoadStats, OperationResult, RepetitionResult, RunFailure, ServerIdentity,
    WallWindow,
};

/// Which repetition this is, and when its measured window is to begin on a common start's
/// timetable (`None`: as soon as its server is ready).
pub(super) struct Slot {
    pub index: u32,
    pub of: u32,
    pub start: Option<SystemTime>,
}

pub(super) struct RepetitionOutcome {
    pub repetition: Option<RepetitionResult>,
    pub server: Option<ServerIdentity>,
    pub failure: Option<RunFailure>,
}

/// A load loop, run on a current-thread runtime of its own on its own thread (wrk's event
/// loop): the connection's readiness, the loop and its timers on one thread, with no hop
/// between threads per wake-up. Over stdio the pipes are re-registered with that runtime for
/// the window; over HTTP the connections the pool opens during the window are driven there.
/// (On the shared multi-threaded runtime the same loop paid for waking tasks across threads on
/// every answer.)
struct LoopJob {
    conn: Arc<Connection>,
    mix: Arc<CompiledMix>,
    schedule: Schedule,
    stop: CancellationToken,
}

impl LoopJob {
    async fn run(self, live: Live) -> drive::Tally {
        let main = tokio::runtime::Handle::current();
        let (conn_for_failure, live_for_failure) = (self.conn.clone(), live.clone());
        let job = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let LoopJob { conn, mix, schedule, stop } = self;
            runtime.block_on(async move {
                let mut sleeper = BestSleeper::new();
                match &*conn {
                    Connection::Stdio(client) => {
                        let mut pipes = client.pipes().await;
                        // The closed model waits only for answers: block in `read` for them.
                        let tick = if schedule.pacer.is_open() {
                            pipes.rebind()?;
                            None
                        } else {
                            Some(pipes.block()?)
                        };
                        let mut link = StdioLink { pipes: &mut pipes, mix: &mix };
                        let tally = drive::run(&mut link, &mix, schedule, &stop, &mut sleeper, &live).await;
                        drop(tick);
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
            // No runtime, or pipes that cannot be re-registered: the repetition fails (the
            // connection closed, with the reason), the run goes on to report it.
            Ok(Err::<_, std::io::Error>(e)) => {
                conn_for_failure.close(format!("the load loop could not take over the connection: {e}"));
                live_for_failure.tally()
            }
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

pub(super) async fn run_repetition(
    plan: &Plan,
    scenario: &Scenario,
    label: &str,
    mix: &mut Option<Arc<CompiledMix>>,
    Slot { index, of, start }: Slot,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> RepetitionOutcome {
    let (simulators, plan) = match upstreams::start(&plan.server.upstreams).await {
        // The server is launched with the simulators' addresses.
        Ok(simulators) => {
            let plan = upstreams::substitute(plan, &simulators);
            (simulators, plan)
        }
        Err(message) => return RepetitionOutcome::failed(None, FailureKind::ServerStart, message),
    };
    let plan = &plan;
    let Session { mut server, sampler, conn, identity } = match open_session(plan, cancel).await {
        Ok(s) => s,
        Err(failure) => return RepetitionOutcome { repetition: None, server: None, failure: Some(failure) },
    };
    let mix = match mix_for(mix, &conn, plan, label, progress).await {
        Ok(mix) => mix,
        Err(message) => {
            drop(conn);
            if let Some(s) = &mut server {
                s.shutdown(plan.server.shutdown_timeout).await;
            }
            return RepetitionOutcome::failed(Some(identity), FailureKind::ServerStart, message);
        }
    };

    let model = scenario.model();
    let (window, wall_start) = aligned_window(&model, start, label, index, cancel, progress).await;
    let readers = SideReaders::start(plan, &conn, window);
    let mut faults = upstreams::schedule(&scenario.faults, &simulators, window.measure_start);
    let live = Live::new(mix.operations.len(), matches!(model, LoadModel::Open { .. }), plan.live_detail);
    if !faults.is_empty() {
        live.keep_timeline(window.measure_start);
    }
    let timeout = plan.workload.request_timeout.0;
    let pacer = Pacer::new(pace_model(&model), window).sharded(plan.shard);
    let schedule = Schedule { pacer, timeout, measure_start: window.measure_start };
    let job = LoopJob { conn: conn.clone(), mix: mix.clone(), schedule, stop: cancel.child_token() };
    let watch = Watch {
        scenario,
        label,
        index,
        of,
        window,
        live: &live,
        sampler: sampler.as_ref(),
        operations: &mix.operations,
    };
    let Watched { tally, series, breakpoint } = watch.run(job, &mut server, &conn, progress).await;

    let measure_start = window.measure_start.into_std();
    let window_end = std::time::Instant::now();
    let measured_s = tally.measured.as_secs_f64();
    let (client_cpu_end, client_rss_peak) = own_usage();
    let per_call_us = |seconds: f64| if tally.sent > 0 { seconds * 1e6 / tally.sent as f64 } else { 0.0 };
    let (server_resources, samples) = match sampler {
        Some(sampler) => sampler.finish(measure_start, window_end),
        None => (None, Vec::new()),
    };
    let server_resources = server_resources.map(|mut r| {
        r.cpu_us_per_call = per_call_us(r.cpu_seconds);
        r
    });
    let sampler_cpu = sampler_cpu(&samples, measure_start, window_end);
    let side = readers.finish(&conn, timeout, client_cpu_end).await;
    let client_cpu = (client_cpu_end - side.client_cpu_at_start - sampler_cpu).max(0.0);
    let bucket_s = series.bucket().as_secs_f64();
    let series = series.finish(window_end, &samples);
    let spike = scenario.spike.as_ref().map(|s| {
        let at = s.at.0.as_secs_f64();
        phases::spike_outcome(&series, at, at + s.hold.0.as_secs_f64(), s.factor, bucket_s)
    });
    let breakpoint = breakpoint.map(phases::BreakpointWatch::finish);
    let stopped_early = breakpoint.as_ref().is_some_and(|b| b.broke_at_s.is_some());
    let start_ms = faults::unix_ms(window.measure_start);
    let runtime = side.runtime.as_ref().map(|(a, b)| faults::runtime_figures(a, b, start_ms));
    if let Some(timeline) = &tally.timeline {
        let end = side.runtime.as_ref().map(|(_, end)| (end, start_ms));
        faults::figures(&mut faults, timeline, measured_s, end);
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
    // Closing the connection closes a stdio server's stdin: the first request to stop.
    drop(conn);
    if let Some(s) = &mut server {
        s.shutdown(plan.server.shutdown_timeout).await;
    }

    RepetitionOutcome {
        repetition: Some(RepetitionResult {
            index,
            measured_s,
            operations: operation_results(&mix, &tally, measured_s, timeout),
            unattributed_errors: unattributed,
            load: load_stats(&model, &tally, measured_s, stopped_early, plan.shard),
            server_resources,
            server_metrics: side.server_metrics,
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
            window: Some(WallWindow {
                start_unix_ms: crate::config::unix_ms(wall_start),
                end_unix_ms: crate::config::unix_ms(wall_start + tally.measured),
                planned_start_unix_ms: start.map(crate::config::unix_ms),
            }),
            shards: Vec::new(),
        }),
        server: Some(identity),
        failure,
    }
}

/// The repetition's window, and when its measured part begins on the wall clock: from now, or
/// (on a common start's timetable) with its measured part beginning at `start`, waited for
/// here; a repetition whose server was not ready in time begins at once and says how late it
/// is.
async fn aligned_window(
    model: &LoadModel,
    start: Option<SystemTime>,
    label: &str,
    index: u32,
    cancel: &CancellationToken,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> (Window, SystemTime) {
    let (warmup, duration) = (model.warmup(), model.duration().unwrap_or_default());
    // One reading of both clocks maps one onto the other for this repetition.
    let (now, wall_now) = (tokio::time::Instant::now(), SystemTime::now());
    let wait = start.and_then(|s| s.duration_since(wall_now + warmup).ok()).unwrap_or_default();
    let window = Window::starting(now + wait, warmup, duration);
    let measure_start = wall_now + wait + warmup;
    if let Some(planned) = start {
        let late = measure_start.duration_since(planned).unwrap_or_default();
        let _ = progress(Progress::Aligned { scenario: label, index, wait, late });
        tokio::select! {
            _ = tokio::time::sleep_until(window.start) => {}
            _ = cancel.cancelled() => {}
        }
    }
    (window, measure_start)
}

impl RepetitionOutcome {
    fn failed(server: Option<ServerIdentity>, kind: FailureKind, message: String) -> RepetitionOutcome {
        let failure = RunFailure { kind, message, stderr_tail: Vec::new() };
        RepetitionOutcome { repetition: None, server, failure: Some(failure) }
    }
}

/// The scenario's mix: as configured, or (at its first repetition) made from the server's
/// `tools/list`, less the tools that do not answer the probe (said through `progress`).
/// `Err`: why there is none.
async fn mix_for(
    mix: &mut Option<Arc<CompiledMix>>,
    conn: &Connection,
    plan: &Plan,
    scenario: &str,
    progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
) -> Result<Arc<CompiledMix>, String> {
    if let Some(m) = mix {
        return Ok(m.clone());
    }
    match discover::answering_tools(conn, plan.workload.request_timeout.0).await {
        Ok(discovery) => {
            let _ = progress(Progress::Discovered { scenario, discovery: &discovery });
            if discovery.kept.is_empty() && discovery.left_out.is_empty() {
                return Err("the scenario names no mix and the server lists no tools".to_string());
            }
            if discovery.kept.is_empty() {
                return Err(format!(
                    "the scenario names no mix and no tool the server lists answered within {}: name the tools to measure in a mix",
                    humantime::format_duration(discover::PROBE_LIMIT.min(plan.workload.request_timeout.0))
                ));
            }
            let entries: Vec<_> = discovery.kept.into_iter().map(|t| t.entry).collect();
            Ok(mix.insert(Arc::new(CompiledMix::new(&entries).sharded(plan.shard))).clone())
        }
        Err(e) => Err(format!("the scenario names no mix and `tools/list` failed: {e}")),
    }
}

/// What runs beside the load: the server's Prometheus endpoint scraped from the window's start
/// every second, the generator's CPU at the window's start, and (for a server on simulated
/// upstreams, so on a resilience runtime) its `runtime://stats` then.
struct SideReaders {
    scrape_stop: CancellationToken,
    scraping: Option<tokio::task::JoinHandle<crate::measure::ServerMetrics>>,
    client_cpu_at_start: tokio::task::JoinHandle<f64>,
    runtime_at_start: Option<tokio::task::JoinHandle<Option<faults::RuntimeSnapshot>>>,
}

/// What the side readers found.
struct SideReadings {
    server_metrics: Option<crate::measure::ServerMetrics>,
    client_cpu_at_start: f64,
    /// The runtime's statistics at the window's start and end.
    runtime: Option<(faults::RuntimeSnapshot, faults::RuntimeSnapshot)>,
}

impl SideReaders {
    fn start(plan: &Plan, conn: &Arc<Connection>, window: Window) -> SideReaders {
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
        let client_cpu_at_start = tokio::spawn(async move {
            tokio::time::sleep_until(window.measure_start).await;
            own_usage().0
        });
        let runtime_at_start = (!plan.server.upstreams.is_empty()).then(|| {
            let (conn, timeout) = (conn.clone(), plan.workload.request_timeout.0);
            tokio::spawn(async move {
                tokio::time::sleep_until(window.measure_start).await;
                faults::read_runtime(&conn, timeout).await
            })
        });
        SideReaders { scrape_stop, scraping, client_cpu_at_start, runtime_at_start }
    }

    /// After the window: the last scrape, and the runtime's statistics at its end.
    async fn finish(self, conn: &Connection, timeout: Duration, cpu_now: f64) -> SideReadings {
        self.scrape_stop.cancel();
        let server_metrics = match self.scraping {
            Some(task) => task.await.ok(),
            None => None,
        };
        let runtime = match self.runtime_at_start {
            Some(task) => {
                let end = if conn.closed().is_none() { faults::read_runtime(conn, timeout).await } else { None };
                task.await.ok().flatten().zip(end)
            }
            None => None,
        };
        let client_cpu_at_start = self.client_cpu_at_start.await.unwrap_or(cpu_now);
        SideReadings { server_metrics, client_cpu_at_start, runtime }
    }
}

/// The load loop watched from the engine's runtime: a tick a second from the warm-up on
/// (progress, the per-second series, a breakpoint that stops the load), and the server's exit,
/// which closes the connection even while a descendant still holds its pipe.
struct Watch<'a> {
    scenario: &'a Scenario,
    label: &'a str,
    index: u32,
    of: u32,
    window: Window,
    live: &'a Live,
    sampler: Option<&'a crate::measure::TreeSampler>,
    /// The mix's operation names, by index (the live detail's order).
    operations: &'a [String],
}

struct Watched {
    tally: drive::Tally,
    series: SeriesBuilder,
    breakpoint: Option<phases::BreakpointWatch>,
}

impl Watch<'_> {
    async fn run(
        self,
        job: LoopJob,
        server: &mut Option<crate::client::ServerProcess>,
        conn: &Connection,
        progress: &mut dyn FnMut(Progress<'_>) -> ControlFlow<String>,
    ) -> Watched {
        let Watch { scenario, label, index, of, window, live, sampler, operations } = self;
        let model = scenario.model();
        // Ends the workload early (a breakpoint run past its limit) without it counting as an interrupt.
        let stop = job.stop.clone();
        let mut breakpoint = scenario.breakpoint.as_ref().map(phases::BreakpointWatch::new);
        let planned = model.duration();
        let measure_start = window.measure_start.into_std();
        let mut series = SeriesBuilder::new(measure_start, planned);
        let second = Duration::from_secs(1);
        let mut ticker = tokio::time::interval_at(window.measure_start + second, second);
        // Progress during warm-up too, on a grid of its own (the measured ticks stay on the window's).
        let mut warming = tokio::time::interval_at(window.start + second, second);
        let warmup = window.measure_start - window.start;
        let planned_all = planned.map(|p| p + warmup);
        let mut so_far = Interval::default();
        let mut server_exited = false;
        let mut workload = std::pin::pin!(job.run(live.clone()));
        let tally = loop {
            tokio::select! {
                tally = &mut workload => break tally,
                status = exited(server), if !server_exited => {
                    server_exited = true;
                    conn.close(exit_reason(status));
                }
                _ = warming.tick(), if tokio::time::Instant::now() + Duration::from_millis(500) < window.measure_start => {
                    let elapsed = window.start.elapsed();
                    let tick = Progress::Tick {
                        scenario: label, index, of, elapsed, warmup, planned: planned_all, point: None, so_far: &so_far,
                        operations, target_rate: None, server: sampler.and_then(|s| s.latest()),
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
                        operations,
                        target_rate: match &model {
                            LoadModel::Open { rate, .. } => Some(rate.at(elapsed)),
                            _ => None,
                        },
                        server: sampler.and_then(|s| s.latest()),
                    };
                    let _ = progress(tick);
                }
            }
        };
        // What the loop recorded after the last tick.
        series.add(std::time::Instant::now(), live.take_interval());
        Watched { tally, series, breakpoint }
    }
}

/// Each operation the mix called in the window, with its histograms.
fn operation_results(
    mix: &CompiledMix,
    tally: &drive::Tally,
    measured_s: f64,
    timeout: Duration,
) -> Vec<OperationResult> {
    let per_s = |n: u64| if measured_s > 0.0 { n as f64 / measured_s } else { 0.0 };
    mix.operations
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
        .collect()
}

/// What the schedule did: calls sent, late and dropped, and the rate achieved. A shard's target
/// is its share of the planned rate.
fn load_stats(
    model: &LoadModel,
    tally: &drive::Tally,
    measured_s: f64,
    stopped_early: bool,
    shard: Option<crate::config::Shard>,
) -> LoadStats {
    let shards = f64::from(shard.map_or(1, |s| s.count));
    LoadStats {
        sent: tally.sent,
        late_sends: tally.late,
        dropped_sends: tally.dropped,
        target_rate_per_s: match model {
            LoadModel::Open { rate, .. } => Some(mean_rate(rate) / shards),
            _ => None,
        },
        achieved_rate_per_s: match model {
            LoadModel::Open { rate, .. } if !stopped_early => tally.sent as f64 / rate.duration().as_secs_f64(),
            _ if measured_s > 0.0 => tally.sent as f64 / measured_s,
            _ => 0.0,
        },
        send_lag_us: tally.send_lag.as_ref().map(|h| h.summary()),
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
