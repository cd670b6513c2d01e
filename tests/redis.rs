//! The runtime cache's second layer against a real redis-server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mcp_perfcheck::runtime::redis::{RedisConfig, RedisLayer};
use mcp_perfcheck::runtime::{Cache, CacheConfig, Served, tokio_clock};

use crate::common::{RedisServer, free_port};

type Layered = Cache<String, String, String>;

fn layered(url: &str, ttl: Duration) -> Layered {
    let config = RedisConfig { url: url.to_string(), prefix: "test:".into(), timeout: Duration::from_millis(200) };
    let layer = RedisLayer::new(config, tokio_clock()).unwrap();
    Cache::with_second_layer(CacheConfig { ttl, ..CacheConfig::default() }, tokio_clock(), Arc::new(layer))
}

/// A load that counts itself.
fn upstream(
    loads: &Arc<AtomicU32>,
    value: &str,
) -> impl FnOnce() -> std::future::Ready<Result<Option<String>, String>> + Send + 'static {
    let (loads, value) = (Arc::clone(loads), value.to_string());
    move || {
        loads.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Some(value)))
    }
}

#[tokio::test]
async fn an_instance_serves_from_redis_what_another_loaded() {
    let redis = RedisServer::start();
    let (a, b) = (layered(&redis.url(), Duration::from_secs(30)), layered(&redis.url(), Duration::from_secs(30)));
    let (loads_a, loads_b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let got = a.get_or_load("item-1".into(), upstream(&loads_a, "from-upstream")).await.unwrap();
    assert_eq!(got, Served::Fresh("from-upstream".into()));
    let got = b.get_or_load("item-1".into(), upstream(&loads_b, "never-called")).await.unwrap();
    assert_eq!(got, Served::Fresh("from-upstream".into()), "b's first layer was empty: redis answered");
    assert_eq!((loads_a.load(Ordering::SeqCst), loads_b.load(Ordering::SeqCst)), (1, 0));
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.l2_misses, sa.loads, sa.l2_errors), (1, 1, 0), "{sa:?}");
    assert_eq!((sb.l2_hits, sb.loads, sb.misses), (1, 0, 1), "{sb:?}");
    // And b's first layer was backfilled: the next read does not reach redis.
    b.get_or_load("item-1".into(), upstream(&loads_b, "never-called")).await.unwrap();
    assert_eq!((b.stats().hits, b.stats().l2_hits), (1, 1));
}

