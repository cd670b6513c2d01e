//! A circuit breaker per upstream: closed → open when calls fail (or are slow) too often, open →
//! half-open after a backoff, half-open → closed when exactly N probe calls succeed, or back to
//! open on a probe's failure or when the probes do not finish within a deadline.
//!
//! Our own rather than a crate's: the Rust breakers (`failsafe`, `recloser`) have no cap on
//! half-open permits under concurrency, no slow-call rule and no half-open deadline. The model
//! is Resilience4j's (sliding windows, minimum calls, failure- and slow-rate thresholds,
//! disabled / forced-open / metrics-only modes), with Polly's consecutive-failure rule.
//!
//! Defaults, and why (an MCP tool call waits on the upstream while a client waits on it):
//! - a count window of 50 calls, judged once 20 are in: enough to tell 50% from noise, small
//!   enough to react within a second or two of traffic;
//! - failure rate 50%, slow-call rate 80% at 1 s: an upstream slower than that is as bad as a
//!   dead one for an interactive tool (1 s is below the retry's 2 s per-attempt timeout, so
//!   an answer that comes late but in time still counts as slow);
//! - 5 consecutive failures trip at once, whatever the window says (a dead upstream at low
//!   traffic would otherwise take 20 calls to notice);
//! - open for 5 s, doubling per consecutive trip up to 60 s, ±20% jitter so that many servers
//!   do not probe a recovering upstream in step;
//! - 3 half-open probes with a 10 s deadline: a probe that never answers cannot wedge it.
//!
//! ```
//! use std::time::Duration;
//! use mcp_runtime::{BreakerConfig, CircuitBreaker, ManualClock, Outcome, State};
//!
//! let clock = ManualClock::new();
//! let config = BreakerConfig { consecutive_failures: Some(2), jitter: 0.0, ..BreakerConfig::default() };
//! let breaker = CircuitBreaker::new(config, clock.clone());
//! for _ in 0..2 {
//!     let permit = breaker.try_acquire().expect("closed");
//!     permit.record(Outcome::Failure); // the call failed
//! }
//! assert_eq!(breaker.state(), State::Open);
//! assert!(breaker.try_acquire().is_err(), "open: rejected without calling");
//! clock.advance(Duration::from_secs(5));
//! assert_eq!(breaker.state(), State::HalfOpen, "the open period is over: probes may go");
//! ```

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::clock::SharedClock;
use super::rand;

/// How the breaker sees calls.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "WindowSpec", into = "WindowSpec")]
pub enum Window {
    /// The last N calls.
    Count(u32),
    /// The calls of the last `length`, in `buckets` slices: whole slices expire, so a call costs
    /// at most `buckets` steps whatever the traffic.
    Time {
        /// How far back the window reaches.
        length: Duration,
        /// Slices of `length`, each expiring whole.
        buckets: u32,
    },
}

/// A window as configured: `{count: 50}` or `{time: {length: 10s, buckets: 10}}`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<TimeWindowSpec>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeWindowSpec {
    #[serde(with = "super::config::duration")]
    length: Duration,
    buckets: u32,
}

impl TryFrom<WindowSpec> for Window {
    type Error = String;
    fn try_from(spec: WindowSpec) -> Result<Window, String> {
        match (spec.count, spec.time) {
            (Some(n), None) => Ok(Window::Count(n)),
            (None, Some(t)) => Ok(Window::Time { length: t.length, buckets: t.buckets }),
            _ => Err("a window is either `count: N` or `time: {length: 10s, buckets: 10}`".into()),
        }
    }
}

impl From<Window> for WindowSpec {
    fn from(w: Window) -> WindowSpec {
        match w {
            Window::Count(n) => WindowSpec { count: Some(n), time: None },
            Window::Time { length, buckets } => {
                WindowSpec { count: None, time: Some(TimeWindowSpec { length, buckets }) }
            }
        }
    }
}

