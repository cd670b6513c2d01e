//! When the load's next call may start: the three load models as a pure schedule read against
//! a clock, with no queue behind any of them.
//!
//! - closed (`constant-vus`): a call starts whenever fewer calls are in flight than the profile
//!   has virtual users at that moment; its intended time is its actual start;
//! - open (`constant-arrival-rate`): call `n` is due when the integral of the rate reaches `n`
//!   (wrk2's schedule), at most `max_in_flight` outstanding. The backlog at any moment is
//!   "calls due by now" minus "calls started": a number, never a queue, so memory stays flat at
//!   any rate and any run length. A call that leaves late keeps its intended time, and its
//!   latency runs from there (coordinated-omission correction); calls still due when the window
//!   closes are never sent and are counted as dropped;
//! - iterations: a fixed number of calls, `concurrency` in flight.
//!
//! A shard (`run --shard K/N`) runs its share of the same schedule: the open model's sends
//! numbered `K−1`, `K−1+N`, `K−1+2N`… of the planned sequence, at their planned times, so that
//! the shards' sends together are exactly the planned ones; the closed model's users, the
//! iterations and the in-flight limits split as evenly as whole numbers allow (their parts add
//! up to the planned figure).

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Profile, Shard};

/// How often a ramping closed model that has all its current users busy looks whether the
/// profile allows another.
const RAMP_POLL: Duration = Duration::from_millis(10);

/// The load's timeline: calls intended before `measure_start` are warm-up.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub measure_start: Instant,
    pub end: Instant,
}

impl Window {
    #[cfg(test)]
    pub fn new(warmup: Duration, duration: Duration) -> Window {
        Window::starting(Instant::now(), warmup, duration)
    }

    /// A window whose warm-up begins at `start` (which may be later than now).
    pub fn starting(start: Instant, warmup: Duration, duration: Duration) -> Window {
        Window { start, measure_start: start + warmup, end: start + warmup + duration }
    }
}

/// A load model with its levels over the whole window, warm-up included.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Virtual users over time.
    Closed { vus: Profile },
    /// Calls per second over time, and the most outstanding at once.
    Open { rate: Profile, max_in_flight: u32 },
    /// `total` calls, `concurrency` in flight. All of them are measured.
    Iterations { total: u64, concurrency: u32 },
}

/// A call the schedule lets start now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Start {
    /// The call's number in the mix's sequence.
    pub n: u64,
    /// When it should have left: latency and its timeout run from here.
    pub intended: Instant,
    /// Inside the measured window (not warm-up).
    pub measure: bool,
}

/// The schedule's position: how many calls have started.
#[derive(Debug)]
pub struct Pacer {
    model: Model,
    window: Window,
    started: u64,
    /// A closed model's users when the profile is flat (no need to read it per call).
    flat_users: Option<usize>,
    shard: Option<Shard>,
}

impl Pacer {
    pub fn new(model: Model, window: Window) -> Pacer {
        let mut pacer = Pacer { model, window, started: 0, flat_users: None, shard: None };
        pacer.flat_users = pacer.flat_users();
        pacer
    }

    /// The same schedule's share for `shard` (none: the whole).
    pub fn sharded(mut self, shard: Option<Shard>) -> Pacer {
        let Some(shard) = shard else { return self };
        let part = |n: u32| shard.share(u64::from(n)).max(1) as u32;
        match &mut self.model {
            Model::Open { max_in_flight, .. } => *max_in_flight = part(*max_in_flight),
            Model::Iterations { total, concurrency } => {
                *total = shard.share(*total);
                *concurrency = part(*concurrency);
            }
            Model::Closed { .. } => {}
        }
        self.shard = Some(shard);
        self.flat_users = self.flat_users();
        self
    }

    fn flat_users(&self) -> Option<usize> {
        match &self.model {
            Model::Closed { vus } if vus.stages.iter().all(|(_, level)| *level == vus.start) => {
                Some(self.users(vus.start))
            }
            _ => None,
        }
    }

