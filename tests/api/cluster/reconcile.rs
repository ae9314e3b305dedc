//! The LiveKit reconciler: with the simulator's webhooks switched off, a
//! room that finished and an egress that completed are repaired within one
//! period, and the missed events are emitted once.

use crate::common::{TestApp, json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use voxplane::embedded::livekit::{SimKind, SimParticipant};

async fn events(app: &TestApp) -> Vec<(String, Value)> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_type: String,
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        data: Value,
    }
    let mut conn = app.conn().await;
    let rows: Vec<Row> =
        diesel::sql_query("SELECT event_type, data FROM events WHERE project_id = $1 ORDER BY id")
            .bind::<diesel::sql_types::Int8, _>(app.project.id)
            .load(&mut conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| (r.event_type, r.data)).collect()
}

fn count(events: &[(String, Value)], kind: &str) -> usize {
    events.iter().filter(|(t, _)| t == kind).count()
}

async fn set_webhooks(app: &TestApp, enabled: bool) {
    let res = app
        .client
        .put(format!("{}/_sim/webhooks", app.sim().url()))
        .json(&json!({ "enabled": enabled }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn a_room_finished_and_an_egress_completed_without_webhooks_are_repaired_once() {
    let app = TestApp::spawn_with(|s| s.reconcile_secs = 1).await;
    let (status, body) = json(
        app.post_json("/api/v1/rooms", &json!({"name": "lost"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let full = format!("{}_lost", app.project.room_prefix);
    app.sim()
        .join(&full, SimParticipant::new("agent-1").kind(SimKind::Agent))
        .await
        .unwrap();
    let (status, rec) = json(
        app.post_json("/api/v1/rooms/lost/recordings/start", &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{rec}");
    let recording = rec["recording"]["id"].as_i64().unwrap();
    app.sim().flush_webhooks().await;
    let before = events(&app).await;
    assert_eq!(count(&before, "session.started"), 1, "{before:?}");
    let session = before
        .iter()
        .find(|(t, _)| t == "session.started")
        .map(|(_, d)| d["session_id"].as_i64().unwrap())
        .unwrap();

    // LiveKit's webhooks are lost from now on; the room ends in LiveKit
    // (through the real client, not Voxplane's API), which completes the egress.
    set_webhooks(&app, false).await;
    let lk = app.state.livekit.as_deref().unwrap();
    lk.rooms.delete_room(&full).await.unwrap();
    app.sim().flush_webhooks().await;
    assert_eq!(events(&app).await.len(), before.len(), "no webhook came");

    // Within one period (1 s, plus the 2 s a row must have settled).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, s) = json(app.get(&format!("/api/v1/sessions/{session}/detail")).await).await;
        let (_, r) = json(app.get(&format!("/api/v1/recordings/{recording}")).await).await;
        if s["session"]["status"] == "completed" && r["recording"]["status"] == "completed" {
            // Ended when LiveKit's data says the room did (its egress's
            // end), not when the repair ran.
            let ended = |v: &Value| {
                chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
                    .unwrap()
                    .timestamp()
            };
            assert_eq!(
                ended(&s["session"]["ended_at"]),
                ended(&r["recording"]["ended_at"]),
                "{s} {r}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not repaired: {s} {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, r) = json(app.get(&format!("/api/v1/recordings/{recording}")).await).await;
    assert!(r["recording"]["size_bytes"].as_i64().unwrap() > 0, "{r}");
    // Settled like the webhook: the file is named by its egress id.
    let download = app
        .req(
            Method::GET,
            &format!("/api/v1/recordings/{recording}/download"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);

    // A few more periods: nothing is repaired twice.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = events(&app).await;
    for kind in [
        "room.finished",
        "session.ended",
        "recording.stopped",
        "egress.ended",
    ] {
        assert_eq!(count(&after, kind), 1, "{kind}: {after:?}");
    }
    let metrics = app
        .anon(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for kind in ["room_ended", "recording_settled"] {
        assert!(
            metrics.contains(&format!(
                "voxplane_reconcile_repairs_total{{name=\"{kind}\"}} 1"
            )),
            "{kind}: {metrics}"
        );
    }

    // The real webhooks arriving late (LiveKit back) are duplicates.
    set_webhooks(&app, true).await;
}