/// What the breaker does with calls; set in the config, switched at run time with
/// [`CircuitBreaker::set_mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Mode {
    /// Trips and recovers.
    Normal,
    /// Lets every call through and records nothing.
    Disabled,
    /// Rejects every call (an operator's kill switch).
    ForcedOpen,
    /// Runs the rules and records the transitions it would make, never rejects: to watch a
    /// breaker before enforcing it.
    MetricsOnly,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::Disabled,
            2 => Mode::ForcedOpen,
            3 => Mode::MetricsOnly,
            _ => Mode::Normal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
/// A circuit breaker's rules and timings (Resilience4j's model: a sliding window, failure and
/// slow-call rates, consecutive failures, half-open probes, open time with backoff and jitter).
pub struct BreakerConfig {
    /// The calls the rate rules look at.
    pub window: Window,
    /// The rate rules apply once the window holds this many calls.
    pub minimum_calls: u32,
    /// Trip when this share of the window's calls failed (0.5 = 50%).
    pub failure_rate: f64,
    /// Trip when this share of the window's calls took at least `slow_call_duration`.
    pub slow_call_rate: f64,
    #[serde(with = "super::config::duration")]
    /// A call at least this long is slow (below the retry's per-attempt timeout, so that a late
    /// answer counts).
    pub slow_call_duration: Duration,
    /// Trip after this many failures in a row, window or not (`None`: off).
    pub consecutive_failures: Option<u32>,
    /// Probe calls admitted in half-open; all must succeed to close.
    pub half_open_permits: u32,
    /// Half-open that has not decided within this returns to open.
    #[serde(with = "super::config::duration")]
    pub half_open_deadline: Duration,
    /// Open time after the first trip; each trip without a close in between multiplies it by
    /// `backoff_multiplier`, up to `max_open_duration`; then ± `jitter` (0.2 = ±20%).
    #[serde(with = "super::config::duration")]
    pub open_duration: Duration,
    /// How much longer each successive open period is, while trips follow each other.
    pub backoff_multiplier: f64,
    #[serde(with = "super::config::duration")]
    /// The longest an open period gets.
    pub max_open_duration: Duration,
    /// Open periods vary by ± this share (0.2 = ±20%), so that a fleet's breakers do not reopen in
    /// step.
    pub jitter: f64,
    /// The mode it starts in; [`CircuitBreaker::set_mode`] changes it at run time.
    pub mode: Mode,
    /// Seeds the jitter, so that a test (or a replay) sees the same open times. Unset (the
    /// default), each breaker draws its own, so a fleet's breakers do not reopen in step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for BreakerConfig {
    /// See the module documentation for why.
    fn default() -> Self {
        BreakerConfig {
            window: Window::Count(50),
            minimum_calls: 20,
            failure_rate: 0.5,
            slow_call_rate: 0.8,
            // Below the retry layer's default per-attempt timeout (2 s), so that an upstream
            // answering late but within it still counts as slow.
            slow_call_duration: Duration::from_secs(1),
            consecutive_failures: Some(5),
            half_open_permits: 3,
            half_open_deadline: Duration::from_secs(10),
            open_duration: Duration::from_secs(5),
            backoff_multiplier: 2.0,
            max_open_duration: Duration::from_secs(60),
            jitter: 0.2,
            mode: Mode::Normal,
            seed: None,
        }
    }
}

/// The breaker's state, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls are rejected until the open period ends.
    Open,
    /// A few probe calls go through; their outcomes decide between closed and open.
    HalfOpen,
    /// The breaker is off: every call goes through, nothing is recorded.
    Disabled,
    /// Every call is rejected (the operator's kill switch).
    ForcedOpen,
    /// Watching only: the rules run and transitions are recorded, no call is rejected.
    MetricsOnly,
}

