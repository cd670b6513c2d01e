//! The three ways of applying load, generic over a [`Target`] so that they run the same against
//! a real server and, in tests, against a scripted target on paused time.
//!
//! - closed (`constant-vus`): each worker sends its next request when its last one is answered;
//! - open (`constant-arrival-rate`): a scheduler emits every request at its intended send time,
//!   `max_in_flight` workers send them; when all are busy, requests queue and leave late, and
//!   their latency still runs from the intended time (coordinated-omission correction, as wrk2);
//!   requests still queued when the window closes are dropped and counted;
//! - iterations: a fixed number of requests, closed loop.
//!
//! All workers of a loop record into one [`Tally`] behind a mutex. Contention is bounded by the
//! runtime's OS threads, not by the number of workers, while per-worker tallies would cost a
//! set of full histograms per worker: with the open model's default 100 slots that was 75 MiB
//! of generator RSS instead of 10 MiB.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::faults::Timeline;
use super::mix::CompiledMix;
use super::timer::Sleeper;
use crate::client::{CallError, ToolOutcome};
use crate::config::Profile;
use crate::measure::{ErrorKind, LatencyHistogram, OperationRecorder};

/// A send more than this after its intended time counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(1);

/// Something requests can be sent to.
pub trait Target: Send + Sync + 'static {
    /// Performs mix entry `entry` as the mix's `n`-th call.
    fn call(&self, entry: usize, n: u64) -> impl Future<Output = Result<ToolOutcome, CallError>> + Send;

    /// The connection is gone for good: workers stop rather than fail every later call.
    fn is_closed(&self) -> bool {
        false
    }
}

/// The load's timeline: requests intended before `measure_start` are warm-up.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measure_start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn new(warmup: Duration, duration: Duration) -> Window {
        let start = Instant::now();
        Window { start, measure_start: start + warmup, end: start + warmup + duration }
    }
}

/// What a loop measured in its window.
#[derive(Debug, Default)]
pub struct Tally {
    pub recorders: Vec<OperationRecorder>,
    pub sent: u64,
    pub late: u64,
    pub dropped: u64,
    /// Open model: how long after its intended time each request left.
    pub send_lag: Option<LatencyHistogram>,
    /// From the start of the measured window until its last request completed.
    pub measured: Duration,
    /// What was recorded since the last [`Live::take_interval`].
    interval: Interval,
    /// Calls by completion time, when faults are to be analysed ([`Live::keep_timeline`]).
    pub timeline: Option<Timeline>,
}

/// What happened in a stretch of the measured window: for live progress and the time series.
#[derive(Debug, Default)]
pub struct Interval {
    pub calls: u64,
    pub errors: u64,
    /// Latency of the successful calls, from their intended send.
    pub latency: LatencyHistogram,
}

impl Interval {
    pub fn merge(&mut self, other: &Interval) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
    }
}

/// The tally a load loop records into, shared with whoever watches it live.
#[derive(Debug, Clone)]
pub struct Live(Shared);

impl Live {
    /// `open`: also keep the from-actual-send histograms and the send lag.
    pub fn new(operations: usize, open: bool) -> Live {
        Live(Arc::new(Mutex::new(Tally::new(operations, open))))
    }

    /// Also place every call on a timeline from `start` (for the figures of faults).
    pub fn keep_timeline(&self, start: Instant) {
        self.0.lock().expect("tally lock").timeline = Some(Timeline::new(start));
    }

    /// What was recorded since the last call.
    pub fn take_interval(&self) -> Interval {
        std::mem::take(&mut self.0.lock().expect("tally lock").interval)
    }
}

impl Tally {
    fn new(operations: usize, open: bool) -> Tally {
        let recorder = if open { OperationRecorder::with_uncorrected() } else { OperationRecorder::default() };
        Tally {
            recorders: vec![recorder; operations],
            send_lag: open.then(LatencyHistogram::new),
            ..Default::default()
        }
    }

