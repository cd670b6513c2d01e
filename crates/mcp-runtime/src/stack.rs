//! The runtime as a server holds it: its upstreams by name, the per-tool or per-tenant rate
//! limit, and every component's statistics in one structured value (for a `runtime_stats`
//! tool) and in Prometheus text (for `/metrics`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::breaker::Transition;
use super::cache::{Namespaced, SecondLayer};
use super::clock::{SharedClock, unix_time};
use super::config::{ConfigError, RuntimeConfig};
use super::histogram::HistogramSnapshot;
use super::limiter::KeyedRateLimit;
use super::overload::Overloaded;
use super::process::{self, ProcessStats};
use super::upstream::Upstream;

/// The resource under which servers on this runtime offer [`Runtime::stats`] as JSON (the
/// reference server does; mcp-perfcheck reads it to time breakers and count cache hits).
pub const STATS_URI: &str = "runtime://stats";

/// The second layer the upstreams' item caches share.
type ItemLayer = Arc<dyn SecondLayer<String, Arc<Value>>>;

/// The version of what the second layer stores (an item's JSON): bumped when that changes, so
/// instances of two versions never read each other's entries.
const L2_FORMAT: u32 = 1;

/// The runtime of one server.
pub struct Runtime {
    upstreams: BTreeMap<String, Upstream>,
    tenants: Option<KeyedRateLimit<String>>,
    /// The shared second layer, for the readiness probe.
    second: Option<ItemLayer>,
}

/// One dependency's answer to [`Runtime::probe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyHealth {
    /// `upstream:NAME` or `redis`.
    pub name: String,
    /// Whether it can serve now.
    pub ok: bool,
    /// Why not (or what was checked).
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no upstream is called {name:?} (configured: {known})")]
/// [`Runtime::upstream`] was asked for a name the config does not have.
pub struct UnknownUpstream {
    /// The name asked for.
    pub name: String,
    /// The names configured, comma-separated.
    pub known: String,
}

impl Runtime {
    /// Builds every upstream's stack (inside a tokio runtime: batchers and Redis run tasks).
    pub fn new(config: &RuntimeConfig, clock: SharedClock) -> Result<Runtime, ConfigError> {
        config.validate()?;
        let second = second_layer(config, &clock)?;
        let upstreams = config
            .upstreams
            .iter()
            .map(|(name, u)| {
                // Each upstream's entries in a namespace of their own, versioned by format.
                let own =
                    second.clone().map(|l| Arc::new(Namespaced::new(l, format!("v{L2_FORMAT}:{name}"))) as ItemLayer);
                Ok((name.clone(), Upstream::new(name, u, clock.clone(), own, fleet_rate(config, name, u)?)?))
            })
            .collect::<Result<_, ConfigError>>()?;
        let tenants = config.tenants.map(|t| KeyedRateLimit::new(t, clock.clone()));
        Ok(Runtime { upstreams, tenants, second })
    }

