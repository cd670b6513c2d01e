//! Fault steps in workloads: the engine starts the configured upstream simulators for each
//! repetition, hands their addresses to the server, breaks them on cue, and marks the fault
//! windows in the results.

use crate::common::{free_port, load_lock, run_ok};

/// The catalog's breaker opens for a tenth of a second at a time, without jitter (breakers
/// draw their own jitter; this test times the recovery).
const QUICK_BREAKER: &str = r#"
upstreams:
  catalog:
    url: http://127.0.0.1:1
    cache: { ttl: 1s, stale_while_revalidate: 1s, stale_if_error: 5m }
    breaker: { consecutive_failures: 5, open_duration: 100ms, max_open_duration: 100ms, jitter: 0.0, half_open_permits: 1 }
    retry: { max_attempts: 1, per_attempt_timeout: 300ms }
"#;

const CONFIG: &str = r#"
server:
  command: ["@self", "serve", "--runtime-config", "{runtime}"]
  env: { MCP_RUNTIME_UPSTREAM_CATALOG_URL: "@upstream:catalog" }
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
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime.yaml");
    std::fs::write(&runtime, QUICK_BREAKER).unwrap();
    let results = run_ok(&CONFIG.replace("{runtime}", &runtime.display().to_string()));
    let rep = &results["scenarios"][0]["repetitions"][0];
    let fault = &rep["faults"][0];
    assert_eq!((fault["upstream"].as_str(), fault["kind"].as_str()), (Some("catalog"), Some("outage")));
    assert_eq!((fault["start_s"].as_f64(), fault["end_s"].as_f64()), (Some(1.0), Some(2.0)));
    // Every id is new (a miss), so during the outage lookups fail (nothing cached to fall back
    // on); before it they succeed, and after it they fail only until the breaker's probe (a
    // tenth of a second at most).
    let errors_in_second = |k: f64| -> u64 {
        let series = rep["series"].as_array().unwrap();
        series.iter().filter(|p| p["t_s"].as_f64().unwrap().round() == k).map(|p| p["errors"].as_u64().unwrap()).sum()
    };
    let (before, during, after) = (errors_in_second(1.0), errors_in_second(2.0), errors_in_second(3.0));
    assert_eq!(before, 0, "before the outage: {}", rep["series"]);
    assert!(during > 0, "during the outage: {}", rep["series"]);
    assert!(after * 4 < during, "the second after it: {after} errors against {during}: {}", rep["series"]);
    // The fault's figures: nothing cached, so no degraded answers, and most calls fail.
    let f = &fault["figures"];
    assert!(f["error_rate"].as_f64().unwrap() > 0.5, "{f}");
    assert_eq!(f["degraded_share"].as_f64(), Some(0.0), "{f}");
    assert!(f["breaker_opened_after_s"].as_f64().unwrap() < 0.5, "{f}");
}

/// The reference server's runtime with a fixed open time (no backoff), so that the breaker's
/// close is bounded by one open time plus its probe.
const RUNTIME: &str = r#"
upstreams:
  catalog:
    url: http://127.0.0.1:1
    cache: { ttl: 1s, stale_while_revalidate: 1s, stale_if_error: 5m }
    breaker: { consecutive_failures: 5, open_duration: 1s, max_open_duration: 1s, half_open_permits: 1 }
    retry: { max_attempts: 1, per_attempt_timeout: 300ms }
"#;

