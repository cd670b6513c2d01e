//! The upstream simulators of a repetition: started before the server (whose command, env and
//! URL get their addresses in place of `@upstream:NAME`), broken on cue by the scenario's
//! faults, and stopped with the repetition (each repetition starts from healthy upstreams).

use std::collections::BTreeMap;

use tokio::time::Instant;

use crate::config::{FaultStep, Plan, UPSTREAM_PLACEHOLDER, UpstreamSim};
use crate::results::FaultWindow;
use crate::upstream::{Behaviour, FaultSpec, Simulator, SimulatorConfig};

/// Starts one simulator per configured upstream, on loopback ports of their own.
pub async fn start(upstreams: &BTreeMap<String, UpstreamSim>) -> Result<BTreeMap<String, Simulator>, String> {
    let mut started = BTreeMap::new();
    for (name, sim) in upstreams {
        let behaviour = Behaviour { latency: sim.latency, error_rate: sim.error_rate, error_status: sim.error_status };
        let config = SimulatorConfig { behaviour, seed: sim.seed, ..SimulatorConfig::default() };
        let simulator =
            Simulator::start(config).await.map_err(|e| format!("starting the upstream simulator `{name}`: {e}"))?;
        started.insert(name.clone(), simulator);
    }
    Ok(started)
}

/// The plan with every `@upstream:NAME` replaced by that simulator's address.
pub fn substitute(plan: &Plan, simulators: &BTreeMap<String, Simulator>) -> Plan {
    let mut plan = plan.clone();
    if simulators.is_empty() {
        return plan;
    }
    let replace = |text: &mut String| {
        // Longest names first, so that `@upstream:cat` does not eat `@upstream:catalog`.
        let mut names: Vec<&String> = simulators.keys().collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        for name in names {
            *text = text.replace(&format!("{UPSTREAM_PLACEHOLDER}{name}"), &simulators[name].url());
        }
    };
    plan.server.command.iter_mut().for_each(replace);
    plan.server.env.values_mut().for_each(replace);
    if let Some(url) = plan.server.url.as_mut() {
        replace(url);
    }
    plan
}

/// Schedules the faults relative to the start of the measured window; returns their windows.
pub fn schedule(
    faults: &[FaultStep],
    simulators: &BTreeMap<String, Simulator>,
    measure_start: Instant,
) -> Vec<FaultWindow> {
    let now = Instant::now();
    faults
        .iter()
        .filter_map(|f| {
            let simulator = simulators.get(&f.upstream)?;
            let kind = f.fault().ok()?; // validated when the config was loaded
            let after = (measure_start + f.at.0).saturating_duration_since(now);
            simulator.schedule(FaultSpec { kind, after, duration: f.duration.0 });
            let start_s = f.at.0.as_secs_f64();
            Some(FaultWindow {
                upstream: f.upstream.clone(),
                kind: f.kind_name().to_string(),
                start_s,
                end_s: start_s + f.duration.0.as_secs_f64(),
                figures: None,
            })
        })
        .collect()
}