    /// A closed model's users at `level` (this shard's part of them).
    fn users(&self, level: f64) -> usize {
        let whole = level.round().max(0.0) as u64;
        self.shard.map_or(whole, |s| s.share(whole)) as usize
    }

    /// The position in the planned sequence of this shard's `m`-th open-model send.
    fn planned_number(&self, m: u64) -> u64 {
        self.shard.map_or(m, |s| m * u64::from(s.count) + s.position())
    }

    /// How many of this shard's sends come before the planned sequence's `n`-th.
    fn sends_before(&self, n: u64) -> u64 {
        match self.shard {
            None => n,
            Some(s) if n > s.position() => (n - s.position()).div_ceil(u64::from(s.count)),
            Some(_) => 0,
        }
    }

    /// The next call that may start at `now` with `in_flight` outstanding, if any. Call again
    /// until it says `None` to start every call that is due.
    pub fn next(&mut self, now: Instant, in_flight: usize) -> Option<Start> {
        let w = self.window;
        let start = match &self.model {
            Model::Closed { vus } => {
                let users =
                    self.flat_users.unwrap_or_else(|| self.users(vus.at(now.saturating_duration_since(w.start))));
                (now < w.end && in_flight < users).then_some(Start {
                    n: self.started,
                    intended: now,
                    measure: now >= w.measure_start,
                })
            }
            Model::Open { max_in_flight, .. } => {
                let intended = self.intended(self.started)?;
                // What is still due when the window closes is dropped, never sent late.
                (intended <= now && now < w.end && in_flight < *max_in_flight as usize).then_some(Start {
                    n: self.started,
                    intended,
                    measure: intended >= w.measure_start,
                })
            }
            // Iterations have no warm-up: every one is measured.
            Model::Iterations { total, concurrency } => (self.started < *total && in_flight < *concurrency as usize)
                .then_some(Start { n: self.started, intended: now, measure: true }),
        };
        if start.is_some() {
            self.started += 1;
        }
        start
    }

    /// Open model: when this shard's call `n` is due, if before the window's end.
    fn intended(&self, n: u64) -> Option<Instant> {
        let Model::Open { rate, .. } = &self.model else { return None };
        // From the start each time, so that rounding never accumulates into drift.
        let at = self.window.start + rate.time_of(self.planned_number(n) as f64)?;
        (at < self.window.end).then_some(at)
    }

    /// When to look again if no call completes first: the next intended send (open model,
    /// while a slot is free), a ramping closed model's next chance to add a user, and the
    /// window's end. `None`: only a completion can change anything.
    pub fn wake(&self, now: Instant, in_flight: usize) -> Option<Instant> {
        let end = self.window.end;
        match &self.model {
            Model::Iterations { .. } => None,
            _ if now >= end => None,
            Model::Open { max_in_flight, .. } => {
                let next = self.intended(self.started).filter(|_| in_flight < *max_in_flight as usize);
                Some(next.map_or(end, |t| t.min(end)))
            }
            Model::Closed { vus } => {
                let ramping = vus.stages.iter().any(|(_, level)| *level != vus.start);
                Some(if ramping && in_flight < self.users(vus.max()) { (now + RAMP_POLL).min(end) } else { end })
            }
        }
    }

    /// Calls leave on a clock (the open model), not only when others complete.
    pub fn is_open(&self) -> bool {
        matches!(self.model, Model::Open { .. })
    }

    /// No further call will start: the window has closed, or the iterations are used up.
    pub fn exhausted(&self, now: Instant) -> bool {
        match &self.model {
            Model::Iterations { total, .. } => self.started >= *total,
            _ => now >= self.window.end,
        }
    }

