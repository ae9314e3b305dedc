//! `session.started` is written by three statements (`calls::starts` for
//! tokens and `POST /sessions`, `livekit::effects` for webhooks kept to their
//! room, `db::sessions::announce` for inbound and dialed calls): whichever
//! path started a session, its receivers get the same payload.

use super::*;
use crate::common::receiver::Receiver;
use std::time::Duration;

#[tokio::test]
async fn every_path_that_starts_a_session_announces_it_alike() {
    let app = TestApp::spawn().await;
    let rx = Receiver::start(vec![]);
    let (status, body) = json(
        app.post_json(
            "/api/v1/webhooks",
            &json!({"url": rx.url, "event_types": ["session.started"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let agent_id = crate::sip::agent(&app, "Receptionist").await;
    let full = |room: &str| format!("{}_{room}", app.project.room_prefix);

    // A token with agent dispatch (the contract's default) and the API.
    let (status, body) = json(
        app.post_json(
            "/api/v1/token",
            &json!({"identity": "caller-1", "room": "by-token"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = json(
        app.post_json(
            "/api/v1/sessions",
            &json!({"room_name": "by-api", "agent_config_id": agent_id,
                    "caller_identity": "+15550001111"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // An agent joining a room no session was started in (a webhook kept to
    // its room).
    app.sim()
        .join(
            &full("by-agent"),
            SimParticipant::new("agent-1").kind(SimKind::Agent),
        )
        .await
        .unwrap();
    // An inbound phone call on a line with an agent.
    crate::sip::line(&app, agent_id).await;
    app.sim()
        .join(&full("call-_+17755550123_abc"), crate::sip::caller())
        .await
        .unwrap();
    // A dialed call.
    crate::sip::trunk(&app, "+18001234567").await;
    let (status, body) = json(
        app.post_json(
            "/api/v1/sip/dial",
            &json!({"phone_number": "+17751234567", "room_name": "by-dial"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.sim().flush_webhooks().await;

    let (_, list) = json(app.get("/api/v1/sessions?per_page=100").await).await;
    let sessions = list["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"));
    let mut rooms: Vec<&str> = sessions
        .iter()
        .map(|s| s["room_name"].as_str().unwrap())
        .collect();
    rooms.sort_unstable();
    let mut want = [
        "by-agent",
        "by-api",
        "by-dial",
        "by-token",
        "call-_+17755550123_abc",
    ]
    .map(full);
    want.sort_unstable();
    assert_eq!(rooms, want, "{list}");
    let got = rx.wait_for(sessions.len(), Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), sessions.len(), "one event per session");
    for s in sessions {
        let (_, d) = json(
            app.get(&format!("/api/v1/sessions/{}/detail", s["id"]))
                .await,
        )
        .await;
        let s = &d["session"];
        let event = got
            .iter()
            .map(|r| r.json())
            .find(|e| e["data"]["session_id"] == s["id"])
            .unwrap_or_else(|| panic!("no session.started for {s}"));
        assert_eq!(event["event_type"], "session.started", "{event}");
        assert_eq!(
            event["data"],
            json!({"session_id": s["id"], "room_name": s["room_name"],
                   "agent_config_id": s["agent_config_id"], "session_type": s["session_type"],
                   "caller_identity": s["caller_identity"]}),
            "{} (session {s})",
            s["room_name"]
        );
    }
}