    fn record(&mut self, op: usize, outcome: &Result<ToolOutcome, CallError>, intended: Instant, sent: Instant) {
        let done = Instant::now();
        self.sent += 1;
        let lag = sent.saturating_duration_since(intended);
        if lag > LATE_AFTER {
            self.late += 1;
        }
        if let Some(h) = &mut self.send_lag {
            h.record(lag);
        }
        let rec = &mut self.recorders[op];
        self.interval.calls += 1;
        if let Some(timeline) = &mut self.timeline {
            let failed = !matches!(outcome, Ok(o) if !o.is_error);
            timeline.record(done, failed, matches!(outcome, Ok(o) if o.degraded));
        }
        match outcome {
            Ok(o) if !o.is_error => {
                rec.success(done - intended, done - sent);
                self.interval.latency.record(done - intended);
            }
            Ok(_) => {
                rec.failure(ErrorKind::ToolError);
                self.interval.errors += 1;
            }
            Err(e) => {
                rec.failure_because(error_kind(e), || e.to_string());
                self.interval.errors += 1;
            }
        }
    }
}

/// The tally all workers of one loop share.
type Shared = Arc<Mutex<Tally>>;

fn record(tally: &Shared, op: usize, outcome: &Result<ToolOutcome, CallError>, intended: Instant, sent: Instant) {
    tally.lock().expect("tally lock").record(op, outcome, intended, sent);
}

pub fn error_kind(e: &CallError) -> ErrorKind {
    match e {
        CallError::Timeout => ErrorKind::Timeout,
        CallError::Transport(_) => ErrorKind::Transport,
        CallError::Protocol(_) => ErrorKind::Protocol,
        CallError::JsonRpc { code, .. } => ErrorKind::JsonRpc(*code),
        CallError::Http { status, .. } => ErrorKind::Http(*status),
    }
}

/// Calls, unless cancelled first (`None`).
async fn call_or_cancel<T: Target>(
    target: &T,
    entry: usize,
    n: u64,
    cancel: &CancellationToken,
) -> Option<Result<ToolOutcome, CallError>> {
    tokio::select! {
        r = target.call(entry, n) => Some(r),
        _ = cancel.cancelled() => None,
    }
}

/// Sends the mix's `n`-th call and records it if `measure`. Returns whether the worker should
/// go on: not when cancelled, nor when the connection is closed.
async fn call_and_record<T: Target>(
    target: &T,
    mix: &CompiledMix,
    n: u64,
    intended: Instant,
    measure: bool,
    cancel: &CancellationToken,
    tally: &Shared,
) -> bool {
    let entry = mix.pick(n);
    let sent = Instant::now();
    let Some(outcome) = call_or_cancel(target, entry, n, cancel).await else { return false };
    if measure {
        record(tally, mix.entries[entry].op, &outcome, intended, sent);
    }
    // A transport error on one HTTP connection is one failed call; a closed connection (the
    // server is gone) would fail every later call the same way.
    !(matches!(outcome, Err(CallError::Transport(_))) && target.is_closed())
}

/// Waits for the workers, then closes the tally's measured time.
async fn gather(workers: Vec<tokio::task::JoinHandle<()>>, tally: Shared, measure_start: Instant) -> Tally {
    for w in workers {
        w.await.expect("load worker panicked");
    }
    let mut guard = tally.lock().expect("tally lock");
    // The live interval stays behind for whoever watches: its last stretch is theirs to take.
    let interval = std::mem::take(&mut guard.interval);
    let mut done = std::mem::take(&mut *guard);
    guard.interval = interval;
    done.measured = Instant::now().saturating_duration_since(measure_start);
    done
}

/// How often an idle worker of a ramping closed model checks whether it is needed.
const IDLE_POLL: Duration = Duration::from_millis(10);

