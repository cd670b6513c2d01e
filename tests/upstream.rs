//! The upstream simulator, on its own and under the runtime: answers, seeded errors, faults on
//! cue, and what the runtime makes of an outage.

use std::time::Duration;

use mcp_perfcheck::runtime::{HttpConfig, HttpUpstream, Level, Runtime, RuntimeConfig, UpstreamError, tokio_clock};
use mcp_perfcheck::upstream::{Behaviour, FaultKind, FaultSpec, OutageMode, Simulator, SimulatorConfig};
use serde_json::json;
use tokio::time::Instant;

async fn simulator(behaviour: Behaviour) -> Simulator {
    Simulator::start(SimulatorConfig { behaviour, ..SimulatorConfig::default() }).await.unwrap()
}

fn fault(kind: FaultKind, after_ms: u64, duration_ms: u64) -> FaultSpec {
    FaultSpec { kind, after: Duration::from_millis(after_ms), duration: Duration::from_millis(duration_ms) }
}

#[tokio::test]
async fn the_simulator_answers_items_batches_and_faults_on_cue() {
    let sim = simulator(Behaviour::default()).await;
    let http = HttpUpstream::new("catalog", &sim.url(), HttpConfig::default(), tokio_clock()).unwrap();
    let item: serde_json::Value = http.get_json("/items/42").await.unwrap().unwrap();
    assert_eq!(item["id"], "42");
    let again: serde_json::Value = http.get_json("/items/42").await.unwrap().unwrap();
    assert_eq!(item, again, "an item is the same every time");
    assert_eq!(http.get_json::<serde_json::Value>("/items/missing-7").await.unwrap(), None);
    let batch = http.post_json("/items/batch", &json!({"ids": ["a", "missing-b"]})).await.unwrap();
    let batch: serde_json::Value = serde_json::from_slice(&batch.body).unwrap();
    assert_eq!(batch["items"].as_object().unwrap().keys().collect::<Vec<_>>(), ["a"]);

    // 503s for 300 ms, then healthy again.
    sim.schedule(fault(FaultKind::Outage { mode: OutageMode::Unavailable }, 0, 300));
    let down = http.get("/items/1").await.unwrap();
    assert_eq!(down.status, 503);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(http.get("/items/1").await.unwrap().status, 200);

    // A refusing outage closes the port: connections are refused until it ends.
    sim.schedule(fault(FaultKind::Outage { mode: OutageMode::Refuse }, 0, 300));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = HttpUpstream::new("fresh", &sim.url(), HttpConfig::default(), tokio_clock())
        .unwrap()
        .get("/items/1")
        .await
        .unwrap_err();
    assert!(matches!(refused, UpstreamError::Transport { .. }), "{refused}");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(http.get("/items/1").await.unwrap().status, 200, "the port is back");

    // A slowdown and an error burst change the draws while they last.
    sim.schedule(fault(FaultKind::Slowdown { latency: "fixed:150ms".parse().unwrap() }, 0, 400));
    let started = Instant::now();
    http.get("/items/1").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    sim.schedule(fault(FaultKind::ErrorBurst { rate: 1.0, status: 500 }, 0, 200));
    assert_eq!(http.get("/items/2").await.unwrap().status, 500);
    let s = sim.stats();
    assert_eq!((s.refusals, s.batches), (1, 1));
    assert!(s.errors_injected >= 2, "{s:?}");
    sim.stop().await;
}

#[tokio::test]
async fn the_admin_endpoint_schedules_faults_and_changes_behaviour() {
    let sim = simulator(Behaviour::default()).await;
    let http = HttpUpstream::new("admin", &sim.url(), HttpConfig::default(), tokio_clock()).unwrap();
    let set = http
        .post_json("/admin/faults", &json!({"kind": "error_burst", "rate": 1.0, "status": 429, "duration": "1s"}))
        .await
        .unwrap();
    assert_eq!(set.status, 201);
    assert_eq!(http.get("/items/1").await.unwrap().status, 429);
    let listed: serde_json::Value = http.get_json("/admin/faults").await.unwrap().unwrap();
    assert_eq!(listed[0]["kind"], "error_burst");
    assert_eq!(listed[0]["active"], true);
    let bad = http.post_json("/admin/faults", &json!({"kind": "meteor", "duration": "1s"})).await.unwrap();
    assert_eq!(bad.status, 422);
    assert!(String::from_utf8_lossy(&bad.body).contains("unknown variant `meteor`"));
    let stats: serde_json::Value = http.get_json("/admin/stats").await.unwrap().unwrap();
    assert_eq!(stats["errors_injected"], 1);
    sim.stop().await;
}

