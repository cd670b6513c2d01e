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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::breaker::{BreakerConfig, CircuitBreaker, Outcome, Window};
use super::cache::{KeyPredicate, LayerError, LayerFuture, RemovedListener, SecondLayer};
use super::clock::SharedClock;
pub use super::config::RedisConfig;

/// Values kept in Redis as JSON under `prefix + key`. Removals are published on the channel
/// `prefix + "invalidations"`, which every instance's layer listens to (once someone registers
/// with [`SecondLayer::on_removed`]).
pub struct RedisLayer<K, V> {
    config: RedisConfig,
    client: redis::Client,
    connection: ConnectionManager,
    breaker: CircuitBreaker,
    listeners: Arc<Mutex<Vec<RemovedListener>>>,
    /// The subscription task, once started; ended with the layer.
    subscription: Mutex<Option<tokio::task::AbortHandle>>,
    _types: PhantomData<fn(K) -> V>,
}

/// A client for `config`'s URL and a connection that is made on first use, each operation
/// bounded by `config.timeout` and retried `retries` times.
fn lazy_connection(config: &RedisConfig, retries: usize) -> Result<(redis::Client, ConnectionManager), LayerError> {
    let client =
        redis::Client::open(config.url.as_str()).map_err(|e| LayerError(format!("redis url `{}`: {e}", config.url)))?;
    let manager_config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(retries);
    let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
        .map_err(|e| LayerError(format!("redis at `{}`: {e}", config.url)))?;
    Ok((client, connection))
}

impl<K, V> RedisLayer<K, V> {
    /// Connects lazily: a Redis that is down now is a miss now and used once it is up.
    pub fn new(config: RedisConfig, clock: SharedClock) -> Result<Self, LayerError> {
        let (client, connection) = lazy_connection(&config, 1)?;
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
        let (listeners, subscription) = (Arc::default(), Mutex::new(None));
        Ok(RedisLayer { config, client, connection, breaker, listeners, subscription, _types: PhantomData })
    }

    fn channel(&self) -> String {
        format!("{}invalidations", self.config.prefix)
    }

