//! The runtime's configuration: every component's settings under one YAML document (a section
//! of a server's own config, or a file of its own), each field optional with the defaults the
//! components document, durations written as `250ms`, `2s`, `1m`. Environment variables
//! override what deployment decides: `MCP_RUNTIME_UPSTREAM_<NAME>_URL` (the name upper-cased,
//! `-` as `_`) and `MCP_RUNTIME_REDIS_URL`.
//!
//! ```yaml
//! upstreams:
//!   catalog:
//!     url: http://127.0.0.1:8081
//!     cache: { ttl: 30s, stale_while_revalidate: 30s, stale_if_error: 5m }
//!     breaker: { window: { count: 50 }, failure_rate: 0.5, open_duration: 5s }
//!     rate: { per_second: 200, burst: 50 }   # scope: fleet shares it through `redis`
//!     batch: { path: /items/batch, limits: { max_size: 32, max_delay: 2ms } }
//!     fallback: { "name": "unavailable" }
//! tenants: { rate: { per_second: 20, burst: 10 }, max_keys: 10000 }
//! redis: { url: "redis://127.0.0.1:6379/0", timeout: 50ms }
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::batch::BatchConfig;
use super::breaker::{BreakerConfig, Window};
use super::bulkhead::BulkheadConfig;
use super::cache::CacheConfig;
use super::http::HttpConfig;
use super::limiter::{AdaptiveConfig, KeyedRateConfig, RateConfig, RateScope};
use super::retry::RetryConfig;

/// A configuration that cannot be used, naming the file and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
/// Everything the runtime of one server needs: its upstreams, the tenant limit, Redis.
pub struct RuntimeConfig {
    /// The upstreams by the name tools call them by.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// A rate limit per tool or tenant (the key a server passes to `Runtime::admit`).
    pub tenants: Option<KeyedRateConfig>,
    /// The cache's second layer (needs the `redis` feature).
    pub redis: Option<RedisConfig>,
}

/// One upstream and every layer around its calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `http://host:port` or `https://…`; request paths are appended.
    pub url: String,
    /// A path the upstream answers 2xx at when it is up (`/healthz`): what
    /// [`crate::Runtime::probe`] calls, beside reading the breaker. Unset, only the breaker
    /// says.
    pub health: Option<String>,
    /// The HTTP client: pool, timeouts, headers, trust.
    pub http: HttpConfig,
    /// Off unless given.
    pub rate: Option<RateConfig>,
    /// Concurrency and queue bounds.
    pub bulkhead: BulkheadConfig,
    /// Off unless given.
    pub adaptive: Option<AdaptiveConfig>,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
    /// Retries and their budget.
    pub retry: RetryConfig,
    /// The item cache.
    pub cache: CacheConfig,
    /// The upstream's batch endpoint, for `Upstream::batch_get`.
    pub batch: Option<BatchEndpoint>,
    /// The static default the fallback chain serves when nothing else can (off unless given).
    pub fallback: Option<serde_json::Value>,
}

/// A batch endpoint: `POST path` with `{"ids": [...]}` answers `{"items": {id: item}}`, ids
/// left out being "not found".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchEndpoint {
    /// The endpoint's path.
    pub path: String,
    #[serde(default)]
    /// How items are gathered into batches.
    pub limits: BatchConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
/// The cache's second layer in Redis.
pub struct RedisConfig {
    /// `redis://127.0.0.1:6379/0`
    pub url: String,
    /// Prepended to every key, so that several caches (and servers) share one database.
    pub prefix: String,
    /// The most one operation may take before it counts as a miss.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for RedisConfig {
    /// 50 ms: a Redis on the same network answers in well under 1 ms; one slower than 50 ms
    /// costs more than it saves.
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            prefix: "mcp:".into(),
            timeout: Duration::from_millis(50),
        }
    }
}

