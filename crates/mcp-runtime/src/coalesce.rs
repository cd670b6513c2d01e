//! Coalescing of identical in-flight calls: while a call for a key runs, later callers for the
//! same key wait for its outcome instead of making their own. Nothing is kept once the call
//! ends (that is the cache's job), so an error reaches the callers that waited and no others.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// One call in flight for a key.
pub type Flight<T> = Arc<OnceCell<T>>;

/// Runs identical calls in flight once (see the module documentation).
pub struct Coalescer<K, T> {
    flights: Mutex<HashMap<K, Flight<T>>>,
    /// Callers that joined a call already running.
    joined: AtomicU64,
}

impl<K: Hash + Eq + Clone, T: Clone> Default for Coalescer<K, T> {
    fn default() -> Self {
        Coalescer { flights: Mutex::new(HashMap::new()), joined: AtomicU64::new(0) }
    }
}

impl<K: Hash + Eq + Clone, T: Clone> Coalescer<K, T> {
    /// The outcome of `call` for `key`, run once for every caller that arrives while it runs.
    pub async fn run<F, Fut>(&self, key: K, call: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let flight = self.join(&key);
        self.finish(key, &flight, call).await
    }

    /// Starts a flight for `key` unless one is running; the caller then runs it with
    /// [`Coalescer::finish`] (a background refresh registers before its task starts, so that a
    /// second reader sees it running).
    pub fn start(&self, key: &K) -> Option<Flight<T>> {
        let mut flights = self.lock();
        if flights.contains_key(key) {
            return None;
        }
        let flight = Flight::default();
        flights.insert(key.clone(), Arc::clone(&flight));
        Some(flight)
    }

    /// The flight for `key`, joined or started.
    fn join(&self, key: &K) -> Flight<T> {
        let mut flights = self.lock();
        match flights.get(key) {
            Some(f) => {
                self.joined.fetch_add(1, Ordering::Relaxed);
                Arc::clone(f)
            }
            None => Arc::clone(flights.entry(key.clone()).or_default()),
        }
    }

    /// Runs `call` on `flight` (or waits for whoever does), then retires the flight.
    pub async fn finish<F, Fut>(&self, key: K, flight: &Flight<T>, call: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let outcome = flight.get_or_init(call).await.clone();
        let mut flights = self.lock();
        if flights.get(&key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            flights.remove(&key);
        }
        outcome
    }

    /// Whether a call for `key` is in flight.
    pub fn is_running(&self, key: &K) -> bool {
        self.lock().contains_key(key)
    }

    /// Callers so far that joined a call already running.
    pub fn joined(&self) -> u64 {
        self.joined.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Flight<T>>> {
        self.flights.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn identical_calls_in_flight_run_once_and_a_later_one_runs_again() {
        let coalescer = Arc::new(Coalescer::<&str, Result<u32, String>>::default());
        let calls = Arc::new(AtomicU64::new(0));
        let call = |calls: Arc<AtomicU64>| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            Err::<u32, _>("upstream down".to_string())
        };
        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let (c, calls) = (Arc::clone(&coalescer), Arc::clone(&calls));
                tokio::spawn(async move { c.run("item-1", || call(calls)).await })
            })
            .collect();
        for w in waiters {
            assert_eq!(w.await.unwrap(), Err("upstream down".to_string()), "every waiter gets the one error");
        }
        assert_eq!((calls.load(Ordering::SeqCst), coalescer.joined()), (1, 9));
        assert!(!coalescer.is_running(&"item-1"));
        // The error was not kept: the next caller calls again.
        let _ = coalescer.run("item-1", || call(Arc::clone(&calls))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
