//! Voice calls in a chat: LiveKit rooms and tokens, ringing, participants
//! from LiveKit's webhooks on `/ws/call/{id}`, the call in the history.

use super::*;
use crate::common::expect_error;
use livekit_api::access_token::TokenVerifier;
use voxplane::embedded::livekit::SimParticipant;

/// Checks a call token as LiveKit does; returns (identity, room).
fn verified(t: &Team, token: &str) -> (String, String) {
    let sim = t.app.sim();
    let claims = TokenVerifier::with_api_key(sim.api_key(), sim.api_secret())
        .verify(token)
        .expect("a token LiveKit accepts");
    assert!(claims.video.room_join);
    assert!(!claims.video.room_admin && !claims.video.room_create);
    assert_eq!(claims.video.can_publish_sources, vec!["microphone"]);
    (claims.sub, claims.video.room)
}

#[tokio::test]
async fn a_call_rings_gives_tokens_for_its_room_and_follows_its_participants() {
    let t = team(3).await;
    let (a, b, c) = (&t.people[0], &t.people[1], &t.people[2]);
    let group = t.group(0, "Voice", &[1, 2]).await;
    let mut a_chat = chat_socket(&t.app, a, &[group]).await;
    let mut b_chat = chat_socket(&t.app, b, &[group]).await;
    let started = ok(
        &t.app,
        a,
        t.project,
        "start-call",
        json!({"chat_id": group}),
        201,
    )
    .await;
    let call = &started["call"];
    let call_id = call["id"].as_i64().unwrap();
    let room = call["room"].as_str().unwrap().to_owned();
    assert_eq!(call["status"], "ringing");
    assert_eq!(call["chat_id"], group);
    assert_eq!(call["started_by"], a.id);
    assert!(room.ends_with(&format!("_chatcall-{call_id}")));
    assert_eq!(started["room"], room.as_str());
    assert_eq!(started["identity"], format!("account-{}", a.id));
    assert!(started["wsUrl"].as_str().unwrap().starts_with("ws"));
    assert_eq!(
        verified(&t, started["token"].as_str().unwrap()),
        (format!("account-{}", a.id), room.clone())
    );
    // The room exists in the project's namespace.
    assert!(t.app.sim().rooms().iter().any(|r| r.name == room));
    // The call is a message of the chat, and rings the other members, not the caller.
    let mut frames = Vec::new();
    while frames.len() < 2 {
        let f = next_within(&mut b_chat, Duration::from_secs(10))
            .await
            .unwrap();
        if f["type"] == "new_message" || f["type"] == "incoming_call" {
            frames.push(f);
        }
    }
    let m = &frames[0];
    assert_eq!(m["message"]["kind"], "call");
    assert_eq!(m["message"]["call"]["id"], call_id);
    let ring = &frames[1];
    assert_eq!(
        (
            ring["call_id"].as_i64(),
            ring["chat_id"].as_i64(),
            ring["from_account_id"].as_i64()
        ),
        (Some(call_id), Some(group), Some(a.id))
    );
    quiet_of(&mut a_chat, "incoming_call").await;

    let mut watch = socket_at(&t.app, c, &format!("/ws/call/{call_id}")).await;
    let state = connected(&mut watch).await;
    assert_eq!(state["call"]["status"], "ringing");
    assert_eq!(state["call"]["participants"], json!([]));
    let joined = ok(
        &t.app,
        b,
        t.project,
        "join-call",
        json!({"chat_id": group}),
        200,
    )
    .await;
    assert_eq!(
        verified(&t, joined["token"].as_str().unwrap()),
        (format!("account-{}", b.id), room.clone())
    );
    let by_id = ok(
        &t.app,
        c,
        t.project,
        "join-call",
        json!({"call_id": call_id}),
        200,
    )
    .await;
    assert_eq!(by_id["call"]["id"], call_id);

    // Participants come from LiveKit: the caller joining does not answer.
    let sim = t.app.sim();
    sim.join(&room, SimParticipant::new(format!("account-{}", a.id)))
        .await
        .unwrap();
    let s = next_of(&mut watch, "call_state").await;
    assert_eq!(
        (s["change"].as_str(), s["account_id"].as_i64()),
        (Some("participant_joined"), Some(a.id))
    );
    assert_eq!(s["call"]["status"], "ringing");
    sim.join(&room, SimParticipant::new(format!("account-{}", b.id)))
        .await
        .unwrap();
    let s = next_of(&mut watch, "call_state").await;
    assert_eq!(
        (s["change"].as_str(), s["account_id"].as_i64()),
        (Some("participant_joined"), Some(b.id))
    );
    assert_eq!(s["call"]["status"], "active");
    assert!(s["call"]["answered_at"].is_string());
    assert_eq!(s["call"]["participants"].as_array().unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim.leave(&room, &format!("account-{}", b.id))
        .await
        .unwrap();
    let s = next_of(&mut watch, "call_state").await;
    assert_eq!(
        (s["change"].as_str(), s["account_id"].as_i64()),
        (Some("participant_left"), Some(b.id))
    );
    assert_eq!(s["call"]["status"], "active");
    sim.leave(&room, &format!("account-{}", a.id))
        .await
        .unwrap();
    let s = next_of(&mut watch, "call_state").await;
    assert_eq!(s["change"], "participant_left");
    let s = next_of(&mut watch, "call_state").await;
    assert_eq!(s["change"], "ended");
    assert_eq!(s["call"]["status"], "ended");
    assert_eq!(s["call"]["end_reason"], "everyone_left");
    let ended = next_of(&mut b_chat, "call_ended").await;
    assert_eq!(ended["call_id"], call_id);
    assert_eq!(ended["reason"], "everyone_left");
    // The history keeps the call with its duration.
    let history = t.call(2, "messages", json!({"chat_id": group})).await;
    let message = &history["messages"][0];
    assert_eq!(message["kind"], "call");
    assert_eq!(message["sender_account_id"], a.id);
    assert_eq!(message["call"]["status"], "ended");
    let duration = message["call"]["duration_seconds"].as_i64().unwrap();
    assert!((1..=5).contains(&duration), "{duration}");
    // Over: no more tokens; a new call may start.
    let res = post(
        &t.app,
        b,
        t.project,
        "join-call",
        json!({"call_id": call_id}),
    )
    .await;
    expect_error(res, 409, "CONFLICT").await;
    ok(
        &t.app,
        b,
        t.project,
        "start-call",
        json!({"chat_id": group}),
        201,
    )
    .await;
}

/// The snapshot a call socket sends first (updates queued before it may
/// precede it; it is the current state).
async fn connected(ws: &mut Ws) -> Value {
    loop {
        let s = next_of(ws, "call_state").await;
        if s["change"] == "connected" {
            return s;
        }
    }
}

/// No frame of a type within a short while.
async fn quiet_of(ws: &mut Ws, kind: &str) {
    let got = collect(ws, &[kind], Duration::from_millis(300)).await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn end_call_ends_it_for_everyone_and_closes_the_room() {
    let t = team(2).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let chat = ok(
        &t.app,
        a,
        t.project,
        "create-chat",
        json!({"account_id": b.id}),
        201,
    )
    .await["chat"]["id"]
        .as_i64()
        .unwrap();
    let started = ok(
        &t.app,
        a,
        t.project,
        "start-call",
        json!({"chat_id": chat}),
        201,
    )
    .await;
    let call_id = started["call"]["id"].as_i64().unwrap();
    let room = started["room"].as_str().unwrap().to_owned();
    // One call at a time per chat.
    let res = post(&t.app, b, t.project, "start-call", json!({"chat_id": chat})).await;
    let body = expect_error(res, 409, "CONFLICT").await;
    assert_eq!(body["details"]["call_id"], call_id);
    let mut watch = socket_at(&t.app, b, &format!("/ws/call/{call_id}")).await;
    connected(&mut watch).await;
    let ended = ok(
        &t.app,
        b,
        t.project,
        "end-call",
        json!({"call_id": call_id}),
        200,
    )
    .await;
    assert_eq!(ended["call"]["status"], "ended");
    assert_eq!(ended["call"]["end_reason"], "ended");
    assert_eq!(ended["call"]["duration_seconds"], 0, "never answered");
    let s = next_of(&mut watch, "call_state").await;
    assert_eq!(
        (s["change"].as_str(), s["account_id"].as_i64()),
        (Some("ended"), Some(b.id))
    );
    assert!(
        !t.app.sim().rooms().iter().any(|r| r.name == room),
        "room deleted"
    );
    // Ending again answers the call as it is.
    let again = ok(
        &t.app,
        a,
        t.project,
        "end-call",
        json!({"call_id": call_id}),
        200,
    )
    .await;
    assert_eq!(again["call"]["ended_at"], ended["call"]["ended_at"]);
    let res = post(&t.app, a, t.project, "end-call", json!({"chat_id": chat})).await;
    expect_error(res, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn strangers_cannot_follow_or_join_a_call() {
    let t = team(3).await;
    let group = t.group(0, "Pair", &[1]).await;
    let started = ok(
        &t.app,
        &t.people[0],
        t.project,
        "start-call",
        json!({"chat_id": group}),
        201,
    )
    .await;
    let call_id = started["call"]["id"].as_i64().unwrap();
    // A member of the project who is not in the chat.
    let outsider = &t.people[2];
    let res = post(
        &t.app,
        outsider,
        t.project,
        "join-call",
        json!({"call_id": call_id}),
    )
    .await;
    expect_error(res, 404, "NOT_FOUND").await;
    let res = post(
        &t.app,
        outsider,
        t.project,
        "end-call",
        json!({"call_id": call_id}),
    )
    .await;
    expect_error(res, 404, "NOT_FOUND").await;
    let mut ws = open(&t.app, &format!("/ws/call/{call_id}")).await;
    send(
        &mut ws,
        json!({"type": "authenticate", "token": outsider.access}),
    )
    .await;
    assert_eq!(
        closed_with(&mut ws, Duration::from_secs(3)).await,
        Some(4004)
    );
    for path in ["/ws/call/999999", "/ws/call/abc"] {
        let mut ws = open(&t.app, path).await;
        send(
            &mut ws,
            json!({"type": "authenticate", "token": t.people[0].access}),
        )
        .await;
        assert_eq!(
            closed_with(&mut ws, Duration::from_secs(3)).await,
            Some(4004),
            "{path}"
        );
    }
    // A call of another chat named with this chat: not found.
    let other = t.group(0, "Other", &[2]).await;
    let res = post(
        &t.app,
        &t.people[0],
        t.project,
        "join-call",
        json!({"chat_id": other, "call_id": call_id}),
    )
    .await;
    expect_error(res, 404, "NOT_FOUND").await;
    // A call socket only listens.
    let mut watch = socket_at(&t.app, &t.people[1], &format!("/ws/call/{call_id}")).await;
    send(&mut watch, json!({"type": "join_chat", "chat_id": group})).await;
    assert_eq!(
        next_of(&mut watch, "error").await["code"],
        "INVALID_REQUEST"
    );
}

#[tokio::test]
async fn calls_nobody_answers_end_as_missed() {
    let t = team_with(2, |s| {
        s.chat.call_ring_timeout_secs = 1;
        s.chat.node_heartbeat_ms = 200;
        s.chat.node_timeout_ms = 1000;
    })
    .await;
    let group = t.group(0, "Quiet", &[1]).await;
    let mut b_chat = chat_socket(&t.app, &t.people[1], &[group]).await;
    let started = ok(
        &t.app,
        &t.people[0],
        t.project,
        "start-call",
        json!({"chat_id": group}),
        201,
    )
    .await;
    let room = started["room"].as_str().unwrap().to_owned();
    next_of(&mut b_chat, "incoming_call").await;
    let ended = next_of(&mut b_chat, "call_ended").await;
    assert_eq!(ended["reason"], "missed");
    assert_eq!(ended["duration_seconds"], 0);
    let history = t.call(1, "messages", json!({"chat_id": group})).await;
    assert_eq!(history["messages"][0]["call"]["end_reason"], "missed");
    // Its room went with it (deleted right after the call ended).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while t.app.sim().rooms().iter().any(|r| r.name == room) {
        assert!(
            std::time::Instant::now() < deadline,
            "room {room} still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_call_fails_cleanly_when_livekit_is_down() {
    let t = team(2).await;
    let group = t.group(0, "Down", &[1]).await;
    // A second app on the same database whose LiveKit is unreachable.
    let broken = t
        .app
        .another_node(|s| {
            chat_settings(s);
            s.livekit_url = Some("http://127.0.0.1:9".into());
            s.livekit_timeout_ms = 500;
        })
        .await;
    let res = post(
        &broken,
        &t.people[0],
        t.project,
        "start-call",
        json!({"chat_id": group}),
    )
    .await;
    expect_error(res, 503, "SERVICE_UNAVAILABLE").await;
    // The reservation was released: a call starts where LiveKit works.
    ok(
        &t.app,
        &t.people[0],
        t.project,
        "start-call",
        json!({"chat_id": group}),
        201,
    )
    .await;
}
