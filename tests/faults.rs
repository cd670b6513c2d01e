//! Fault steps in workloads: the engine starts the configured upstream simulators for each
//! repetition, hands their addresses to the server, breaks them on cue, and marks the fault
//! windows in the results.

use crate::common::{load_lock, run_ok};

const CONFIG: &str = r#"
server:
  command: ["@self", "serve", "--upstream", "@upstream:catalog"]
  upstreams:
    catalog: { latency: "fixed:1ms" }
workload:
  repetitions: 1
  scenarios:
    - name: outage
      concurrency: 4
      warmup: 500ms
      duration: 3s
      mix:
        - tool: lookup
          arguments: { id: { $sequence: { start: 1, step: 1 } } }
      faults:
        - { at: 1s, upstream: catalog, kind: outage, mode: unavailable, duration: 1s }
"#;

#[test]
fn an_outage_on_cue_shows_in_its_window_and_nowhere_else() {
    let _turn = load_lock();
    let results = run_ok(CONFIG);
    let rep = &results["scenarios"][0]["repetitions"][0];
    let fault = &rep["faults"][0];
    assert_eq!((fault["upstream"].as_str(), fault["kind"].as_str()), (Some("catalog"), Some("outage")));
    assert_eq!((fault["start_s"].as_f64(), fault["end_s"].as_f64()), (Some(1.0), Some(2.0)));
    // Every id is new (a miss), so during the outage lookups fail (nothing cached to fall back
    // on); before it they succeed, and after it they fail only until the breaker's probe (its
    // open time is 1 s in the reference server's runtime config).
    let errors_in_second = |k: f64| -> u64 {
        let series = rep["series"].as_array().unwrap();
        series.iter().filter(|p| p["t_s"].as_f64().unwrap().round() == k).map(|p| p["errors"].as_u64().unwrap()).sum()
    };
    let (before, during, after) = (errors_in_second(1.0), errors_in_second(2.0), errors_in_second(3.0));
    assert_eq!(before, 0, "before the outage: {}", rep["series"]);
    assert!(during > 0, "during the outage: {}", rep["series"]);
    assert!(after * 4 < during, "the second after it: {after} errors against {during}: {}", rep["series"]);
}