impl RuntimeConfig {
    /// Parses `text` (from `origin`, named in errors) and checks it.
    pub fn from_yaml(text: &str, origin: &str) -> Result<RuntimeConfig, ConfigError> {
        let config: RuntimeConfig = serde_yaml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))?;
        config.validate().map_err(|ConfigError(e)| ConfigError(format!("{origin}: {e}")))?;
        Ok(config)
    }

    /// Reads and checks the config at `path` (named in errors).
    pub fn from_file(path: &Path) -> Result<RuntimeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Applies the `MCP_RUNTIME_*` overrides found in `vars` (the process environment, or a
    /// test's).
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
        for (name, value) in vars {
            if name == "MCP_RUNTIME_REDIS_URL" {
                self.redis.get_or_insert_with(RedisConfig::default).url = value;
            } else if let Some(upstream) =
                name.strip_prefix("MCP_RUNTIME_UPSTREAM_").and_then(|r| r.strip_suffix("_URL"))
            {
                let key = self.upstreams.keys().find(|k| env_name(k) == upstream).cloned();
                let key = key.ok_or_else(|| {
                    let known: Vec<_> = self.upstreams.keys().map(|k| env_name(k)).collect();
                    ConfigError(format!("{name}: no upstream is called that (known: {})", known.join(", ")))
                })?;
                self.upstreams.get_mut(&key).expect("found above").url = value;
            }
        }
        self.validate()
    }

    /// Every value in range, named by its path when not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, u) in &self.upstreams {
            let at = |field: &str| format!("upstreams.{name}.{field}");
            let fail = |field: &str, why: String| Err(ConfigError(format!("{}: {why}", at(field))));
            let scheme = u.url.starts_with("http://") || u.url.starts_with("https://");
            if !(scheme && u.url.parse::<http::Uri>().is_ok()) {
                return fail("url", format!("must be an http:// or https:// URL, got {:?}", u.url));
            }
            if let Some(health) = &u.health
                && !health.starts_with('/')
            {
                return fail("health", format!("must be a path starting with `/`, got {health:?}"));
            }
            let b = &u.breaker;
            for (field, rate) in
                [("breaker.failure_rate", b.failure_rate), ("breaker.slow_call_rate", b.slow_call_rate)]
            {
                if !(rate > 0.0 && rate <= 1.0) {
                    return fail(field, format!("must be in (0, 1], got {rate}"));
                }
            }
            if !(0.0..1.0).contains(&b.jitter) {
                return fail("breaker.jitter", format!("must be in [0, 1), got {}", b.jitter));
            }
            if b.backoff_multiplier < 1.0 {
                return fail("breaker.backoff_multiplier", format!("must be at least 1, got {}", b.backoff_multiplier));
            }
            if b.half_open_permits == 0 {
                return fail("breaker.half_open_permits", "must be at least 1".into());
            }
            match b.window {
                Window::Count(0) => return fail("breaker.window.count", "must be at least 1".into()),
                Window::Time { length, buckets } if length.is_zero() || buckets == 0 => {
                    return fail("breaker.window.time", "needs a positive length and at least 1 bucket".into());
                }
                _ => {}
            }
            let counts = [
                ("http.max_connections", u.http.max_connections),
                ("bulkhead.max_concurrent", u.bulkhead.max_concurrent),
                ("retry.max_attempts", u.retry.max_attempts as usize),
            ];
            for (field, n) in counts {
                if n == 0 {
                    return fail(field, "must be at least 1".into());
                }
            }
            if let Some(rate) = &u.rate
                && (rate.per_second.is_nan() || rate.per_second <= 0.0)
            {
                return fail("rate.per_second", format!("must be positive, got {}", rate.per_second));
            }
            if u.rate.is_some_and(|r| r.scope == RateScope::Fleet) && self.redis.is_none() {
                return fail("rate.scope", "`fleet` keeps the budget in Redis: configure `redis`".into());
            }
            if let Some(a) = &u.adaptive
                && !(a.min >= 1 && a.min <= a.max && a.backoff_ratio > 0.0 && a.backoff_ratio < 1.0)
            {
                return fail("adaptive", "needs 1 <= min <= max and backoff_ratio in (0, 1)".into());
            }
            if let Some(batch) = &u.batch
                && !batch.path.starts_with('/')
            {
                return fail("batch.path", format!("must start with /, got {:?}", batch.path));
            }
        }
        if let Some(t) = &self.tenants
            && (t.rate.per_second.is_nan() || t.rate.per_second <= 0.0 || t.max_keys == 0)
        {
            return Err(ConfigError("tenants: needs a positive rate.per_second and max_keys".into()));
        }
        if self.tenants.is_some_and(|t| t.rate.scope == RateScope::Fleet) {
            return Err(ConfigError("tenants.rate.scope: `fleet` is for upstream rates only".into()));
        }
        if let Some(r) = &self.redis
            && !r.url.starts_with("redis://")
        {
            return Err(ConfigError(format!("redis.url: must be a redis:// URL, got {:?}", r.url)));
        }
        Ok(())
    }
}

/// An upstream's name as it appears in an environment variable.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// Durations as humans write them (`250ms`, `2s`, `1m 30s`).
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a duration as humantime text (`250ms`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads a duration from humantime text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration (like 250ms, 2s, 1m): {e}")))
    }
}

/// An optional duration, as [`duration`].
pub mod option_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes an optional duration as humantime text, or nothing.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional duration from humantime text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => humantime::parse_duration(&text)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration (like 250ms, 2s, 1m): {e}"))),
        }
    }
}

#[cfg(test)]
mod tests;
