//! Each layer on a manual clock around a `tower-test` mock service: time moves only when a
//! test says, so every timeout, backoff and open period is exact.

use std::sync::Arc;
use std::time::Duration;

use tower::{Service, ServiceBuilder, ServiceExt};
use tower_test::mock;

use super::*;
use crate::breaker::{BreakerConfig, CircuitBreaker, State};
use crate::bulkhead::{Bulkhead, BulkheadConfig};
use crate::cache::{Cache, CacheConfig};
use crate::clock::{ManualClock, SharedClock};
use crate::limiter::{KeyedRateConfig, KeyedRateLimit, RateConfig};
use crate::retry::{Idempotency, Retry, RetryConfig};

fn unavailable(retry_after: Option<Duration>) -> BoxError {
    UpstreamError::Status { upstream: "u".into(), status: 503, body: String::new(), retry_after }.into()
}

/// Whether the mock gets no further request (none within 20 ms, or every service is gone).
async fn no_more_requests<Req, Res>(handle: &mut mock::Handle<Req, Res>) -> bool {
    matches!(tokio::time::timeout(Duration::from_millis(20), handle.next_request()).await, Err(_) | Ok(None))
}

/// Lets spawned calls run until they wait on the clock (or on the mock).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

fn breaker(clock: &SharedClock, config: BreakerConfig) -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig { jitter: 0.0, ..config }, clock.clone())
}

