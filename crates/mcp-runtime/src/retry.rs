//! Retries with exponential backoff and jitter, per-attempt and overall timeouts, under a retry
//! budget: retries may add at most a share of the recent requests (with a floor for quiet
//! times), so that an upstream failing every call sees a bounded multiple of the traffic, not
//! three times it. Calls that are not idempotent are not retried unless marked safe.
//!
//! Defaults: 3 attempts, 50 ms doubling to at most 1 s with "equal jitter" (half the delay
//! fixed, half random: spread, never zero), 2 s per attempt, 5 s overall, a budget of 20% of the
//! last 10 s of requests with a floor of 10 retries (Envoy's and Finagle's shape).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::clock::{self, SharedClock};
use super::rand;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
/// A retry policy: attempts, backoff, timeouts and the budget that bounds retries fleet-wide
/// load (Finagle's retry budget).
pub struct RetryConfig {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    #[serde(with = "super::config::duration")]
    /// The wait before the first retry (before jitter).
    pub base_delay: Duration,
    /// Each further wait is the previous one times this.
    pub multiplier: f64,
    #[serde(with = "super::config::duration")]
    /// The longest wait between attempts.
    pub max_delay: Duration,
    #[serde(with = "super::config::duration")]
    /// The time one attempt is given.
    pub per_attempt_timeout: Duration,
    #[serde(with = "super::config::duration")]
    /// The time all attempts together are given.
    pub overall_timeout: Duration,
    /// Retries allowed per request in the budget window (0.2 = 20%).
    pub budget_ratio: f64,
    /// Retries always allowed in the window, however quiet.
    pub budget_floor: u32,
    #[serde(with = "super::config::duration")]
    /// The window over which requests and retries are counted for the budget.
    pub budget_window: Duration,
    /// Seeds the delays' jitter; unset (the default), each instance draws its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            multiplier: 2.0,
            max_delay: Duration::from_secs(1),
            per_attempt_timeout: Duration::from_secs(2),
            overall_timeout: Duration::from_secs(5),
            budget_ratio: 0.2,
            budget_floor: 10,
            budget_window: Duration::from_secs(10),
            seed: None,
        }
    }
}

/// Whether a call may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads and other calls with no effect beyond the first: retried.
    Idempotent,
    /// Not retried: a second attempt could repeat an effect.
    NotIdempotent,
    /// Not idempotent, but the caller vouches that repeating it is safe (a request id, say).
    MarkedSafe,
}

/// What the retry loop needs to know of an error.
pub trait Retryable {
    /// A transient failure (5xx, 429, a reset connection): worth another attempt.
    fn is_retryable(&self) -> bool;
    /// How long the upstream asked to be left alone (its `Retry-After`): the next attempt waits
    /// at least this long, and none is made if that would pass the overall deadline.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// One attempt of [`Retry::run`]: its number (from 1) and when it must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The attempt's number, from 1.
    pub n: u32,
    /// The end of the per-attempt timeout (or of the overall one, if sooner), on the retry's
    /// clock.
    pub deadline: tokio::time::Instant,
}

/// How long after its deadline an attempt that does not end itself is cut off: one tick of
/// tokio's timer, so that an attempt timing itself out at its deadline always wins.
const BACKSTOP: Duration = Duration::from_millis(1);

/// Why the call failed in the end.
#[derive(Debug, thiserror::Error)]
pub enum RetryError<E> {
    /// The last attempt's error, after `attempts` attempts.
    #[error("failed after {attempts} attempt(s): {last}")]
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
    /// An attempt took longer than `per_attempt_timeout` and no retry followed.
    #[error("timed out after {attempts} attempt(s)")]
    TimedOut {
        /// Attempts made.
        attempts: u32,
    },
    /// The budget had no retry left; the error of the attempt made.
    #[error("retry budget exhausted after {attempts} attempt(s): {last}")]
    BudgetExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
}

