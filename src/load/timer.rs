//! Waiting for the open model's next intended send time.
//!
//! tokio's timer has a 1 ms granularity: measured on the 2-core development VM, a
//! `sleep_until` wakes 1.28 ms late at the median (2.2 ms at p99), several times the latency of
//! a fast MCP call, and every request of the open model would carry that lag in its latency
//! from the intended send. A Linux timerfd, registered with tokio's reactor, wakes 89 µs late at
//! the median there. The scheduler waits through [`Sleeper`] so that production gets the
//! timerfd and tests get tokio's (pausable) clock.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// Waits until a deadline.
pub trait Sleeper: Send {
    fn sleep_until(&mut self, deadline: Instant) -> impl Future<Output = ()> + Send;
}

/// tokio's timer: follows paused time in tests; 1 ms granularity.
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    async fn sleep_until(&mut self, deadline: Instant) {
        tokio::time::sleep_until(deadline).await;
    }
}

/// A timerfd on CLOCK_MONOTONIC (the clock `Instant` uses on Linux), awaited through tokio's
/// reactor: sub-millisecond wake-ups without a thread of its own.
pub struct TimerFdSleeper {
    fd: AsyncFd<RawTimerFd>,
    /// The deadline the timer is set to, so that waiting again for it costs no system call
    /// (the closed model waits for the window's end on every wake-up).
    armed: Option<Instant>,
}

struct RawTimerFd(TimerFd);

impl AsRawFd for RawTimerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl TimerFdSleeper {
    pub fn new() -> io::Result<Self> {
        let fd = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        // SAFETY: `RawTimerFd` owns the timerfd, which stays open and unchanged until the
        // `AsyncFd` that owns the `RawTimerFd` is dropped; `as_raw_fd` always returns it.
        let fd = unsafe { AsyncFd::register(RawTimerFd(fd)) }?;
        Ok(TimerFdSleeper { fd, armed: None })
    }
}

impl Sleeper for TimerFdSleeper {
    async fn sleep_until(&mut self, deadline: Instant) {
        let now = Instant::now();
        if deadline <= now {
            return;
        }
        if self.armed != Some(deadline) {
            let set = self
                .fd
                .get_ref()
                .0
                .set(Expiration::OneShot(TimeSpec::from_duration(deadline - now)), TimerSetTimeFlags::empty());
            if set.is_err() {
                // Cannot happen for a valid relative time; fall back to the coarse timer.
                return tokio::time::sleep_until(deadline).await;
            }
            self.armed = Some(deadline);
        }
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return tokio::time::sleep_until(deadline).await;
            };
            // `wait` reads the expiration count; WouldBlock means a spurious wake-up.
            if guard.try_io(|fd| fd.get_ref().0.wait().map_err(io::Error::from)).is_ok() {
                self.armed = None;
                return;
            }
        }
    }
}

/// The timerfd where there is one, else tokio's timer.
pub enum BestSleeper {
    TimerFd(TimerFdSleeper),
    Tokio(TokioSleeper),
}

impl BestSleeper {
    pub fn new() -> BestSleeper {
        // Without a timerfd (not Linux), tokio's millisecond timer still keeps the rate.
        TimerFdSleeper::new().map_or(BestSleeper::Tokio(TokioSleeper), BestSleeper::TimerFd)
    }
}

impl Sleeper for BestSleeper {
    async fn sleep_until(&mut self, deadline: Instant) {
        match self {
            BestSleeper::TimerFd(s) => s.sleep_until(deadline).await,
            BestSleeper::Tokio(s) => s.sleep_until(deadline).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn timerfd_sleeper_never_wakes_early() {
        let mut s = TimerFdSleeper::new().unwrap();
        for _ in 0..20 {
            let deadline = Instant::now() + Duration::from_micros(700);
            s.sleep_until(deadline).await;
            assert!(Instant::now() >= deadline);
        }
        // A deadline in the past returns at once.
        s.sleep_until(Instant::now() - Duration::from_millis(1)).await;
        // Waiting again for a deadline the timer is already set to (a wait given up before
        // it fired) still wakes on time.
        let deadline = Instant::now() + Duration::from_millis(5);
        let _ = tokio::time::timeout(Duration::from_millis(1), s.sleep_until(deadline)).await;
        s.sleep_until(deadline).await;
        assert!(Instant::now() >= deadline);
    }
}