#[tokio::test]
async fn a_hung_call_times_out_as_a_failure_the_breaker_counts_and_opens_on() {
    let clock = ManualClock::new();
    let shared: SharedClock = clock.clone();
    let config = BreakerConfig { consecutive_failures: Some(3), ..BreakerConfig::default() };
    let b = breaker(&shared, config);
    let (inner, mut handle) = mock::pair::<u32, &'static str>();
    let service = ServiceBuilder::new()
        .layer(BreakerLayer::new(b.clone()))
        .layer(TimeoutLayer::new(Duration::from_millis(300), shared.clone()))
        .service(inner);
    for n in 0..3 {
        let call = tokio::spawn(service.clone().oneshot(n));
        // The mock holds the request and never answers: the upstream hangs.
        let (_request, _never) = handle.next_request().await.unwrap();
        clock.advance(Duration::from_millis(300));
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.downcast_ref::<TimedOut>(), Some(&TimedOut { after: Duration::from_millis(300), attempts: 1 }));
        std::mem::forget(_never);
    }
    let stats = b.stats();
    assert_eq!((stats.failures, stats.ignored), (3, 0), "timeouts are failures, not cancellations");
    assert_eq!(b.state(), State::Open);
    let rejected = service.clone().oneshot(9).await.unwrap_err();
    assert!(rejected.downcast_ref::<crate::Rejected>().is_some(), "{rejected}");
    assert_eq!(retry_after(rejected.as_ref()), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn with_default_settings_slow_answers_trip_the_slow_call_rule() {
    let clock = ManualClock::new();
    let shared: SharedClock = clock.clone();
    let b = breaker(&shared, BreakerConfig::default());
    let (inner, mut handle) = mock::pair::<u32, &'static str>();
    let mut service = ServiceBuilder::new().layer(BreakerLayer::new(b.clone())).service(inner);
    // Twenty answers (the default minimum), each 1.2 s late: past the default 1 s slow mark
    // and inside the default 2 s attempt timeout, so only the slow rule can see them.
    for n in 0..20 {
        let call = service.ready().await.unwrap().call(n);
        let answered = async {
            let (_, reply) = handle.next_request().await.unwrap();
            clock.advance(Duration::from_millis(1200));
            reply.send_response("late");
        };
        let (result, ()) = tokio::join!(call, answered);
        assert_eq!(result.unwrap(), "late");
    }
    let stats = b.stats();
    assert_eq!((stats.successes, stats.slow), (20, 20));
    assert_eq!(b.state(), State::Open, "every call slow: {stats:?}");
}

#[tokio::test]
async fn a_retry_waits_at_least_the_upstreams_retry_after_on_the_clock() {
    let clock = ManualClock::new();
    let shared: SharedClock = clock.clone();
    let retry = Arc::new(Retry::new(
        RetryConfig {
            base_delay: Duration::from_millis(10),
            overall_timeout: Duration::from_secs(30),
            ..Default::default()
        },
        shared.clone(),
    ));
    let (inner, mut handle) = mock::pair::<http::Request<()>, &'static str>();
    let service = ServiceBuilder::new().layer(RetryLayer::new(retry.clone())).service(inner);
    let call = tokio::spawn(service.oneshot(http::Request::get("/items/1").body(()).unwrap()));
    let (_, reply) = handle.next_request().await.unwrap();
    let asked_at = shared.now();
    reply.send_error(unavailable(Some(Duration::from_secs(3))));
    settle().await;
    clock.advance(Duration::from_millis(2999));
    settle().await;
    assert!(no_more_requests(&mut handle).await, "retried before the 3 s the upstream asked for");
    clock.advance(Duration::from_millis(1));
    let (_, reply) = handle.next_request().await.unwrap();
    assert_eq!(shared.now() - asked_at, Duration::from_secs(3));
    reply.send_response("ok");
    assert_eq!(call.await.unwrap().unwrap(), "ok");
    assert_eq!(retry.stats().retries, 1);
}

#[tokio::test]
async fn a_post_is_not_retried_unless_marked_safe() {
    let clock: SharedClock = ManualClock::new();
    let retry = Arc::new(Retry::new(RetryConfig { base_delay: Duration::ZERO, ..Default::default() }, clock));
    let (inner, mut handle) = mock::pair::<http::Request<()>, &'static str>();
    let service = ServiceBuilder::new().layer(RetryLayer::new(retry)).service(inner);

    let post = tokio::spawn(service.clone().oneshot(http::Request::post("/orders").body(()).unwrap()));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error(unavailable(None));
    let err = post.await.unwrap().unwrap_err();
    assert!(find::<UpstreamError>(err.as_ref()).is_some(), "the upstream's error, as it was: {err}");

    let mut marked = http::Request::post("/orders").body(()).unwrap();
    marked.extensions_mut().insert(Idempotency::MarkedSafe);
    let post = tokio::spawn(service.oneshot(marked));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error(unavailable(None));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response("created once");
    assert_eq!(post.await.unwrap().unwrap(), "created once");
}

#[tokio::test]
async fn an_open_breaker_ends_the_retrying_at_once() {
    let clock: SharedClock = ManualClock::new();
    let b = breaker(&clock, BreakerConfig { consecutive_failures: Some(1), ..BreakerConfig::default() });
    let retry = Arc::new(Retry::new(RetryConfig { base_delay: Duration::ZERO, ..Default::default() }, clock));
    let (inner, mut handle) = mock::pair::<u32, &'static str>();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::with_policy(retry, |_: &u32| Idempotency::Idempotent))
        .layer(BreakerLayer::new(b))
        .service(inner);
    let call = tokio::spawn(service.oneshot(1));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error(unavailable(None));
    let err = call.await.unwrap().unwrap_err();
    assert!(find::<crate::Rejected>(err.as_ref()).is_some(), "the retry met the open breaker: {err}");
    assert!(no_more_requests(&mut handle).await, "one call sent");
}

#[tokio::test]
async fn the_bulkhead_queues_to_its_bound_and_sheds_beyond() {
    let clock: SharedClock = ManualClock::new();
    let config = BulkheadConfig { max_concurrent: 1, max_queue: 1, max_queue_wait: Duration::from_secs(1) };
    let (inner, mut handle) = mock::pair::<u32, u32>();
    let service =
        ServiceBuilder::new().layer(BulkheadLayer::new(Arc::new(Bulkhead::new(config, clock)))).service(inner);
    let running = tokio::spawn(service.clone().oneshot(1));
    let (_, first) = handle.next_request().await.unwrap();
    let queued = tokio::spawn(service.clone().oneshot(2));
    settle().await;
    let shed = service.clone().oneshot(3).await.unwrap_err();
    assert!(matches!(find::<crate::Overloaded>(shed.as_ref()), Some(crate::Overloaded::QueueFull { .. })), "{shed}");
    first.send_response(10);
    let (_, second) = handle.next_request().await.unwrap();
    second.send_response(20);
    assert_eq!((running.await.unwrap().unwrap(), queued.await.unwrap().unwrap()), (10, 20));
}

#[tokio::test]
async fn a_keyed_rate_limit_sheds_one_key_and_not_another() {
    let clock: SharedClock = ManualClock::new();
    let rate = RateConfig { per_second: 1.0, burst: 1, ..RateConfig::default() };
    let limit = Arc::new(KeyedRateLimit::new(KeyedRateConfig { rate, max_keys: 100 }, clock));
    let service = ServiceBuilder::new()
        .layer(KeyedRateLimitLayer::new(limit, |tenant: &&'static str| tenant.to_string()))
        .service(tower::service_fn(|t: &'static str| async move { Ok::<_, BoxError>(t) }));
    assert_eq!(service.clone().oneshot("a").await.unwrap(), "a");
    let shed = service.clone().oneshot("a").await.unwrap_err();
    assert!(matches!(find::<crate::Overloaded>(shed.as_ref()), Some(crate::Overloaded::RateLimited { .. })));
    assert_eq!(service.oneshot("b").await.unwrap(), "b", "tenant b has its own budget");
}

#[tokio::test]
async fn identical_calls_in_flight_share_one_and_so_does_its_error() {
    let (inner, mut handle) = mock::pair::<u32, String>();
    let layer = CoalesceLayer::new(|id: &u32| Some(*id));
    let service = ServiceBuilder::new().layer(layer.clone()).service(inner);
    let calls: Vec<_> = (0..10).map(|_| tokio::spawn(service.clone().oneshot(7))).collect();
    let (_, reply) = handle.next_request().await.unwrap();
    settle().await;
    reply.send_error(unavailable(None));
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(outcome_of(err.as_ref()), crate::Outcome::Failure, "classified through the sharing: {err}");
    }
    assert_eq!(layer.joined(), 9);
    assert!(no_more_requests(&mut handle).await, "one call");
}

#[tokio::test]
async fn fifty_simultaneous_misses_make_one_call_and_a_hit_makes_none() {
    let clock: SharedClock = ManualClock::new();
    let cache: Cache<u32, String, BoxError> = Cache::new(CacheConfig::default(), clock);
    let (inner, mut handle) = mock::pair::<u32, String>();
    let service = ServiceBuilder::new().layer(CacheLayer::new(cache.clone(), |id: &u32| Some(*id))).service(inner);
    let misses: Vec<_> = (0..50).map(|_| tokio::spawn(service.clone().oneshot(42))).collect();
    let (id, reply) = handle.next_request().await.unwrap();
    settle().await;
    reply.send_response(format!("item {id}"));
    for miss in misses {
        assert_eq!(miss.await.unwrap().unwrap(), "item 42");
    }
    assert_eq!(service.oneshot(42).await.unwrap(), "item 42");
    assert_eq!(cache.stats().loads, 1, "{:?}", cache.stats());
    assert!(no_more_requests(&mut handle).await);
}

#[tokio::test]
async fn a_fallback_answers_for_a_shed_call_and_lets_other_errors_through() {
    let clock: SharedClock = ManualClock::new();
    let limit =
        Arc::new(crate::RateLimit::new(RateConfig { per_second: 1.0, burst: 1, ..RateConfig::default() }, clock));
    let fallback =
        FallbackLayer::new(|e: &BoxError| find::<crate::Overloaded>(e.as_ref()).map(|_| "degraded".to_string()));
    let service = ServiceBuilder::new().layer(fallback.clone()).layer(RateLimitLayer::new(limit)).service(
        tower::service_fn(|ok: bool| async move { if ok { Ok("fresh".to_string()) } else { Err(unavailable(None)) } }),
    );
    assert_eq!(service.clone().oneshot(true).await.unwrap(), "fresh");
    assert_eq!(service.clone().oneshot(true).await.unwrap(), "degraded");
    assert_eq!(fallback.served(), 1);
}

#[test]
fn errors_classify_by_type_through_sharing() {
    let shared: BoxError = SharedError(Arc::new(unavailable(Some(Duration::from_secs(2))))).into();
    assert!(is_retryable(shared.as_ref()));
    assert_eq!(retry_after(shared.as_ref()), Some(Duration::from_secs(2)));
    let open: BoxError = crate::Rejected::ForcedOpen.into();
    assert_eq!((outcome_of(open.as_ref()), is_retryable(open.as_ref())), (crate::Outcome::Ignored, false));
    let unknown: BoxError = "something else".into();
    assert_eq!((outcome_of(unknown.as_ref()), is_retryable(unknown.as_ref())), (crate::Outcome::Failure, false));
}
