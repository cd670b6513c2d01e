//! The runtime composed: `runtime.upstream(name)?.get_json(path)` against a fake upstream
//! (wiremock on loopback), freshness, breaker time, retry delays and attempt timeouts on a manual
//! clock (retries here wait 0 ms, so that a standing clock never holds one back).

use std::sync::Arc;
use std::time::Duration;

use mcp_runtime::{Level, ManualClock, Runtime, RuntimeConfig};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config(url: &str, extra: &str) -> RuntimeConfig {
    let yaml = format!(
        "upstreams:\n  catalog:\n    url: {url}\n    retry: {{ max_attempts: 2, base_delay: 0ms, max_delay: 0ms }}\n    \
         cache: {{ ttl: 10s, stale_while_revalidate: 0s, stale_if_error: 60s }}\n    \
         breaker: {{ consecutive_failures: 3, open_duration: 5s, jitter: 0.0, half_open_permits: 1 }}\n{extra}"
    );
    RuntimeConfig::from_yaml(&yaml, "test").unwrap()
}

async fn requests_to(server: &MockServer, p: &str) -> usize {
    server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == p).count()
}

#[tokio::test]
async fn a_tool_call_goes_through_every_layer_and_degrades_in_order() {
    let server = MockServer::start().await;
    Mock::given(path("/items/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    Mock::given(path("/items/404")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    let clock = ManualClock::new();
    let runtime = Runtime::new(&config(&server.uri(), ""), clock.clone()).unwrap();
    let catalog = runtime.upstream("catalog").unwrap();

    // A miss loads, a second read is a hit: one request in all.
    let first = catalog.get_json("/items/1").await.unwrap();
    assert_eq!((first.value.as_deref(), first.level), (Some(&json!({"id": 1})), Level::Fresh));
    catalog.get_json("/items/1").await.unwrap();
    assert_eq!(requests_to(&server, "/items/1").await, 1);
    assert_eq!(catalog.get_json("/items/404").await.unwrap().value, None, "404: no such item");

    // The upstream goes down: past its TTL the entry is served stale, marked degraded.
    server.reset().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).mount(&server).await;
    clock.advance(Duration::from_secs(11));
    let stale = catalog.get_json("/items/1").await.unwrap();
    assert_eq!((stale.value.as_deref(), stale.level), (Some(&json!({"id": 1})), Level::Stale));
    assert!(stale.level.is_degraded());
    // That load made two failed attempts (a retry); the next call's first attempt is the third
    // failure in a row, which trips the breaker, and its retry is rejected: nothing cached to
    // fall back on, so the caller is told when to come back.
    let none_cached = catalog.get_json("/items/2").await.unwrap_err();
    assert!(none_cached.to_string().contains("circuit open"), "{none_cached}");
    let requests_before = server.received_requests().await.unwrap().len();
    let open = catalog.get_json("/items/3").await.unwrap_err();
    assert_eq!(open.retry_after, Some(Duration::from_secs(5)), "{open}");
    assert!(open.to_string().contains("circuit open"), "{open}");
    assert_eq!(server.received_requests().await.unwrap().len(), requests_before, "an open breaker sends nothing");

    // It recovers: after the open time one probe goes through and closes it.
    server.reset().await;
    Mock::given(path("/items/3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 3})))
        .mount(&server)
        .await;
    clock.advance(Duration::from_secs(5));
    assert_eq!(catalog.get_json("/items/3").await.unwrap().level, Level::Fresh);

    let stats = runtime.stats();
    let u = &stats.upstreams[0];
    assert_eq!(u.breaker.state, "closed");
    let transitions: Vec<_> = u.breaker.transitions.iter().map(|t| (t.from, t.to, t.count)).collect();
    assert_eq!(transitions, [("closed", "open", 1), ("open", "half_open", 1), ("half_open", "closed", 1)]);
    assert_eq!((u.cache.hits, u.cache.stale), (1, 1));
    assert_eq!(u.fallback["stale"], 1);
    assert_eq!(u.fallback["error"], 2);
    assert!(u.retries.retried >= 1, "{:?}", u.retries);
    assert_eq!(u.breaker.rejected, 2, "the retry of /items/2 and the call for /items/3");
}

#[tokio::test]
async fn the_static_default_serves_when_nothing_else_can() {
    let server = MockServer::start().await;
    Mock::given(path("/items/9")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let runtime =
        Runtime::new(&config(&server.uri(), "    fallback: { name: placeholder }\n"), ManualClock::new()).unwrap();
    let reply = runtime.upstream("catalog").unwrap().get_json("/items/9").await.unwrap();
    assert_eq!((reply.value.as_deref(), reply.level), (Some(&json!({"name": "placeholder"})), Level::StaticDefault));
    assert!(
        runtime
            .upstream("billing")
            .unwrap_err()
            .to_string()
            .contains("no upstream is called \"billing\" (configured: catalog)")
    );
}

#[tokio::test]
async fn concurrent_batch_lookups_go_out_as_one_batch_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/items/batch"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": {"a": {"id": "a"}, "b": {"id": "b"}}})))
        .mount(&server)
        .await;
    let extra = "    batch: { path: /items/batch, limits: { max_size: 8, max_delay: 20ms } }\n";
    let clock = ManualClock::new();
    let runtime = Arc::new(Runtime::new(&config(&server.uri(), extra), clock.clone()).unwrap());
    let lookups: Vec<_> = ["a", "b", "c", "a"]
        .into_iter()
        .map(|id| {
            let runtime = Arc::clone(&runtime);
            tokio::spawn(async move { runtime.upstream("catalog").unwrap().batch_get(id).await })
        })
        .collect();
    // The four are queued and the batch waits out its delay on the runtime's clock.
    while runtime.stats().upstreams[0].batch.as_ref().unwrap().items == 0 && clock.sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_millis(20));
    let mut values = Vec::new();
    for l in lookups {
        values.push(l.await.unwrap().unwrap().value.map(|v| v["id"].clone()));
    }
    assert_eq!(values, [Some(json!("a")), Some(json!("b")), None, Some(json!("a"))]);
    assert_eq!(requests_to(&server, "/items/batch").await, 1, "four lookups, one batch call");
    let sent: serde_json::Value = server.received_requests().await.unwrap()[0].body_json().unwrap();
    let mut ids: Vec<_> = sent["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"], "a key asked twice is sent once");
    let batch = runtime.stats().upstreams[0].batch.clone().unwrap();
    assert_eq!((batch.batches, batch.items), (1, 3));
}

