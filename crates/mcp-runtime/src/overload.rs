//! The one error every throttle sheds with: which throttle said no, and when to come back.

use std::time::Duration;

/// Shed: the caller should come back after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overloaded {
    #[error("overloaded: the queue is full; retry after {retry_after:?}")]
    /// The queue is at its bound.
    QueueFull {
        /// When to come back.
        retry_after: Duration,
    },
    #[error("overloaded: no slot within {waited:?}; retry after {retry_after:?}")]
    /// No slot came free within the queue wait.
    QueueTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// When to come back.
        retry_after: Duration,
    },
    #[error("rate limited; retry after {retry_after:?}")]
    /// Over the rate limit.
    RateLimited {
        /// When the next call would be admitted.
        retry_after: Duration,
    },
    #[error("overloaded: the adaptive concurrency limit ({limit}) is reached; retry after {retry_after:?}")]
    /// At the adaptive concurrency limit.
    ConcurrencyLimited {
        /// The limit then.
        limit: u32,
        /// When to come back (about one call's latency).
        retry_after: Duration,
    },
}

impl Overloaded {
    /// When the caller should come back.
    pub fn retry_after(&self) -> Duration {
        match self {
            Overloaded::QueueFull { retry_after }
            | Overloaded::QueueTimeout { retry_after, .. }
            | Overloaded::RateLimited { retry_after }
            | Overloaded::ConcurrencyLimited { retry_after, .. } => *retry_after,
        }
    }

    /// The `reason` label of `mcp_limiter_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Overloaded::QueueFull { .. } => "queue_full",
            Overloaded::QueueTimeout { .. } => "queue_timeout",
            Overloaded::RateLimited { .. } => "rate",
            Overloaded::ConcurrencyLimited { .. } => "concurrency",
        }
    }
}
