//! A bulkhead: at most `max_concurrent` calls at once to one upstream, at most `max_queue`
//! callers waiting, none waiting longer than `max_queue_wait`. Beyond that the call is shed
//! with a typed [`Overloaded`] error carrying a retry-after, so one slow upstream cannot take
//! every task of the server with it.
//!
//! tokio's semaphore is fair (first come, first served), so the queue is FIFO.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::clock::{self, SharedClock};
use super::overload::Overloaded;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
/// A bulkhead's bounds.
pub struct BulkheadConfig {
    /// Calls running at once at most.
    pub max_concurrent: usize,
    /// Callers waiting at most; beyond, shed at once.
    pub max_queue: usize,
    #[serde(with = "super::config::duration")]
    /// The longest a caller waits for a slot.
    pub max_queue_wait: Duration,
}

impl Default for BulkheadConfig {
    /// 32 in flight and 64 waiting for at most 500 ms: an upstream that cannot take 32 calls at
    /// once is better told "busy" quickly than queued behind.
    fn default() -> Self {
        BulkheadConfig { max_concurrent: 32, max_queue: 64, max_queue_wait: Duration::from_millis(500) }
    }
}

/// Counters for `mcp_limiter_rejected_total{limiter,reason}` and the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkheadStats {
    /// Calls admitted.
    pub admitted: u64,
    /// Calls shed because the queue was full.
    pub rejected_queue_full: u64,
    /// Calls shed after waiting `max_queue_wait`.
    pub rejected_timeout: u64,
    /// Calls running now.
    pub in_flight: usize,
    /// Callers waiting now.
    pub queued: usize,
}

#[derive(Debug)]
/// A bulkhead: bounded concurrency, a bounded FIFO queue, and shedding beyond.
pub struct Bulkhead {
    config: BulkheadConfig,
    clock: SharedClock,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    admitted: AtomicU64,
    rejected_queue_full: AtomicU64,
    rejected_timeout: AtomicU64,
}

/// A slot; the call holds it until it ends.
#[derive(Debug)]
pub struct BulkheadPermit {
    _slot: OwnedSemaphorePermit,
}

impl Bulkhead {
    /// A bulkhead whose queue waits end by `clock`.
    pub fn new(config: BulkheadConfig, clock: SharedClock) -> Bulkhead {
        Bulkhead {
            clock,
            slots: Arc::new(Semaphore::new(config.max_concurrent)),
            config,
            queued: AtomicUsize::new(0),
            admitted: AtomicU64::new(0),
            rejected_queue_full: AtomicU64::new(0),
            rejected_timeout: AtomicU64::new(0),
        }
    }

    /// A slot now, or after waiting in the queue, or the reason there is none.
    pub async fn acquire(&self) -> Result<BulkheadPermit, Overloaded> {
        if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
            self.admitted.fetch_add(1, Ordering::Relaxed);
            return Ok(BulkheadPermit { _slot: slot });
        }
        let retry_after = self.config.max_queue_wait;
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.config.max_queue {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.rejected_queue_full.fetch_add(1, Ordering::Relaxed);
            return Err(Overloaded::QueueFull { retry_after });
        }
        let waited =
            clock::timeout(&*self.clock, self.config.max_queue_wait, Arc::clone(&self.slots).acquire_owned()).await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(slot)) => {
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(BulkheadPermit { _slot: slot })
            }
            // Timed out (the semaphore is never closed).
            _ => {
                self.rejected_timeout.fetch_add(1, Ordering::Relaxed);
                Err(Overloaded::QueueTimeout { waited: self.config.max_queue_wait, retry_after })
            }
        }
    }

    /// Its counters now.
    pub fn stats(&self) -> BulkheadStats {
        BulkheadStats {
            admitted: self.admitted.load(Ordering::Relaxed),
            rejected_queue_full: self.rejected_queue_full.load(Ordering::Relaxed),
            rejected_timeout: self.rejected_timeout.load(Ordering::Relaxed),
            in_flight: self.config.max_concurrent - self.slots.available_permits(),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn it_queues_up_to_its_bound_sheds_beyond_and_times_waiters_out_on_its_clock() {
        let clock = ManualClock::new();
        let config = BulkheadConfig { max_concurrent: 2, max_queue: 3, max_queue_wait: Duration::from_millis(500) };
        let b = Arc::new(Bulkhead::new(config, clock.clone()));
        let held = [b.acquire().await.unwrap(), b.acquire().await.unwrap()];
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let b = Arc::clone(&b);
                tokio::spawn(async move { b.acquire().await })
            })
            .collect();
        while b.stats().queued < 3 {
            tokio::task::yield_now().await;
        }
        // The queue is at its bound: the next caller is shed at once.
        let shed = b.acquire().await.unwrap_err();
        assert_eq!(shed, Overloaded::QueueFull { retry_after: Duration::from_millis(500) });
        // A slot freed goes to the first waiter.
        drop(held);
        let mut waiters = waiters.into_iter();
        let mut results: Vec<_> = waiters.by_ref().take(2).collect();
        let mut served = Vec::new();
        for w in results.drain(..) {
            served.push(w.await.unwrap());
        }
        // The third waits until the clock passes its 500 ms, however long that takes.
        let third = waiters.next().unwrap();
        clock.advance(Duration::from_millis(499));
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "timed out before its clock said so");
        clock.advance(Duration::from_millis(1));
        served.push(third.await.unwrap());
        let results = served;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2, "two slots freed, two waiters served");
        // The third waited its 500 ms and was told to come back.
        assert!(matches!(results[2], Err(Overloaded::QueueTimeout { .. })), "{results:?}");
        let s = b.stats();
        assert_eq!((s.admitted, s.rejected_queue_full, s.rejected_timeout, s.queued), (4, 1, 1, 0));
    }
}
