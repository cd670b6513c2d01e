//! Faults scheduled on the simulated upstream: an outage (connections refused, or every
//! request answered 503), a slowdown (another latency distribution) or an error burst (another
//! error rate), each starting after a delay and lasting a duration, then ending by itself.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::behaviour::{Behaviour, Latency};

/// A fault as asked for (`POST /admin/faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// From now until it starts.
    #[serde(default, with = "crate::runtime::config::duration")]
    pub after: Duration,
    #[serde(with = "crate::runtime::config::duration")]
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// The upstream is down: `refuse` closes its port (connections refused, open ones cut),
    /// `unavailable` answers every request 503.
    Outage {
        #[serde(default)]
        mode: OutageMode,
    },
    /// Requests take `latency` instead.
    Slowdown { latency: Latency },
    /// This share of requests fails with `status`.
    ErrorBurst {
        rate: f64,
        #[serde(default = "service_unavailable")]
        status: u16,
    },
}

fn service_unavailable() -> u16 {
    503
}

/// How an outage looks to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// The port closes: connections are refused.
    #[default]
    Refuse,
    /// Every request is answered 503.
    Unavailable,
}

/// A fault on the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    pub spec: FaultSpec,
    pub starts: Instant,
    pub ends: Instant,
}

impl Scheduled {
    pub fn new(spec: FaultSpec, now: Instant) -> Scheduled {
        let starts = now + spec.after;
        Scheduled { ends: starts + spec.duration, starts, spec }
    }

    pub fn active(&self, now: Instant) -> bool {
        self.starts <= now && now < self.ends
    }
}

/// What a request meets now: the behaviour with the active faults applied, or `None` when an
/// outage answers it 503 outright.
pub fn effective(base: &Behaviour, faults: &[Scheduled], now: Instant) -> Behaviour {
    let mut b = base.clone();
    for f in faults.iter().filter(|f| f.active(now)) {
        match &f.spec.kind {
            FaultKind::Outage { mode: OutageMode::Unavailable } => {
                b.error_rate = 1.0;
                b.error_status = 503;
            }
            FaultKind::Outage { mode: OutageMode::Refuse } => {}
            FaultKind::Slowdown { latency } => b.latency = *latency,
            FaultKind::ErrorBurst { rate, status } => {
                b.error_rate = *rate;
                b.error_status = *status;
            }
        }
    }
    b
}

/// The end of the refusing outage active now, if any.
pub fn refusing_until(faults: &[Scheduled], now: Instant) -> Option<Instant> {
    faults
        .iter()
        .filter(|f| f.active(now) && matches!(f.spec.kind, FaultKind::Outage { mode: OutageMode::Refuse }))
        .map(|f| f.ends)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_from_the_admin_json_and_apply_only_while_active() {
        let outage: FaultSpec = serde_json::from_str(r#"{"kind":"outage","duration":"3s","after":"1s"}"#).unwrap();
        assert_eq!(outage.kind, FaultKind::Outage { mode: OutageMode::Refuse });
        let burst: FaultSpec = serde_json::from_str(r#"{"kind":"error_burst","rate":0.5,"duration":"2s"}"#).unwrap();
        assert_eq!(burst.kind, FaultKind::ErrorBurst { rate: 0.5, status: 503 });
        let bad = serde_json::from_str::<FaultSpec>(r#"{"kind":"meteor","duration":"2s"}"#).unwrap_err();
        assert!(bad.to_string().contains("unknown variant `meteor`"), "{bad}");

        let t0 = Instant::now();
        let faults = [Scheduled::new(outage, t0), Scheduled::new(burst, t0)];
        let base = Behaviour::default();
        assert_eq!(effective(&base, &faults, t0).error_rate, 0.5, "the burst is on");
        assert_eq!(refusing_until(&faults, t0), None, "the outage starts after 1 s");
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(refusing_until(&faults, t1), Some(t0 + Duration::from_secs(4)));
        assert_eq!(effective(&base, &faults, t1).error_rate, 0.5);
        assert_eq!(effective(&base, &faults, t0 + Duration::from_secs(5)), base, "every fault has ended");
    }
}
