//! Optional request bodies: left out is fine, but a body that is there must
//! be right — a malformed one is a 400 and changes nothing. Room names as
//! LiveKit's per-caller SIP rooms make them (with a `+`).

use crate::common::{TestApp, expect_error, json};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_malformed_optional_body_is_a_400_not_no_body() {
    let app = TestApp::spawn().await;
    let full = format!("{}_strict", app.project.room_prefix);
    let (s, b) = json(
        app.post_json("/api/v1/sessions", &json!({"room_name": full}))
            .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    for bad in [
        json!({"duration": "long"}),
        json!({"summry": "typo"}),
        json!([1, 2]),
    ] {
        let r = app.post_json("/api/v1/sessions/strict/end", &bad).await;
        expect_error(r, 400, "INVALID_REQUEST").await;
    }
    let r = app
        .req(Method::POST, "/api/v1/sessions/strict/end")
        .header("content-type", "application/json")
        .body("{\"summary\": ")
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 400, "INVALID_REQUEST").await;
    assert!(
        e["error"].as_str().unwrap().contains("Malformed JSON"),
        "{e}"
    );
    let r = app
        .req(Method::POST, "/api/v1/sessions/strict/end")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Still active: none of the bad requests ended it. No body ends it.
    let r = app
        .req(Method::POST, "/api/v1/sessions/strict/end")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A stop with a misspelt field stops nothing.
    let (s, _) = json(
        app.post_json("/api/v1/rooms", &json!({"name": "rec"}))
            .await,
    )
    .await;
    assert_eq!(s, 201);
    let (s, started) = json(
        app.req(Method::POST, "/api/v1/rooms/rec/recordings/start")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201, "{started}");
    let egress = started["recording"]["egress_id"].as_str().unwrap();
    for bad in [json!({"egressId": egress}), json!({"egress_id": 7})] {
        let r = app
            .post_json("/api/v1/rooms/rec/recordings/stop", &bad)
            .await;
        expect_error(r, 400, "INVALID_REQUEST").await;
    }
    let r = app
        .post_json("/api/v1/rooms/rec/recordings/start", &json!({"format": 3}))
        .await;
    expect_error(r, 400, "INVALID_REQUEST").await;
    let (_, list) = json(app.get("/api/v1/recordings?status=recording").await).await;
    assert_eq!(list["recordings"].as_array().unwrap().len(), 1, "{list}");

    // The test webhook with a wrong type is refused, not sent as `test`.
    let r = app
        .post_json("/api/v1/webhooks/test", &json!({"event_type": 5}))
        .await;
    expect_error(r, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn inbound_call_rooms_with_a_plus_are_addressable() {
    let app = TestApp::spawn().await;
    let short = "call-_+17751234567_aBc";
    let full = format!("{}_{short}", app.project.room_prefix);
    let (s, b) = json(
        app.post_json(
            "/api/v1/sessions",
            &json!({"room_name": full, "session_type": "sip"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["session"]["id"].as_i64().unwrap();
    // `+` is a literal in a URL path; %2B works as well.
    let r = app
        .post_json(
            &format!("/api/v1/sessions/{short}/transcript"),
            &json!({"speaker": "user", "content": "hello", "timestamp_ms": 0}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post_json(
            "/api/v1/sessions/call-_%2B17751234567_aBc/transcript",
            &json!({"speaker": "agent", "content": "hi", "timestamp_ms": 10}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let (_, t) = json(app.get(&format!("/api/v1/sessions/{id}/transcript")).await).await;
    assert_eq!(t["transcripts"].as_array().unwrap().len(), 2, "{t}");
    let r = app
        .post_json(&format!("/api/v1/sessions/{full}/end"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    // Still refused: characters LiveKit names never carry.
    let r = app
        .post_json("/api/v1/rooms", &json!({"name": "a b"}))
        .await;
    let e = expect_error(r, 400, "INVALID_REQUEST").await;
    assert!(e["error"].as_str().unwrap().contains("'+'"), "{e}");
}

/// Postgres refuses NUL in `text` and `jsonb`: a `\u0000` anywhere in a JSON
/// body (or `%00` in the path or query) is a 400 naming the field, never a
/// 500, on every route under `/api/v1`.
#[tokio::test]
async fn a_nul_character_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let body = r#"{"event_type": "test", "payload": {"note": ["ok", "a\u0000b"]}}"#;
    let r = app
        .req(Method::POST, "/api/v1/webhooks/test")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 400, "INVALID_REQUEST").await;
    assert_eq!(e["details"]["field"], "payload.note[1]", "{e}");
    let r = app
        .post_json(
            "/api/v1/agents",
            &json!({"name": "x\u{0}", "agent_type": "voice"}),
        )
        .await;
    let e = expect_error(r, 400, "INVALID_REQUEST").await;
    assert_eq!(e["details"]["field"], "name", "{e}");
    let r = app.get("/api/v1/sessions?status=%00").await;
    expect_error(r, 400, "INVALID_REQUEST").await;
    let r = app.get("/api/v1/rooms/a%00b").await;
    expect_error(r, 400, "INVALID_REQUEST").await;
    // An escaped backslash before u0000 is plain text, not a NUL.
    let r = app
        .req(Method::POST, "/api/v1/webhooks/test")
        .header("content-type", "application/json")
        .body(r#"{"payload": {"note": "\\u0000"}}"#)
        .send()
        .await
        .unwrap();
    let (s, b) = json(r).await;
    assert_eq!(s, 200, "{b}");
    // Without credentials it is still a 401 first.
    let r = app
        .anon(Method::POST, "/api/v1/webhooks/test")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "UNAUTHORIZED").await;
}

/// `2.0` is an integer in JSON (Schema): integer fields take it.
#[tokio::test]
async fn an_integral_float_is_an_integer() {
    let app = TestApp::spawn().await;
    let (s, kb) = json(
        app.post_json("/api/v1/knowledge-bases", &json!({"name": "Floats"}))
            .await,
    )
    .await;
    assert_eq!(s, 201, "{kb}");
    let id = kb["knowledge_base"]["id"]
        .as_i64()
        .or(kb["id"].as_i64())
        .unwrap();
    let (s, b) = json(
        app.post_json(
            "/api/v1/agents",
            &json!({"name": "Floaty", "agent_type": "voice", "knowledge_base_ids": [id as f64]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert!(b.to_string().contains(&format!("[{id}]")), "{b}");
}
