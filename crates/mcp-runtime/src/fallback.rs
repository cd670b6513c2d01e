//! Graceful degradation: an ordered fallback chain — fresh cache (or a fresh load), stale
//! cache, a static default, and last a typed error with a retry-after — that records which
//! level served each call (`mcp_fallback_total{level}`), so a report can say how much of a
//! fault the users felt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::cache::Served;

/// The level of the chain that served a call, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// Loaded within its TTL.
    Fresh,
    /// Past its TTL, served because no fresh answer could be had.
    Stale,
    /// The configured default, nothing cached being available.
    StaticDefault,
    /// Nothing to serve: the caller gets [`Unavailable`].
    Error,
}

impl Level {
    /// Every level, best first.
    pub const ALL: [Level; 4] = [Level::Fresh, Level::Stale, Level::StaticDefault, Level::Error];

    /// The `level` label.
    pub fn name(self) -> &'static str {
        match self {
            Level::Fresh => "fresh",
            Level::Stale => "stale",
            Level::StaticDefault => "static_default",
            Level::Error => "error",
        }
    }

    /// Anything below fresh is degraded.
    pub fn is_degraded(self) -> bool {
        self != Level::Fresh
    }
}

/// The chain's last level: nothing could serve the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{upstream:?} is unavailable ({cause}){}", retry_after.map(|d| format!("; retry after {d:?}")).unwrap_or_default())]
pub struct Unavailable {
    /// The upstream's name.
    pub upstream: String,
    /// Why it failed.
    pub cause: String,
    /// When to come back, if known.
    pub retry_after: Option<Duration>,
}

/// A value and the level that served it (`None`: the upstream says there is no such item).
#[derive(Debug, Clone, PartialEq)]
pub struct Degradable<V> {
    /// The value (`None`: the upstream says there is no such item).
    pub value: Option<V>,
    /// Which level served it.
    pub level: Level,
}

/// The chain for one upstream.
#[derive(Debug)]
pub struct Fallback<V> {
    upstream: String,
    default: Option<V>,
    counts: [AtomicU64; 4],
}

impl<V: Clone> Fallback<V> {
    /// `default`: the static value served when neither the upstream nor the cache can answer
    /// (`None`: go straight to the error).
    pub fn new(upstream: impl Into<String>, default: Option<V>) -> Self {
        Fallback { upstream: upstream.into(), default, counts: Default::default() }
    }

    /// Walks the chain from what the cache (in front of the upstream) served, or why it could
    /// not: `retry_after` is the failing layer's hint (an open breaker's, a limiter's).
    pub fn serve<E: std::fmt::Display>(
        &self,
        cached: Result<Served<V>, E>,
        retry_after: impl FnOnce(&E) -> Option<Duration>,
    ) -> Result<Degradable<V>, Unavailable> {
        let (answer, level) = match cached {
            Ok(Served::Fresh(v)) => (Ok(Some(v)), Level::Fresh),
            Ok(Served::NotFound) => (Ok(None), Level::Fresh),
            Ok(Served::Stale(v)) => (Ok(Some(v)), Level::Stale),
            Err(e) => match &self.default {
                Some(v) => (Ok(Some(v.clone())), Level::StaticDefault),
                None => {
                    let unavailable = Unavailable {
                        upstream: self.upstream.clone(),
                        cause: e.to_string(),
                        retry_after: retry_after(&e),
                    };
                    (Err(unavailable), Level::Error)
                }
            },
        };
        self.counts[level as usize].fetch_add(1, Ordering::Relaxed);
        answer.map(|value| Degradable { value, level })
    }

    /// Calls served per level, in [`Level::ALL`] order.
    pub fn counts(&self) -> [(Level, u64); 4] {
        Level::ALL.map(|l| (l, self.counts[l as usize].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_serves_in_order_and_is_counted() {
        let hint = |_: &String| Some(Duration::from_secs(3));
        let with_default = Fallback::new("catalog", Some("placeholder"));
        assert_eq!(with_default.serve::<String>(Ok(Served::Fresh("a")), hint).unwrap().level, Level::Fresh);
        let stale = with_default.serve::<String>(Ok(Served::Stale("old")), hint).unwrap();
        assert_eq!(stale, Degradable { value: Some("old"), level: Level::Stale });
        assert!(stale.level.is_degraded());
        let default = with_default.serve(Err("circuit open".to_string()), hint).unwrap();
        assert_eq!(default, Degradable { value: Some("placeholder"), level: Level::StaticDefault });

        let without = Fallback::<&str>::new("catalog", None);
        let err = without.serve(Err("circuit open".to_string()), hint).unwrap_err();
        assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(err.to_string(), "\"catalog\" is unavailable (circuit open); retry after 3s");
        assert_eq!(without.serve::<String>(Ok(Served::NotFound), hint).unwrap().value, None);
        assert_eq!(
            with_default.counts(),
            [(Level::Fresh, 1), (Level::Stale, 1), (Level::StaticDefault, 1), (Level::Error, 0)]
        );
        assert_eq!(without.counts()[3], (Level::Error, 1));
    }
}
