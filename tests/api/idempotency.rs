//! `Idempotency-Key` on creating POSTs.

use crate::common::{TestApp, expect_error, json};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn same_key_and_body_replays_the_first_response() {
    let app = TestApp::spawn().await;
    let send = |body: serde_json::Value| {
        app.req(Method::POST, "/api/v1/agents")
            .header("Idempotency-Key", "create-a-1")
            .json(&body)
            .send()
    };
    let first = send(json!({"name": "A"})).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (_, first_body) = json(first).await;

    let again = send(json!({"name": "A"})).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let (_, again_body) = json(again).await;
    assert_eq!(again_body, first_body);

    let (_, list) = json(app.get("/api/v1/agents").await).await;
    assert_eq!(list["agents"].as_array().unwrap().len(), 1);

    // Same key, different body → 422.
    expect_error(
        send(json!({"name": "B"})).await.unwrap(),
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
}

#[tokio::test]
async fn concurrent_duplicates_execute_once() {
    let app = TestApp::spawn().await;
    let results = join_all((0..8).map(|_| {
        app.req(Method::POST, "/api/v1/agents")
            .header("Idempotency-Key", "burst")
            .json(&json!({"name": "Once"}))
            .send()
    }))
    .await;
    let mut ids = Vec::new();
    for r in results {
        let (status, body) = json(r.unwrap()).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["agent"]["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every duplicate saw the same agent");
    let (_, list) = json(app.get("/api/v1/agents").await).await;
    assert_eq!(list["agents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn keys_are_per_project_and_client_errors_are_replayed_but_not_server_side_limits() {
    let app = TestApp::spawn().await;
    let other = app
        .create_project(voxplane::limits::plans::Plan::Professional)
        .await;
    for key in [&app.project.key, &other.key] {
        let res = app
            .req_as(key, Method::POST, "/api/v1/agents")
            .header("Idempotency-Key", "k")
            .json(&json!({"name": "X"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "each project has its own key space");
    }
    // A 400 is stored and replayed as is.
    let bad = || {
        app.req(Method::POST, "/api/v1/agents")
            .header("Idempotency-Key", "bad")
            .json(&json!({"name": ""}))
            .send()
    };
    expect_error(bad().await.unwrap(), 400, "INVALID_REQUEST").await;
    let replay = bad().await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    expect_error(replay, 400, "INVALID_REQUEST").await;
    // An unusable key is refused.
    let res = app
        .req(Method::POST, "/api/v1/agents")
        .header("Idempotency-Key", "x".repeat(300))
        .json(&json!({"name": "Y"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn quota_refusals_are_not_remembered() {
    let app = TestApp::spawn_with(|s| s.plans.professional.agents = 1).await;
    assert_eq!(
        app.post_json("/api/v1/agents", &json!({"name": "first"}))
            .await
            .status(),
        201
    );
    let send = || {
        app.req(Method::POST, "/api/v1/agents")
            .header("Idempotency-Key", "q")
            .json(&json!({"name": "second"}))
            .send()
    };
    expect_error(send().await.unwrap(), 429, "QUOTA_EXCEEDED").await;
    // Free a slot: the retry with the same key now runs.
    let (_, list) = json(app.get("/api/v1/agents").await).await;
    let id = list["agents"][0]["id"].as_i64().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/agents/{id}")).await.status(),
        200
    );
    let res = send().await.unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
}
