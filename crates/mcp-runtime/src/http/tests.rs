use super::*;
use crate::clock::tokio_clock;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn upstream_with(config: HttpConfig) -> (MockServer, HttpUpstream) {
    let server = MockServer::start().await;
    let client = HttpUpstream::new("catalog", &server.uri(), config, tokio_clock()).unwrap();
    (server, client)
}

#[tokio::test]
async fn answers_decode_and_statuses_are_classified_for_the_breaker() {
    let (server, client) = upstream_with(HttpConfig::default()).await;
    Mock::given(path("/items/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": 1})))
        .mount(&server)
        .await;
    Mock::given(path("/items/2")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    Mock::given(path("/items/3")).respond_with(ResponseTemplate::new(503).set_body_string("down")).mount(&server).await;
    Mock::given(path("/items/4")).respond_with(ResponseTemplate::new(400)).mount(&server).await;
    Mock::given(method("POST"))
        .and(path("/batch"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;

    let item: Option<serde_json::Value> = client.get_json("/items/1").await.unwrap();
    assert_eq!(item, Some(serde_json::json!({"id": 1})));
    assert_eq!(client.get_json::<serde_json::Value>("/items/2").await.unwrap(), None, "404 is no such item");
    let down = client.get_json::<serde_json::Value>("/items/3").await.unwrap_err();
    assert_eq!(down.to_string(), "upstream \"catalog\" answered 503: down");
    assert_eq!(down.outcome(), Outcome::Failure);
    assert!(down.is_retryable());
    let bad = client.get_json::<serde_json::Value>("/items/4").await.unwrap_err();
    assert_eq!(bad.outcome(), Outcome::Success, "a 400 is the upstream working");
    assert!(!bad.is_retryable());
    let reply = client.post_json("/batch", &serde_json::json!([1, 2])).await.unwrap();
    assert_eq!((reply.status, &reply.body[..]), (200, &b"[]"[..]));
    // Five calls one after another reuse one keep-alive connection.
    let s = client.stats();
    assert_eq!((s.opened, s.in_use, s.idle), (1, 0, 1), "{s:?}");
}

#[tokio::test]
async fn calls_beyond_the_connection_cap_wait_at_most_max_wait() {
    let config = HttpConfig { max_connections: 2, max_wait: Duration::from_millis(100), ..HttpConfig::default() };
    let (server, client) = upstream_with(config).await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(400)))
        .mount(&server)
        .await;
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/slow").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let during = client.stats();
    assert_eq!((during.in_use, during.waiters), (2, 3), "{during:?}");
    let mut outcomes = Vec::new();
    for c in calls {
        outcomes.push(c.await.unwrap());
    }
    let timed_out: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(timed_out.len(), 3, "{outcomes:?}");
    assert!(timed_out[0].to_string().contains("no connection free within 100ms (2 in use)"), "{}", timed_out[0]);
    assert_eq!(timed_out[0].outcome(), Outcome::Ignored, "our own pool being full says nothing of the upstream");
    let s = client.stats();
    assert_eq!((s.opened, s.in_use, s.idle, s.waiters, s.timeouts), (2, 0, 2, 0, 3));
    assert_eq!(s.wait_seconds.count, 5);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_a_refused_connection_is_a_transport_failure() {
    let config = HttpConfig { request_timeout: Duration::from_millis(100), ..HttpConfig::default() };
    let (server, client) = upstream_with(config).await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(500)))
        .mount(&server)
        .await;
    let slow = client.get("/slow").await.unwrap_err();
    assert!(matches!(slow, UpstreamError::Timeout { after, .. } if after == Duration::from_millis(100)), "{slow}");
    assert_eq!(slow.outcome(), Outcome::Failure);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nobody =
        HttpUpstream::new("gone", &format!("http://127.0.0.1:{port}"), HttpConfig::default(), tokio_clock()).unwrap();
    let refused = nobody.get("/x").await.unwrap_err();
    assert!(matches!(refused, UpstreamError::Transport { .. }), "{refused}");
    assert!(refused.to_string().contains("Connection refused"), "{refused}");
    assert!(refused.is_retryable());
    assert_eq!(nobody.stats().opened, 0);
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_and_are_counted_out() {
    let config = HttpConfig { idle_timeout: Duration::from_millis(100), ..HttpConfig::default() };
    let (server, client) = upstream_with(config).await;
    Mock::given(path("/x")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    client.get("/x").await.unwrap();
    assert_eq!(client.stats().idle, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while client.stats().idle > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = client.stats();
    assert_eq!((s.opened, s.idle, s.in_use), (1, 0, 0), "the idle connection was closed: {s:?}");
}
