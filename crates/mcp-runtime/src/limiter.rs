//! Throttles in front of an upstream: a rate limit (governor's GCRA) for the upstream as a
//! whole, a keyed one per tool or tenant whose key memory is bounded, and an adaptive
//! concurrency limit (AIMD) that finds how many calls in flight the upstream takes. Each sheds
//! with [`Overloaded`] and a retry-after.
//!
//! Keyed state lives in a moka cache of at most `max_keys` entries, evicted least recently used:
//! a million tenants cost `max_keys` states, not a million (governor's own keyed stores grow
//! with every key until `retain_recent` is called). A key evicted was the longest idle, so its
//! bucket had refilled anyway: forgetting it changes nothing for it.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use super::breaker::Outcome;
use super::clock::SharedClock;
use super::overload::Overloaded;

/// A rate: `per_second` calls a second on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateConfig {
    /// Calls admitted per second, sustained.
    pub per_second: f64,
    /// Calls admitted at once after a quiet spell.
    pub burst: u32,
    /// Whose budget it is: each instance's (N instances admit N times the rate), or the
    /// fleet's, shared through the runtime's Redis.
    pub scope: RateScope,
}

impl Default for RateConfig {
    /// 100 calls a second with bursts of 20: a polite default for someone else's API.
    fn default() -> Self {
        RateConfig { per_second: 100.0, burst: 20, scope: RateScope::Instance }
    }
}

/// Whose budget a rate is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateScope {
    /// Each instance's own, in memory: no round-trip, and a fleet of N admits N times it.
    #[default]
    Instance,
    /// One budget for every instance on the same Redis (a GCRA kept there): one Redis
    /// round-trip per call; when Redis does not answer, each instance falls back to its own
    /// budget at the same rate.
    Fleet,
}

/// A rate budget kept outside the process, shared by every instance that asks it.
pub trait SharedRate: Send + Sync + std::fmt::Debug {
    /// One call now: `Ok(None)` admitted, `Ok(Some(wait))` shed until `wait` has passed,
    /// `Err` when the store did not answer.
    fn check(&self) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<Duration>, String>> + Send + '_>>;
}

impl RateConfig {
    fn quota(&self) -> Quota {
        let period = Duration::from_secs_f64(1.0 / self.per_second.max(1e-9));
        let burst = NonZeroU32::new(self.burst.max(1)).expect("at least 1");
        Quota::with_period(period.max(Duration::from_nanos(1))).expect("a positive period").allow_burst(burst)
    }
}

/// governor's view of the runtime clock: time since the limiter was made.
#[derive(Debug, Clone)]
struct GovernorClock {
    clock: SharedClock,
    origin: Instant,
}

impl governor::clock::Clock for GovernorClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.clock.now().duration_since(self.origin)
    }
}

/// Allowed and rejected calls, for `mcp_limiter_rejected_total{limiter,reason="rate"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterStats {
    /// Calls admitted.
    pub allowed: u64,
    /// Calls shed.
    pub rejected: u64,
    /// Keys holding state now (keyed limiters; 1 for a direct one).
    pub keys: u64,
}

#[derive(Debug, Default)]
struct Counters {
    allowed: AtomicU64,
    rejected: AtomicU64,
}

