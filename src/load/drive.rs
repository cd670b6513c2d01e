//! The load loop: one task owns a connection ([`Link`]), starts every call the [`Pacer`] says
//! is due, hands them to the link in one go, waits for the link to say what came back (or for
//! the next send time), and records each completion into its own [`Tally`]. No task per call or
//! per virtual user, no channel, no lock on the hot path (wrk's event loop; wrk2's schedule).
//!
//! Every call the schedule started is accounted for: an answer, an error at the time it was
//! known, or a timeout at its deadline (the intended send plus `request_timeout`) all enter the
//! latency histogram, so a server that stalls past the timeout shows at the tail instead of
//! vanishing from it; a successes-only histogram is kept beside it.
//!
//! Two links: [`TargetLink`] runs a [`Target`]'s call futures in one `FuturesUnordered` (used
//! for Streamable HTTP, and by the tests on paused time with a scripted target); [`StdioLink`]
//! drives the client's `Pipes`, which write and parse the pipe themselves.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::faults::Timeline;
use super::mix::CompiledMix;
use super::pace::{Pacer, Start};
use super::timer::Sleeper;
use crate::client::{CallError, Completion, Pipes, ToolOutcome};
use crate::measure::{ErrorKind, LatencyHistogram, OperationRecorder};

/// A send more than this after its intended time counts as late.
pub const LATE_AFTER: Duration = Duration::from_millis(1);

/// How often the loop hands what it recorded to the live view (progress, the time series).
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A connection the load loop drives.
pub trait Link {
    /// Queues mix entry `entry` as the mix's `n`-th call, in `slot`; it fails as a timeout at
    /// `deadline` if not answered by then.
    fn send(&mut self, slot: usize, entry: usize, n: u64, deadline: Instant);

    /// Sends what was queued, then waits until at least one call completed, `wake` passed
    /// (by `sleeper`), or the link closed; appends what completed (the link's own timeouts
    /// included). A link that blocks its thread returns on its tick too, with nothing done.
    fn wait<S: Sleeper>(
        &mut self,
        wake: Option<Instant>,
        sleeper: &mut S,
        done: &mut Vec<Completion>,
    ) -> impl Future<Output = ()> + Send;

    /// The connection is gone for good: no later call can succeed.
    fn is_closed(&self) -> bool;

    /// [`Link::wait`] blocks the thread (returning on its tick at the latest) and never pends.
    fn blocks(&self) -> bool {
        false
    }
}

/// Something calls can be made to, one future per call.
pub trait Target: Send + Sync + 'static {
    /// Performs mix entry `entry` as the mix's `n`-th call, giving up after `timeout`.
    fn call(
        &self,
        entry: usize,
        n: u64,
        timeout: Duration,
    ) -> impl Future<Output = Result<ToolOutcome, CallError>> + Send;

    /// The connection is gone for good: the loop stops rather than fail every later call.
    fn is_closed(&self) -> bool {
        false
    }
}

type CallFuture = Pin<Box<dyn Future<Output = Completion> + Send>>;

/// A [`Target`] as a link: its call futures polled together by the loop's own task.
pub struct TargetLink<T> {
    target: Arc<T>,
    calls: FuturesUnordered<CallFuture>,
}

impl<T: Target> TargetLink<T> {
    pub fn new(target: Arc<T>) -> TargetLink<T> {
        TargetLink { target, calls: FuturesUnordered::new() }
    }
}

impl<T: Target> Link for TargetLink<T> {
    fn send(&mut self, slot: usize, entry: usize, n: u64, deadline: Instant) {
        let target = self.target.clone();
        self.calls.push(Box::pin(async move {
            let timeout = deadline.saturating_duration_since(Instant::now());
            let outcome = match tokio::time::timeout_at(deadline, target.call(entry, n, timeout)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(CallError::Timeout),
            };
            Completion { slot, outcome }
        }));
    }