    /// The upstream called `name`, with all its layers.
    pub fn upstream(&self, name: &str) -> Result<&Upstream, UnknownUpstream> {
        self.upstreams.get(name).ok_or_else(|| UnknownUpstream {
            name: name.to_string(),
            known: self.upstreams.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// Every upstream, by name.
    pub fn upstreams(&self) -> impl Iterator<Item = &Upstream> {
        self.upstreams.values()
    }

    /// Admits one call for `key` (a tool's name, a tenant's id) under the per-key rate limit,
    /// if one is configured.
    pub fn admit(&self, key: &str) -> Result<(), Overloaded> {
        match &self.tenants {
            Some(limit) => limit.check(&key.to_string()),
            None => Ok(()),
        }
    }

    /// Asks every dependency whether it can serve, each within `timeout`, all at once: each
    /// upstream's breaker (open or forced open is a failure) and, where `health` is configured,
    /// a `GET` of it straight to the upstream (past cache, retry and breaker: a probe must see
    /// the upstream itself); and the Redis layer's `PING`. For a server's `/readyz`.
    pub async fn probe(&self, timeout: std::time::Duration) -> Vec<DependencyHealth> {
        let mut checks = tokio::task::JoinSet::new();
        for upstream in self.upstreams.values() {
            let upstream = upstream.clone();
            checks.spawn(async move {
                let name = format!("upstream:{}", upstream.name());
                let state = upstream.breaker().state();
                if matches!(state, crate::State::Open | crate::State::ForcedOpen) {
                    return DependencyHealth { name, ok: false, detail: format!("breaker {}", state.name()) };
                }
                let (ok, detail) = match upstream.health(timeout).await {
                    None => (true, format!("breaker {}", state.name())),
                    Some(Ok(status)) => (true, format!("health answered {status}")),
                    Some(Err(why)) => (false, why),
                };
                DependencyHealth { name, ok, detail }
            });
        }
        if let Some(second) = self.second.clone() {
            checks.spawn(async move {
                let answer = tokio::time::timeout(timeout, second.ping()).await;
                let (ok, detail) = match answer {
                    Ok(Ok(())) => (true, "PING answered".to_string()),
                    Ok(Err(e)) => (false, e.to_string()),
                    Err(_) => (false, format!("no answer to PING within {timeout:?}")),
                };
                DependencyHealth { name: "redis".into(), ok, detail }
            });
        }
        let mut all: Vec<DependencyHealth> = checks.join_all().await;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Every component's statistics now.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            upstreams: self.upstreams.values().map(upstream_stats).collect(),
            tenants_rejected: self.tenants.as_ref().map_or(0, |t| t.stats().rejected),
            tenant_keys: self.tenants.as_ref().map_or(0, |t| t.stats().keys),
            process: process::own(),
            tokio: TokioStats::now(),
        }
    }

    /// The statistics in Prometheus text format (see the README for every name).
    pub fn prometheus(&self) -> String {
        super::monitor::render(&self.stats())
    }
}

#[cfg(feature = "redis")]
fn second_layer(config: &RuntimeConfig, clock: &SharedClock) -> Result<Option<ItemLayer>, ConfigError> {
    let Some(redis) = &config.redis else { return Ok(None) };
    let layer =
        super::redis::RedisLayer::new(redis.clone(), clock.clone()).map_err(|e| ConfigError(format!("redis: {e}")))?;
    Ok(Some(Arc::new(layer)))
}

/// An upstream's shared budget when its rate's scope is the fleet (validated: `redis` is set).
#[cfg(feature = "redis")]
fn fleet_rate(
    config: &RuntimeConfig,
    name: &str,
    upstream: &super::config::UpstreamConfig,
) -> Result<Option<Arc<dyn super::limiter::SharedRate>>, ConfigError> {
    let (Some(rate), Some(redis)) = (upstream.rate, &config.redis) else { return Ok(None) };
    if rate.scope != super::limiter::RateScope::Fleet {
        return Ok(None);
    }
    let shared = super::redis::RedisRate::new(redis, name, rate).map_err(|e| ConfigError(format!("redis: {e}")))?;
    Ok(Some(Arc::new(shared)))
}

#[cfg(not(feature = "redis"))]
fn fleet_rate(
    _: &RuntimeConfig,
    _: &str,
    _: &super::config::UpstreamConfig,
) -> Result<Option<Arc<dyn super::limiter::SharedRate>>, ConfigError> {
    Ok(None)
}

#[cfg(not(feature = "redis"))]
fn second_layer(config: &RuntimeConfig, _: &SharedClock) -> Result<Option<ItemLayer>, ConfigError> {
    match config.redis {
        Some(_) => Err(ConfigError("redis: this build has no Redis support (cargo feature `redis`)".into())),
        None => Ok(None),
    }
}

/// Everything the runtime counts, as one value (`runtime_stats`, `runtime://stats`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeStats {
    /// Per upstream, by name.
    pub upstreams: Vec<UpstreamStats>,
    /// Calls the per-tenant rate limit shed.
    pub tenants_rejected: u64,
    /// Tenant keys the per-tenant limit holds now.
    pub tenant_keys: u64,
    /// This process's resource use (`None` without /proc).
    pub process: Option<ProcessStats>,
    /// tokio's counters (`None` outside a tokio runtime).
    pub tokio: Option<TokioStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
/// One upstream's layers, as the stats resource and `/metrics` report them.
pub struct UpstreamStats {
    /// The upstream's name.
    pub name: String,
    /// Its breaker.
    pub breaker: BreakerView,
    /// Its cache.
    pub cache: CacheView,
    /// Its HTTP connection pool.
    pub pool: PoolView,
    /// Rejections by the throttles, by limiter (`rate`, `bulkhead`, `adaptive`) and reason.
    pub rejected: Vec<Rejections>,
    /// The adaptive limit now, if configured.
    pub adaptive_limit: Option<u32>,
    /// Its retries.
    pub retries: RetriesView,
    /// Calls served per fallback level (`fresh`, `stale`, `static_default`, `error`).
    pub fallback: BTreeMap<&'static str, u64>,
    /// Its batcher, if a batch endpoint is configured.
    pub batch: Option<BatchView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerView {
    pub state: &'static str,
    /// `mcp_breaker_state`'s value.
    pub state_gauge: u8,
    pub successes: u64,
    pub failures: u64,
    pub slow: u64,
    pub rejected: u64,
    pub ignored: u64,
    pub transitions: Vec<TransitionCount>,
    /// The latest transitions, oldest first, timed on the wall clock.
    pub recent: Vec<TransitionAt>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionAt {
    pub from: &'static str,
    pub to: &'static str,
    /// Milliseconds since the Unix epoch, so that a client can line it up with its own times.
    pub at_unix_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionCount {
    pub from: &'static str,
    pub to: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheView {
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub negative: u64,
    pub l2_hits: u64,
    pub l2_misses: u64,
    pub l2_errors: u64,
    pub loads: u64,
    pub load_errors: u64,
    pub entries: u64,
    /// The entries' total weight: bytes with `max_bytes`, else one per entry.
    pub weight: u64,
    /// Hits (fresh, stale and negative) over all lookups.
    pub hit_ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolView {
    pub opened: u64,
    pub in_use: u64,
    pub idle: u64,
    pub waiters: u64,
    pub timeouts: u64,
    #[serde(skip)]
    pub wait_seconds: HistogramSnapshot,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejections {
    pub limiter: &'static str,
    pub reason: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetriesView {
    pub requests: u64,
    pub retried: u64,
    pub succeeded_after_retry: u64,
    pub exhausted: u64,
    pub budget_rejected: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchView {
    pub batches: u64,
    pub items: u64,
    #[serde(skip)]
    pub sizes: HistogramSnapshot,
}

/// tokio's own counters, when the caller runs inside a tokio runtime.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TokioStats {
    pub workers: usize,
    pub alive_tasks: usize,
    pub global_queue_depth: usize,
}

impl TokioStats {
    fn now() -> Option<TokioStats> {
        let metrics = tokio::runtime::Handle::try_current().ok()?.metrics();
        Some(TokioStats {
            workers: metrics.num_workers(),
            alive_tasks: metrics.num_alive_tasks(),
            global_queue_depth: metrics.global_queue_depth(),
        })
    }
}

/// The transitions with wall-clock times, `now` being the breaker's clock.
fn wall_clock_times(recent: &VecDeque<Transition>, now: Instant) -> Vec<TransitionAt> {
    recent
        .iter()
        .map(|t| TransitionAt {
            from: t.from.name(),
            to: t.to.name(),
            at_unix_ms: unix_time(t.at, now).as_millis() as u64,
        })
        .collect()
}

fn upstream_stats(u: &Upstream) -> UpstreamStats {
    let p = u.parts();
    let b = p.breaker.stats();
    let state = p.breaker.state();
    let c = p.cache.stats();
    let lookups = c.hits + c.misses + c.stale + c.negative;
    let pool = p.http.stats();
    let bulkhead = p.bulkhead.stats();
    let mut rejected = vec![
        Rejections { limiter: "bulkhead", reason: "queue_full", count: bulkhead.rejected_queue_full },
        Rejections { limiter: "bulkhead", reason: "queue_timeout", count: bulkhead.rejected_timeout },
    ];
    if let Some(rate) = &p.rate {
        rejected.push(Rejections { limiter: "rate", reason: "rate", count: rate.stats().rejected });
    }
    if let Some(a) = &p.adaptive {
        rejected.push(Rejections { limiter: "adaptive", reason: "concurrency", count: a.stats().rejected });
    }
    let r = p.retry.stats();
    UpstreamStats {
        name: u.name().to_string(),
        breaker: BreakerView {
            state: state.name(),
            state_gauge: state.gauge(),
            successes: b.successes,
            failures: b.failures,
            slow: b.slow,
            rejected: b.rejected,
            ignored: b.ignored,
            transitions: b
                .transitions
                .iter()
                .map(|((from, to), count)| TransitionCount { from: from.name(), to: to.name(), count: *count })
                .collect(),
            recent: wall_clock_times(&b.recent, p.breaker.now()),
        },
        cache: CacheView {
            hits: c.hits,
            misses: c.misses,
            stale: c.stale,
            negative: c.negative,
            l2_hits: c.l2_hits,
            l2_misses: c.l2_misses,
            l2_errors: c.l2_errors,
            loads: c.loads,
            load_errors: c.load_errors,
            entries: p.cache.entry_count(),
            weight: p.cache.weighted_size(),
            hit_ratio: if lookups == 0 { 0.0 } else { (c.hits + c.stale + c.negative) as f64 / lookups as f64 },
        },
        pool: PoolView {
            opened: pool.opened,
            in_use: pool.in_use,
            idle: pool.idle,
            waiters: pool.waiters,
            timeouts: pool.timeouts,
            wait_seconds: pool.wait_seconds,
        },
        rejected,
        adaptive_limit: p.adaptive.as_ref().map(|a| a.stats().limit),
        retries: RetriesView {
            requests: r.requests,
            retried: r.retries,
            succeeded_after_retry: r.succeeded_after_retry,
            exhausted: r.exhausted,
            budget_rejected: r.budget_rejected,
        },
        fallback: p.fallback.counts().iter().map(|(level, n)| (level.name(), *n)).collect(),
        batch: p.batcher.as_ref().map(|b| {
            let s = b.stats();
            BatchView { batches: s.batches, items: s.items, sizes: s.sizes }
        }),
    }
}