/// Closed model: as many requests in flight as `vus` gives at each moment (measured from
/// `window.start`, warm-up included) until the window ends. Worker `i` works while the
/// profile has more than `i` VUs.
pub async fn closed<T: Target>(
    target: Arc<T>,
    mix: Arc<CompiledMix>,
    vus: Profile,
    window: Window,
    cancel: CancellationToken,
    live: Live,
) -> Tally {
    let calls = Arc::new(AtomicU64::new(0));
    let tally = live.0;
    let workers = (0..vus.max().round() as u32)
        .map(|i| {
            let (target, mix, calls, cancel, tally, vus) =
                (target.clone(), mix.clone(), calls.clone(), cancel.clone(), tally.clone(), vus.clone());
            tokio::spawn(async move {
                loop {
                    let sent = Instant::now();
                    if sent >= window.end || cancel.is_cancelled() {
                        break;
                    }
                    if vus.at(sent - window.start).round() as u32 <= i {
                        tokio::select! {
                            _ = tokio::time::sleep(IDLE_POLL) => continue,
                            _ = cancel.cancelled() => break,
                        }
                    }
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    let measure = sent >= window.measure_start;
                    if !call_and_record(&*target, &mix, n, sent, measure, &cancel, &tally).await {
                        break;
                    }
                }
            })
        })
        .collect();
    gather(workers, tally, window.measure_start).await
}

/// A fixed number of requests, `concurrency` in flight. All of them are measured.
pub async fn iterations<T: Target>(
    target: Arc<T>,
    mix: Arc<CompiledMix>,
    concurrency: u32,
    total: u64,
    cancel: CancellationToken,
    live: Live,
) -> Tally {
    let start = Instant::now();
    let calls = Arc::new(AtomicU64::new(0));
    let tally = live.0;
    let workers = (0..concurrency)
        .map(|_| {
            let (target, mix, calls, cancel, tally) =
                (target.clone(), mix.clone(), calls.clone(), cancel.clone(), tally.clone());
            tokio::spawn(async move {
                loop {
                    let n = calls.fetch_add(1, Ordering::Relaxed);
                    if n >= total || cancel.is_cancelled() {
                        break;
                    }
                    if !call_and_record(&*target, &mix, n, Instant::now(), true, &cancel, &tally).await {
                        break;
                    }
                }
            })
        })
        .collect();
    gather(workers, tally, start).await
}

/// The open model's arrival process.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrivals {
    /// Requests per second from `window.start` (warm-up included).
    pub rate: Profile,
    /// Most requests outstanding; later sends wait for a slot and count as late.
    pub max_in_flight: u32,
}

