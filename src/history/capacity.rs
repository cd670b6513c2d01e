//! Capacity planning from `breakpoint` scenarios: an instance's capacity over the commits
//! since its last change point, and the instances a target rate needs with headroom.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{History, HistoryMetric, Slo};
use crate::results::short_commit;

/// What to plan for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanRequest {
    /// Calls per second at the peak.
    pub rate: f64,
    /// Room above the peak (0.3 = 30%).
    pub headroom: f64,
    /// The price of one instance for an hour, for the cost.
    pub price_per_hour: Option<f64>,
    /// The SLO the capacity was judged by (`None`: each scenario's own breakpoint limits).
    pub slo: Option<Slo>,
}

/// The instances one breakpoint scenario's measured capacity asks for.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityPlan {
    pub scenario: String,
    /// The machine class the capacity was measured on.
    pub environment: String,
    pub rate: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<Slo>,
    /// An instance's capacity: the mean of the latest segment's commits, with its 95% interval.
    pub capacity: f64,
    pub capacity_low: f64,
    pub capacity_high: f64,
    /// The latest segment: from this commit (the last change point, or the first commit), this
    /// many commits.
    pub since_commit: String,
    pub commits: usize,
    pub headroom: f64,
    /// ⌈rate × (1 + headroom) ÷ the capacity's lower bound⌉.
    pub instances: u64,
    /// The peak's share of what the instances carry at the mean capacity.
    pub utilisation: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_per_hour: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_per_month: Option<f64>,
    /// What the plan takes for granted.
    pub assumptions: Vec<String>,
}

/// Hours in an average month (365.25 × 24 ÷ 12).
const HOURS_A_MONTH: f64 = 730.5;

/// A plan for every breakpoint scenario measured on the newest runs' machine class; an error
/// when there is none.
pub fn plan(history: &History, request: &PlanRequest) -> Result<Vec<CapacityPlan>, String> {
    let Some(newest) = history.environments.last() else { return Err("the history holds no runs".into()) };
    let plans: Vec<CapacityPlan> = history
        .series
        .iter()
        .filter(|s| s.metric == HistoryMetric::Capacity && s.environment == newest.class)
        .filter_map(|s| {
            let from = s.change_points.last().map_or(0, |c| c.index);
            let values: Vec<f64> = s.points[from..].iter().map(|p| p.value).filter(|v| *v > 0.0).collect();
            let (mean, low, high) = interval(&values)?;
            let instances = (request.rate * (1.0 + request.headroom) / low).ceil().max(1.0) as u64;
            let limits = match &request.slo {
                Some(slo) => describe_slo(slo),
                None => "the scenario's own breakpoint limits".to_string(),
            };
            let mut assumptions = vec![
                "stateless instances scale linearly: N instances carry N times one instance's capacity while the shared parts (Redis, the upstreams) keep up, as the fleet test measures for three".to_string(),
                format!(
                    "one instance's capacity is the breakpoint ramp's successful calls per second in the last second that kept {limits}, measured on {}; a machine of another class needs its own measurement",
                    s.environment
                ),
                format!(
                    "the capacity is that of the {} commit(s) since {} ({}), and the plan uses its 95% lower bound",
                    values.len(),
                    short_commit(&s.points[from].commit),
                    if from == 0 { "the first measured" } else { "the last change point" }
                ),
                format!("{:.0}% headroom above the peak; add one instance for a rolling update", request.headroom * 100.0),
            ];
            if request.slo.is_some() {
                assumptions.push(
                    "where the SLO is looser than the scenario's own limits, the ramp stopped at those first: the capacity is then at least the figure".to_string(),
                );
            }
            Some(CapacityPlan {
                scenario: s.scenario.clone(),
                environment: s.environment.clone(),
                rate: request.rate,
                slo: request.slo,
                capacity: mean,
                capacity_low: low,
                capacity_high: high,
                since_commit: s.points[from].commit.clone(),
                commits: values.len(),
                headroom: request.headroom,
                instances,
                utilisation: request.rate / (instances as f64 * mean),
                cost_per_hour: request.price_per_hour.map(|p| p * instances as f64),
                cost_per_month: request.price_per_hour.map(|p| p * instances as f64 * HOURS_A_MONTH),
                assumptions,
            })
        })
        .collect();
    if plans.is_empty() {
        return Err(format!(
            "no breakpoint scenario with a measured capacity in the runs on {} (a scenario with `breakpoint:` limits and a ramping arrival rate measures one)",
            newest.class
        ));
    }
    Ok(plans)
}

