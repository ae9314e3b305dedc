//! Signed connection-details links: bounded lifetime, single use with `jti`.

use crate::common::{TestApp, expect_error, json};
use reqwest::Method;
use serde_json::{Value, json};
use voxplane::auth::jwt;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn signer(app: &TestApp) -> impl Fn(&Value) -> String {
    let (status, body) = json(
        app.req(Method::POST, "/api/v1/connection-secret")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let kid = body["key_id"].as_str().unwrap().to_owned();
    let secret = body["secret"].as_str().unwrap().to_owned();
    move |claims: &Value| jwt::sign(claims, secret.as_bytes(), Some(&kid))
}

async fn details(app: &TestApp, token: &str) -> reqwest::Response {
    app.anon(
        Method::GET,
        &format!("/api/v1/connection-details?token={token}"),
    )
    .send()
    .await
    .unwrap()
}

fn user(lifetime: i64, jti: Option<&str>) -> Value {
    let mut v = json!({"id": "user_1", "username": "Zhang San", "space": "support",
                       "identity": "guest", "iat": now(), "exp": now() + lifetime});
    if let Some(j) = jti {
        v["jti"] = json!(j);
    }
    v
}

#[tokio::test]
async fn a_signed_link_lives_no_longer_than_the_configured_lifetime() {
    let app = TestApp::spawn_with(|s| s.connection_token_max_lifetime_secs = 300).await;
    let sign = signer(&app).await;
    let err = expect_error(
        details(&app, &sign(&user(30 * 86_400, None))).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert!(err["error"].as_str().unwrap().contains("300"), "{err}");
    let res = details(&app, &sign(&user(300, None))).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_signed_link_with_a_jti_is_accepted_once() {
    let app = TestApp::spawn().await;
    let sign = signer(&app).await;
    let once = sign(&user(120, Some("link-7f3a")));
    assert_eq!(details(&app, &once).await.status(), 200);
    let err = expect_error(details(&app, &once).await, 401, "UNAUTHORIZED").await;
    assert!(
        err["error"].as_str().unwrap().contains("already used"),
        "{err}"
    );
    // Another link, another id: fine. Without a jti a link may be reused.
    assert_eq!(
        details(&app, &sign(&user(120, Some("link-8b21"))))
            .await
            .status(),
        200
    );
    let reusable = sign(&user(120, None));
    for _ in 0..2 {
        assert_eq!(details(&app, &reusable).await.status(), 200);
    }
    // Concurrent replays of one link: exactly one wins.
    let raced = sign(&user(120, Some("link-race")));
    let answers = futures_util::future::join_all((0..8).map(|_| details(&app, &raced))).await;
    let ok = answers.iter().filter(|r| r.status() == 200).count();
    assert_eq!(ok, 1);
}