impl State {
    /// The state's name in metrics and reports (`closed`, `half_open`, …).
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced_open",
            State::MetricsOnly => "metrics_only",
        }
    }

    /// The gauge value of `mcp_breaker_state`: 0 closed, 1 open, 2 half-open, 3+ the modes.
    pub fn gauge(self) -> u8 {
        self as u8
    }
}

/// Why a call was not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("circuit open: retry after {retry_after:?}")]
    /// The breaker is open.
    Open {
        /// What remains of the open period.
        retry_after: Duration,
    },
    #[error("circuit half-open and all its probe permits are taken: retry after {retry_after:?}")]
    /// Half-open, and every probe permit is taken.
    HalfOpenFull {
        /// When the probes will have decided, at the latest.
        retry_after: Duration,
    },
    #[error("circuit forced open")]
    /// An operator forced the breaker open.
    ForcedOpen,
}

impl Rejected {
    /// When a retry may be let through (`None`: forced open, nobody knows).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Rejected::Open { retry_after } | Rejected::HalfOpenFull { retry_after } => Some(*retry_after),
            Rejected::ForcedOpen => None,
        }
    }
}

/// How a call ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call worked (or failed in a way that says nothing against the upstream: a 4xx).
    Success,
    /// The call failed because of the upstream: counted against it.
    Failure,
    /// Not the upstream's fault (cancelled by our caller): not counted.
    Ignored,
}

impl Outcome {
    /// The default classification of an HTTP answer: 5xx and 429 are failures; any other
    /// status (a 404 or 400 is the upstream working) is a success.
    pub fn of_status(status: u16) -> Outcome {
        if status >= 500 || status == 429 { Outcome::Failure } else { Outcome::Success }
    }
}

/// A state change, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// When, on the breaker's clock.
    pub at: Instant,
}

/// Counters for metrics (`mcp_breaker_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerStats {
    /// Calls recorded as successes.
    pub successes: u64,
    /// Calls recorded as failures.
    pub failures: u64,
    /// Calls that took at least `slow_call_duration`, whatever their outcome.
    pub slow: u64,
    /// Calls rejected without being made.
    pub rejected: u64,
    /// Calls that ended without an outcome (cancelled, or our own shedding).
    pub ignored: u64,
    /// Every transition so far, counted by (from, to).
    pub transitions: Vec<((State, State), u64)>,
    /// The last [`RECENT_TRANSITIONS`] transitions, oldest first: what a report needs to time a
    /// breaker's reaction to a fault.
    pub recent: std::collections::VecDeque<Transition>,
}

/// Transitions kept in [`BreakerStats::recent`].
pub const RECENT_TRANSITIONS: usize = 32;

#[derive(Debug)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { since: Instant, issued: u32, succeeded: u32 },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Bumped on every transition: a permit from an earlier phase records nothing.
    generation: u64,
    window: Aggregates,
    consecutive: u32,
    /// Trips since the last close: the backoff exponent.
    trips: u32,
    rng: u64,
    stats: BreakerStats,
    events: Vec<Transition>,
}

/// Transitions kept for [`CircuitBreaker::drain_transitions`] when nobody drains them.
const MAX_EVENTS: usize = 64;

/// A circuit breaker, cheap to clone and share.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: BreakerConfig,
    clock: SharedClock,
    inner: Mutex<Inner>,
    /// The generation while closed, [`NOT_CLOSED`] otherwise: a closed breaker admits a call
    /// without taking the lock (the hot path; the lock is taken once, to record).
    closed_generation: AtomicU64,
    /// The [`Mode`] now (it starts as the config's).
    mode: AtomicU8,
}

const NOT_CLOSED: u64 = u64::MAX;

/// Leave to make one call. Record how it ended with [`Permit::record`]; dropped unrecorded, it
/// counts as cancelled (ignored) and, in half-open, frees its probe slot. It borrows the
/// breaker, so taking one costs no reference counting.
#[must_use = "a permit records the call's outcome"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    ticket: Ticket,
}