    async fn wait<S: Sleeper>(&mut self, wake: Option<Instant>, sleeper: &mut S, done: &mut Vec<Completion>) {
        let wake = until(wake, sleeper);
        if self.calls.is_empty() {
            return wake.await;
        }
        tokio::select! {
            biased;
            Some(c) = self.calls.next() => {
                done.push(c);
                // Everything else already finished, without waiting again.
                while let Some(Some(c)) = self.calls.next().now_or_never() {
                    done.push(c);
                }
            }
            _ = wake => {}
        }
    }

    fn is_closed(&self) -> bool {
        self.target.is_closed()
    }
}

/// Resolves at `wake`, or never.
async fn until<S: Sleeper>(wake: Option<Instant>, sleeper: &mut S) {
    match wake {
        Some(at) => sleeper.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The server's stdio pipes as a link: the load loop writes and parses them itself, on the
/// reactor or, once [`Pipes::block`]ed, blocking the loop's thread in `read`.
pub struct StdioLink<'a> {
    pub pipes: &'a mut Pipes,
    pub mix: &'a CompiledMix,
}

impl Link for StdioLink<'_> {
    fn send(&mut self, slot: usize, entry: usize, n: u64, deadline: Instant) {
        let e = &self.mix.entries[entry];
        self.pipes.send_call(slot, e.method.name(), &e.params(n), deadline);
    }

    async fn wait<S: Sleeper>(&mut self, wake: Option<Instant>, sleeper: &mut S, done: &mut Vec<Completion>) {
        if self.pipes.is_blocking() {
            self.pipes.exchange_blocking(wake, done)
        } else {
            self.pipes.exchange(until(wake, sleeper), done).await
        }
    }

    fn is_closed(&self) -> bool {
        self.pipes.is_closed()
    }

    fn blocks(&self) -> bool {
        self.pipes.is_blocking()
    }
}

/// What a loop measured in its window.
#[derive(Debug, Default)]
pub struct Tally {
    pub recorders: Vec<OperationRecorder>,
    /// Measured calls that completed (answered, failed or timed out).
    pub sent: u64,
    pub late: u64,
    pub dropped: u64,
    /// Open model: how long after its intended time each request left.
    pub send_lag: Option<LatencyHistogram>,
    /// From the start of the measured window until its last request completed.
    pub measured: Duration,
    /// What was recorded since the last flush to the live view.
    interval: Interval,
    /// Calls by completion time, when faults are to be analysed ([`Live::keep_timeline`]).
    pub timeline: Option<Timeline>,
}

/// What happened in a stretch of the measured window: for live progress and the time series.
#[derive(Debug, Default)]
pub struct Interval {
    pub calls: u64,
    pub errors: u64,
    /// Latency of every call from its intended send, failures at their time to failure.
    pub latency: LatencyHistogram,
    /// Per operation (by the mix's operation index), when the live view asks for detail
    /// ([`Live::new`]'s `detail`); empty otherwise, so the load loop records nothing more.
    pub operations: Vec<OperationInterval>,
    /// With detail, open model: how long after its intended time each call left.
    pub send_lag: Option<LatencyHistogram>,
    /// The most calls in flight at once during the stretch (merged: the latest stretch's).
    pub in_flight: u64,
}

/// One operation's share of an [`Interval`].
#[derive(Debug, Default, Clone)]
pub struct OperationInterval {
    pub calls: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub latency: LatencyHistogram,
}

impl Interval {
    /// An empty interval with room for the detail of `operations` operations.
    fn with_detail(operations: usize, open: bool) -> Interval {
        Interval {
            operations: vec![OperationInterval::default(); operations],
            send_lag: open.then(LatencyHistogram::new),
            ..Default::default()
        }
    }

