use super::*;

const EXAMPLE: &str = r#"
upstreams:
  catalog:
    url: http://127.0.0.1:8081
    cache: { ttl: 30s, stale_while_revalidate: 30s, stale_if_error: 5m }
    breaker: { window: { count: 50 }, failure_rate: 0.5, open_duration: 5s }
    rate: { per_second: 200, burst: 50 }
    batch: { path: /items/batch, limits: { max_size: 32, max_delay: 2ms } }
    fallback: { "name": "unavailable" }
  pricing-v2:
    url: http://127.0.0.1:8082
    breaker: { window: { time: { length: 10s, buckets: 10 } }, mode: metrics_only }
tenants: { rate: { per_second: 20, burst: 10 }, max_keys: 10000 }
redis: { url: "redis://127.0.0.1:6379/0", timeout: 50ms }
"#;

#[test]
fn the_documented_example_parses_and_unset_fields_keep_their_defaults() {
    let c = RuntimeConfig::from_yaml(EXAMPLE, "runtime.yaml").unwrap();
    let catalog = &c.upstreams["catalog"];
    assert_eq!(catalog.cache.stale_if_error, Duration::from_secs(300));
    assert_eq!(catalog.cache.negative_ttl, CacheConfig::default().negative_ttl, "unset: the default");
    assert_eq!(catalog.breaker.window, Window::Count(50));
    assert_eq!(catalog.breaker.half_open_permits, 3);
    assert_eq!(catalog.batch.as_ref().unwrap().limits.max_delay, Duration::from_millis(2));
    assert_eq!(catalog.batch.as_ref().unwrap().limits.max_in_flight, 4);
    assert_eq!(catalog.fallback, Some(serde_json::json!({"name": "unavailable"})));
    let pricing = &c.upstreams["pricing-v2"];
    assert_eq!(pricing.breaker.window, Window::Time { length: Duration::from_secs(10), buckets: 10 });
    assert_eq!(pricing.breaker.mode, super::super::breaker::Mode::MetricsOnly);
    assert!(pricing.rate.is_none() && pricing.batch.is_none());
    assert_eq!(c.redis.unwrap().timeout, Duration::from_millis(50));
    // What it writes back reads the same.
    let again = serde_yaml::to_string(&RuntimeConfig::from_yaml(EXAMPLE, "x").unwrap()).unwrap();
    assert_eq!(RuntimeConfig::from_yaml(&again, "again").unwrap(), RuntimeConfig::from_yaml(EXAMPLE, "x").unwrap());
}

#[test]
fn errors_name_the_file_the_field_and_the_line() {
    let typo = "upstreams:\n  catalog:\n    url: http://127.0.0.1:1\n    breaker: { failure_rat: 0.5 }\n";
    let e = RuntimeConfig::from_yaml(typo, "runtime.yaml").unwrap_err().to_string();
    assert!(e.starts_with("runtime.yaml: upstreams.catalog.breaker: unknown field `failure_rat`"), "{e}");
    assert!(e.contains("line 4"), "{e}");

    let bad_duration = "upstreams:\n  catalog:\n    url: http://127.0.0.1:1\n    cache: { ttl: soon }\n";
    let e = RuntimeConfig::from_yaml(bad_duration, "runtime.yaml").unwrap_err().to_string();
    assert!(e.starts_with("runtime.yaml: upstreams.catalog.cache: `soon` is not a duration"), "{e}");
    assert!(e.contains("line 4"), "{e}");

    let out_of_range = "upstreams:\n  catalog:\n    url: http://127.0.0.1:1\n    breaker: { failure_rate: 1.5 }\n";
    let e = RuntimeConfig::from_yaml(out_of_range, "runtime.yaml").unwrap_err().to_string();
    assert_eq!(e, "runtime.yaml: upstreams.catalog.breaker.failure_rate: must be in (0, 1], got 1.5");

    let https = "upstreams:\n  api:\n    url: https://api.example.com\n    health: /healthz\n";
    assert_eq!(
        RuntimeConfig::from_yaml(https, "runtime.yaml").unwrap().upstreams["api"].url,
        "https://api.example.com"
    );
    let bad_health = "upstreams:\n  api:\n    url: https://api.example.com\n    health: healthz\n";
    let e = RuntimeConfig::from_yaml(bad_health, "runtime.yaml").unwrap_err().to_string();
    assert_eq!(e, "runtime.yaml: upstreams.api.health: must be a path starting with `/`, got \"healthz\"");

    let fleet = "upstreams:\n  api: { url: \"http://127.0.0.1:1\", rate: { per_second: 5, scope: fleet } }\n";
    let e = RuntimeConfig::from_yaml(fleet, "runtime.yaml").unwrap_err().to_string();
    assert_eq!(e, "runtime.yaml: upstreams.api.rate.scope: `fleet` keeps the budget in Redis: configure `redis`");
    let tenants = "tenants: { rate: { per_second: 5, scope: fleet } }\n";
    let e = RuntimeConfig::from_yaml(tenants, "runtime.yaml").unwrap_err().to_string();
    assert_eq!(e, "runtime.yaml: tenants.rate.scope: `fleet` is for upstream rates only");

    let no_url = "upstreams:\n  catalog: {}\n";
    let e = RuntimeConfig::from_yaml(no_url, "runtime.yaml").unwrap_err().to_string();
    assert_eq!(e, "runtime.yaml: upstreams.catalog.url: must be an http:// or https:// URL, got \"\"");
}

#[test]
fn the_environment_overrides_upstream_and_redis_urls() {
    let mut c = RuntimeConfig::from_yaml(EXAMPLE, "runtime.yaml").unwrap();
    let vars = [
        ("MCP_RUNTIME_UPSTREAM_PRICING_V2_URL", "http://10.0.0.7:9000"),
        ("MCP_RUNTIME_REDIS_URL", "redis://10.0.0.8:6379/1"),
        ("PATH", "/usr/bin"),
    ];
    c.apply_env(vars.map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
    assert_eq!(c.upstreams["pricing-v2"].url, "http://10.0.0.7:9000");
    assert_eq!(c.redis.as_ref().unwrap().url, "redis://10.0.0.8:6379/1");

    let unknown = [("MCP_RUNTIME_UPSTREAM_BILLING_URL".to_string(), "http://x:1".to_string())];
    let e = c.apply_env(unknown).unwrap_err().to_string();
    assert_eq!(e, "MCP_RUNTIME_UPSTREAM_BILLING_URL: no upstream is called that (known: CATALOG, PRICING_V2)");
    let bad = [("MCP_RUNTIME_UPSTREAM_CATALOG_URL".to_string(), "ftp://x".to_string())];
    assert!(
        c.apply_env(bad)
            .unwrap_err()
            .to_string()
            .starts_with("upstreams.catalog.url: must be an http:// or https:// URL")
    );
}
