//! Health, readiness, metrics, request ids, unknown routes and methods, panics.

use crate::common::{TestApp, cluster, expect_error, json, root};
use reqwest::Method;
use std::time::{Duration, Instant};
use voxplane::embedded::postgres::{EmbeddedPostgres, PgOptions};

#[tokio::test]
async fn health_and_ready_answer_without_a_key() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/api/v1/health"] {
        let (status, body) = json(app.anon(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("ok")),
            "{path}"
        );
    }
    for path in ["/ready", "/api/v1/ready"] {
        let (status, body) = json(app.anon(Method::GET, path).send().await.unwrap()).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["database"], "ok");
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let res = app
        .anon(Method::GET, "/health")
        .header("X-Request-ID", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc.123");

    for bad in ["has spaces", &"x".repeat(200), "semi;colon"] {
        let res = app
            .anon(Method::GET, "/health")
            .header("X-Request-ID", bad)
            .send()
            .await
            .unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(id.starts_with("req_") && id.len() == 28, "{bad:?} → {id}");
    }
    let a = app.get("/api/v1/project").await.headers()["x-request-id"].clone();
    let b = app.get("/api/v1/project").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
    // Error responses carry it too.
    let res = app
        .anon(Method::GET, "/api/v1/project")
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn metrics_use_route_templates_not_raw_paths() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/project").await;
    // A route inside a scope (/sessions) is labelled with its whole template.
    app.get("/api/v1/sessions/424242/detail").await;
    app.get("/api/v1/no/such/thing/42").await;
    app.anon(Method::GET, "/also-missing-7")
        .send()
        .await
        .unwrap();
    let res = app.anon(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"voxplane_http_requests_total{method="GET",route="/api/v1/project",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"voxplane_http_requests_total{method="GET",route="/api/v1/sessions/{session_id}/detail",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains("voxplane_http_request_duration_seconds_bucket"));
    assert!(text.contains("voxplane_http_requests_in_flight"));
    assert!(text.contains("voxplane_db_pool_connections"));
    assert!(!text.contains("/no/such/thing/42") && !text.contains("also-missing-7"));
    assert!(text.contains(r#"route="unmatched""#));
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_use_the_envelope() {
    let app = TestApp::spawn().await;
    expect_error(
        app.anon(Method::GET, "/nothing-here").send().await.unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    // Beside the scopes of routes (one per first path segment), and inside one.
    for path in [
        "/api/v1/nothing-here",
        "/api/v1/sessions/1/nothing-here",
        "/api/v1/sessions/",
        "/api/v1/sessionsx",
        "/api/v1/rooms/a/b/c/d/e",
        "/api/v1/knowledge-bases/1/nothing",
    ] {
        let body = expect_error(app.get(path).await, 404, "NOT_FOUND").await;
        assert_eq!(body["error"], "No such endpoint", "{path}");
    }

    // Beside the scopes and inside one.
    for path in ["/api/v1/project", "/api/v1/sessions/1/detail"] {
        let res = app.req(Method::POST, path).send().await.unwrap();
        assert_eq!(res.headers()["allow"], "GET", "{path}");
        let body = expect_error(res, 405, "METHOD_NOT_ALLOWED").await;
        assert_eq!(body["details"]["allowed"][0], "GET", "{path}");
    }

    let res = app.anon(Method::DELETE, "/health").send().await.unwrap();
    expect_error(res, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn a_panicking_handler_answers_500_with_the_request_id() {
    let app = TestApp::spawn().await;
    let res = app
        .anon(Method::GET, "/__test/panic")
        .header("X-Request-ID", "panic-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "panic-1");
    let body = expect_error(res, 500, "INTERNAL_ERROR").await;
    assert_eq!(body["error"], "Internal server error");
    assert_eq!(body["details"]["request_id"], "panic-1");
    assert!(
        !body.to_string().contains("deliberate"),
        "the cause must not leak: {body}"
    );
    // The worker survives.
    assert_eq!(
        app.anon(Method::GET, "/health")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn ready_fails_fast_when_postgres_stops_and_health_stays_up() {
    let _ = cluster();
    let dir = root()
        .join(".local/test-pg")
        .join(format!("run-{}-ready", std::process::id()));
    let mut pg = tokio::task::spawn_blocking(move || {
        EmbeddedPostgres::start(PgOptions {
            install_dir: root().join(".local/pg"),
            data_dir: dir,
            port: 0,
            ephemeral: true,
            settings: vec![],
        })
    })
    .await
    .unwrap()
    .expect("second cluster");
    pg.ensure_database("ready").await.unwrap();
    voxplane::db::run_migrations(&pg.url("ready"))
        .await
        .unwrap();
    let app = TestApp::spawn_on(&pg.url("ready"), |_| {}).await;
    assert_eq!(
        app.anon(Method::GET, "/ready")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let data_dir = pg.data_dir().to_path_buf();
    tokio::task::spawn_blocking(move || pg.stop())
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let res = app.anon(Method::GET, "/ready").send().await.unwrap();
    let elapsed = started.elapsed();
    expect_error(res, 503, "SERVICE_UNAVAILABLE").await;
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    assert_eq!(
        app.anon(Method::GET, "/health")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // An API request that needs the database gets a 503 too, not a 500.
    let res = app.get("/api/v1/quota").await;
    assert_eq!(res.status(), 503);
    drop(app);
    let _ = std::fs::remove_dir_all(data_dir);
}
