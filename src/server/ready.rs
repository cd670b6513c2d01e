//! What `/readyz` says, and the probe that keeps it current: every dependency the runtime has
//! (each upstream's breaker and health path, Redis) and the event loop's lag, on an interval;
//! and, once stopping, "draining" before anything else, so that a load balancer takes the
//! instance out while it still serves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::runtime::{DependencyHealth, Runtime};

/// How the probe runs.
#[derive(Debug, Clone)]
pub struct Probe {
    pub interval: Duration,
    pub max_lag: Duration,
    /// After SIGTERM, how long `/readyz` says "draining" while calls are still served.
    pub drain: Duration,
}

/// The latest probe's answer, and whether the server is stopping.
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
    checks: RwLock<Option<Vec<DependencyHealth>>>,
}

impl Readiness {
    pub fn set(&self, checks: Vec<DependencyHealth>) {
        *self.checks.write().unwrap_or_else(|e| e.into_inner()) = Some(checks);
    }

    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// `/readyz`: 200 `ready`, or 503 `draining`, `starting` or `unready` naming what failed.
    pub fn answer(&self) -> (StatusCode, axum::Json<serde_json::Value>) {
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        if self.draining.load(Ordering::SeqCst) {
            return (unavailable, axum::Json(json!({"status": "draining"})));
        }
        let checks = self.checks.read().unwrap_or_else(|e| e.into_inner());
        let Some(checks) = checks.as_ref() else {
            return (unavailable, axum::Json(json!({"status": "starting"})));
        };
        let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
        let (status, word) = if failed.is_empty() { (StatusCode::OK, "ready") } else { (unavailable, "unready") };
        (status, axum::Json(json!({"status": word, "failed": failed, "checks": checks})))
    }
}

/// One round: the runtime's dependencies (each within the interval, at most 1 s) and the
/// event loop's lag (how late a 10 ms timer fires).
pub async fn probe(runtime: &Runtime, probe: &Probe) -> Vec<DependencyHealth> {
    let asked = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let lag = asked.elapsed().saturating_sub(Duration::from_millis(10));
    let mut checks = runtime.probe(probe.interval.min(Duration::from_secs(1))).await;
    checks.push(DependencyHealth {
        name: "event_loop".into(),
        ok: lag <= probe.max_lag,
        detail: format!("a 10 ms timer fired {} µs late", lag.as_micros()),
    });
    checks
}

/// Probes every interval until aborted.
pub async fn probe_forever(runtime: Arc<Runtime>, readiness: Arc<Readiness>, config: Probe) {
    loop {
        tokio::time::sleep(config.interval).await;
        readiness.set(probe(&runtime, &config).await);
    }
}
