//! The resilience runtime an MCP server's tools run on. It depends on nothing CI-related (no
//! octocrab, tera or statistics): a server author can use it alone.
//!
//! Built so far: [`clock`] (the one injectable clock) and [`breaker`] (circuit breakers). Every
//! time-dependent component takes a [`SharedClock`] and is tested on manual time.

pub mod breaker;
pub mod clock;

pub use breaker::{BreakerConfig, CircuitBreaker, Outcome, Permit, Rejected, State};
pub use clock::{Clock, ManualClock, SharedClock, TokioClock, tokio_clock};
