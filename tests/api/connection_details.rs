//! Connection details: signed GET tokens and API-key POSTs, identity grants,
//! `$space` / `$empty` / named rooms, and the 400/401/403 cases.

use crate::common::{TestApp, expect_error, json};
use livekit_api::access_token::TokenVerifier;
use reqwest::Method;
use serde_json::{Value, json};
use voxplane::auth::jwt;
use voxplane::embedded::livekit::SimParticipant;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn user(identity: &str, room: Option<&str>) -> Value {
    let mut v = json!({"id": "user_1", "username": "Zhang San", "space": "support", "identity": identity,
                       "preJoin": true, "iat": now(), "exp": now() + 600});
    if let Some(r) = room {
        v["room"] = json!(r);
    }
    v
}

async fn secret(app: &TestApp) -> (String, String) {
    let (status, body) = json(
        app.req(Method::POST, "/api/v1/connection-secret")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["key_id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn get_details(app: &TestApp, token: &str, auth: Option<&str>) -> reqwest::Response {
    let mut url = format!("/api/v1/connection-details?token={token}");
    if let Some(a) = auth {
        url.push_str(&format!("&auth={a}"));
    }
    app.anon(Method::GET, &url).send().await.unwrap()
}

#[tokio::test]
async fn signed_get_yields_a_token_with_the_identitys_grants() {
    let app = TestApp::spawn().await;
    let (kid, secret) = secret(&app).await;
    let verifier = TokenVerifier::with_api_key(app.sim().api_key(), app.sim().api_secret());
    let prefix = &app.project.room_prefix;
    for (identity, auth, admin, publish, subscribe, data) in [
        ("owner", Some("platform"), true, true, true, true),
        ("manager", Some("platform"), true, true, true, true),
        ("participant", Some("platform"), false, true, true, true),
        ("guest", None, false, false, true, false),
        ("assistant", Some("c_s"), true, true, true, true),
        ("customer", Some("c_s"), false, true, true, false),
    ] {
        let token = jwt::sign(
            &user(identity, Some("$space")),
            secret.as_bytes(),
            Some(&kid),
        );
        let (status, body) = json(get_details(&app, &token, auth).await).await;
        assert_eq!(status, 200, "{identity}: {body}");
        assert_eq!(
            body["serverUrl"],
            app.sim().url().replace("http://", "ws://")
        );
        assert_eq!(body["roomName"], "support");
        assert_eq!(body["participantName"], "Zhang San");
        assert_eq!(body["preJoin"], true);
        let claims = verifier
            .verify(body["participantToken"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims.sub, "user_1");
        assert_eq!(claims.video.room, format!("{prefix}_support"));
        assert!(claims.video.room_join);
        assert_eq!(claims.video.room_admin, admin, "{identity}");
        assert_eq!(claims.video.can_publish, Some(publish), "{identity}");
        assert_eq!(claims.video.can_subscribe, Some(subscribe), "{identity}");
        assert_eq!(claims.video.can_publish_data, Some(data), "{identity}");
    }
}

#[tokio::test]
async fn rooms_of_a_space() {
    let app = TestApp::spawn().await;
    let (kid, secret) = secret(&app).await;
    let details = |room: &str| {
        let token = jwt::sign(
            &user("participant", Some(room)),
            secret.as_bytes(),
            Some(&kid),
        );
        let app = &app;
        async move {
            json(get_details(app, &token, Some("platform")).await)
                .await
                .1
        }
    };
    assert_eq!(
        details("room_urgent_001").await["roomName"],
        "support.room_urgent_001"
    );
    // $empty: an empty room of the space, else the next new one.
    assert_eq!(details("$empty").await["roomName"], "support.room-1");
    let full = format!("{}_support.room-1", app.project.room_prefix);
    app.sim()
        .join(&full, SimParticipant::new("someone"))
        .await
        .unwrap();
    assert_eq!(details("$empty").await["roomName"], "support.room-2");
    app.post_json("/api/v1/rooms", &json!({"name": "support.room-3"}))
        .await;
    assert_eq!(
        details("$empty").await["roomName"],
        "support.room-3",
        "an existing empty room is reused"
    );
}

#[tokio::test]
async fn refusals() {
    let app = TestApp::spawn().await;
    let (kid, secret) = secret(&app).await;
    let sign = |v: &Value| jwt::sign(v, secret.as_bytes(), Some(&kid));

    // 401: expired, issued in the future, wrong secret, unknown kid, garbage.
    let mut expired = user("guest", None);
    expired["exp"] = json!(now() - 10);
    expect_error(
        get_details(&app, &sign(&expired), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let mut future = user("guest", None);
    future["iat"] = json!(now() + 600);
    expect_error(
        get_details(&app, &sign(&future), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let forged = jwt::sign(&user("guest", None), b"not-the-secret", Some(&kid));
    expect_error(get_details(&app, &forged, None).await, 401, "UNAUTHORIZED").await;
    let unknown = jwt::sign(&user("guest", None), secret.as_bytes(), Some("cs_nope"));
    expect_error(get_details(&app, &unknown, None).await, 401, "UNAUTHORIZED").await;
    expect_error(
        get_details(&app, "abc.def.ghi", None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;

    // 403: an identity the auth type may not claim.
    expect_error(
        get_details(&app, &sign(&user("owner", None)), None).await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_error(
        get_details(&app, &sign(&user("assistant", None)), Some("platform")).await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_error(
        get_details(&app, &sign(&user("owner", None)), Some("c_s")).await,
        403,
        "FORBIDDEN",
    )
    .await;

    // 400: missing or bad fields.
    for (field, value) in [
        ("id", Value::Null),
        ("space", Value::Null),
        ("space", json!("bad space")),
        ("identity", json!("king")),
    ] {
        let mut v = user("guest", None);
        v[field] = value;
        let err = expect_error(
            get_details(&app, &sign(&v), None).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], field);
    }
    expect_error(
        get_details(&app, &sign(&user("guest", None)), Some("weird")).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.anon(Method::GET, "/api/v1/connection-details")
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;

    // Rotation: the old secret stops working.
    let (kid2, secret2) = super::connection_details::secret(&app).await;
    assert_ne!(kid2, kid);
    expect_error(
        get_details(&app, &sign(&user("guest", None)), None).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let fresh = jwt::sign(&user("guest", None), secret2.as_bytes(), Some(&kid2));
    assert_eq!(get_details(&app, &fresh, None).await.status(), 200);
    let (_, info) = json(app.get("/api/v1/connection-secret").await).await;
    assert_eq!(info["key_id"], kid2);
    assert!(info.get("secret").is_none(), "the secret is shown once");
}

#[tokio::test]
async fn post_with_the_api_key() {
    let app = TestApp::spawn().await;
    let (status, body) = json(
        app.post_json("/api/v1/connection-details", &user("owner", Some("$space")))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["roomName"], "support");
    let (status, _) = json(
        app.post_json(
            "/api/v1/connection-details?auth=c_s",
            &user("customer", None),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    expect_error(
        app.post_json("/api/v1/connection-details", &user("customer", None))
            .await,
        403,
        "FORBIDDEN",
    )
    .await;
    let res = app
        .anon(Method::POST, "/api/v1/connection-details")
        .json(&user("owner", None))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    let mut expired = user("guest", None);
    expired["exp"] = json!(now() - 1);
    expect_error(
        app.post_json("/api/v1/connection-details", &expired).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    // The POST body is its own type: only the fields it takes (no `jti`,
    // which only a signed GET token can spend), `iat`/`exp` required.
    let mut with_jti = user("owner", None);
    with_jti["jti"] = json!("t-1");
    let mut without_exp = user("owner", None);
    without_exp.as_object_mut().unwrap().remove("exp");
    for body in [with_jti, without_exp] {
        expect_error(
            app.post_json("/api/v1/connection-details", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
}
