//! Two nodes on one database and one Redis (real `redis-server`): shared
//! rate limits and login throttles, the fallback when Redis goes away,
//! clients behind trusted proxies.

mod reconcile;
mod shutdown;

use crate::common::redis::RedisServer;
use crate::common::{TestApp, expect_error, json};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use voxplane::limits::plans::Plan;

async fn two_nodes(redis: &RedisServer) -> (TestApp, TestApp) {
    let url = redis.url();
    let a = TestApp::spawn_with(|s| s.redis_url = Some(url.clone())).await;
    let b = a
        .another_node(|s| {
            s.redis_url = Some(url.clone());
        })
        .await;
    (a, b)
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app
        .anon(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_free_plan_key_gets_exactly_60_of_61_requests_across_two_nodes() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let free = a.create_project(Plan::Free).await;
    let mut ok = 0;
    let mut remaining = Vec::new();
    for i in 0..61 {
        let node = if i % 2 == 0 { &a } else { &b };
        let res = node
            .req_as(&free.key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["x-ratelimit-limit"], "60");
        remaining.push(
            res.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
        if res.status() == 200 {
            ok += 1;
        } else {
            assert!(i >= 60, "request {i} refused");
            let retry = res.headers()["retry-after"].to_str().unwrap().to_owned();
            assert!(retry.parse::<u64>().unwrap() >= 1);
            expect_error(res, 429, "RATE_LIMITED").await;
        }
    }
    assert_eq!(ok, 60, "one allowance for both nodes");
    // The count goes down across nodes, as on one node.
    assert_eq!(remaining[..4], [59, 58, 57, 56]);
    assert_eq!(metric(&a, "voxplane_redis_fallbacks_total").await, 0.0);
    let (_, ready) = json(a.anon(Method::GET, "/ready").send().await.unwrap()).await;
    assert_eq!(ready["checks"]["rate_limits"], "redis");
}

#[tokio::test]
async fn login_throttling_holds_across_nodes() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let login = |node: &TestApp| {
        node.anon(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": "Victim@Example.com", "password": "wrong password 1"}))
            .send()
    };
    // max_failures_per_account is 5: attempts on both nodes count together.
    for i in 0..5 {
        let node = if i % 2 == 0 { &a } else { &b };
        expect_error(login(node).await.unwrap(), 401, "UNAUTHORIZED").await;
    }
    for node in [&a, &b] {
        let res = login(node).await.unwrap();
        assert!(res.headers().contains_key("retry-after"));
        expect_error(res, 429, "RATE_LIMITED").await;
    }
}

#[tokio::test]
async fn a_key_revoked_on_one_node_stops_on_the_other_within_the_cache_ttl() {
    let redis = RedisServer::start();
    let url = redis.url();
    let a = TestApp::spawn_with(|s| {
        s.redis_url = Some(url.clone());
        s.key_cache_ttl_ms = 300;
    })
    .await;
    let b = a
        .another_node(|s| {
            s.redis_url = Some(url.clone());
            s.key_cache_ttl_ms = 300;
        })
        .await;
    let extra = a.create_project(Plan::Professional).await;
    assert_eq!(
        b.req_as(&extra.key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut conn = a.conn().await;
    assert!(
        voxplane::db::api_keys::revoke(&mut conn, extra.id, extra.key_id)
            .await
            .unwrap()
    );
    a.state.keys.evict_key(extra.key_id);
    let on_a = a.req_as(&extra.key, Method::GET, "/api/v1/project");
    expect_error(on_a.send().await.unwrap(), 401, "UNAUTHORIZED").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let on_b = b.req_as(&extra.key, Method::GET, "/api/v1/project");
    expect_error(on_b.send().await.unwrap(), 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn redis_stopped_mid_test_requests_are_still_answered_and_the_fallback_is_counted() {
    let mut redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    for node in [&a, &b] {
        assert_eq!(node.get("/api/v1/project").await.status(), 200);
    }
    assert_eq!(metric(&a, "voxplane_redis_fallbacks_total").await, 0.0);
    redis.stop();
    let started = std::time::Instant::now();
    for _ in 0..10 {
        for node in [&a, &b] {
            let res = node.get("/api/v1/project").await;
            assert_eq!(res.status(), 200);
            assert!(res.headers().contains_key("x-ratelimit-remaining"));
        }
    }
    // Decided within the timeout (and Redis skipped after a failure).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        metric(&a, "voxplane_redis_fallbacks_total{name=\"rate_limit\"}").await >= 1.0,
        "the fallback is counted"
    );
    // Login throttles fall back too.
    let res = a
        .anon(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": "x@example.com", "password": "wrong password 1"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    let (status, ready) = json(a.anon(Method::GET, "/ready").send().await.unwrap()).await;
    assert_eq!(status, 200, "degraded, not down: {ready}");
    assert_eq!(ready["checks"]["rate_limits"], "degraded");
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_limited_by_their_own_address() {
    let app = TestApp::spawn_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1".into()];
        s.rate_limits.anonymous = 3;
    })
    .await;
    // Guessed keys cost a lookup: they are what the per-address limit counts.
    let guess = |xff: &'static str| {
        app.req_as("pk_guess", Method::GET, "/api/v1/project")
            .header("X-Forwarded-For", xff)
            .send()
    };
    for _ in 0..3 {
        expect_error(guess("203.0.113.7").await.unwrap(), 401, "UNAUTHORIZED").await;
    }
    expect_error(guess("203.0.113.7").await.unwrap(), 429, "RATE_LIMITED").await;
    // Another client behind the same proxy has its own allowance; a forged
    // leftmost entry does not help the first one.
    expect_error(guess("203.0.113.8").await.unwrap(), 401, "UNAUTHORIZED").await;
    expect_error(
        guess("198.51.100.1, 203.0.113.7").await.unwrap(),
        429,
        "RATE_LIMITED",
    )
    .await;
    // A request with no credentials at all is still told why: 401, not 429.
    let res = app
        .anon(Method::GET, "/api/v1/project")
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;

    // Without trusted proxies the header is ignored: one peer, one allowance.
    let plain = TestApp::spawn_with(|s| s.rate_limits.anonymous = 3).await;
    for (i, xff) in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
        .iter()
        .enumerate()
    {
        let res = plain
            .req_as("pk_guess", Method::GET, "/api/v1/project")
            .header("X-Forwarded-For", *xff)
            .send()
            .await
            .unwrap();
        let expected = if i < 3 { 401 } else { 429 };
        assert_eq!(res.status(), expected, "request {i}");
    }
}
