//! The one clock every runtime component reads and waits on. Production code uses tokio's
//! clock (which `tokio::time::pause` makes deterministic in tests); [`ManualClock`] moves only
//! when told to, for tests that drive time by hand.
//!
//! Waiting goes through the clock too ([`Clock::sleep_until`], [`timeout_at`]): a retry's
//! backoff, a bulkhead's queue wait and a batch's delay all end when the clock says so, so a
//! test on a manual clock sees each step happen exactly when it advances the clock past it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::time::Instant;

/// A future that completes when its clock reaches a deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of "now" for time-dependent behaviour (breakers, caches, limiters), and of waits
/// that end by it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The time now on this clock.
    fn now(&self) -> Instant;

    /// Completes once [`Clock::now`] has reached `deadline` (at once if it has).
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

/// A deadline passed before the future it bounded finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Runs `future` until it finishes or `clock` reaches `deadline`, whichever is first; a future
/// that finishes at the deadline wins.
pub async fn timeout_at<F: Future>(clock: &dyn Clock, deadline: Instant, future: F) -> Result<F::Output, Elapsed> {
    let sleep = clock.sleep_until(deadline);
    tokio::select! {
        biased;
        out = future => Ok(out),
        () = sleep => Err(Elapsed),
    }
}

/// [`timeout_at`] `after` from now.
pub async fn timeout<F: Future>(clock: &dyn Clock, after: Duration, future: F) -> Result<F::Output, Elapsed> {
    timeout_at(clock, clock.now() + after, future).await
}

/// tokio's clock: real time, or paused time under `tokio::time::pause`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline))
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it; its sleepers wake when
/// it passes their deadline.
#[derive(Debug)]
pub struct ManualClock {
    origin: Instant,
    elapsed_ns: AtomicU64,
    /// The elapsed nanoseconds again, sent on every advance so that sleepers wake and look.
    moved: watch::Sender<u64>,
}

impl ManualClock {
    /// A clock at an arbitrary origin, standing still.
    pub fn new() -> Arc<ManualClock> {
        let (moved, _) = watch::channel(0);
        Arc::new(ManualClock { origin: Instant::now(), elapsed_ns: AtomicU64::new(0), moved })
    }

    /// Moves the clock forward by `by` and wakes every sleeper whose deadline it reached.
    pub fn advance(&self, by: Duration) {
        let elapsed = self.elapsed_ns.fetch_add(by.as_nanos() as u64, Ordering::SeqCst) + by.as_nanos() as u64;
        self.moved.send_modify(|ns| *ns = (*ns).max(elapsed));
    }

    /// How many futures are sleeping on this clock (a test waits for a component to start
    /// waiting before it advances the clock).
    pub fn sleepers(&self) -> usize {
        self.moved.receiver_count()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.elapsed_ns.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let mut moved = self.moved.subscribe();
        let origin = self.origin;
        Box::pin(async move {
            // The channel carries the elapsed time, so the sleeper needs no handle on the clock.
            while origin + Duration::from_nanos(*moved.borrow_and_update()) < deadline {
                if moved.changed().await.is_err() {
                    // The clock is gone: it will never reach the deadline.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

/// The clock components take: shared, and tokio's unless a test says otherwise.
pub type SharedClock = Arc<dyn Clock>;

/// tokio's clock, shared.
pub fn tokio_clock() -> SharedClock {
    Arc::new(TokioClock)
}

/// The wall-clock time (since the Unix epoch) of `at`, given `now` on the same clock: for
/// telling another process when something happened, since `Instant`s mean nothing outside
/// this one.
pub fn unix_time(at: Instant, now: Instant) -> Duration {
    let wall_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    wall_now.saturating_sub(now.saturating_duration_since(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn a_sleeper_on_a_manual_clock_wakes_when_the_clock_passes_its_deadline() {
        let clock = ManualClock::new();
        let deadline = clock.now() + Duration::from_millis(100);
        let sleeper = tokio::spawn(clock.sleep_until(deadline));
        clock.advance(Duration::from_millis(99));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke 1 ms early");
        clock.advance(Duration::from_millis(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper).await.expect("woke").unwrap();
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn a_timeout_on_a_manual_clock_ends_only_when_the_clock_says() {
        let clock = ManualClock::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let c = Arc::clone(&clock);
        let waiting = tokio::spawn(async move { timeout(&*c, Duration::from_secs(2), rx).await.map(|_| ()) });
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_secs(2));
        assert_eq!(waiting.await.unwrap(), Err(Elapsed));
        drop(tx);
    }

    #[test]
    fn an_instant_on_a_manual_clock_gets_its_wall_clock_time_by_its_age() {
        let clock = ManualClock::new();
        let then = clock.now();
        clock.advance(Duration::from_secs(90));
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let at = unix_time(then, clock.now());
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(before - Duration::from_secs(90) <= at && at <= after - Duration::from_secs(90), "{at:?}");
    }
}