/// The fault test of the reference-server issue, at the runtime's level: during an outage,
/// cached keys are served stale (degraded), the breaker opens, and it closes within its open
/// duration (plus a probe) after the outage ends.
#[tokio::test]
async fn during_an_outage_cached_lookups_are_served_stale_and_the_breaker_recovers_after_it() {
    let sim = simulator(Behaviour::default()).await;
    let yaml = format!(
        "upstreams:\n  catalog:\n    url: {}\n    retry: {{ max_attempts: 1 }}\n    \
         cache: {{ ttl: 200ms, stale_while_revalidate: 0s, stale_if_error: 60s }}\n    \
         breaker: {{ consecutive_failures: 3, open_duration: 400ms, backoff_multiplier: 1.0, jitter: 0.0, half_open_permits: 1 }}\n",
        sim.url()
    );
    let runtime = Runtime::new(&RuntimeConfig::from_yaml(&yaml, "test").unwrap(), tokio_clock()).unwrap();
    let catalog = runtime.upstream("catalog").unwrap();
    for k in 1..=5 {
        assert_eq!(catalog.get_json(&format!("/items/{k}")).await.unwrap().level, Level::Fresh);
    }
    tokio::time::sleep(Duration::from_millis(250)).await; // every entry is past its TTL
    let outage = Duration::from_millis(1500);
    sim.schedule(fault(FaultKind::Outage { mode: OutageMode::Refuse }, 0, outage.as_millis() as u64));
    let began = Instant::now();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let state = || runtime.stats().upstreams[0].breaker.state;
    let mut opened_after = None;
    let mut n = 0;
    while began.elapsed() < outage - Duration::from_millis(200) {
        for k in 1..=5 {
            let reply = catalog.get_json(&format!("/items/{k}")).await.expect("a cached key is served");
            assert_eq!(reply.level, Level::Stale, "key {k} during the outage");
            assert_eq!(reply.value.unwrap()["id"], k.to_string());
        }
        n += 1;
        assert!(catalog.get_json(&format!("/items/uncached-{n}")).await.is_err(), "nothing to fall back on");
        if opened_after.is_none() && state() == "open" {
            opened_after = Some(began.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opened_after = opened_after.expect("the breaker opened during the outage");
    assert!(opened_after < Duration::from_millis(300), "opened {opened_after:?} into the outage");

    // After the outage: a probe closes the breaker within its open duration (plus the probe).
    while began.elapsed() < outage {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ended = Instant::now();
    while state() != "closed" && ended.elapsed() < Duration::from_secs(5) {
        n += 1;
        let _ = catalog.get_json(&format!("/items/probe-{n}")).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recovered = ended.elapsed();
    assert_eq!(state(), "closed");
    assert!(recovered <= Duration::from_millis(400 + 300), "closed {recovered:?} after the outage");
    assert_eq!(catalog.get_json("/items/1").await.unwrap().level, Level::Fresh);

    let stats = runtime.stats();
    let u = &stats.upstreams[0];
    assert!(u.fallback["stale"] >= 5, "{:?}", u.fallback);
    assert!(u.breaker.transitions.iter().any(|t| (t.from, t.to) == ("closed", "open")));
    assert!(u.breaker.transitions.iter().any(|t| (t.from, t.to) == ("half_open", "closed")));
    let metrics = runtime.prometheus();
    assert!(metrics.contains("mcp_breaker_state{upstream=\"catalog\"} 0"), "{metrics}");
    assert!(metrics.contains("mcp_breaker_transitions_total{upstream=\"catalog\",from=\"closed\",to=\"open\"}"));
    sim.stop().await;
}
