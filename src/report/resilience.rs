//! A scenario's resilience figures in a few words: the server's cache hit ratio and breaker
//! opens, and per fault how soon the breaker opened, what the clients saw while it lasted and
//! how long recovery took. Medians over the repetitions: one slow repetition does not decide.

use std::collections::BTreeMap;

use crate::results::{FaultWindow, ScenarioResult};

/// One figure of a scenario, already formatted; `fault`: the fault it belongs to.
struct Figure {
    fault: Option<String>,
    name: &'static str,
    value: String,
}

impl Figure {
    fn full_name(&self) -> String {
        match &self.fault {
            Some(fault) => format!("{fault}: {}", self.name),
            None => self.name.to_string(),
        }
    }
}

/// The scenario's figures; empty when its server reported none and it had no faults.
fn figures(s: &ScenarioResult) -> Vec<Figure> {
    let mut out = Vec::new();
    let runtime: Vec<_> = s.repetitions.iter().filter_map(|r| r.runtime.as_ref()).collect();
    if !runtime.is_empty() {
        if let Some(ratio) = median(runtime.iter().filter_map(|r| r.cache_hit_ratio)) {
            let stale = median(runtime.iter().filter_map(|r| {
                let lookups = r.cache_hits + r.cache_stale + r.cache_misses;
                (lookups > 0).then(|| r.cache_stale as f64 / lookups as f64)
            }));
            let value = match stale {
                Some(st) if st > 0.0 => format!("{} ({} stale)", percent(ratio), percent(st)),
                _ => percent(ratio),
            };
            out.push(Figure { fault: None, name: "cache hit ratio", value });
        }
        let opens = median(runtime.iter().map(|r| r.breaker_opens as f64)).unwrap_or(0.0);
        out.push(Figure { fault: None, name: "breaker opens", value: format!("{opens:.0}") });
    }
    // The same fault in every repetition: grouped by its position in the scenario.
    let mut by_fault: BTreeMap<usize, Vec<&FaultWindow>> = BTreeMap::new();
    for r in &s.repetitions {
        for (i, f) in r.faults.iter().enumerate() {
            by_fault.entry(i).or_default().push(f);
        }
    }
    for faults in by_fault.values() {
        let first = faults[0];
        let label = format!("{} {} {:.1}–{:.1}s", first.upstream, first.kind, first.start_s, first.end_s);
        let measured: Vec<_> = faults.iter().filter_map(|f| f.figures.as_ref()).collect();
        if measured.is_empty() {
            continue;
        }
        let seconds = |v: Option<f64>| v.map_or("–".to_string(), |t| format!("{t:.2}s"));
        let opened = median(measured.iter().filter_map(|f| f.breaker_opened_after_s));
        let never_opened = measured.iter().filter(|f| f.breaker_opened_after_s.is_none()).count();
        let opened = match (opened, never_opened) {
            _ if runtime.is_empty() => "not reported by the server".to_string(),
            (Some(t), 0) => seconds(Some(t)),
            (Some(t), n) => format!("{} ({n} of {} repetitions: never)", seconds(Some(t)), measured.len()),
            (None, _) => "did not open".to_string(),
        };
        let fault = Some(label);
        out.push(Figure { fault: fault.clone(), name: "breaker opened after", value: opened });
        let rate = |v: Option<f64>| v.map_or("–".to_string(), percent);
        out.push(Figure {
            fault: fault.clone(),
            name: "errors during it",
            value: rate(median(measured.iter().filter_map(|f| f.error_rate))),
        });
        out.push(Figure {
            fault: fault.clone(),
            name: "degraded answers during it",
            value: rate(median(measured.iter().filter_map(|f| f.degraded_share))),
        });
        let unrecovered = measured.iter().filter(|f| f.recovery_s.is_none()).count();
        let recovery = match (median(measured.iter().filter_map(|f| f.recovery_s)), unrecovered) {
            (Some(t), 0) => seconds(Some(t)),
            (Some(t), n) => format!("{} ({n} of {} repetitions: not in the window)", seconds(Some(t)), measured.len()),
            (None, _) => "not within the window".to_string(),
        };
        out.push(Figure { fault, name: "recovery after it", value: recovery });
    }
    out
}

/// For a run's report: one line per scenario that has figures.
pub fn line(s: &ScenarioResult) -> Option<String> {
    let figures = figures(s);
    if figures.is_empty() {
        return None;
    }
    // Figures of one fault read as one clause: "catalog outage 2.0–5.0s: a, b, c".
    let mut clauses: Vec<String> = Vec::new();
    let mut last_fault: Option<&str> = None;
    for f in &figures {
        let figure = format!("{} {}", f.name, f.value);
        match (&f.fault, last_fault) {
            (Some(fault), Some(last)) if fault == last => {
                let clause = clauses.last_mut().expect("a clause per fault");
                clause.push_str(", ");
                clause.push_str(&figure);
            }
            (Some(fault), _) => clauses.push(format!("{fault}: {figure}")),
            (None, _) => clauses.push(figure),
        }
        last_fault = f.fault.as_deref();
    }
    Some(format!("{}: {} (medians of {} repetitions)", s.name, clauses.join("; "), s.repetitions.len()))
}

/// For a comparison: base and head side by side, figure by figure (`scenario`, `figure`,
/// `base`, `head`).
pub fn rows(base: Option<&ScenarioResult>, head: &ScenarioResult) -> Vec<[String; 4]> {
    let base: BTreeMap<String, String> =
        base.map(figures).unwrap_or_default().into_iter().map(|f| (f.full_name(), f.value)).collect();
    figures(head)
        .into_iter()
        .map(|f| {
            let name = f.full_name();
            let b = base.get(&name).cloned().unwrap_or_else(|| "–".to_string());
            [head.name.clone(), name, b, f.value]
        })
        .collect()
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) { (v[mid - 1] + v[mid]) / 2.0 } else { v[mid] })
}