/// A [`Permit`] that holds its breaker (a clone), for a call that outlives the borrow: a tower
/// service's future, a spawned task. Records and drops as [`Permit`] does.
#[must_use = "a permit records the call's outcome"]
pub struct OwnedPermit {
    breaker: CircuitBreaker,
    ticket: Ticket,
}

/// What a permit knows of its call.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    generation: u64,
    started: Instant,
    probe: bool,
    done: bool,
}

impl CircuitBreaker {
    /// A breaker with `config`, timed by `clock`.
    pub fn new(config: BreakerConfig, clock: SharedClock) -> CircuitBreaker {
        let window = Aggregates::new(config.window, clock.now());
        let rng = config.seed.unwrap_or_else(rand::instance_seed);
        let mode = AtomicU8::new(config.mode as u8);
        let inner = Mutex::new(Inner {
            phase: Phase::Closed,
            generation: 0,
            window,
            consecutive: 0,
            trips: 0,
            rng,
            stats: BreakerStats::default(),
            events: Vec::new(),
        });
        let closed_generation = AtomicU64::new(0);
        CircuitBreaker { shared: Arc::new(Shared { config, clock, inner, closed_generation, mode }) }
    }

    /// The mode now.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.shared.mode.load(Ordering::Acquire))
    }

    /// Switches the mode at run time: `ForcedOpen` is an operator's kill switch, `Disabled`
    /// takes the breaker out of the way, `MetricsOnly` watches without enforcing, `Normal`
    /// enforces again from the state the rules left it in. The switch is a transition (from
    /// the state before to the state after) in the statistics.
    pub fn set_mode(&self, mode: Mode) {
        let before = self.state();
        self.shared.mode.store(mode as u8, Ordering::Release);
        let after = self.state();
        if before != after {
            let now = self.now();
            let mut inner = self.lock();
            self.count_transition(&mut inner, before, after, now);
        }
    }

    /// Back to closed with an empty window and no backoff (an operator saying the upstream is
    /// fine now); the mode stays.
    pub fn reset(&self) {
        let now = self.now();
        let mut inner = self.lock();
        inner.trips = 0;
        self.transition(&mut inner, Phase::Closed, now);
    }

    /// Its rules and timings.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// Now, on the breaker's clock (what [`Transition::at`] is measured on).
    pub fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent counters: keep going.
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`CircuitBreaker::try_acquire`] for a call that outlives this borrow.
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Rejected> {
        self.try_acquire().map(Permit::into_owned)
    }

    /// Leave to call, or why not.
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let now = self.now();
        let permit = |generation, probe| Permit {
            breaker: self,
            ticket: Ticket { generation, started: now, probe, done: false },
        };
        let mode = self.mode();
        match mode {
            Mode::Disabled => {
                let ticket = Ticket { generation: 0, started: now, probe: false, done: true };
                return Ok(Permit { breaker: self, ticket });
            }
            Mode::ForcedOpen => {
                self.lock().stats.rejected += 1;
                return Err(Rejected::ForcedOpen);
            }
            Mode::MetricsOnly | Mode::Normal => {}
        }
        let closed = self.shared.closed_generation.load(Ordering::Acquire);
        if closed != NOT_CLOSED {
            return Ok(permit(closed, false));
        }
        let mut inner = self.lock();
        if let Phase::Open { until } = inner.phase
            && now >= until
        {
            self.transition(&mut inner, Phase::HalfOpen { since: now, issued: 0, succeeded: 0 }, now);
        }
        if let Phase::HalfOpen { since, .. } = inner.phase
            && now.duration_since(since) >= self.config().half_open_deadline
        {
            // The probes never finished: treat it as a failed probe.
            self.trip(&mut inner, now);
        }
        let generation = inner.generation;
        let decided = match &mut inner.phase {
            Phase::Closed => Ok(permit(generation, false)),
            Phase::Open { until } => Err(Rejected::Open { retry_after: until.duration_since(now) }),
            Phase::HalfOpen { since, issued, .. } => {
                if *issued < self.config().half_open_permits {
                    *issued += 1;
                    Ok(permit(generation, true))
                } else {
                    let retry_after = (*since + self.config().half_open_deadline).duration_since(now);
                    Err(Rejected::HalfOpenFull { retry_after })
                }
            }
        };
        match decided {
            // Watching only: the call goes through, and (outside half-open's probes) its outcome
            // does not move the shadow state.
            Err(_) if mode == Mode::MetricsOnly => Ok(permit(NOT_CLOSED, false)),
            Err(rejected) => {
                inner.stats.rejected += 1;
                Err(rejected)
            }
            ok => ok,
        }
    }

    /// The state now (an expired open period reads as half-open).
    pub fn state(&self) -> State {
        match self.mode() {
            Mode::Disabled => return State::Disabled,
            Mode::ForcedOpen => return State::ForcedOpen,
            Mode::MetricsOnly => return State::MetricsOnly,
            Mode::Normal => {}
        }
        match self.lock().phase {
            Phase::Closed => State::Closed,
            Phase::Open { until } if self.now() >= until => State::HalfOpen,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        }
    }

    /// Its counters and transitions so far.
    pub fn stats(&self) -> BreakerStats {
        self.lock().stats.clone()
    }

    /// Transitions since the last call, oldest first.
    pub fn drain_transitions(&self) -> Vec<Transition> {
        std::mem::take(&mut self.lock().events)
    }

    fn record(&self, permit: &Ticket, outcome: Outcome) {
        let mode = self.mode();
        if mode == Mode::Disabled {
            return;
        }
        let now = self.now();
        let slow = now.duration_since(permit.started) >= self.config().slow_call_duration;
        let mut inner = self.lock();
        match outcome {
            Outcome::Success => inner.stats.successes += 1,
            Outcome::Failure => inner.stats.failures += 1,
            Outcome::Ignored => inner.stats.ignored += 1,
        }
        if slow && outcome != Outcome::Ignored {
            inner.stats.slow += 1;
        }
        if permit.generation != inner.generation {
            return; // from a phase that has ended
        }
        match (&mut inner.phase, outcome) {
            (Phase::HalfOpen { issued, .. }, Outcome::Ignored) if permit.probe => *issued -= 1,
            (_, Outcome::Ignored) => {}
            // A slow probe is no sign of recovery: it reopens the breaker like a failed one.
            (Phase::HalfOpen { .. }, Outcome::Failure) => self.trip(&mut inner, now),
            (Phase::HalfOpen { .. }, Outcome::Success) if slow => self.trip(&mut inner, now),
            (Phase::HalfOpen { succeeded, .. }, Outcome::Success) => {
                *succeeded += 1;
                if *succeeded >= self.config().half_open_permits {
                    inner.trips = 0;
                    self.transition(&mut inner, Phase::Closed, now);
                }
            }
            (Phase::Closed, _) => {
                let failed = outcome == Outcome::Failure;
                inner.window.record(now, failed, slow);
                inner.consecutive = if failed { inner.consecutive + 1 } else { 0 };
                // A fast success only lowers the rates: it can trip only by bringing a count
                // window to its minimum (a time window's count moves as slices expire: always
                // check it).
                let may_trip = failed
                    || slow
                    || match &inner.window {
                        Aggregates::Count { len, .. } => *len as u64 == u64::from(self.config().minimum_calls),
                        Aggregates::Time { .. } => true,
                    };
                // Metrics-only runs the rules too: its transitions are what it would have done.
                if may_trip && self.should_trip(&mut inner, now) {
                    self.trip(&mut inner, now);
                }
            }
            (Phase::Open { .. }, _) => {}
        }
    }

    fn should_trip(&self, inner: &mut Inner, now: Instant) -> bool {
        let c = self.config();
        if c.consecutive_failures.is_some_and(|k| inner.consecutive >= k) {
            return true;
        }
        let (calls, failures, slow) = inner.window.totals(now);
        if calls < u64::from(c.minimum_calls) || calls == 0 {
            return false;
        }
        let calls = calls as f64;
        failures as f64 >= c.failure_rate * calls || slow as f64 >= c.slow_call_rate * calls
    }

    fn trip(&self, inner: &mut Inner, now: Instant) {
        let c = self.config();
        let base = c.open_duration.as_secs_f64() * c.backoff_multiplier.powi(inner.trips as i32);
        let capped = base.min(c.max_open_duration.as_secs_f64());
        inner.rng = inner.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let unit = rand::unit(inner.rng);
        let factor = 1.0 + c.jitter * (2.0 * unit - 1.0);
        inner.trips += 1;
        let until = now + Duration::from_secs_f64(capped * factor);
        self.transition(inner, Phase::Open { until }, now);
    }

    fn transition(&self, inner: &mut Inner, to: Phase, now: Instant) {
        let name = |p: &Phase| match p {
            Phase::Closed => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
        };
        let (from, to_state) = (name(&inner.phase), name(&to));
        if matches!(to, Phase::Closed) {
            inner.window = Aggregates::new(self.config().window, now);
            inner.consecutive = 0;
        }
        inner.phase = to;
        inner.generation += 1;
        let closed = if matches!(inner.phase, Phase::Closed) { inner.generation } else { NOT_CLOSED };
        self.shared.closed_generation.store(closed, Ordering::Release);
        // In metrics-only mode these are the transitions it would have made.
        self.count_transition(inner, from, to_state, now);
    }

    /// Counts a transition and keeps it among the recent ones.
    fn count_transition(&self, inner: &mut Inner, from: State, to_state: State, now: Instant) {
        match inner.stats.transitions.iter_mut().find(|(k, _)| *k == (from, to_state)) {
            Some((_, n)) => *n += 1,
            None => inner.stats.transitions.push(((from, to_state), 1)),
        }
        if inner.events.len() == MAX_EVENTS {
            inner.events.remove(0); // nobody is draining: keep the newest
        }
        let transition = Transition { from, to: to_state, at: now };
        inner.events.push(transition);
        if inner.stats.recent.len() == RECENT_TRANSITIONS {
            inner.stats.recent.pop_front();
        }
        inner.stats.recent.push_back(transition);
    }
}