/// Counters for `mcp_retries_total{upstream,outcome}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryStats {
    /// Calls run.
    pub requests: u64,
    /// Retries made (attempts after the first).
    pub retries: u64,
    /// Calls that succeeded after at least one retry.
    pub succeeded_after_retry: u64,
    /// Calls that failed with retries still wanted (attempts or time ran out).
    pub exhausted: u64,
    /// Retries the budget refused.
    pub budget_rejected: u64,
}

/// A retry policy with its budget, for one upstream.
#[derive(Debug)]
pub struct Retry {
    config: RetryConfig,
    clock: SharedClock,
    budget: Mutex<Budget>,
    rng: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    succeeded_after_retry: AtomicU64,
    exhausted: AtomicU64,
    budget_rejected: AtomicU64,
}

/// Requests and retries per slice of the window (ten slices).
#[derive(Debug)]
struct Budget {
    origin: Instant,
    slice: Duration,
    slots: [(u64, u64, u64); 10], // (epoch, requests, retries)
}

impl Budget {
    fn slot(&mut self, now: Instant) -> &mut (u64, u64, u64) {
        let epoch = (now.duration_since(self.origin).as_nanos() / self.slice.as_nanos().max(1)) as u64;
        let slot = &mut self.slots[(epoch % 10) as usize];
        if slot.0 != epoch {
            *slot = (epoch, 0, 0);
        }
        slot
    }

    fn totals(&self, now: Instant) -> (u64, u64) {
        let epoch = (now.duration_since(self.origin).as_nanos() / self.slice.as_nanos().max(1)) as u64;
        self.slots.iter().filter(|s| s.0 <= epoch && epoch - s.0 < 10).fold((0, 0), |(q, r), s| (q + s.1, r + s.2))
    }
}