/// Open model: the `n`-th request is due when the integral of the rate reaches `n`, at most
/// `max_in_flight` outstanding.
pub async fn open<T: Target, S: Sleeper>(
    target: Arc<T>,
    mix: Arc<CompiledMix>,
    Arrivals { rate, max_in_flight }: Arrivals,
    window: Window,
    cancel: CancellationToken,
    mut sleeper: S,
    live: Live,
) -> Tally {
    let (tx, rx) = async_channel::unbounded::<(Instant, u64)>();
    let tally = live.0;
    let workers = (0..max_in_flight)
        .map(|_| {
            let (target, mix, rx, cancel, tally) =
                (target.clone(), mix.clone(), rx.clone(), cancel.clone(), tally.clone());
            tokio::spawn(async move {
                while let Ok((intended, n)) = rx.recv().await {
                    let measure = intended >= window.measure_start;
                    if !call_and_record(&*target, &mix, n, intended, measure, &cancel, &tally).await {
                        break;
                    }
                }
            })
        })
        .collect();

    let mut n: u64 = 0;
    // From the start each time, so that rounding never accumulates into drift.
    while let Some(offset) = rate.time_of(n as f64) {
        let intended = window.start + offset;
        if intended >= window.end {
            break;
        }
        tokio::select! {
            _ = sleeper.sleep_until(intended) => {}
            _ = cancel.cancelled() => break,
        }
        if tx.send((intended, n)).await.is_err() {
            break; // every worker has stopped: the connection is gone
        }
        n += 1;
    }
    // Requests still waiting for a free slot when the window closes are never sent. (Draining
    // right after the last send would also count one that a free worker had yet to pick up.)
    tokio::select! {
        _ = sleeper.sleep_until(window.end) => {}
        _ = cancel.cancelled() => {}
    }
    let mut dropped = 0;
    while let Ok((intended, _)) = rx.try_recv() {
        if intended >= window.measure_start {
            dropped += 1;
        }
    }
    tx.close();
    tally.lock().expect("tally lock").dropped = dropped;
    gather(workers, tally, window.measure_start).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MixEntry;
    use crate::load::timer::TokioSleeper;

    /// Answers after `latency`; a call made during `stall` is answered only when it ends.
    struct Scripted {
        latency: Duration,
        stall: Option<(Instant, Instant)>,
    }

    impl Target for Scripted {
        async fn call(&self, _entry: usize, _n: u64) -> Result<ToolOutcome, CallError> {
            let now = Instant::now();
            let begin = match self.stall {
                Some((from, to)) if now >= from && now < to => to,
                _ => now,
            };
            tokio::time::sleep_until(begin + self.latency).await;
            Ok(ToolOutcome::default())
        }
    }

    fn mix() -> Arc<CompiledMix> {
        Arc::new(CompiledMix::new(&[MixEntry::tool("echo", 1)]))
    }

    /// A constant rate over the whole window, warm-up included.
    fn arrivals(rate: f64, max_in_flight: u32, w: Window) -> Arrivals {
        Arrivals { rate: Profile::constant(rate, w.end - w.start), max_in_flight }
    }

    fn scripted(latency_ms: u64) -> Arc<Scripted> {
        Arc::new(Scripted { latency: Duration::from_millis(latency_ms), stall: None })
    }

    #[tokio::test(start_paused = true)]
    async fn open_model_sends_exactly_at_the_rate_and_measures_from_the_intended_time() {
        let window = Window::new(Duration::from_secs(1), Duration::from_secs(2));
        let t = open(
            scripted(3),
            mix(),
            arrivals(100.0, 4, window),
            window,
            CancellationToken::new(),
            TokioSleeper,
            Live::new(1, true),
        )
        .await;
        assert_eq!(t.sent, 200, "2 s at 100/s, warm-up excluded");
        assert_eq!((t.late, t.dropped), (0, 0));
        let s = t.recorders[0].latency.summary();
        // 3 ms exactly, within HdrHistogram's 3 significant digits.
        assert!(s.p50.abs_diff(3000) <= 3 && s.max.abs_diff(3000) <= 3, "{s:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_shows_in_the_corrected_histogram_and_hides_from_the_uncorrected_one() {
        let window = Window::new(Duration::ZERO, Duration::from_secs(10));
        let stall = (window.start + Duration::from_secs(5), window.start + Duration::from_secs(6));
        let target = Arc::new(Scripted { latency: Duration::from_millis(1), stall: Some(stall) });
        let t = open(
            target,
            mix(),
            arrivals(100.0, 2, window),
            window,
            CancellationToken::new(),
            TokioSleeper,
            Live::new(1, true),
        )
        .await;
        assert_eq!(t.sent + t.dropped, 1000);
        // The two in-flight slots hang for the second; the ~98 requests due meanwhile leave late,
        // and so do the few due while that backlog drains (2 slots at 1 ms each: ~50 ms).
        assert!((95..=110).contains(&t.late), "late sends: {}", t.late);
        let rec = &t.recorders[0];
        let corrected = rec.latency.summary();
        let uncorrected = rec.uncorrected.as_ref().unwrap().summary();
        assert!(corrected.p99 >= 800_000, "corrected p99 {} µs", corrected.p99);
        assert!(uncorrected.p99 <= 2_000, "uncorrected p99 {} µs", uncorrected.p99);
        assert!(corrected.max >= 990_000 && uncorrected.max >= 990_000, "both see the two stalled calls");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_never_get_a_slot_are_dropped() {
        let window = Window::new(Duration::ZERO, Duration::from_secs(1));
        let t = open(
            scripted(50),
            mix(),
            arrivals(100.0, 1, window),
            window,
            CancellationToken::new(),
            TokioSleeper,
            Live::new(1, true),
        )
        .await;
        assert_eq!(t.sent + t.dropped, 100);
        assert!(t.dropped >= 75, "one slot at 50 ms serves 20/s of 100/s: {} dropped", t.dropped);
    }

    #[tokio::test(start_paused = true)]
    async fn closed_model_keeps_concurrency_in_flight() {
        let window = Window::new(Duration::from_millis(500), Duration::from_secs(1));
        let live = Live::new(1, false);
        let vus = Profile::constant(2.0, window.end - window.start);
        let t = closed(scripted(10), mix(), vus, window, CancellationToken::new(), live.clone()).await;
        assert_eq!(t.sent, 200, "2 workers × 100 calls of 10 ms");
        assert!(t.recorders[0].latency.summary().p99.abs_diff(10_000) <= 10);
        assert!(t.send_lag.is_none() && t.recorders[0].uncorrected.is_none());
        // The live interval saw every measured call until someone took it.
        let interval = live.take_interval();
        assert_eq!(interval.calls, 200);
        assert_eq!(interval.latency.len(), 200);
        assert_eq!(live.take_interval().calls, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_ramp_sends_as_its_integral() {
        // 0 → 200/s over 2 s: 200 sends, half of them in the last ~0.6 s.
        let window = Window::new(Duration::ZERO, Duration::from_secs(2));
        let rate = Profile { start: 0.0, stages: vec![(Duration::from_secs(2), 200.0)] };
        let a = Arrivals { rate, max_in_flight: 8 };
        let live = Live::new(1, true);
        let t = open(scripted(1), mix(), a, window, CancellationToken::new(), TokioSleeper, live).await;
        assert_eq!((t.sent, t.late, t.dropped), (200, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn ramping_vus_add_workers_as_the_profile_rises() {
        // 1 → 4 VUs over 3 s, 10 ms per call: the first second runs ~1-2 workers, the last ~4.
        let window = Window::new(Duration::ZERO, Duration::from_secs(3));
        let vus = Profile { start: 1.0, stages: vec![(Duration::from_secs(3), 4.0)] };
        let live = Live::new(1, false);
        let watcher = live.clone();
        let sampler = tokio::spawn(async move {
            let mut per_second = Vec::new();
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                per_second.push(watcher.take_interval().calls);
            }
            per_second
        });
        let t = closed(scripted(10), mix(), vus, window, CancellationToken::new(), live).await;
        let per_second = sampler.await.unwrap();
        assert!(per_second[0] < per_second[1] && per_second[1] < per_second[2], "{per_second:?}");
        assert!((100..=200).contains(&per_second[0]) && (300..=400).contains(&per_second[2]), "{per_second:?}");
        // The calls in flight when the window closed (one per VU at most) finish after the last look.
        let seen: u64 = per_second.iter().sum();
        assert!(t.sent >= seen && t.sent - seen <= 4, "{} sent, {seen} seen", t.sent);
    }

    #[tokio::test(start_paused = true)]
    async fn iterations_make_exactly_that_many_calls() {
        let t = iterations(scripted(5), mix(), 3, 50, CancellationToken::new(), Live::new(1, false)).await;
        assert_eq!(t.sent, 50);
        assert_eq!(t.recorders[0].count, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_every_model() {
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stopper.cancel();
        });
        let window = Window::new(Duration::ZERO, Duration::from_secs(60));
        let t = open(scripted(1), mix(), arrivals(100.0, 2, window), window, cancel, TokioSleeper, Live::new(1, true))
            .await;
        assert!(t.sent <= 31, "stopped after ~0.3 s: {}", t.sent);
    }
}