#[tokio::test]
async fn metrics_carry_every_documented_name_in_valid_prometheus_text() {
    let server = MockServer::start().await;
    Mock::given(path("/items/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let extra = "    rate: { per_second: 1000, burst: 100 }\n    adaptive: {}\n    batch: { path: /b }\ntenants: { rate: { per_second: 1, burst: 1 } }\n";
    let runtime = Runtime::new(&config(&server.uri(), extra), ManualClock::new()).unwrap();
    runtime.upstream("catalog").unwrap().get_json("/items/1").await.unwrap();
    runtime.admit("tenant-a").unwrap();
    assert!(runtime.admit("tenant-a").is_err(), "the tenant's one call a second is spent");
    let text = runtime.prometheus();
    let names = [
        "mcp_breaker_state{upstream=\"catalog\"} 0",
        "mcp_breaker_transitions_total",
        "mcp_breaker_calls_total{upstream=\"catalog\",outcome=\"success\"} 1",
        "mcp_cache_requests_total{cache=\"catalog\",result=\"miss\"} 1",
        "mcp_cache_entries{cache=\"catalog\"} 1",
        "mcp_pool_connections{upstream=\"catalog\",state=\"idle\"} 1",
        "mcp_pool_wait_seconds_bucket{upstream=\"catalog\",le=\"+Inf\"} 1",
        "mcp_limiter_rejected_total{limiter=\"tenants\",reason=\"rate\"} 1",
        "mcp_limiter_rejected_total{limiter=\"catalog.rate\",reason=\"rate\"} 0",
        "mcp_retries_total{upstream=\"catalog\",outcome=\"retried\"} 0",
        "mcp_fallback_total{level=\"fresh\"} 1",
        "mcp_batch_size_count{upstream=\"catalog\"} 0",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
        "tokio_alive_tasks ",
    ];
    for name in names {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("valid exposition text");
    assert!(parsed.samples.len() > 40, "{} samples", parsed.samples.len());
}

#[tokio::test]
async fn a_hung_upstream_opens_the_breaker_and_the_tool_answers_from_the_cache() {
    let server = MockServer::start().await;
    Mock::given(path("/items/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    // Attempts cut at 100 ms, one attempt a call: the shipped config's shape (300 ms), shorter.
    let yaml = format!(
        "upstreams:\n  catalog:\n    url: {}\n    retry: {{ max_attempts: 1, per_attempt_timeout: 100ms }}\n    \
         cache: {{ ttl: 1s, stale_while_revalidate: 0s, stale_if_error: 60s }}\n    \
         breaker: {{ consecutive_failures: 3, open_duration: 5s, jitter: 0.0, half_open_permits: 1 }}\n",
        server.uri()
    );
    let runtime = Runtime::new(&RuntimeConfig::from_yaml(&yaml, "test").unwrap(), clock.clone()).unwrap();
    let catalog = runtime.upstream("catalog").unwrap();
    assert_eq!(catalog.get_json("/items/1").await.unwrap().level, Level::Fresh);

    // The upstream hangs (800 ms an answer): past its TTL each call's attempt times out.
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})).set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    clock.advance(Duration::from_secs(2));
    for _ in 0..3 {
        // The attempt waits on the runtime's clock: it times out when the clock passes 100 ms.
        let call = tokio::spawn({
            let catalog = catalog.clone();
            async move { catalog.get_json("/items/1").await }
        });
        while clock.sleepers() == 0 {
            tokio::task::yield_now().await;
        }
        clock.advance(Duration::from_millis(100));
        let reply = call.await.unwrap().unwrap();
        assert_eq!(reply.level, Level::Stale, "served from the cache while the upstream hangs");
    }
    let breaker = runtime.stats().upstreams[0].breaker.clone();
    // Timeouts are failures to the breaker, not cancellations it ignores.
    assert_eq!((breaker.failures, breaker.ignored), (3, 0), "{breaker:?}");
    assert_eq!(breaker.state, "open", "three timeouts in a row: {breaker:?}");
    // Open: the next call sends nothing and still answers from the cache.
    let before = server.received_requests().await.unwrap().len();
    assert_eq!(catalog.get_json("/items/1").await.unwrap().level, Level::Stale);
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}

#[tokio::test]
async fn an_upstreams_retry_after_reaches_the_caller() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "7"))
        .mount(&server)
        .await;
    let yaml = format!("upstreams:\n  catalog:\n    url: {}\n    retry: {{ max_attempts: 1 }}\n", server.uri());
    let runtime = Runtime::new(&RuntimeConfig::from_yaml(&yaml, "test").unwrap(), ManualClock::new()).unwrap();
    let err = runtime.upstream("catalog").unwrap().get_json("/items/1").await.unwrap_err();
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)), "{err}");
}

#[tokio::test]
async fn with_max_bytes_the_cache_holds_bytes_not_entries() {
    let server = MockServer::start().await;
    // Items of about 500 bytes of JSON each.
    let item = json!({"id": 1, "blob": "x".repeat(480)});
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200).set_body_json(&item)).mount(&server).await;
    let yaml =
        format!("upstreams:\n  catalog:\n    url: {}\n    cache: {{ ttl: 60s, max_bytes: 2000 }}\n", server.uri());
    let runtime = Runtime::new(&RuntimeConfig::from_yaml(&yaml, "test").unwrap(), ManualClock::new()).unwrap();
    let catalog = runtime.upstream("catalog").unwrap();
    for k in 0..20 {
        catalog.get_json(&format!("/items/{k}")).await.unwrap();
    }
    let cache = runtime.stats().upstreams[0].cache.clone();
    assert!(cache.weight <= 2000, "held {} bytes", cache.weight);
    assert!((1..=4).contains(&cache.entries), "four 500-byte items at most, not 20: {}", cache.entries);
    assert!(runtime.prometheus().contains("mcp_cache_weight{cache=\"catalog\"}"));
}