impl Permit<'_> {
    /// Records how the call ended; its duration (from acquiring) decides whether it was slow.
    pub fn record(mut self, outcome: Outcome) {
        self.ticket.done = true;
        self.breaker.record(&self.ticket, outcome);
    }

    /// The same permit, holding a clone of its breaker instead of a borrow.
    pub fn into_owned(mut self) -> OwnedPermit {
        let ticket = self.ticket;
        self.ticket.done = true; // this one is now the owned permit's to record
        OwnedPermit { breaker: self.breaker.clone(), ticket }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.ticket.done {
            self.ticket.done = true;
            self.breaker.record(&self.ticket, Outcome::Ignored);
        }
    }
}

impl OwnedPermit {
    /// Records how the call ended, as [`Permit::record`].
    pub fn record(mut self, outcome: Outcome) {
        self.ticket.done = true;
        self.breaker.record(&self.ticket, outcome);
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if !self.ticket.done {
            self.ticket.done = true;
            self.breaker.record(&self.ticket, Outcome::Ignored);
        }
    }
}

/// The window's running totals: calls, failures, slow calls, each kept up to date in O(1).
#[derive(Debug)]
enum Aggregates {
    Count {
        ring: Vec<u8>,
        next: usize,
        len: usize,
        failures: u64,
        slow: u64,
    },
    Time {
        origin: Instant,
        slice: Duration,
        slots: Vec<Slot>,
        calls: u64,
        failures: u64,
        slow: u64,
        /// The slice of the last expiry scan: slots only leave the window when the slice
        /// changes, so within one slice the totals need no scan.
        scanned: u64,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Which slice of time (since `origin`) the counts are for.
    epoch: u64,
    calls: u64,
    failures: u64,
    slow: u64,
}

const FAILED: u8 = 1;
const SLOW: u8 = 2;

impl Aggregates {
    fn new(window: Window, now: Instant) -> Aggregates {
        match window {
            Window::Count(n) => {
                Aggregates::Count { ring: vec![0; n.max(1) as usize], next: 0, len: 0, failures: 0, slow: 0 }
            }
            Window::Time { length, buckets } => {
                let buckets = buckets.max(1);
                Aggregates::Time {
                    origin: now,
                    slice: (length / buckets).max(Duration::from_millis(1)),
                    slots: vec![Slot::default(); buckets as usize],
                    calls: 0,
                    failures: 0,
                    slow: 0,
                    scanned: 0,
                }
            }
        }
    }