/// The mean and 95% interval (Student's t) of `values`; with one value, that value.
fn interval(values: &[f64]) -> Option<(f64, f64, f64)> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some((mean, mean, mean));
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).ok()?.inverse_cdf(0.975);
    let half = t * (var / n as f64).sqrt();
    Some((mean, (mean - half).max(f64::MIN_POSITIVE), mean + half))
}

pub(super) fn describe_slo(slo: &Slo) -> String {
    let mut parts = Vec::new();
    if let Some(p99) = slo.p99_us {
        parts.push(format!("p99 < {}", crate::report::format::micros(p99)));
    }
    if let Some(e) = slo.error_rate {
        parts.push(format!("error rate < {:.2}%", e * 100.0));
    }
    parts.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Change, EnvironmentRuns, Point, SCHEMA, Series};

    fn history(values: &[f64], change_at: Option<usize>) -> History {
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                commit: format!("c{i:02}"),
                date: None,
                value: *v,
                low: *v,
                high: *v,
                repetitions: 3,
            })
            .collect();
        let change_points = change_at
            .map(|i| Change {
                index: i,
                commit: format!("c{i:02}"),
                date: None,
                before: 1.0,
                after: 1.0,
                change: 0.0,
                interval: None,
                p_value: Some(0.005),
                regression: true,
            })
            .into_iter()
            .collect();
        let env = EnvironmentRuns {
            class: "x".into(),
            runs: values.len(),
            first_commit: "c00".into(),
            last_commit: "c".into(),
        };
        History {
            schema: SCHEMA,
            source: "test".into(),
            runs: values.len(),
            environments: vec![env],
            series: vec![Series {
                environment: "x".into(),
                scenario: "ramp".into(),
                operation: "(all)".into(),
                metric: HistoryMetric::Capacity,
                gates: true,
                alert_above: 0.05,
                points,
                change_points,
            }],
            notes: Vec::new(),
            plans: Vec::new(),
        }
    }

    #[test]
    fn the_plan_uses_the_latest_segments_lower_bound_with_headroom() {
        // 12,000/s before the change at c05, about 10,000/s since.
        let h =
            history(&[12000.0, 12100.0, 11900.0, 12050.0, 11950.0, 9900.0, 10100.0, 10000.0, 9950.0, 10050.0], Some(5));
        let request = PlanRequest { rate: 50_000.0, headroom: 0.3, price_per_hour: Some(0.5), slo: None };
        let p = &plan(&h, &request).unwrap()[0];
        assert_eq!((p.since_commit.as_str(), p.commits), ("c05", 5));
        assert!((p.capacity - 10_000.0).abs() < 1e-9);
        assert!(p.capacity_low < 10_000.0 && p.capacity_low > 9_800.0, "{}", p.capacity_low);
        // 65,000 / 9,9xx: 7 instances.
        assert_eq!(p.instances, 7);
        assert!((p.cost_per_hour.unwrap() - 3.5).abs() < 1e-9);
        assert!((p.utilisation - 50_000.0 / 70_000.0).abs() < 1e-9);
        assert!(p.assumptions.iter().any(|a| a.contains("scale linearly")));
    }

    #[test]
    fn no_breakpoint_scenario_is_a_clear_error() {
        let mut h = history(&[1.0, 2.0], None);
        h.series[0].metric = HistoryMetric::P50;
        let e = plan(&h, &PlanRequest { rate: 1.0, headroom: 0.0, price_per_hour: None, slo: None }).unwrap_err();
        assert!(e.contains("no breakpoint scenario"), "{e}");
    }
}