#[tokio::test]
async fn an_entry_read_from_redis_keeps_its_age() {
    let redis = RedisServer::start();
    let ttl = Duration::from_secs(1);
    let (a, b) = (layered(&redis.url(), ttl), layered(&redis.url(), ttl));
    let loads = Arc::new(AtomicU32::new(0));
    a.get_or_load("item-2".into(), upstream(&loads, "v1")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.get_or_load("item-2".into(), upstream(&loads, "v2")).await.unwrap(), Served::Fresh("v1".into()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    // 1.2 s after a loaded it: stale in b too (b read it at 0.5 s, but it was not new then).
    assert_eq!(b.get_or_load("item-2".into(), upstream(&loads, "v2")).await.unwrap(), Served::Stale("v1".into()));
}

#[tokio::test]
async fn a_redis_outage_is_a_miss_not_an_error() {
    let mut redis = RedisServer::start();
    let cache = layered(&redis.url(), Duration::from_secs(30));
    let loads = Arc::new(AtomicU32::new(0));
    cache.get_or_load("before".into(), upstream(&loads, "v")).await.unwrap();
    redis.stop();
    for i in 0..5 {
        let got = cache.get_or_load(format!("during-{i}"), upstream(&loads, "loaded")).await;
        assert_eq!(got, Ok(Served::Fresh("loaded".into())), "call {i} during the outage");
    }
    let s = cache.stats();
    assert_eq!(s.loads, 6, "every miss went to the upstream: {s:?}");
    assert!(s.l2_errors >= 3, "redis failures are counted: {s:?}");

    // A Redis that was never there is the same.
    let nobody = layered(&format!("redis://127.0.0.1:{}/0", free_port()), Duration::from_secs(30));
    let got = nobody.get_or_load("x".into(), upstream(&loads, "loaded")).await;
    assert_eq!(got, Ok(Served::Fresh("loaded".into())));
    assert!(nobody.stats().l2_errors >= 1);
}

#[tokio::test]
async fn two_instances_on_one_redis_serve_each_upstream_its_own_data_for_the_same_path() {
    use mcp_perfcheck::runtime::{Runtime, RuntimeConfig};
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let redis = RedisServer::start();
    let (catalog, pricing) = (MockServer::start().await, MockServer::start().await);
    Mock::given(path("/items/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"from": "catalog"})))
        .mount(&catalog)
        .await;
    Mock::given(path("/items/42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"from": "pricing"})))
        .mount(&pricing)
        .await;
    let yaml = format!(
        "upstreams:\n  catalog: {{ url: \"{}\", cache: {{ ttl: 30s }} }}\n  pricing: {{ url: \"{}\", cache: {{ ttl: 30s }} }}\nredis: {{ url: \"{}\", prefix: \"ns:\" }}\n",
        catalog.uri(),
        pricing.uri(),
        redis.url()
    );
    let config = RuntimeConfig::from_yaml(&yaml, "test").unwrap();
    let (a, b) = (Runtime::new(&config, tokio_clock()).unwrap(), Runtime::new(&config, tokio_clock()).unwrap());
    // Instance a looks the item up in the catalog (and puts it in Redis); instance b asks
    // pricing for the same path: it must get pricing's answer, not a's cached catalog entry.
    let item = a.upstream("catalog").unwrap().get_json("/items/42").await.unwrap();
    assert_eq!(item.value.as_deref(), Some(&serde_json::json!({"from": "catalog"})));
    let price = b.upstream("pricing").unwrap().get_json("/items/42").await.unwrap();
    assert_eq!(price.value.as_deref(), Some(&serde_json::json!({"from": "pricing"})));
    assert_eq!(pricing.received_requests().await.unwrap().len(), 1, "pricing was asked");
    // Within one upstream the entry is shared: b's catalog reads a's entry from Redis.
    let shared = b.upstream("catalog").unwrap().get_json("/items/42").await.unwrap();
    assert_eq!(shared.value.as_deref(), Some(&serde_json::json!({"from": "catalog"})));
    assert_eq!(catalog.received_requests().await.unwrap().len(), 1, "served from Redis, not loaded again");
}

#[tokio::test]
async fn an_invalidation_on_one_instance_reaches_redis_and_the_other_instance_within_a_second() {
    use mcp_perfcheck::runtime::{Runtime, RuntimeConfig};
    use wiremock::matchers::path;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let redis = RedisServer::start();
    let catalog = MockServer::start().await;
    let answer = |version: u32| {
        Mock::given(path("/items/7"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"v": version})))
    };
    answer(1).mount(&catalog).await;
    let yaml = format!(
        "upstreams:\n  catalog: {{ url: \"{}\", cache: {{ ttl: 30s }} }}\nredis: {{ url: \"{}\", prefix: \"inv:\" }}\n",
        catalog.uri(),
        redis.url()
    );
    let config = RuntimeConfig::from_yaml(&yaml, "test").unwrap();
    let (a, b) = (Runtime::new(&config, tokio_clock()).unwrap(), Runtime::new(&config, tokio_clock()).unwrap());
    let (ca, cb) = (a.upstream("catalog").unwrap(), b.upstream("catalog").unwrap());
    let value = |reply: mcp_perfcheck::runtime::Reply| reply.value.as_deref().cloned();
    assert_eq!(value(ca.get_json("/items/7").await.unwrap()), Some(serde_json::json!({"v": 1})));
    assert_eq!(value(cb.get_json("/items/7").await.unwrap()), Some(serde_json::json!({"v": 1})), "b reads a's entry");
    // Let b's subscription settle before the notice is sent (it subscribes when built).
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The item changes upstream; a invalidates it.
    catalog.reset().await;
    answer(2).mount(&catalog).await;
    ca.invalidate("/items/7").await.unwrap();
    assert_eq!(
        value(ca.get_json("/items/7").await.unwrap()),
        Some(serde_json::json!({"v": 2})),
        "a never reads the old entry back from Redis"
    );
    let started = std::time::Instant::now();
    loop {
        let seen = value(cb.get_json("/items/7").await.unwrap());
        if seen == Some(serde_json::json!({"v": 2})) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "b still serves {seen:?} after 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn invalidation_by_predicate_and_of_everything_reaches_redis_and_the_other_instance_and_no_other_upstream() {
    use mcp_perfcheck::runtime::{Runtime, RuntimeConfig};
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let redis = RedisServer::start();
    let (catalog, pricing) = (MockServer::start().await, MockServer::start().await);
    let answer = |version: u32| {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"v": version})))
    };
    answer(1).mount(&catalog).await;
    answer(1).mount(&pricing).await;
    let yaml = format!(
        "upstreams:\n  catalog: {{ url: \"{}\", cache: {{ ttl: 30s }} }}\n  pricing: {{ url: \"{}\", cache: {{ ttl: 30s }} }}\n\
         redis: {{ url: \"{}\", prefix: \"bulk:\" }}\n",
        catalog.uri(),
        pricing.uri(),
        redis.url()
    );
    let config = RuntimeConfig::from_yaml(&yaml, "test").unwrap();
    let (a, b) = (Runtime::new(&config, tokio_clock()).unwrap(), Runtime::new(&config, tokio_clock()).unwrap());
    let v = |reply: mcp_perfcheck::runtime::Reply| reply.value.as_deref().and_then(|v| v["v"].as_u64());
    for p in ["/items/1", "/items/2", "/other/3"] {
        assert_eq!(v(a.upstream("catalog").unwrap().get_json(p).await.unwrap()), Some(1));
        assert_eq!(v(b.upstream("catalog").unwrap().get_json(p).await.unwrap()), Some(1), "b reads a's {p}");
    }
    a.upstream("pricing").unwrap().get_json("/items/1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // b's subscription settles

    catalog.reset().await;
    answer(2).mount(&catalog).await;
    let dropped = a.upstream("catalog").unwrap().invalidate_where(|p| p.starts_with("/items/")).await.unwrap();
    assert_eq!(dropped, 2, "catalog's two /items/ entries, not /other/3, not pricing's /items/1");
    let started = std::time::Instant::now();
    for p in ["/items/1", "/items/2"] {
        loop {
            let seen = v(b.upstream("catalog").unwrap().get_json(p).await.unwrap());
            if seen == Some(2) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(1), "b still serves {p} v{seen:?} after 1 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(v(b.upstream("catalog").unwrap().get_json("/other/3").await.unwrap()), Some(1), "not matched: kept");
    // A third instance still finds pricing's entry in Redis: another upstream's namespace.
    let c = Runtime::new(&config, tokio_clock()).unwrap();
    let asked = pricing.received_requests().await.unwrap().len();
    assert_eq!(v(c.upstream("pricing").unwrap().get_json("/items/1").await.unwrap()), Some(1));
    assert_eq!(pricing.received_requests().await.unwrap().len(), asked, "served from Redis");

    assert_eq!(a.upstream("pricing").unwrap().invalidate_all().await.unwrap(), 1);
    c.upstream("pricing").unwrap().get_json("/items/1").await.unwrap();
    let started = std::time::Instant::now();
    while pricing.received_requests().await.unwrap().len() == asked {
        assert!(started.elapsed() < Duration::from_secs(1), "c kept pricing's entry after invalidate_all");
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.upstream("pricing").unwrap().get_json("/items/1").await.unwrap();
    }
}

/// `rate.scope: fleet`: two instances share one GCRA budget in Redis and together admit the
/// burst once; per instance (the default) each admits it; with Redis down each falls back to
/// its own budget.
#[tokio::test]
async fn a_fleet_scoped_rate_is_one_budget_for_every_instance_and_per_instance_is_n_times_it() {
    use mcp_perfcheck::runtime::{Runtime, RuntimeConfig};
    use wiremock::matchers::path_regex;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let mut redis = RedisServer::start();
    let api = MockServer::start().await;
    let redis_url = redis.url();
    Mock::given(path_regex("^/items/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})))
        .mount(&api)
        .await;
    // 0.1/s: no new leave comes during the test, so the counts are exact.
    let admitted = async |scope: &str, prefix: &str| -> usize {
        let yaml = format!(
            "upstreams:\n  catalog: {{ url: \"{}\", rate: {{ per_second: 0.1, burst: 4{scope} }}, retry: {{ max_attempts: 1 }} }}\nredis: {{ url: \"{}\", prefix: \"{prefix}\" }}\n",
            api.uri(),
            redis_url
        );
        let config = RuntimeConfig::from_yaml(&yaml, "test").unwrap();
        let (a, b) = (Runtime::new(&config, tokio_clock()).unwrap(), Runtime::new(&config, tokio_clock()).unwrap());
        let mut ok = 0;
        for i in 0..8 {
            for (name, runtime) in [("a", &a), ("b", &b)] {
                let got = runtime.upstream("catalog").unwrap().get_json(&format!("/items/{prefix}{name}{i}")).await;
                ok += usize::from(got.is_ok());
            }
        }
        ok
    };
    assert_eq!(admitted(", scope: fleet", "fleet:").await, 4, "one budget for both");
    assert_eq!(admitted("", "own:").await, 8, "per instance: 2 instances, twice the burst");
    assert_eq!(api.received_requests().await.unwrap().len(), 12);
    redis.stop();
    assert_eq!(admitted(", scope: fleet", "down:").await, 8, "Redis down: each instance's own budget");
}