impl Retry {
    /// A policy with `config`, timed (delays, deadlines, budget) by `clock`.
    pub fn new(config: RetryConfig, clock: SharedClock) -> Retry {
        let now = clock.now();
        let slice = config.budget_window / 10;
        let rng = AtomicU64::new(config.seed.unwrap_or_else(rand::instance_seed));
        Retry {
            budget: Mutex::new(Budget { origin: now, slice, slots: [(u64::MAX, 0, 0); 10] }),
            config,
            clock,
            rng,
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            succeeded_after_retry: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
            budget_rejected: AtomicU64::new(0),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Runs `attempt` (numbered from 1) until it succeeds, fails for good, or time or budget
    /// runs out. Each attempt is given its deadline ([`Attempt::deadline`]) and is cut off one
    /// timer tick after it: an attempt that ends itself at its deadline (and tells a circuit
    /// breaker it timed out, as `Upstream` does) is never cancelled unrecorded.
    pub async fn run<T, E, F, Fut>(&self, idempotency: Idempotency, mut attempt: F) -> Result<T, RetryError<E>>
    where
        E: Retryable,
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.with_budget(|b, now| b.slot(now).1 += 1);
        let clock = &*self.clock;
        let deadline = clock.now() + self.config.overall_timeout;
        let may_retry = idempotency != Idempotency::NotIdempotent;
        let mut n = 1;
        loop {
            let attempt_deadline = (clock.now() + self.config.per_attempt_timeout).min(deadline);
            let outcome = clock::timeout_at(
                clock,
                attempt_deadline + BACKSTOP,
                attempt(Attempt { n, deadline: attempt_deadline }),
            )
            .await;
            let retryable = match &outcome {
                Ok(Ok(_)) => false,
                Ok(Err(e)) => e.is_retryable(),
                Err(_) => true, // a timed-out attempt is worth another
            };
            if let Ok(Ok(value)) = outcome {
                if n > 1 {
                    self.succeeded_after_retry.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(value);
            }
            let give_up = |outcome: Result<Result<T, E>, _>| match outcome {
                Ok(Err(last)) => RetryError::Failed { attempts: n, last },
                _ => RetryError::TimedOut { attempts: n },
            };
            let asked = match &outcome {
                Ok(Err(e)) => e.retry_after(),
                _ => None,
            };
            let delay = self.delay(n).max(asked.unwrap_or_default());
            if !retryable || !may_retry || n >= self.config.max_attempts {
                if retryable && may_retry {
                    self.exhausted.fetch_add(1, Ordering::Relaxed);
                }
                return Err(give_up(outcome));
            }
            if clock.now() + delay >= deadline {
                self.exhausted.fetch_add(1, Ordering::Relaxed);
                return Err(give_up(outcome));
            }
            if !self.take_retry() {
                self.budget_rejected.fetch_add(1, Ordering::Relaxed);
                return Err(match outcome {
                    Ok(Err(last)) => RetryError::BudgetExhausted { attempts: n, last },
                    _ => RetryError::TimedOut { attempts: n },
                });
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            clock.sleep_until(clock.now() + delay).await;
            n += 1;
        }
    }

    /// The wait before attempt `n + 1`: base × multiplierⁿ⁻¹, capped, with equal jitter
    /// (half fixed, half uniform), so it lies in [d/2, d].
    pub fn delay(&self, n: u32) -> Duration {
        let c = &self.config;
        let d = (c.base_delay.as_secs_f64() * c.multiplier.powi(n as i32 - 1)).min(c.max_delay.as_secs_f64());
        let r = self.rng.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed).wrapping_add(0x9e37_79b9_7f4a_7c15);
        let unit = rand::unit(r);
        Duration::from_secs_f64(d / 2.0 + unit * d / 2.0)
    }

    fn with_budget<R>(&self, f: impl FnOnce(&mut Budget, Instant) -> R) -> R {
        let now = self.clock.now();
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut b, now)
    }

    /// Takes one retry from the budget, if it has one.
    fn take_retry(&self) -> bool {
        let (ratio, floor) = (self.config.budget_ratio, u64::from(self.config.budget_floor));
        self.with_budget(|b, now| {
            let (requests, retries) = b.totals(now);
            let allowed = floor.max((ratio * requests as f64) as u64);
            if retries < allowed {
                b.slot(now).2 += 1;
                true
            } else {
                false
            }
        })
    }

    /// Its counters so far.
    pub fn stats(&self) -> RetryStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RetryStats {
            requests: get(&self.requests),
            retries: get(&self.retries),
            succeeded_after_retry: get(&self.succeeded_after_retry),
            exhausted: get(&self.exhausted),
            budget_rejected: get(&self.budget_rejected),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::clock::tokio_clock;

    #[derive(Debug, PartialEq)]
    struct Status(u16);

    impl Retryable for Status {
        fn is_retryable(&self) -> bool {
            self.0 >= 500 || self.0 == 429
        }
    }

    fn retry(config: RetryConfig) -> Retry {
        Retry::new(config, tokio_clock())
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_growing_jittered_delays() {
        let r = retry(RetryConfig { max_attempts: 4, ..RetryConfig::default() });
        let times = Mutex::new(Vec::new());
        let result = r
            .run(Idempotency::Idempotent, |a| {
                times.lock().unwrap().push(tokio::time::Instant::now());
                async move { if a.n < 4 { Err(Status(503)) } else { Ok("ok") } }
            })
            .await;
        assert_eq!(result.unwrap(), "ok");
        let t = times.into_inner().unwrap();
        for (i, pair) in t.windows(2).enumerate() {
            let waited = pair[1] - pair[0];
            let full = Duration::from_millis(50 * (1 << i));
            assert!(waited >= full / 2 && waited <= full, "wait {i}: {waited:?}, delay {full:?}");
        }
        assert_eq!((r.stats().retries, r.stats().succeeded_after_retry), (3, 1));
    }

    /// A 503 that says when to come back.
    #[derive(Debug)]
    struct Busy(Duration);

    impl Retryable for Busy {
        fn is_retryable(&self) -> bool {
            true
        }
        fn retry_after(&self) -> Option<Duration> {
            Some(self.0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_upstreams_retry_after_is_waited_out_or_ends_the_retrying() {
        let r =
            retry(RetryConfig { max_attempts: 3, overall_timeout: Duration::from_secs(5), ..RetryConfig::default() });
        let times = Mutex::new(Vec::new());
        let result = r
            .run(Idempotency::Idempotent, |a| {
                times.lock().unwrap().push(tokio::time::Instant::now());
                async move { if a.n < 2 { Err(Busy(Duration::from_millis(700))) } else { Ok(()) } }
            })
            .await;
        assert!(result.is_ok());
        let t = times.into_inner().unwrap();
        assert!(t[1] - t[0] >= Duration::from_millis(700), "waited {:?}, not the 50 ms backoff", t[1] - t[0]);
        // Asked to wait past the overall deadline: no attempt that could not finish in time.
        let started = tokio::time::Instant::now();
        let err = r
            .run(Idempotency::Idempotent, |_| async { Err::<(), _>(Busy(Duration::from_secs(30))) })
            .await
            .unwrap_err();
        assert!(matches!(err, RetryError::Failed { attempts: 1, .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_millis(10));
    }

    #[test]
    fn the_delay_stays_within_its_jitter_and_cap() {
        let r = retry(RetryConfig::default());
        for n in 1..12 {
            let d = (0.05 * 2f64.powi(n as i32 - 1)).min(1.0);
            for _ in 0..200 {
                let s = r.delay(n).as_secs_f64();
                assert!(s >= d / 2.0 - 1e-12 && s <= d + 1e-12, "attempt {n}: {s}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_and_unmarked_non_idempotent_calls_are_not_retried() {
        let r = retry(RetryConfig::default());
        let calls = AtomicU32::new(0);
        let err = r
            .run(Idempotency::Idempotent, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(Status(404)) }
            })
            .await
            .unwrap_err();
        assert!(matches!(err, RetryError::Failed { attempts: 1, last: Status(404) }));
        let err = r
            .run(Idempotency::NotIdempotent, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(Status(503)) }
            })
            .await
            .unwrap_err();
        assert!(matches!(err, RetryError::Failed { attempts: 1, .. }));
        let marked =
            r.run(Idempotency::MarkedSafe, |a| async move { if a.n < 2 { Err(Status(503)) } else { Ok(()) } }).await;
        assert!(marked.is_ok(), "marked safe: retried");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_attempts_time_out_and_the_overall_deadline_stops_the_loop() {
        let r = retry(RetryConfig {
            max_attempts: 10,
            per_attempt_timeout: Duration::from_secs(2),
            overall_timeout: Duration::from_secs(5),
            ..RetryConfig::default()
        });
        let started = tokio::time::Instant::now();
        let err = r
            .run(Idempotency::Idempotent, |_| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok::<(), Status>(())
            })
            .await
            .unwrap_err();
        assert!(matches!(err, RetryError::TimedOut { attempts: 3 }), "{err:?}");
        assert!(started.elapsed() <= Duration::from_secs(5) + BACKSTOP, "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_caps_retries_against_an_upstream_failing_every_call() {
        let r = retry(RetryConfig { budget_ratio: 0.2, budget_floor: 10, ..RetryConfig::default() });
        let attempts = AtomicU32::new(0);
        // 1,000 requests over 10 s (one window): without a budget, 2,000 retries.
        for _ in 0..1000 {
            let _ = r
                .run(Idempotency::Idempotent, |_| {
                    attempts.fetch_add(1, Ordering::SeqCst);
                    async { Err::<(), _>(Status(503)) }
                })
                .await;
            tokio::time::advance(Duration::from_millis(5)).await;
        }
        let s = r.stats();
        assert_eq!(s.requests, 1000);
        assert!(s.retries <= 200 + 10, "retries {} for 1,000 requests", s.retries);
        assert!(s.retries >= 150, "the budget is used, not refused outright: {}", s.retries);
        assert_eq!(u64::from(attempts.load(Ordering::SeqCst)), 1000 + s.retries);
        assert!(s.budget_rejected > 0);
    }
}
