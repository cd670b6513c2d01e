//! A micro-batcher for upstreams with batch endpoints: single-item calls queue up and go out as
//! one batch call when `max_size` items are waiting or `max_delay` after the first, whichever
//! comes first, with at most `max_in_flight` batch calls at once. A key asked for twice in one
//! batch is sent once. Each caller gets its own item, "not found", or error: a batch call's
//! failure reaches every caller in it, an item's failure only its own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::clock::{self, SharedClock};
use super::histogram::{BATCH_SIZE, Histogram, HistogramSnapshot};
use tokio::sync::{Semaphore, mpsc, oneshot};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
/// How single-item calls are gathered into batch calls.
pub struct BatchConfig {
    /// Items in one batch at most.
    pub max_size: usize,
    #[serde(with = "super::config::duration")]
    /// The longest the first item of a batch waits for others.
    pub max_delay: Duration,
    /// Batch calls running at once at most.
    pub max_in_flight: usize,
    /// Items waiting for a batch at most; past it a load is shed at once
    /// ([`crate::Overloaded::QueueFull`]) rather than queued without bound.
    pub max_queue: usize,
}

impl Default for BatchConfig {
    /// 32 items or 2 ms: a caller waits at most 2 ms more than alone, and a busy server sends
    /// 32 times fewer calls; 4 batches in flight; 1,024 items queued (32 full batches) at most.
    fn default() -> Self {
        BatchConfig { max_size: 32, max_delay: Duration::from_millis(2), max_in_flight: 4, max_queue: 1024 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Why an item could not be loaded.
pub enum BatchError<E> {
    #[error("{0}")]
    /// The batch call, or this item, failed.
    Failed(E),
    #[error("the batcher has stopped")]
    /// The batcher is gone (its runtime shut down).
    Stopped,
    #[error("{0}")]
    /// The queue was full: shed.
    Overloaded(crate::Overloaded),
}

/// What one batch call answers: per key, its item or its own error; a key left out is "not
/// found". `Err` fails the whole batch.
pub type BatchReply<K, V, E> = Result<HashMap<K, Result<V, E>>, E>;

type BatchFuture<K, V, E> = Pin<Box<dyn Future<Output = BatchReply<K, V, E>> + Send>>;
type Waiter<V, E> = oneshot::Sender<Result<Option<V>, BatchError<E>>>;

#[derive(Debug, Clone, PartialEq)]
/// The batcher's counters.
pub struct BatchStats {
    /// Batch calls made.
    pub batches: u64,
    /// Items sent in them.
    pub items: u64,
    /// Batches sent because they were full.
    pub flushed_full: u64,
    /// Batches sent because their delay passed.
    pub flushed_by_delay: u64,
    /// Distinct items per batch.
    pub sizes: HistogramSnapshot,
}

#[derive(Debug)]
struct Counters {
    batches: AtomicU64,
    items: AtomicU64,
    flushed_full: AtomicU64,
    flushed_by_delay: AtomicU64,
    sizes: Histogram,
}

/// Queues single-item calls into batch calls; cheap to clone.
pub struct Batcher<K, V, E> {
    queue: mpsc::Sender<(K, Waiter<V, E>)>,
    counters: Arc<Counters>,
    /// What a shed load is told to wait: about one batch delay.
    retry_after: Duration,
}

impl<K, V, E> Clone for Batcher<K, V, E> {
    fn clone(&self) -> Self {
        Batcher { queue: self.queue.clone(), counters: Arc::clone(&self.counters), retry_after: self.retry_after }
    }
}

impl<K, V, E> Batcher<K, V, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    /// A batcher calling `call` with each batch's keys, its delays timed by `clock`. Spawns its
    /// collector on the current tokio runtime; it stops when the last clone is dropped.
    pub fn new<F, Fut>(config: BatchConfig, clock: SharedClock, call: F) -> Self
    where
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = BatchReply<K, V, E>> + Send + 'static,
    {
        let (queue, items) = mpsc::channel(config.max_queue.max(1));
        let retry_after = config.max_delay.max(Duration::from_millis(1));
        let counters = Arc::new(Counters {
            batches: AtomicU64::new(0),
            items: AtomicU64::new(0),
            flushed_full: AtomicU64::new(0),
            flushed_by_delay: AtomicU64::new(0),
            sizes: Histogram::new(BATCH_SIZE),
        });
        let call: Arc<dyn Fn(Vec<K>) -> BatchFuture<K, V, E> + Send + Sync> =
            Arc::new(move |keys| Box::pin(call(keys)));
        tokio::spawn(collect(config, clock, items, call, Arc::clone(&counters)));
        Batcher { queue, counters, retry_after }
    }

    /// The item for `key` (`None`: not found), fetched in the next batch.
    pub async fn load(&self, key: K) -> Result<Option<V>, BatchError<E>> {
        let (tx, rx) = oneshot::channel();
        self.queue.try_send((key, tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                BatchError::Overloaded(crate::Overloaded::QueueFull { retry_after: self.retry_after })
            }
            mpsc::error::TrySendError::Closed(_) => BatchError::Stopped,
        })?;
        rx.await.unwrap_or(Err(BatchError::Stopped))
    }

    /// Its counters now.
    pub fn stats(&self) -> BatchStats {
        let c = &self.counters;
        BatchStats {
            batches: c.batches.load(Ordering::Relaxed),
            items: c.items.load(Ordering::Relaxed),
            flushed_full: c.flushed_full.load(Ordering::Relaxed),
            flushed_by_delay: c.flushed_by_delay.load(Ordering::Relaxed),
            sizes: c.sizes.snapshot(),
        }
    }
}

/// Gathers queued items into batches and sends them, until every sender is gone.
async fn collect<K, V, E>(
    config: BatchConfig,
    clock: SharedClock,
    mut items: mpsc::Receiver<(K, Waiter<V, E>)>,
    call: Arc<dyn Fn(Vec<K>) -> BatchFuture<K, V, E> + Send + Sync>,
    counters: Arc<Counters>,
) where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let max_size = config.max_size.max(1);
    while let Some(first) = items.recv().await {
        let deadline = clock.now() + config.max_delay;
        let mut batch = vec![first];
        let mut full = false;
        while batch.len() < max_size {
            match clock::timeout_at(&*clock, deadline, items.recv()).await {
                Ok(Some(item)) => batch.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        if batch.len() == max_size {
            full = true;
        }
        let counter = if full { &counters.flushed_full } else { &counters.flushed_by_delay };
        counter.fetch_add(1, Ordering::Relaxed);
        // Bounded batches in flight: the next batch waits here (and keeps queueing meanwhile).
        let permit = Arc::clone(&in_flight).acquire_owned().await.expect("never closed");
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.items.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut waiters: HashMap<K, Vec<Waiter<V, E>>> = HashMap::new();
        let mut keys = Vec::new();
        for (key, waiter) in batch {
            waiters
                .entry(key)
                .or_insert_with_key(|k| {
                    keys.push(k.clone());
                    Vec::new()
                })
                .push(waiter);
        }
        counters.sizes.record(keys.len() as f64);
        let reply = call(keys);
        tokio::spawn(async move {
            let reply = reply.await;
            drop(permit);
            for (key, ws) in waiters {
                let answer = match &reply {
                    Ok(items) => match items.get(&key) {
                        Some(Ok(v)) => Ok(Some(v.clone())),
                        Some(Err(e)) => Err(BatchError::Failed(e.clone())),
                        None => Ok(None),
                    },
                    Err(e) => Err(BatchError::Failed(e.clone())),
                };
                for w in ws {
                    let _ = w.send(answer.clone()); // the caller may have gone
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