    /// Open model: the measured calls that were due before the window's end but never started.
    pub fn dropped(&self) -> u64 {
        let Model::Open { rate, .. } = &self.model else { return 0 };
        // Call n is due inside the profile exactly when n < its integral.
        let due = self.sends_before(rate.total().ceil() as u64);
        let warmup = self.window.measure_start - self.window.start;
        let first_measured = self.sends_before(rate.integral_to(warmup).ceil() as u64);
        due.saturating_sub(self.started.max(first_measured))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn the_open_models_backlog_is_a_count_not_a_queue() {
        // 1,000,000/s for 2 s with 4 slots, none of which ever frees: the schedule stays O(1).
        let w = Window::new(Duration::ZERO, Duration::from_secs(2));
        let mut p = Pacer::new(Model::Open { rate: Profile::constant(1e6, ms(2000)), max_in_flight: 4 }, w);
        let now = w.start + ms(1000);
        let started: Vec<Start> = std::iter::from_fn(|| p.next(now, 0)).take(10).collect();
        // Everything due is eligible, each with its own intended time, 1 µs apart.
        assert_eq!(started.len(), 10);
        assert_eq!(started[3].intended - started[2].intended, Duration::from_micros(1));
        assert!(p.next(now, 4).is_none(), "four in flight: no fifth");
        // At the end, every call due and never started is dropped: 2,000,000 − 10.
        assert_eq!(p.dropped(), 2_000_000 - 10);
    }

    #[tokio::test(start_paused = true)]
    async fn open_sends_wait_for_their_time_and_warmup_is_not_measured() {
        let w = Window::new(ms(500), ms(1000));
        let rate = Profile::constant(10.0, ms(1500));
        let mut p = Pacer::new(Model::Open { rate, max_in_flight: 8 }, w);
        let first = p.next(w.start, 0).unwrap();
        assert_eq!((first.n, first.intended, first.measure), (0, w.start, false));
        assert!(p.next(w.start, 1).is_none(), "the next is due 100 ms later");
        assert_eq!(p.wake(w.start, 1), Some(w.start + ms(100)));
        // Calls 5.. are inside the window; by 1 s, calls 1..=10 are due.
        let due: Vec<Start> = std::iter::from_fn(|| p.next(w.start + ms(1000), 0)).collect();
        assert_eq!(due.len(), 10);
        assert!(!due[3].measure && due[4].measure, "call 5 is intended at 500 ms, the window's start");
        // Of the 15 calls in the profile, 11 have started; the 4 left are all measured.
        assert_eq!(p.dropped(), 4);
        assert_eq!(p.wake(w.start + ms(1450), 8), Some(w.end), "no slot free: only the end");
        assert!(!p.exhausted(w.start + ms(1499)) && p.exhausted(w.end));
    }

    #[tokio::test(start_paused = true)]
    async fn closed_users_follow_the_profile() {
        let w = Window::new(Duration::ZERO, ms(1000));
        let vus = Profile { start: 1.0, stages: vec![(ms(1000), 3.0)] };
        let mut p = Pacer::new(Model::Closed { vus }, w);
        assert!(p.next(w.start, 0).is_some() && p.next(w.start, 1).is_none());
        assert_eq!(p.wake(w.start, 1), Some(w.start + RAMP_POLL), "a ramp looks again soon");
        assert!(p.next(w.start + ms(999), 2).is_some(), "3 users near the end");
        assert!(p.next(w.end, 0).is_none() && p.exhausted(w.end));
        let constant = Pacer::new(Model::Closed { vus: Profile::constant(2.0, ms(1000)) }, w);
        assert_eq!(constant.wake(w.start, 2), Some(w.end), "a flat profile only waits for the end");
    }

    /// Every start a pacer makes by `until`, stepping the clock by 1 ms with nothing in flight.
    fn starts(mut p: Pacer, w: Window, until: Duration) -> Vec<Start> {
        let mut out = Vec::new();
        let mut t = w.start;
        while t <= w.start + until {
            out.extend(std::iter::from_fn(|| p.next(t, 0)));
            t += ms(1);
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn open_model_shards_send_exactly_the_planned_sends_between_them() {
        // A ramp 300 → 900/s over 1 s after 200 ms of warm-up at 300/s: uneven gaps to split.
        let w = Window::new(ms(200), ms(1000));
        let rate = Profile { start: 300.0, stages: vec![(ms(1000), 900.0)] }.with_warmup(ms(200));
        let model = Model::Open { rate, max_in_flight: 10 };
        let shard = |k| Some(Shard::new(k, 3).unwrap());
        let whole = starts(Pacer::new(model.clone(), w), w, ms(1200));
        let mut union: Vec<(Instant, bool)> = Vec::new();
        for k in 1..=3 {
            let sends = starts(Pacer::new(model.clone(), w).sharded(shard(k)), w, ms(1200));
            assert!(sends.windows(2).all(|p| p[1].n == p[0].n + 1), "each shard numbers its own sends");
            union.extend(sends.iter().map(|s| (s.intended, s.measure)));
        }
        union.sort();
        let planned: Vec<(Instant, bool)> = whole.iter().map(|s| (s.intended, s.measure)).collect();
        assert_eq!(union, planned, "the shards' sends are the planned sends, no more, no fewer");

        // What the shards leave unsent adds up to what the whole would: nothing started, or
        // what was due by 700 ms.
        for until in [None, Some(ms(700))] {
            let dropped = |mut p: Pacer| {
                if let Some(t) = until {
                    std::iter::from_fn(|| p.next(w.start + t, 0)).for_each(drop);
                }
                p.dropped()
            };
            let parts: u64 = (1..=3).map(|k| dropped(Pacer::new(model.clone(), w).sharded(shard(k)))).sum();
            assert_eq!(parts, dropped(Pacer::new(model.clone(), w)), "{until:?}");
        }
        // Ten slots in flight over three shards: 4, 3, 3.
        let mut p = Pacer::new(model, w).sharded(shard(2));
        let late = w.start + ms(1000);
        assert!(p.next(late, 2).is_some() && p.next(late, 3).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn closed_users_and_iterations_split_into_parts_that_add_up() {
        let w = Window::new(Duration::ZERO, ms(1000));
        let shard = |k| Some(Shard::new(k, 3).unwrap());
        let users_of = |k: u32, vus: &Profile, at: u64| {
            let mut p = Pacer::new(Model::Closed { vus: vus.clone() }, w).sharded(shard(k));
            (0..100).take_while(|&in_flight| p.next(w.start + ms(at), in_flight).is_some()).count()
        };
        let parts = |vus: &Profile, at: u64| (1..=3).map(|k| users_of(k, vus, at)).collect::<Vec<_>>();
        assert_eq!(parts(&Profile::constant(7.0, ms(1000)), 0), vec![3, 2, 2]);
        // A ramp 1 → 10 users: 1 at the start, 5.5 (so 6) at 500 ms.
        let ramp = Profile { start: 1.0, stages: vec![(ms(1000), 10.0)] };
        assert_eq!(parts(&ramp, 0), vec![1, 0, 0]);
        assert_eq!(parts(&ramp, 500), vec![2, 2, 2]);
        // 10 iterations, 2 in flight: 4, 3, 3 iterations; one in flight each (at least one).
        for (k, want) in [(1, 4), (2, 3), (3, 3)] {
            let mut p = Pacer::new(Model::Iterations { total: 10, concurrency: 2 }, w).sharded(shard(k));
            assert!(p.next(w.start, 0).is_some() && p.next(w.start, 1).is_none());
            assert_eq!(1 + std::iter::from_fn(|| p.next(w.start, 0)).count(), want);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn iterations_stop_at_their_count() {
        let w = Window::new(Duration::ZERO, Duration::ZERO);
        let mut p = Pacer::new(Model::Iterations { total: 3, concurrency: 2 }, w);
        let now = w.start + ms(5);
        assert!(p.next(now, 0).is_some() && p.next(now, 1).is_some() && p.next(now, 2).is_none());
        assert!(p.next(now, 0).is_some_and(|s| s.measure) && p.next(now, 0).is_none());
        assert!(p.exhausted(now) && p.wake(now, 0).is_none());
    }
}
