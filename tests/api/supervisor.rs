//! Live supervision through HTTP, with the simulator proving who hears whom:
//! listen, whisper (even against the caller's own client), barge, take
//! over and release, mode changes, events and webhooks once.

use crate::common::receiver::Receiver;
use crate::common::{TestApp, expect_error, json};
use crate::monitor::{next_of, subscribed};
use serde_json::{Value, json};
use std::time::Duration;
use voxplane::embedded::livekit::{SimKind, SimParticipant};
use voxplane::limits::plans::Plan;

/// A call in room `help`: an active session, a caller and an agent, each
/// publishing a microphone. Returns the full room name and the session id.
async fn call(app: &TestApp) -> (String, i64) {
    let (status, body) = json(
        app.post_json("/api/v1/sessions", &json!({"room_name": "help"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let full = format!("{}_help", app.project.room_prefix);
    let sim = app.sim();
    sim.join(&full, SimParticipant::new("caller"))
        .await
        .unwrap();
    sim.join(&full, SimParticipant::new("agent-1").kind(SimKind::Agent))
        .await
        .unwrap();
    sim.flush_webhooks().await;
    (full, body["session"]["id"].as_i64().unwrap())
}

async fn supervise(app: &TestApp, identity: &str, mode: &str) -> Value {
    let (status, body) = json(
        app.post_json(
            "/api/v1/sessions/help/supervise",
            &json!({"identity": identity, "mode": mode}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// The supervisor's client joins with its token and (when it may) publishes.
async fn join_as_supervisor(app: &TestApp, full: &str, body: &Value, publish: bool) -> String {
    let sim = app.sim();
    let token = body["token"].as_str().unwrap();
    let me = sim.connect(full, token).await.unwrap();
    let mut track = String::new();
    if publish {
        track = sim
            .publish_microphone(full, &me.identity)
            .await
            .unwrap()
            .sid;
    }
    sim.flush_webhooks().await;
    track
}

fn hears(app: &TestApp, full: &str, who: &str) -> Vec<String> {
    let mut v: Vec<String> = app
        .sim()
        .hears(full, who)
        .into_iter()
        .map(|(identity, _)| identity)
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_listener_hears_the_room_is_hidden_and_publishes_nothing() {
    let app = TestApp::spawn().await;
    let (full, session_id) = call(&app).await;
    let body = supervise(&app, "sup-anna", "listen").await;
    assert_eq!(body["session_id"], session_id);
    assert_eq!(body["room"], full);
    assert!(body["wsUrl"].as_str().unwrap().starts_with("ws://"));
    join_as_supervisor(&app, &full, &body, false).await;

    assert_eq!(hears(&app, &full, "sup-anna"), ["agent-1", "caller"]);
    // Its client cannot publish, and nobody sees or hears it.
    assert!(
        app.sim()
            .publish_microphone(&full, "sup-anna")
            .await
            .is_err()
    );
    let me = app
        .sim()
        .participants(&full)
        .into_iter()
        .find(|p| p.identity == "sup-anna")
        .unwrap();
    assert!(me.tracks.is_empty());
    let perm = me.permission.unwrap();
    assert!(perm.hidden && !perm.can_publish && perm.can_subscribe);
    assert!(
        !app.sim()
            .visible_to(&full, "caller")
            .contains(&"sup-anna".to_owned())
    );
    assert_eq!(hears(&app, &full, "caller"), ["agent-1"]);
    assert_eq!(hears(&app, &full, "agent-1"), ["caller"]);

    // The session records who supervised, in which mode.
    let (_, detail) = json(
        app.get(&format!("/api/v1/sessions/{session_id}/detail"))
            .await,
    )
    .await;
    let sup = &detail["session"]["supervisions"];
    assert_eq!(sup.as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(sup[0]["identity"], "sup-anna");
    assert_eq!(sup[0]["mode"], "listen");
    assert!(sup[0]["ended_at"].is_null());
}

#[tokio::test]
async fn a_whisper_reaches_the_agent_and_never_the_caller_even_when_its_client_asks() {
    let app = TestApp::spawn().await;
    let (full, _) = call(&app).await;
    let body = supervise(&app, "sup-ben", "whisper").await;
    assert_eq!(
        body["track_audience"],
        json!({"all_participants": false, "allowed_identities": ["agent-1"]})
    );
    // Server side: when the supervisor publishes, the caller is unsubscribed.
    let track = join_as_supervisor(&app, &full, &body, true).await;
    assert_eq!(hears(&app, &full, "agent-1"), ["caller", "sup-ben"]);
    assert_eq!(hears(&app, &full, "caller"), ["agent-1"]);
    assert_eq!(hears(&app, &full, "sup-ben"), ["agent-1", "caller"]);

    // The supervisor's client applies the audience it was given; the
    // caller's client then asks for the track and gets no sound.
    app.sim()
        .set_subscription_permission(&full, "sup-ben", Some(&["agent-1"]))
        .unwrap();
    let now = app
        .sim()
        .client_subscribe(&full, "caller", &track, true)
        .unwrap();
    assert!(
        !now,
        "the caller's request waits for a permission it never gets"
    );
    assert_eq!(hears(&app, &full, "caller"), ["agent-1"]);
    assert_eq!(hears(&app, &full, "agent-1"), ["caller", "sup-ben"]);

    // Someone joining later is kept off the whisper too.
    app.sim()
        .join(&full, SimParticipant::new("caller-2"))
        .await
        .unwrap();
    app.sim().flush_webhooks().await;
    assert!(!hears(&app, &full, "caller-2").contains(&"sup-ben".to_owned()));

    // Barging in: everyone hears the supervisor (its client lifts the limit).
    let (status, changed) = json(
        app.patch_json(
            "/api/v1/sessions/help/supervise",
            &json!({"identity": "sup-ben", "mode": "barge"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["track_audience"]["all_participants"], true);
    app.sim()
        .set_subscription_permission(&full, "sup-ben", None)
        .unwrap();
    assert!(hears(&app, &full, "caller").contains(&"sup-ben".to_owned()));

    // Back to listening: its track (still published) reaches no one.
    let (status, _) = json(
        app.patch_json(
            "/api/v1/sessions/help/supervise",
            &json!({"identity": "sup-ben", "mode": "listen"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    for who in ["caller", "caller-2", "agent-1"] {
        assert!(
            !hears(&app, &full, who).contains(&"sup-ben".to_owned()),
            "{who}"
        );
    }
}

#[tokio::test]
async fn take_over_mutes_the_agent_and_release_gives_its_voice_back() {
    let app = TestApp::spawn().await;
    let (full, session_id) = call(&app).await;
    let body = supervise(&app, "sup-cleo", "listen").await;
    join_as_supervisor(&app, &full, &body, false).await;
    // From listen to take_over without rejoining: it may publish now.
    let (status, changed) = json(
        app.patch_json(
            "/api/v1/sessions/help/supervise",
            &json!({"identity": "sup-cleo", "mode": "take_over"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    app.sim()
        .publish_microphone(&full, "sup-cleo")
        .await
        .unwrap();
    app.sim().flush_webhooks().await;
    assert_eq!(
        hears(&app, &full, "caller"),
        ["sup-cleo"],
        "the agent is muted"
    );
    assert!(!app.sim().visible_to(&full, "caller").is_empty());

    let (status, released) = json(
        app.post_json(
            "/api/v1/sessions/help/supervise/release",
            &json!({"identity": "sup-cleo"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["supervision"]["mode"], "take_over");
    app.sim().flush_webhooks().await;
    assert_eq!(
        hears(&app, &full, "caller"),
        ["agent-1"],
        "unmuted, supervisor gone"
    );
    assert!(
        app.sim()
            .participants(&full)
            .iter()
            .all(|p| p.identity != "sup-cleo")
    );
    // Released twice: nothing to release.
    expect_error(
        app.post_json(
            "/api/v1/sessions/help/supervise/release",
            &json!({"identity": "sup-cleo"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let (_, detail) = json(
        app.get(&format!("/api/v1/sessions/{session_id}/detail"))
            .await,
    )
    .await;
    let modes: Vec<&str> = detail["session"]["supervisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["listen", "take_over"]);
    assert!(detail["session"]["supervisions"][1]["ended_at"].is_string());
}

#[tokio::test]
async fn joined_and_left_reach_the_monitor_and_webhooks_once() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0, 0, 0, 0];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    let receiver = Receiver::start(vec![]);
    let (status, _) = json(
        app.post_json(
            "/api/v1/webhooks",
            &json!({"url": receiver.url, "event_types": ["supervisor.joined", "supervisor.left"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    let mut ws = subscribed(&app, &app.project.key, "rooms").await;
    let (full, session_id) = call(&app).await;
    let body = supervise(&app, "sup-dan", "barge").await;
    join_as_supervisor(&app, &full, &body, true).await;
    let joined = next_of(&mut ws, "supervisor.joined").await;
    assert_eq!(joined["data"]["identity"], "sup-dan");
    assert_eq!(joined["data"]["mode"], "barge");
    assert_eq!(joined["data"]["session_id"], session_id);
    // It leaves by itself, then is released: one supervisor.left.
    app.sim().leave(&full, "sup-dan").await.unwrap();
    app.sim().flush_webhooks().await;
    let left = next_of(&mut ws, "supervisor.left").await;
    assert_eq!(left["data"]["reason"], "left");
    expect_error(
        app.post_json(
            "/api/v1/sessions/help/supervise/release",
            &json!({"identity": "sup-dan"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let types: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["supervisor.joined", "supervisor.left"], "{got:?}");
}

#[tokio::test]
async fn supervision_input_is_checked_and_projects_are_isolated() {
    let app = TestApp::spawn().await;
    // No session in the room yet.
    expect_error(
        app.post_json(
            "/api/v1/sessions/help/supervise",
            &json!({"identity": "sup", "mode": "listen"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    call(&app).await;
    for bad in [
        json!({"identity": "sup", "mode": "spy"}),
        json!({"identity": "sup"}),
        json!({"mode": "listen"}),
        json!({"identity": "bad id", "mode": "listen"}),
        json!({"identity": "sup\u{0000}", "mode": "listen"}),
        json!({"identity": "sup", "mode": "listen", "extra": 1}),
    ] {
        expect_error(
            app.post_json("/api/v1/sessions/help/supervise", &bad).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
    supervise(&app, "sup", "listen").await;
    expect_error(
        app.post_json(
            "/api/v1/sessions/help/supervise",
            &json!({"identity": "sup", "mode": "barge"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    expect_error(
        app.patch_json(
            "/api/v1/sessions/help/supervise",
            &json!({"identity": "nobody", "mode": "barge"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;
    // Another project cannot supervise (or even see) this room's session.
    let other = app.create_project(Plan::Professional).await;
    let res = app
        .req_as(
            &other.key,
            reqwest::Method::POST,
            "/api/v1/sessions/help/supervise",
        )
        .json(&json!({"identity": "spy", "mode": "listen"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
}