    /// Listens to the invalidation channel until the layer is dropped, subscribing again a
    /// second after Redis went away.
    fn subscribe(&self) {
        let (client, channel, listeners) = (self.client.clone(), self.channel(), Arc::downgrade(&self.listeners));
        let task = tokio::spawn(async move {
            loop {
                if let Ok(mut pubsub) = client.get_async_pubsub().await
                    && pubsub.subscribe(&channel).await.is_ok()
                {
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        let Some(listeners) = listeners.upgrade() else { return };
                        if let Ok(key) = message.get_payload::<String>() {
                            let current = listeners.lock().unwrap_or_else(|e| e.into_inner()).clone();
                            for listener in current {
                                listener(&key);
                            }
                        }
                    }
                }
                if listeners.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        *self.subscription.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
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

/// `text` matched literally in a Redis glob pattern.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl<K, V> Drop for RedisLayer<K, V> {
    fn drop(&mut self) {
        if let Some(task) = self.subscription.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
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

    fn remove<'a>(&'a self, key: &'a K) -> LayerFuture<'a, ()> {
        Box::pin(async move {
            let key = key.to_string();
            let mut connection = self.connection.clone();
            let full = format!("{}{key}", self.config.prefix);
            // Deleted first, then announced: whoever hears of it finds Redis without it.
            let mut pipe = redis::pipe();
            pipe.del(&full).ignore().publish(self.channel(), &key).ignore();
            self.guarded(pipe.query_async::<()>(&mut connection)).await
        })
    }

    /// `SCAN`s the keys under `prefix` a page at a time; each page's matches are deleted and
    /// announced in one pipeline, so the others hear of each key once it is gone.
    fn remove_where<'a>(&'a self, prefix: &'a str, matches: &'a KeyPredicate<'a>) -> LayerFuture<'a, u64> {
        Box::pin(async move {
            let pattern = format!("{}{}*", glob_escape(&self.config.prefix), glob_escape(prefix));
            let mut connection = self.connection.clone();
            let (mut cursor, mut removed) = (0u64, 0u64);
            loop {
                let scan = redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(500).clone();
                let (next, keys): (u64, Vec<String>) = self.guarded(scan.query_async(&mut connection)).await?;
                let own: Vec<&str> = keys
                    .iter()
                    .filter_map(|k| k.strip_prefix(self.config.prefix.as_str()))
                    .filter(|k| matches(k))
                    .collect();
                if !own.is_empty() {
                    let mut pipe = redis::pipe();
                    for key in &own {
                        pipe.del(format!("{}{key}", self.config.prefix)).ignore();
                    }
                    for key in &own {
                        pipe.publish(self.channel(), *key).ignore();
                    }
                    self.guarded(pipe.query_async::<()>(&mut connection)).await?;
                    removed += own.len() as u64;
                }
                cursor = next;
                if cursor == 0 {
                    return Ok(removed);
                }
            }
        })
    }

    /// `PING`, under the deadline (not the breaker: a probe must see Redis come back).
    fn ping(&self) -> LayerFuture<'_, ()> {
        Box::pin(async move {
            let mut connection = self.connection.clone();
            let command = redis::cmd("PING");
            let ping = command.query_async::<String>(&mut connection);
            match tokio::time::timeout(self.config.timeout.max(Duration::from_millis(200)), ping).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(LayerError(format!("redis: {e}"))),
                Err(_) => Err(LayerError("redis: no answer to PING".into())),
            }
        })
    }

    fn on_removed(&self, listener: RemovedListener) {
        let first = {
            let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            listeners.push(listener);
            listeners.len() == 1
        };
        if first {
            self.subscribe();
        }
    }
}

/// GCRA (the generic cell rate algorithm) in one script, on Redis's clock so that every
/// instance reads the same time: the key holds the theoretical arrival time (µs); a call is
/// admitted when it is no further ahead than the burst allows. Returns 0, or the µs to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local interval = tonumber(ARGV[1])
local new_tat = tat + interval
local wait = new_tat - tonumber(ARGV[2]) - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1)
return 0
";

/// A rate budget in Redis, shared by every instance whose runtime names the same Redis,
/// prefix and upstream.
pub struct RedisRate {
    connection: ConnectionManager,
    key: String,
    interval_us: u64,
    tolerance_us: u64,
}

impl std::fmt::Debug for RedisRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRate").field("key", &self.key).field("interval_us", &self.interval_us).finish()
    }
}

impl RedisRate {
    /// The budget `rate` under `{prefix}rate:{name}`; connects lazily.
    pub fn new(config: &RedisConfig, name: &str, rate: crate::limiter::RateConfig) -> Result<Self, LayerError> {
        // No retry: a rate check that waits is worse than one decided locally.
        let (_, connection) = lazy_connection(config, 0)?;
        let interval_us = (1e6 / rate.per_second.max(1e-9)).round().max(1.0) as u64;
        // `burst` calls at once: the burst-th lands exactly at the tolerance.
        let tolerance_us = interval_us.saturating_mul(u64::from(rate.burst.max(1)));
        Ok(RedisRate { connection, key: format!("{}rate:{name}", config.prefix), interval_us, tolerance_us })
    }
}

impl crate::limiter::SharedRate for RedisRate {
    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<Duration>, String>> + Send + '_>> {
        Box::pin(async move {
            let wait: i64 = redis::cmd("EVAL")
                .arg(GCRA)
                .arg(1)
                .arg(&self.key)
                .arg(self.interval_us)
                .arg(self.tolerance_us)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(|e| e.to_string())?;
            Ok((wait > 0).then(|| Duration::from_micros(wait as u64)))
        })
    }
}