impl Counters {
    fn count<T>(&self, result: &Result<T, Overloaded>) {
        let counter = if result.is_ok() { &self.allowed } else { &self.rejected };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, GovernorClock, NoOpMiddleware<Duration>>;

/// A rate limit for one upstream.
#[derive(Debug)]
pub struct RateLimit {
    limiter: Direct,
    clock: GovernorClock,
    counters: Counters,
    fleet: Option<Arc<dyn SharedRate>>,
    fleet_unavailable: AtomicU64,
}

impl RateLimit {
    /// A limit at `config`'s rate, timed by `clock`.
    pub fn new(config: RateConfig, clock: SharedClock) -> RateLimit {
        let clock = GovernorClock { origin: clock.now(), clock };
        RateLimit {
            limiter: RateLimiter::new(config.quota(), InMemoryState::default(), clock.clone()),
            clock,
            counters: Counters::default(),
            fleet: None,
            fleet_unavailable: AtomicU64::new(0),
        }
    }

    /// A limit whose budget is `fleet`'s; this instance's own budget at the same rate serves
    /// while `fleet` does not answer.
    pub fn shared(config: RateConfig, clock: SharedClock, fleet: Arc<dyn SharedRate>) -> RateLimit {
        RateLimit { fleet: Some(fleet), ..RateLimit::new(config, clock) }
    }

    /// Leave for one call: from the shared budget when there is one, else as [`Self::check`].
    pub async fn acquire(&self) -> Result<(), Overloaded> {
        let Some(fleet) = &self.fleet else { return self.check() };
        let result = match fleet.check().await {
            Ok(None) => Ok(()),
            Ok(Some(retry_after)) => Err(Overloaded::RateLimited { retry_after }),
            Err(_) => {
                self.fleet_unavailable.fetch_add(1, Ordering::Relaxed);
                return self.check();
            }
        };
        self.counters.count(&result);
        result
    }

    /// Whether the budget is shared ([`Self::shared`]).
    pub fn is_shared(&self) -> bool {
        self.fleet.is_some()
    }

    /// Calls decided by this instance's own budget because the shared one did not answer.
    pub fn fleet_unavailable(&self) -> u64 {
        self.fleet_unavailable.load(Ordering::Relaxed)
    }

    /// Leave for one call now from this instance's own budget, or when to come back.
    pub fn check(&self) -> Result<(), Overloaded> {
        use governor::clock::Clock;
        let result = self
            .limiter
            .check()
            .map_err(|not_until| Overloaded::RateLimited { retry_after: not_until.wait_time_from(self.clock.now()) });
        self.counters.count(&result);
        result
    }

    /// Its counters so far.
    pub fn stats(&self) -> LimiterStats {
        LimiterStats {
            allowed: self.counters.allowed.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
            keys: 1,
        }
    }
}

/// Per-key rate state, at most `max_keys` of it.
struct BoundedStore<K> {
    states: moka::sync::Cache<K, Arc<InMemoryState>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let state = self.states.get_with_by_ref(key, || Arc::new(InMemoryState::default()));
        state.measure_and_replace(&NotKeyed::NonKey, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
/// A rate limit per key, with at most `max_keys` keys held.
pub struct KeyedRateConfig {
    /// Each key's rate.
    pub rate: RateConfig,
    /// The most keys whose state is kept.
    pub max_keys: u64,
}

impl Default for KeyedRateConfig {
    /// 20 calls a second per key (bursts of 10), state for up to 10,000 keys (under 1 MB).
    fn default() -> Self {
        KeyedRateConfig {
            rate: RateConfig { per_second: 20.0, burst: 10, scope: RateScope::Instance },
            max_keys: 10_000,
        }
    }
}

/// A rate limit per key (tool, tenant), with bounded key memory.
pub struct KeyedRateLimit<K: Hash + Eq + Clone + Send + Sync + 'static> {
    limiter: RateLimiter<K, BoundedStore<K>, GovernorClock, NoOpMiddleware<Duration>>,
    states: moka::sync::Cache<K, Arc<InMemoryState>>,
    clock: GovernorClock,
    counters: Counters,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> KeyedRateLimit<K> {
    /// A limit per key at `config`'s rate, timed by `clock`.
    pub fn new(config: KeyedRateConfig, clock: SharedClock) -> Self {
        let clock = GovernorClock { origin: clock.now(), clock };
        let states = moka::sync::Cache::builder()
            .max_capacity(config.max_keys)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build();
        let store = BoundedStore { states: states.clone() };
        KeyedRateLimit {
            limiter: RateLimiter::new(config.rate.quota(), store, clock.clone()),
            states,
            clock,
            counters: Counters::default(),
        }
    }

    /// Leave for one call under `key` now, or when to come back.
    pub fn check(&self, key: &K) -> Result<(), Overloaded> {
        use governor::clock::Clock;
        let result = self
            .limiter
            .check_key(key)
            .map_err(|not_until| Overloaded::RateLimited { retry_after: not_until.wait_time_from(self.clock.now()) });
        self.counters.count(&result);
        result
    }

    /// Keys holding state now (after moka's pending evictions).
    pub fn key_count(&self) -> u64 {
        self.states.run_pending_tasks();
        self.states.entry_count()
    }

    /// Its counters so far.
    pub fn stats(&self) -> LimiterStats {
        LimiterStats {
            allowed: self.counters.allowed.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
            keys: self.key_count(),
        }
    }
}

/// The adaptive concurrency limit: additive increase, multiplicative decrease.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveConfig {
    /// The limit it starts at.
    pub initial: u32,
    /// The lowest it goes.
    pub min: u32,
    /// The highest it goes.
    pub max: u32,
    /// A failure, or a success slower than `slow_latency`, multiplies the limit by this.
    pub backoff_ratio: f64,
    #[serde(with = "super::config::duration")]
    /// A call at least this long shrinks the limit, as a failure does.
    pub slow_latency: Duration,
}

impl Default for AdaptiveConfig {
    /// Start at 20, never under 1 or over 200; back off by 10% on a failure or a call over 1 s;
    /// grow by one each limit-worth of successes (TCP's shape: +1 per round trip).
    fn default() -> Self {
        AdaptiveConfig { initial: 20, min: 1, max: 200, backoff_ratio: 0.9, slow_latency: Duration::from_secs(1) }
    }
}

#[derive(Debug)]
struct AdaptiveState {
    limit: f64,
    in_flight: u32,
    /// Smoothed latency, the retry-after of a rejection.
    latency: Duration,
    rejected: u64,
}

/// An adaptive concurrency limit (AIMD). Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct AdaptiveLimit {
    config: AdaptiveConfig,
    clock: SharedClock,
    state: Mutex<AdaptiveState>,
}

/// A slot under the adaptive limit; record how the call went.
#[derive(Debug)]
#[must_use = "a permit records the call's outcome"]
pub struct AdaptivePermit<'a> {
    limit: &'a AdaptiveLimit,
    started: Instant,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
/// The adaptive limit now.
pub struct AdaptiveStats {
    /// Concurrent calls allowed now.
    pub limit: u32,
    /// Calls running now.
    pub in_flight: u32,
    /// Calls shed so far.
    pub rejected: u64,
}

impl AdaptiveLimit {
    /// A limit with `config`, timing calls by `clock`.
    pub fn new(config: AdaptiveConfig, clock: SharedClock) -> AdaptiveLimit {
        let state = AdaptiveState {
            limit: f64::from(config.initial.clamp(config.min, config.max)),
            in_flight: 0,
            latency: Duration::from_millis(10),
            rejected: 0,
        };
        AdaptiveLimit { config, clock, state: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AdaptiveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot under the limit now, or [`Overloaded::ConcurrencyLimited`].
    pub fn try_acquire(&self) -> Result<AdaptivePermit<'_>, Overloaded> {
        let mut s = self.lock();
        let limit = s.limit as u32;
        if s.in_flight >= limit {
            s.rejected += 1;
            return Err(Overloaded::ConcurrencyLimited { limit, retry_after: s.latency });
        }
        s.in_flight += 1;
        drop(s);
        Ok(AdaptivePermit { limit: self, started: self.clock.now(), done: false })
    }

    fn record(&self, started: Instant, outcome: Outcome) {
        let latency = self.clock.now().duration_since(started);
        let c = &self.config;
        let mut s = self.lock();
        s.in_flight -= 1;
        if outcome == Outcome::Ignored {
            return;
        }
        s.latency = (s.latency * 7 + latency) / 8;
        let (min, max) = (f64::from(c.min), f64::from(c.max));
        s.limit = if outcome == Outcome::Failure || latency >= c.slow_latency {
            (s.limit * c.backoff_ratio).max(min)
        } else {
            (s.limit + 1.0 / s.limit).min(max)
        };
    }

    /// The limit and its counters now.
    pub fn stats(&self) -> AdaptiveStats {
        let s = self.lock();
        AdaptiveStats { limit: s.limit as u32, in_flight: s.in_flight, rejected: s.rejected }
    }
}

impl AdaptivePermit<'_> {
    /// Records how the call went: a failure or a slow call shrinks the limit, else it grows.
    pub fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.limit.record(self.started, outcome);
    }
}

/// An [`AdaptivePermit`] holding its limit, for a call that outlives the borrow.
#[derive(Debug)]
#[must_use = "a permit records the call's outcome"]
pub struct OwnedAdaptivePermit {
    limit: Arc<AdaptiveLimit>,
    started: Instant,
    done: bool,
}

impl AdaptiveLimit {
    /// [`AdaptiveLimit::try_acquire`] for a call that outlives this borrow.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedAdaptivePermit, Overloaded> {
        let mut permit = self.try_acquire()?;
        permit.done = true;
        Ok(OwnedAdaptivePermit { limit: Arc::clone(self), started: permit.started, done: false })
    }
}

impl OwnedAdaptivePermit {
    /// Records how the call went, as [`AdaptivePermit::record`].
    pub fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.limit.record(self.started, outcome);
    }
}

impl Drop for OwnedAdaptivePermit {
    fn drop(&mut self) {
        if !self.done {
            self.limit.record(self.started, Outcome::Ignored);
        }
    }
}

impl Drop for AdaptivePermit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.limit.record(self.started, Outcome::Ignored);
        }
    }
}

#[cfg(test)]
mod tests;
