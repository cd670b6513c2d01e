//! The one clock every runtime component reads. Production code uses tokio's clock (which
//! `tokio::time::pause` makes deterministic in tests); [`ManualClock`] moves only when told to,
//! for tests that drive time by hand without a runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// A source of "now" for time-dependent behaviour (breakers, caches, limiters).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Instant;
}

/// tokio's clock: real time, or paused time under `tokio::time::pause`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it.
#[derive(Debug)]
pub struct ManualClock {
    origin: Instant,
    elapsed_ns: AtomicU64,
}

impl ManualClock {
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock { origin: Instant::now(), elapsed_ns: AtomicU64::new(0) })
    }

    pub fn advance(&self, by: Duration) {
        self.elapsed_ns.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.elapsed_ns.load(Ordering::SeqCst))
    }
}

/// The clock components take: shared, and tokio's unless a test says otherwise.
pub type SharedClock = Arc<dyn Clock>;

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