    pub fn merge(&mut self, other: &Interval) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.latency.merge(&other.latency);
        if self.operations.len() < other.operations.len() {
            self.operations.resize_with(other.operations.len(), Default::default);
        }
        for (mine, theirs) in self.operations.iter_mut().zip(&other.operations) {
            mine.calls += theirs.calls;
            for (kind, n) in &theirs.errors {
                *mine.errors.entry(*kind).or_default() += n;
            }
            mine.latency.merge(&theirs.latency);
        }
        match (&mut self.send_lag, &other.send_lag) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.send_lag = Some(theirs.clone()),
            _ => {}
        }
        self.in_flight = other.in_flight;
    }

    fn clear(&mut self) {
        self.calls = 0;
        self.errors = 0;
        self.latency.clear();
        for op in &mut self.operations {
            op.calls = 0;
            op.errors.clear();
            op.latency.clear();
        }
        if let Some(lag) = &mut self.send_lag {
            lag.clear();
        }
        self.in_flight = 0;
    }
}

/// What a load loop has recorded so far, for whoever watches it live. The loop records into
/// its own tally and hands the latest stretch over every [`FLUSH_EVERY`].
#[derive(Debug, Clone)]
pub struct Live(Arc<Mutex<LiveState>>);

#[derive(Debug)]
struct LiveState {
    interval: Interval,
    operations: usize,
    open: bool,
    detail: bool,
    timeline_from: Option<Instant>,
}

impl Live {
    /// `open`: also keep the from-actual-send histograms and the send lag. `detail`: intervals
    /// also carry each operation's calls, errors and latency, the send lag and the calls in
    /// flight (for `--live-metrics`; it costs the loop a histogram record per call).
    pub fn new(operations: usize, open: bool, detail: bool) -> Live {
        let interval = Interval::default();
        Live(Arc::new(Mutex::new(LiveState { interval, operations, open, detail, timeline_from: None })))
    }

    /// Also place every call on a timeline from `start` (for the figures of faults).
    pub fn keep_timeline(&self, start: Instant) {
        self.0.lock().expect("live lock").timeline_from = Some(start);
    }

    /// What was recorded since the last call.
    pub fn take_interval(&self) -> Interval {
        std::mem::take(&mut self.0.lock().expect("live lock").interval)
    }

    fn add(&self, interval: &Interval) {
        self.0.lock().expect("live lock").interval.merge(interval);
    }

    /// An empty tally for this view's operations.
    pub fn tally(&self) -> Tally {
        let state = self.0.lock().expect("live lock");
        let mut tally = Tally::new(state.operations, state.open, state.timeline_from);
        if state.detail {
            tally.interval = Interval::with_detail(state.operations, state.open);
        }
        tally
    }
}

impl Tally {
    fn new(operations: usize, open: bool, timeline_from: Option<Instant>) -> Tally {
        let recorder = if open { OperationRecorder::with_uncorrected() } else { OperationRecorder::default() };
        Tally {
            recorders: vec![recorder; operations],
            send_lag: open.then(LatencyHistogram::new),
            timeline: timeline_from.map(Timeline::new),
            ..Default::default()
        }
    }

    fn record(&mut self, op: usize, call: &InFlight, outcome: &Result<ToolOutcome, CallError>, done: Instant) {
        self.sent += 1;
        let lag = call.sent.saturating_duration_since(call.intended);
        if lag > LATE_AFTER {
            self.late += 1;
        }
        if let Some(h) = &mut self.send_lag {
            h.record(lag);
        }
        if let Some(h) = &mut self.interval.send_lag {
            h.record(lag);
        }
        let failed = !matches!(outcome, Ok(o) if !o.is_error);
        if let Some(timeline) = &mut self.timeline {
            timeline.record(done, failed, matches!(outcome, Ok(o) if o.degraded));
        }
        let (from_intended, from_sent) = (done - call.intended, done - call.sent);
        let rec = &mut self.recorders[op];
        match outcome {
            Ok(o) if !o.is_error => rec.success(from_intended, from_sent),
            Ok(_) => rec.failure(ErrorKind::ToolError, from_intended, from_sent),
            Err(e) => rec.failure_because(error_kind(e), from_intended, from_sent, || e.to_string()),
        }
        self.interval.calls += 1;
        self.interval.errors += u64::from(failed);
        self.interval.latency.record(from_intended);
        if let Some(detail) = self.interval.operations.get_mut(op) {
            detail.calls += 1;
            match outcome {
                Ok(o) if !o.is_error => {}
                Ok(_) => *detail.errors.entry(ErrorKind::ToolError).or_default() += 1,
                Err(e) => *detail.errors.entry(error_kind(e)).or_default() += 1,
            }
            detail.latency.record(from_intended);
        }
    }
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

/// A call on its way.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    entry: usize,
    intended: Instant,
    sent: Instant,
    measure: bool,
}