    fn record(&mut self, now: Instant, failed: bool, is_slow: bool) {
        match self {
            Aggregates::Count { ring, next, len, failures, slow } => {
                if *len == ring.len() {
                    let old = ring[*next];
                    *failures -= u64::from(old & FAILED != 0);
                    *slow -= u64::from(old & SLOW != 0);
                } else {
                    *len += 1;
                }
                ring[*next] = if failed { FAILED } else { 0 } | if is_slow { SLOW } else { 0 };
                *failures += u64::from(failed);
                *slow += u64::from(is_slow);
                *next += 1;
                if *next == ring.len() {
                    *next = 0;
                }
            }
            Aggregates::Time { .. } => {
                let slot = self.current(now);
                slot.calls += 1;
                slot.failures += u64::from(failed);
                slot.slow += u64::from(is_slow);
                if let Aggregates::Time { calls, failures, slow, .. } = self {
                    *calls += 1;
                    *failures += u64::from(failed);
                    *slow += u64::from(is_slow);
                }
            }
        }
    }

    /// The slot for `now`, its stale contents (from a slice that left the window) taken out of
    /// the totals first.
    fn current(&mut self, now: Instant) -> &mut Slot {
        let Aggregates::Time { origin, slice, slots, calls, failures, slow, .. } = self else {
            unreachable!("count windows have no slots")
        };
        let epoch = epoch_of(now.duration_since(*origin), *slice);
        let n = slots.len() as u64;
        let slot = &mut slots[(epoch % n) as usize];
        if slot.epoch != epoch {
            *calls -= slot.calls;
            *failures -= slot.failures;
            *slow -= slot.slow;
            *slot = Slot { epoch, ..Slot::default() };
        }
        slot
    }

    fn totals(&mut self, now: Instant) -> (u64, u64, u64) {
        match self {
            Aggregates::Count { len, failures, slow, .. } => (*len as u64, *failures, *slow),
            Aggregates::Time { origin, slice, slots, calls, failures, slow, scanned } => {
                // Expire every slot older than the window (once per slice).
                let epoch = epoch_of(now.duration_since(*origin), *slice);
                if epoch != *scanned {
                    *scanned = epoch;
                    let n = slots.len() as u64;
                    for s in slots.iter_mut() {
                        if s.calls > 0 && s.epoch + n <= epoch {
                            *calls -= s.calls;
                            *failures -= s.failures;
                            *slow -= s.slow;
                            *s = Slot::default();
                        }
                    }
                }
                (*calls, *failures, *slow)
            }
        }
    }
}

/// Which slice `since` falls in. In u64 nanoseconds (584 years of them): a u128 division
/// would cost a third of a breaker call.
fn epoch_of(since: Duration, slice: Duration) -> u64 {
    since.as_nanos() as u64 / (slice.as_nanos() as u64).max(1)
}

#[cfg(test)]
mod tests;
