//! A generic pool for resources that are not HTTP connections (a database or Redis connection,
//! a subprocess, a gRPC channel), over deadpool, with the statistics the runtime reports for
//! every pool and a bounded acquire wait that fails with an error saying how full the pool was.
//!
//! deadpool rather than bb8: its manager is two plain async functions (create, recycle), it
//! runs no background tasks of its own, and its `status()` already gives size, idle and
//! waiters, which is what `mcp_pool_connections` reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool::managed::{self, Manager, Metrics, Object, RecycleResult};

use super::clock::SharedClock;
use super::histogram::{Histogram, HistogramSnapshot, WAIT_SECONDS};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
/// A resource pool's size and patience.
pub struct PoolConfig {
    /// Resources open at most.
    pub max_size: usize,
    /// The longest a caller waits for a free resource before [`PoolError::Timeout`].
    #[serde(with = "super::config::duration")]
    pub max_wait: Duration,
}

impl Default for PoolConfig {
    /// 16 resources, 1 s at most to get one: a wait longer than that means the pool is too
    /// small or the resources are stuck, and the caller is better told so.
    fn default() -> Self {
        PoolConfig { max_size: 16, max_wait: Duration::from_secs(1) }
    }
}

/// The same statistics for every pool, HTTP or not (`mcp_pool_connections{upstream,state}`,
/// `mcp_pool_wait_seconds{upstream}`).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    /// Resources (connections) opened so far.
    pub opened: u64,
    /// Resources in use now.
    pub in_use: u64,
    /// Resources open and free now.
    pub idle: u64,
    /// Callers waiting for a resource now.
    pub waiters: u64,
    /// Acquires that gave up after the maximum wait.
    pub timeouts: u64,
    /// How long acquires waited, in seconds.
    pub wait_seconds: HistogramSnapshot,
}

#[derive(Debug, thiserror::Error)]
/// Why a pool could not hand out a resource.
pub enum PoolError<E: std::fmt::Display> {
    #[error("pool {pool:?}: no resource free within {waited:?} ({in_use} of {max_size} in use, {waiters} waiting)")]
    /// No resource came free within `max_wait`.
    Timeout {
        /// The pool's name.
        pool: String,
        /// How long the caller waited.
        waited: Duration,
        /// Resources in use meanwhile.
        in_use: u64,
        /// The pool's size.
        max_size: usize,
        /// Callers waiting then.
        waiters: u64,
    },
    #[error("pool {pool:?}: opening a resource failed: {source}")]
    /// Opening a new resource failed.
    Open {
        /// The pool's name.
        pool: String,
        /// The manager's error.
        source: E,
    },
}

/// The user's manager, counting what it opens (it appears only in [`Pooled`]'s type).
pub struct Counted<M> {
    manager: M,
    opened: Arc<AtomicU64>,
}

impl<M: Manager> Manager for Counted<M> {
    type Type = M::Type;
    type Error = M::Error;

    async fn create(&self) -> Result<M::Type, M::Error> {
        let resource = self.manager.create().await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(resource)
    }

    async fn recycle(&self, resource: &mut M::Type, metrics: &Metrics) -> RecycleResult<M::Error> {
        self.manager.recycle(resource, metrics).await
    }
}

/// A pool of `M`'s resources.
pub struct ResourcePool<M: Manager> {
    name: String,
    config: PoolConfig,
    clock: SharedClock,
    pool: managed::Pool<Counted<M>>,
    opened: Arc<AtomicU64>,
    timeouts: AtomicU64,
    wait: Histogram,
}

/// A resource on loan; back to the pool when dropped.
pub type Pooled<M> = Object<Counted<M>>;

impl<M: Manager> ResourcePool<M>
where
    M::Error: std::fmt::Display,
{
    /// A pool called `name` of resources `manager` opens, timed by `clock`.
    pub fn new(name: impl Into<String>, manager: M, config: PoolConfig, clock: SharedClock) -> Self {
        let opened = Arc::new(AtomicU64::new(0));
        let pool = managed::Pool::builder(Counted { manager, opened: Arc::clone(&opened) })
            .max_size(config.max_size)
            .wait_timeout(Some(config.max_wait))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("a runtime is given, so the wait timeout is supported");
        ResourcePool {
            name: name.into(),
            config,
            clock,
            pool,
            opened,
            timeouts: AtomicU64::new(0),
            wait: Histogram::new(WAIT_SECONDS),
        }
    }

    /// A resource, waiting at most `max_wait` for one to be free.
    pub async fn get(&self) -> Result<Pooled<M>, PoolError<M::Error>> {
        let started = self.clock.now();
        let got = self.pool.get().await;
        self.wait.record(self.clock.now().duration_since(started).as_secs_f64());
        got.map_err(|e| match e {
            managed::PoolError::Backend(source) => PoolError::Open { pool: self.name.clone(), source },
            _ => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                let s = self.stats();
                PoolError::Timeout {
                    pool: self.name.clone(),
                    waited: self.config.max_wait,
                    in_use: s.in_use,
                    max_size: self.config.max_size,
                    waiters: s.waiters,
                }
            }
        })
    }

    /// Its statistics now.
    pub fn stats(&self) -> PoolStats {
        let status = self.pool.status();
        PoolStats {
            opened: self.opened.load(Ordering::Relaxed),
            in_use: (status.size - status.available) as u64,
            idle: status.available as u64,
            waiters: status.waiting as u64,
            timeouts: self.timeouts.load(Ordering::Relaxed),
            wait_seconds: self.wait.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::tokio_clock;

    /// Hands out numbered resources.
    struct Numbers(AtomicU64);

    impl Manager for Numbers {
        type Type = u64;
        type Error = std::io::Error;
        async fn create(&self) -> Result<u64, std::io::Error> {
            Ok(self.0.fetch_add(1, Ordering::Relaxed))
        }
        async fn recycle(&self, _: &mut u64, _: &Metrics) -> RecycleResult<std::io::Error> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_acquire_waits_at_most_max_wait_then_fails_saying_how_full_the_pool_was() {
        let config = PoolConfig { max_size: 2, max_wait: Duration::from_millis(200) };
        let pool = Arc::new(ResourcePool::new("db", Numbers(AtomicU64::new(0)), config, tokio_clock()));
        let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
        assert_eq!((*a, *b), (0, 1));
        let waiter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.get().await.map(|r| *r) }
        });
        while pool.stats().waiters == 0 {
            tokio::task::yield_now().await;
        }
        let s = pool.stats();
        assert_eq!((s.opened, s.in_use, s.idle, s.waiters), (2, 2, 0, 1));
        let err = waiter.await.unwrap().unwrap_err();
        assert_eq!(err.to_string(), "pool \"db\": no resource free within 200ms (2 of 2 in use, 0 waiting)");
        // A resource given back is reused, not reopened.
        drop(a);
        assert_eq!(*pool.get().await.unwrap(), 0);
        let s = pool.stats();
        assert_eq!((s.opened, s.in_use, s.idle, s.timeouts), (2, 1, 1, 1));
        assert_eq!(s.wait_seconds.count, 4);
        assert_eq!(
            s.wait_seconds.buckets.iter().find(|(b, _)| *b == 0.25).unwrap().1,
            4,
            "the timed-out wait took 200 ms"
        );
    }
}
