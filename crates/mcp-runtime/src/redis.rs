//! The cache's second layer in Redis (cargo feature `redis`, on by default): entries shared by
//! every instance of a server, so one instance serves what another loaded. Redis keeps each
//! entry for its fresh time (`PX`), and the age read back (`PTTL`) keeps freshness the same as
//! in the first layer.
//!
//! An outage must cost nothing but misses: every operation has a short deadline, and a breaker
//! stops asking a Redis that keeps failing until it has been quiet for a while (so an outage
//! costs one timeout per breaker trip, not one per call).

use std::fmt::Display;
use std::marker::PhantomData;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::breaker::{BreakerConfig, CircuitBreaker, Outcome, Window};
use super::cache::{LayerError, LayerFuture, SecondLayer};
use super::clock::SharedClock;
pub use super::config::RedisConfig;

/// Values kept in Redis as JSON under `prefix + key`.
pub struct RedisLayer<K, V> {
    config: RedisConfig,
    connection: ConnectionManager,
    breaker: CircuitBreaker,
    _types: PhantomData<fn(K) -> V>,
}

impl<K, V> RedisLayer<K, V> {
    /// Connects lazily: a Redis that is down now is a miss now and used once it is up.
    pub fn new(config: RedisConfig, clock: SharedClock) -> Result<Self, LayerError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| LayerError(format!("redis url `{}`: {e}", config.url)))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| LayerError(format!("redis at `{}`: {e}", config.url)))?;
        // Three failures in a row stop the asking for 1 s, then one probe.
        let breaker = CircuitBreaker::new(
            BreakerConfig {
                window: Window::Count(20),
                consecutive_failures: Some(3),
                open_duration: Duration::from_secs(1),
                max_open_duration: Duration::from_secs(10),
                half_open_permits: 1,
                half_open_deadline: config.timeout * 4,
                ..BreakerConfig::default()
            },
            clock,
        );
        Ok(RedisLayer { config, connection, breaker, _types: PhantomData })
    }

    /// Runs `op` under the deadline and the breaker.
    async fn guarded<T>(&self, op: impl Future<Output = redis::RedisResult<T>>) -> Result<T, LayerError> {
        let permit = self.breaker.try_acquire().map_err(|e| LayerError(format!("redis skipped: {e}")))?;
        match tokio::time::timeout(self.config.timeout, op).await {
            Ok(Ok(value)) => {
                permit.record(Outcome::Success);
                Ok(value)
            }
            Ok(Err(e)) => {
                permit.record(Outcome::Failure);
                Err(LayerError(format!("redis: {e}")))
            }
            Err(_) => {
                permit.record(Outcome::Failure);
                Err(LayerError(format!("redis: no answer within {:?}", self.config.timeout)))
            }
        }
    }
}

impl<K, V> SecondLayer<K, V> for RedisLayer<K, V>
where
    K: Display + Send + Sync,
    V: Serialize + DeserializeOwned + Send + Sync,
{
    fn get<'a>(&'a self, key: &'a K) -> LayerFuture<'a, Option<(V, Duration)>> {
        Box::pin(async move {
            let key = format!("{}{key}", self.config.prefix);
            let mut connection = self.connection.clone();
            let (bytes, ttl_ms): (Option<Vec<u8>>, i64) =
                self.guarded(redis::pipe().get(&key).pttl(&key).query_async(&mut connection)).await?;
            let Some(bytes) = bytes else { return Ok(None) };
            let value = serde_json::from_slice(&bytes).map_err(|e| LayerError(format!("redis entry `{key}`: {e}")))?;
            Ok(Some((value, Duration::from_millis(ttl_ms.max(0) as u64))))
        })
    }

    fn put<'a>(&'a self, key: &'a K, value: &'a V, ttl: Duration) -> LayerFuture<'a, ()> {
        Box::pin(async move {
            let key = format!("{}{key}", self.config.prefix);
            let bytes = serde_json::to_vec(value).map_err(|e| LayerError(format!("redis entry `{key}`: {e}")))?;
            let mut connection = self.connection.clone();
            let ttl_ms = ttl.as_millis().max(1) as u64;
            self.guarded(
                redis::cmd("SET").arg(&key).arg(bytes).arg("PX").arg(ttl_ms).query_async::<()>(&mut connection),
            )
            .await
        })
    }
}