/// The calls in flight by slot, slots reused through a free list.
#[derive(Default)]
struct Slots {
    calls: Vec<Option<InFlight>>,
    free: Vec<usize>,
    in_flight: usize,
}

impl Slots {
    fn insert(&mut self, call: InFlight) -> usize {
        self.in_flight += 1;
        match self.free.pop() {
            Some(slot) => {
                self.calls[slot] = Some(call);
                slot
            }
            None => {
                self.calls.push(Some(call));
                self.calls.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) -> Option<InFlight> {
        let call = self.calls.get_mut(slot)?.take()?;
        self.in_flight -= 1;
        self.free.push(slot);
        Some(call)
    }
}

/// What the loop runs: the schedule, the calls' timeout (from their intended send) and the
/// start of the measured window.
pub struct Schedule {
    pub pacer: Pacer,
    pub timeout: Duration,
    pub measure_start: Instant,
}

/// Runs the schedule on `link` until it is exhausted and every call started has completed, the
/// link closes, or `cancel` fires.
pub async fn run<L: Link, S: Sleeper>(
    link: &mut L,
    mix: &CompiledMix,
    Schedule { mut pacer, timeout, measure_start }: Schedule,
    cancel: &CancellationToken,
    sleeper: &mut S,
    live: &Live,
) -> Tally {
    let mut tally = live.tally();
    let mut slots = Slots::default();
    let mut done = Vec::new();
    let mut last_flush = Instant::now();
    // A closed link takes no more calls: they would count as started and never be sent.
    while !link.is_closed() && !cancel.is_cancelled() {
        let now = Instant::now();
        while let Some(Start { n, intended, measure }) = pacer.next(now, slots.in_flight) {
            let entry = mix.pick(n);
            let slot = slots.insert(InFlight { entry, intended, sent: now, measure });
            link.send(slot, entry, n, intended + timeout);
        }
        tally.interval.in_flight = tally.interval.in_flight.max(slots.in_flight as u64);
        if pacer.exhausted(now) && slots.in_flight == 0 {
            break;
        }
        let wake = pacer.wake(now, slots.in_flight);
        if link.blocks() {
            // It returns by its tick at the latest, and the cancel is looked at above.
            link.wait(wake, sleeper, &mut done).await;
        } else {
            tokio::select! {
                _ = link.wait(wake, sleeper, &mut done) => {}
                _ = cancel.cancelled() => break,
            }
        }
        let now = Instant::now();
        for Completion { slot, outcome } in done.drain(..) {
            let Some(call) = slots.remove(slot) else { continue };
            if call.measure {
                tally.record(mix.entries[call.entry].op, &call, &outcome, now);
            }
        }
        if now - last_flush >= FLUSH_EVERY {
            live.add(&tally.interval);
            tally.interval.clear();
            last_flush = now;
        }
    }
    live.add(&tally.interval);
    tally.interval.clear();
    tally.dropped = pacer.dropped();
    tally.measured = Instant::now().saturating_duration_since(measure_start);
    tally
}

#[cfg(test)]
mod tests;
