//! Bad input always gets the error envelope, never actix's plain text.

use crate::common::{TestApp, expect_error};
use reqwest::Method;

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_are_400() {
    let app = TestApp::spawn().await;
    let post = |body: &'static str| {
        app.req(Method::POST, "/api/v1/agents")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let err = expect_error(post("{\"name\": ").await.unwrap(), 400, "INVALID_REQUEST").await;
    assert!(
        err["error"].as_str().unwrap().starts_with("Malformed JSON"),
        "{err}"
    );
    let err = expect_error(
        post("{\"name\": 42}").await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert!(
        err["error"].as_str().unwrap().contains("invalid type"),
        "{err}"
    );
    let err = expect_error(post("{}").await.unwrap(), 400, "INVALID_REQUEST").await;
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("missing field `name`"),
        "{err}"
    );
    expect_error(post("").await.unwrap(), 400, "INVALID_REQUEST").await;
    expect_error(post("[1,2]").await.unwrap(), 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn wrong_content_type_is_415_and_oversized_bodies_413() {
    let app = TestApp::spawn_with(|s| s.json_body_limit = 2048).await;
    let res = app
        .req(Method::POST, "/api/v1/agents")
        .header("content-type", "text/plain")
        .body("{\"name\":\"a\"}")
        .send()
        .await
        .unwrap();
    expect_error(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let res = app
        .req(Method::POST, "/api/v1/agents")
        .body("{\"name\":\"a\"}")
        .send()
        .await
        .unwrap();
    expect_error(res, 415, "UNSUPPORTED_MEDIA_TYPE").await;

    let big = serde_json::json!({"name": "a", "instructions": "x".repeat(4096)});
    let body = expect_error(
        app.post_json("/api/v1/agents", &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(body["details"]["limit_bytes"], 2048);
}

#[tokio::test]
async fn bad_path_and_query_parameters_are_400() {
    let app = TestApp::spawn().await;
    expect_error(
        app.get("/api/v1/agents/not-a-number").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get("/api/v1/agents?is_active=maybe").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get("/api/v1/agents?bogus=1").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get("/api/v1/agents/99999999999999999999999").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
}
