//! Tokens, rooms, call control and inbound LiveKit webhooks, against the
//! LiveKit simulator through the real `livekit-api` client.

use crate::common::{TestApp, expect_error, json};
use livekit_api::access_token::TokenVerifier;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use voxplane::embedded::livekit::{SimKind, SimParticipant, sign_webhook};
use voxplane::limits::plans::Plan;

mod webhooks;

fn verifier(app: &TestApp) -> TokenVerifier {
    TokenVerifier::with_api_key(app.sim().api_key(), app.sim().api_secret())
}

async fn create_room(app: &TestApp, name: &str) -> Value {
    let (status, body) = json(app.post_json("/api/v1/rooms", &json!({"name": name})).await).await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn token_carries_exactly_the_intended_grants_room_and_expiry() {
    let app = TestApp::spawn().await;
    let before = chrono::Utc::now().timestamp() as usize;
    let (status, body) = json(
        app.post_json("/api/v1/token", &json!({"identity": "user1", "room": "my-room", "no_agent": true, "ttl": 600, "name": "User One"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let full = format!("{}_my-room", app.project.room_prefix);
    assert_eq!(body["room"], full);
    assert_eq!(body["wsUrl"], app.sim().url().replace("http://", "ws://"));
    assert_eq!(body["agents_dispatched"], json!([]));
    let claims = verifier(&app)
        .verify(body["token"].as_str().unwrap())
        .expect("LiveKit accepts the token");
    assert_eq!(claims.sub, "user1");
    assert_eq!(claims.name, "User One");
    assert_eq!(claims.iss, app.sim().api_key());
    assert!(
        claims.exp >= before + 600 && claims.exp <= before + 602,
        "exp {}",
        claims.exp
    );
    let v = &claims.video;
    assert!(v.room_join && v.room == full);
    assert_eq!(
        (v.can_publish, v.can_subscribe, v.can_publish_data),
        (Some(true), Some(true), Some(true))
    );
    assert!(!v.room_admin && !v.room_create && !v.room_list && !v.room_record);
    assert!(claims.room_config.is_none());

    // Default TTL is one hour.
    let (_, body) = json(
        app.post_json(
            "/api/v1/token",
            &json!({"identity": "u", "room": "r", "no_agent": true}),
        )
        .await,
    )
    .await;
    let claims = verifier(&app)
        .verify(body["token"].as_str().unwrap())
        .unwrap();
    assert!((3598..=3602).contains(&(claims.exp - before)));

    // Extra client grants apply; escalation and unknown grants are refused.
    let (_, body) = json(
        app.post_json("/api/v1/token", &json!({"identity": "u", "room": "r", "no_agent": true, "grants": {"canPublish": false, "hidden": true}})).await,
    )
    .await;
    let claims = verifier(&app)
        .verify(body["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.video.can_publish, Some(false));
    assert!(claims.video.hidden);
    for grants in [
        json!({"roomAdmin": true}),
        json!({"roomCreate": true}),
        json!({"roomRecord": true}),
        json!({"roomList": true}),
        json!({"fly": true}),
        json!({"canPublish": "yes"}),
    ] {
        let res = app
            .post_json(
                "/api/v1/token",
                &json!({"identity": "u", "room": "r", "grants": grants}),
            )
            .await;
        let err = expect_error(res, 400, "INVALID_REQUEST").await;
        assert_eq!(err["details"]["field"], "grants");
    }
}

#[tokio::test]
async fn token_input_errors() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"room": "r"}), "identity"),
        (json!({"identity": "u"}), "room"),
        (json!({"identity": "u", "room": "bad room"}), "room"),
        (json!({"identity": "a b", "room": "r"}), "identity"),
        (json!({"identity": "u", "room": "r", "ttl": 10}), "ttl"),
        (json!({"identity": "u", "room": "r", "ttl": 90000}), "ttl"),
        (
            json!({"identity": "u", "room": "r", "agent_config_id": 999}),
            "agent_config_ids",
        ),
        (
            json!({"identity": "u", "room": "r", "no_agent": true, "agent_config_id": 1}),
            "no_agent",
        ),
    ] {
        let err = expect_error(
            app.post_json("/api/v1/token", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn token_dispatches_agents_through_room_configuration() {
    let app = TestApp::spawn().await;
    let (_, a) = json(
        app.post_json(
            "/api/v1/agents",
            &json!({"name": "Support", "dispatch_name": "support-agent", "llm_model": "gpt-4o"}),
        )
        .await,
    )
    .await;
    let (_, b) = json(
        app.post_json(
            "/api/v1/agents",
            &json!({"name": "Notes", "dispatch_name": "note-taker"}),
        )
        .await,
    )
    .await;
    let (a, b) = (
        a["agent"]["id"].as_i64().unwrap(),
        b["agent"]["id"].as_i64().unwrap(),
    );

    // No agent fields: the first active agent is dispatched.
    let (status, body) = json(
        app.post_json("/api/v1/token", &json!({"identity": "u", "room": "r"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["agents_dispatched"], json!([a]));
    let claims = verifier(&app)
        .verify(body["token"].as_str().unwrap())
        .unwrap();
    let agents = claims.room_config.expect("room config").agents;
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].agent_name, "support-agent");
    let meta: Value = serde_json::from_str(&agents[0].metadata).unwrap();
    assert_eq!(meta["agent_config_id"], a);
    assert_eq!(meta["llm_model"], "gpt-4o");

    let (_, body) = json(
        app.post_json(
            "/api/v1/token",
            &json!({"identity": "u", "room": "r", "agent_config_ids": [b, a]}),
        )
        .await,
    )
    .await;
    assert_eq!(body["agents_dispatched"], json!([a, b]));
    let claims = verifier(&app)
        .verify(body["token"].as_str().unwrap())
        .unwrap();
    let names: Vec<String> = claims
        .room_config
        .unwrap()
        .agents
        .into_iter()
        .map(|d| d.agent_name)
        .collect();
    assert_eq!(names, ["support-agent", "note-taker"]);

    // An inactive agent cannot be dispatched; another project's agent is unknown.
    app.patch_json(&format!("/api/v1/agents/{b}"), &json!({"is_active": false}))
        .await;
    expect_error(
        app.post_json(
            "/api/v1/token",
            &json!({"identity": "u", "room": "r", "agent_config_id": b}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let other = app.create_project(Plan::Professional).await;
    let res = app
        .req_as(&other.key, Method::POST, "/api/v1/token")
        .json(&json!({"identity": "u", "room": "r", "agent_config_id": a}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn rooms_create_list_detail_participants_kick_and_close() {
    let app = TestApp::spawn().await;
    let body = create_room(&app, "my-room").await;
    let full = format!("{}_my-room", app.project.room_prefix);
    assert_eq!(body["success"], true);
    assert_eq!(body["room"]["name"], "my-room");
    assert_eq!(body["room"]["fullName"], full);
    assert!(body["room"]["sid"].as_str().unwrap().starts_with("RM_"));
    assert_eq!(body["room"]["emptyTimeout"], 300);
    assert_eq!(body["room"]["maxParticipants"], 0);
    assert!(body["room"]["creationTime"].as_i64().unwrap() > 1_700_000_000);
    expect_error(
        app.post_json("/api/v1/rooms", &json!({"name": "my-room"}))
            .await,
        409,
        "CONFLICT",
    )
    .await;
    expect_error(
        app.post_json("/api/v1/rooms", &json!({"name": "no/slash"}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;

    app.sim()
        .join(&full, SimParticipant::new("user1").name("User"))
        .await
        .unwrap();
    app.sim()
        .join(&full, SimParticipant::new("agent-1").kind(SimKind::Agent))
        .await
        .unwrap();

    let (_, list) = json(app.get("/api/v1/rooms").await).await;
    assert_eq!(list["rooms"].as_array().unwrap().len(), 1);
    assert_eq!(list["rooms"][0]["name"], "my-room");
    assert_eq!(list["rooms"][0]["fullName"], full);
    assert_eq!(list["rooms"][0]["numParticipants"], 2);

    let (status, detail) = json(app.get("/api/v1/rooms/my-room").await).await;
    assert_eq!(status, 200);
    assert_eq!(detail["room"]["status"], "active");
    assert_eq!(detail["room"]["numParticipants"], 2);
    assert_eq!(detail["room"]["participants"][0]["identity"], "user1");
    assert_eq!(detail["room"]["participants"][0]["name"], "User");
    // The full name addresses the same room.
    let (status, _) = json(app.get(&format!("/api/v1/rooms/{full}")).await).await;
    assert_eq!(status, 200);

    let (_, ps) = json(app.get("/api/v1/rooms/my-room/participants").await).await;
    let user = ps["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["identity"] == "user1")
        .unwrap()
        .clone();
    assert_eq!(user["state"], "ACTIVE");
    assert_eq!(user["tracks"][0]["type"], "AUDIO");
    assert!(user["joinedAt"].as_i64().unwrap() > 0);
    let agent = ps["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["identity"] == "agent-1")
        .unwrap()
        .clone();
    assert_eq!(agent["kind"], "agent");

    let (status, body) = json(
        app.req(Method::POST, "/api/v1/rooms/my-room/kick/user1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["success"].clone()), (200, json!(true)));
    assert!(
        app.sim()
            .participants(&full)
            .iter()
            .all(|p| p.identity != "user1")
    );
    expect_error(
        app.req(Method::POST, "/api/v1/rooms/my-room/kick/user1")
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;

    let (status, body) = json(app.delete("/api/v1/rooms/my-room").await).await;
    assert_eq!(
        (status, body),
        (200, json!({"success": true, "message": "Room closed"}))
    );
    assert!(app.sim().rooms().iter().all(|r| r.name != full));
    app.sim().flush_webhooks().await;
    let (status, detail) = json(app.get("/api/v1/rooms/my-room").await).await;
    assert_eq!(status, 200);
    assert_eq!(detail["room"]["status"], "closed");
    assert!(detail["room"]["closedAt"].as_i64().is_some());
    expect_error(app.delete("/api/v1/rooms/my-room").await, 404, "NOT_FOUND").await;
    expect_error(
        app.get("/api/v1/rooms/never-existed").await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.get("/api/v1/rooms/never-existed/participants").await,
        404,
        "NOT_FOUND",
    )
    .await;
    // The name is free again.
    create_room(&app, "my-room").await;
}

#[tokio::test]
async fn room_quota_counts_active_rooms() {
    let app = TestApp::spawn_with(|s| s.plans.professional.rooms = 2).await;
    create_room(&app, "a").await;
    create_room(&app, "b").await;
    let err = expect_error(
        app.post_json("/api/v1/rooms", &json!({"name": "c"})).await,
        429,
        "QUOTA_EXCEEDED",
    )
    .await;
    assert_eq!(err["details"]["resource"], "rooms");
    app.delete("/api/v1/rooms/a").await;
    create_room(&app, "c").await;
    let (_, q) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(
        q["quotas"]["rooms"],
        json!({"limit": 2, "used": 2, "remaining": 0})
    );
}

#[tokio::test]
async fn whisper_reaches_only_the_named_identities_and_broadcast_everyone() {
    let app = TestApp::spawn().await;
    create_room(&app, "call").await;
    let full = format!("{}_call", app.project.room_prefix);
    for who in ["agent-1", "user1", "supervisor"] {
        app.sim()
            .join(&full, SimParticipant::new(who))
            .await
            .unwrap();
    }
    let (status, body) = json(
        app.post_json("/api/v1/rooms/call/send-data", &json!({"data": "Only you can see this", "destination_identities": ["agent-1"], "topic": "whisper"})).await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bytes"], 21);
    let (_, body) = json(
        app.post_json(
            "/api/v1/rooms/call/send-data",
            &json!({"data": {"hello": "everyone"}}),
        )
        .await,
    )
    .await;
    assert_eq!(body["success"], true);

    let packets = app.sim().data_packets();
    assert_eq!(packets.len(), 2);
    assert_eq!(packets[0].data, b"Only you can see this");
    assert_eq!(packets[0].destination_identities, ["agent-1"]);
    assert_eq!(packets[0].recipients, ["agent-1"]);
    assert_eq!(packets[0].topic.as_deref(), Some("whisper"));
    let everyone: Value = serde_json::from_slice(&packets[1].data).unwrap();
    assert_eq!(everyone, json!({"hello": "everyone"}));
    let mut recipients = packets[1].recipients.clone();
    recipients.sort();
    assert_eq!(recipients, ["agent-1", "supervisor", "user1"]);

    for bad in [
        json!({}),
        json!({"data": null}),
        json!({"data": ""}),
        json!({"data": "x".repeat(20_000)}),
        json!({"data": "x", "destination_identities": ["a b"]}),
    ] {
        expect_error(
            app.post_json("/api/v1/rooms/call/send-data", &bad).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
    expect_error(
        app.post_json("/api/v1/rooms/nowhere/send-data", &json!({"data": "x"}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn participant_updates_and_mute() {
    let app = TestApp::spawn().await;
    create_room(&app, "call").await;
    let full = format!("{}_call", app.project.room_prefix);
    app.sim()
        .join(&full, SimParticipant::new("user1"))
        .await
        .unwrap();
    app.sim()
        .join(&full, SimParticipant::new("listener").without_audio())
        .await
        .unwrap();

    let (status, body) = json(
        app.post_json(
            "/api/v1/rooms/call/participants/user1",
            &json!({"permission": {"canPublish": false}, "name": "Renamed"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["participant"]["name"], "Renamed");
    assert_eq!(body["participant"]["permission"]["canPublish"], false);
    assert_eq!(body["participant"]["permission"]["canSubscribe"], true);
    let p = app
        .sim()
        .participants(&full)
        .into_iter()
        .find(|p| p.identity == "user1")
        .unwrap();
    assert!(!p.permission.unwrap().can_publish);
    expect_error(
        app.post_json("/api/v1/rooms/call/participants/user1", &json!({}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.post_json(
            "/api/v1/rooms/call/participants/ghost",
            &json!({"name": "x"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;

    let (status, body) = json(
        app.post_json(
            "/api/v1/rooms/call/participants/user1/mute",
            &json!({"muted": true}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["track"]["muted"], true);
    assert_eq!(body["track"]["type"], "AUDIO");
    let sid = body["track"]["sid"].as_str().unwrap().to_owned();
    let p = app
        .sim()
        .participants(&full)
        .into_iter()
        .find(|p| p.identity == "user1")
        .unwrap();
    assert!(p.tracks.iter().any(|t| t.sid == sid && t.muted));
    let (_, body) = json(
        app.post_json(
            "/api/v1/rooms/call/participants/user1/mute",
            &json!({"muted": false, "track_sid": sid}),
        )
        .await,
    )
    .await;
    assert_eq!(body["track"]["muted"], false);

    let err = expect_error(
        app.post_json(
            "/api/v1/rooms/call/participants/listener/mute",
            &json!({"muted": true}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    assert!(
        err["error"].as_str().unwrap().contains("no audio track"),
        "{err}"
    );
    expect_error(
        app.post_json("/api/v1/rooms/call/participants/user1/mute", &json!({}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn another_project_cannot_touch_my_rooms() {
    let app = TestApp::spawn().await;
    create_room(&app, "private").await;
    let full = format!("{}_private", app.project.room_prefix);
    app.sim()
        .join(&full, SimParticipant::new("user1"))
        .await
        .unwrap();
    let other = app.create_project(Plan::Professional).await;
    let as_other = |m: Method, p: &str| app.req_as(&other.key, m, p);

    let (_, list) = json(as_other(Method::GET, "/api/v1/rooms").send().await.unwrap()).await;
    assert_eq!(list["rooms"], json!([]));
    for name in ["private", full.as_str()] {
        expect_error(
            as_other(Method::GET, &format!("/api/v1/rooms/{name}"))
                .send()
                .await
                .unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
        expect_error(
            as_other(Method::GET, &format!("/api/v1/rooms/{name}/participants"))
                .send()
                .await
                .unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
        expect_error(
            as_other(Method::DELETE, &format!("/api/v1/rooms/{name}"))
                .send()
                .await
                .unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
        expect_error(
            as_other(Method::POST, &format!("/api/v1/rooms/{name}/kick/user1"))
                .send()
                .await
                .unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
        let res = as_other(
            Method::POST,
            &format!("/api/v1/rooms/{name}/participants/user1/mute"),
        )
        .json(&json!({"muted": true}))
        .send()
        .await
        .unwrap();
        expect_error(res, 404, "NOT_FOUND").await;
        let res = as_other(Method::POST, &format!("/api/v1/rooms/{name}/send-data"))
            .json(&json!({"data": "hi"}))
            .send()
            .await
            .unwrap();
        expect_error(res, 404, "NOT_FOUND").await;
    }
    // Nothing happened to the room.
    assert!(
        app.sim()
            .participants(&full)
            .iter()
            .any(|p| p.identity == "user1")
    );
    assert!(app.sim().data_packets().is_empty());
    let p = app
        .sim()
        .participants(&full)
        .into_iter()
        .find(|p| p.identity == "user1")
        .unwrap();
    assert!(p.tracks.iter().all(|t| !t.muted));
}

#[tokio::test]
async fn livekit_down_is_503_within_the_timeout() {
    let mut app = TestApp::spawn_with(|s| s.livekit_timeout_ms = 800).await;
    create_room(&app, "r").await;
    app.sim.as_mut().unwrap().stop();
    let started = Instant::now();
    let err = expect_error(app.get("/api/v1/rooms").await, 503, "SERVICE_UNAVAILABLE").await;
    assert_eq!(err["error"], "LiveKit unavailable");
    assert!(started.elapsed() < Duration::from_secs(2));
    expect_error(
        app.post_json("/api/v1/rooms", &json!({"name": "x"})).await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    // Nothing was recorded for the failed create.
    let (_, q) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(q["quotas"]["rooms"]["used"], 1);
    // A token needs no call to LiveKit.
    let res = app
        .post_json(
            "/api/v1/token",
            &json!({"identity": "u", "room": "r", "no_agent": true}),
        )
        .await;
    assert_eq!(res.status(), 200);

    // A server that accepts connections but never answers: 503 after the timeout, not a hang.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging = format!("http://{}", listener.local_addr().unwrap());
    let stuck = app
        .another_node(|s| {
            s.livekit_url = Some(hanging.clone());
            s.livekit_timeout_ms = 500;
        })
        .await;
    let started = Instant::now();
    expect_error(stuck.get("/api/v1/rooms").await, 503, "SERVICE_UNAVAILABLE").await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    drop(listener);
}

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    identity: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    left: bool,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
}

async fn participant_rows(app: &TestApp) -> Vec<Row> {
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    diesel::sql_query(
        "SELECT identity, left_at IS NOT NULL AS left, kind FROM participants ORDER BY id",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

async fn room_status(app: &TestApp, sid: &str) -> Option<String> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use voxplane::db::schema::rooms;
    let mut conn = app.conn().await;
    rooms::table
        .filter(rooms::sid.eq(sid))
        .select(rooms::status)
        .first(&mut conn)
        .await
        .optional()
        .unwrap()
}

pub(crate) fn signed(app: &TestApp, body: &str) -> String {
    let now = chrono::Utc::now().timestamp() as u64;
    sign_webhook(
        app.sim().api_key(),
        app.sim().api_secret(),
        body.as_bytes(),
        now,
    )
    .unwrap()
}

pub(crate) async fn post_webhook(app: &TestApp, body: &str, auth: &str) -> reqwest::Response {
    app.anon(Method::POST, "/livekit/webhook")
        .header("Content-Type", "application/webhook+json")
        .header("Authorization", auth)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

fn event(id: &str, event: &str, room: &str, sid: &str, created_at: i64) -> String {
    json!({"event": event, "id": id, "createdAt": created_at.to_string(),
           "room": {"sid": sid, "name": room, "creationTime": (created_at - 5).to_string()}})
    .to_string()
}