#[test]
fn a_3s_outage_is_served_stale_and_the_breaker_opens_and_closes_in_time_as_runtime_stats_and_metrics_say() {
    let _turn = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime.yaml");
    std::fs::write(&runtime, RUNTIME).unwrap();
    let port = free_port();
    let results = run_ok(&format!(
        r#"
server:
  command: ["@self", "serve", "--http", "127.0.0.1:{port}", "--runtime-config", "{runtime}"]
  transport: http
  url: http://127.0.0.1:{port}/mcp
  metrics_url: http://127.0.0.1:{port}/metrics
  env: {{ MCP_RUNTIME_UPSTREAM_CATALOG_URL: "@upstream:catalog" }}
  upstreams:
    catalog: {{ latency: "fixed:1ms" }}
workload:
  repetitions: 1
  scenarios:
    - name: outage
      concurrency: 4
      warmup: 1500ms
      duration: 6s
      mix:
        - tool: lookup
          arguments: {{ id: {{ $random: [a, b, c, d] }} }}
          weight: 4
        - tool: lookup
          arguments: {{ id: {{ $sequence: {{ start: 1, step: 1 }} }} }}
          weight: 1
      faults:
        - {{ at: 1s, upstream: catalog, kind: outage, duration: 3s }}
"#,
        runtime = runtime.display()
    ));
    let rep = &results["scenarios"][0]["repetitions"][0];
    let f = &rep["faults"][0]["figures"];
    let figure = |k: &str| f[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {f}"));
    // The cached keys (4 of 5 calls) are past their 1 s TTL within the outage and served stale;
    // the new ids fail. So about a fifth fail, and most of the rest are degraded.
    assert!(figure("error_rate") > 0.05 && figure("error_rate") < 0.5, "{f}");
    assert!(figure("degraded_share") > 0.3, "cached keys are served stale, marked degraded: {f}");
    // Five consecutive failures open it: well within the first second.
    assert!(figure("breaker_opened_after_s") < 1.0, "{f}");
    // Closed within one open time (1 s) plus the probe after the outage.
    assert!(figure("breaker_closed_after_s") <= 1.5, "{f}");
    assert!(figure("recovery_s") <= 1.5, "{f}");
    let runtime = &rep["runtime"];
    assert!(runtime["breaker_opens"].as_u64().unwrap() >= 1, "{runtime}");
    assert!(runtime["cache_stale"].as_u64().unwrap() > 0, "{runtime}");
    assert_eq!(runtime["breakers_open_at_end"], serde_json::Value::Null, "closed again by the end: {runtime}");
    // The same story on /metrics, scraped through the window.
    let counters = rep["server_metrics"]["counters"].as_object().unwrap();
    let moved = |name: &str, labels: &[&str]| -> f64 {
        counters
            .iter()
            .filter(|(k, _)| k.starts_with(name) && labels.iter().all(|l| k.contains(l)))
            .map(|(_, v)| v.as_f64().unwrap())
            .sum()
    };
    let keys: Vec<&String> = counters.keys().collect();
    assert!(moved("mcp_breaker_transitions_total", &["to=\"open\""]) >= 1.0, "{keys:?}");
    assert!(moved("mcp_breaker_transitions_total", &["to=\"closed\""]) >= 1.0, "{keys:?}");
    assert!(moved("mcp_cache_requests_total", &["result=\"stale\""]) > 0.0, "{keys:?}");
    assert!(moved("mcp_fallback_total", &["level=\"stale\""]) > 0.0, "{keys:?}");
}

#[test]
fn an_upstream_slowed_past_its_attempt_timeout_opens_its_breaker_and_tools_answer_from_the_cache() {
    let _turn = load_lock();
    // The shipped runtime config (pricing: 300 ms attempts, one a call, five failures in a row
    // open it) against a pricing upstream slowed to 800 ms an answer.
    let results = run_ok(
        r#"
server:
  command: ["@self", "serve"]
  env:
    MCP_RUNTIME_UPSTREAM_CATALOG_URL: "@upstream:catalog"
    MCP_RUNTIME_UPSTREAM_PRICING_URL: "@upstream:pricing"
    MCP_RUNTIME_UPSTREAM_INVENTORY_URL: "@upstream:inventory"
  upstreams:
    catalog: { latency: "fixed:1ms" }
    pricing: { latency: "fixed:1ms" }
    inventory: { latency: "fixed:1ms" }
workload:
  repetitions: 1
  scenarios:
    - name: slow-pricing
      concurrency: 4
      warmup: 1s
      duration: 4s
      mix:
        - tool: aggregate
          arguments: { id: { $random: [1, 2, 3, 4] } }
      faults:
        - { at: 1s, upstream: pricing, kind: slowdown, latency: "fixed:800ms", duration: 2s }
"#,
    );
    let rep = &results["scenarios"][0]["repetitions"][0];
    let f = &rep["faults"][0]["figures"];
    let figure = |k: &str| f[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {f}"));
    // Five timed-out attempts in a row (300 ms each, four calls at a time): open well within
    // the first second of the slowdown.
    assert!(figure("breaker_opened_after_s") < 1.0, "{f}");
    // Pricing is cached (2 s TTL, stale-if-error 1 m): answers go on, marked degraded.
    assert!(figure("degraded_share") > 0.3, "{f}");
    assert!(figure("error_rate") < 0.1, "{f}");
    assert!(rep["runtime"]["breaker_opens"].as_u64().unwrap() >= 1, "{}", rep["runtime"]);
}
