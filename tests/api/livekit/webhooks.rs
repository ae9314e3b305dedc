//! Inbound LiveKit webhooks: rooms and participants updated; forged, tampered, duplicate and reordered webhooks.

use super::*;

#[tokio::test]
async fn livekit_webhooks_update_rooms_and_participants() {
    let app = TestApp::spawn().await;
    let full = format!("{}_hooked", app.project.room_prefix);
    // A room created by a participant joining (no POST /rooms).
    app.sim()
        .join(&full, SimParticipant::new("caller").kind(SimKind::Sip))
        .await
        .unwrap();
    app.sim()
        .join(&full, SimParticipant::new("agent").kind(SimKind::Agent))
        .await
        .unwrap();
    app.sim().leave(&full, "caller").await.unwrap();
    app.sim().flush_webhooks().await;
    let rows = participant_rows(&app).await;
    assert_eq!(
        rows,
        vec![
            Row {
                identity: "caller".into(),
                left: true,
                kind: "sip".into()
            },
            Row {
                identity: "agent".into(),
                left: false,
                kind: "agent".into()
            },
        ]
    );
    let sid = app
        .sim()
        .rooms()
        .into_iter()
        .find(|r| r.name == full)
        .unwrap()
        .sid;
    assert_eq!(room_status(&app, &sid).await.as_deref(), Some("active"));
    // Now visible through the API, and closable.
    let (_, detail) = json(app.get("/api/v1/rooms/hooked").await).await;
    assert_eq!(detail["room"]["status"], "active");
    assert_eq!(app.delete("/api/v1/rooms/hooked").await.status(), 200);
    app.sim().flush_webhooks().await;
    assert_eq!(room_status(&app, &sid).await.as_deref(), Some("closed"));
    let (_, detail) = json(app.get("/api/v1/rooms/hooked").await).await;
    assert_eq!(detail["room"]["status"], "closed");
    assert_eq!(detail["room"]["participants"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn forged_tampered_duplicate_and_reordered_webhooks() {
    let app = TestApp::spawn().await;
    let full = format!("{}_ooo", app.project.room_prefix);
    let now = chrono::Utc::now().timestamp();
    let started = event("EV_1", "room_started", &full, "RM_ooo", now);
    let finished = event("EV_2", "room_finished", &full, "RM_ooo", now + 10);

    // Forged: signed with another secret. Tampered: valid signature of another body.
    let forged = voxplane::embedded::livekit::sign_webhook(
        app.sim().api_key(),
        "not-the-secret-0123456789abcdefghij",
        started.as_bytes(),
        now as u64,
    )
    .unwrap();
    expect_error(
        post_webhook(&app, &started, &forged).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    let tampered_auth = signed(&app, &started);
    let tampered = started.replace("RM_ooo", "RM_evil");
    expect_error(
        post_webhook(&app, &tampered, &tampered_auth).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        app.anon(Method::POST, "/livekit/webhook")
            .body(started.clone())
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(room_status(&app, "RM_ooo").await, None, "nothing recorded");
    assert_eq!(room_status(&app, "RM_evil").await, None);

    // Out of order: finished first, then started — the room stays closed.
    let (status, body) = json(post_webhook(&app, &finished, &signed(&app, &finished)).await).await;
    assert_eq!((status, body["outcome"].clone()), (200, json!("processed")));
    let (_, body) = json(post_webhook(&app, &started, &signed(&app, &started)).await).await;
    assert_eq!(body["outcome"], "processed");
    assert_eq!(room_status(&app, "RM_ooo").await.as_deref(), Some("closed"));
    // Duplicates are acknowledged and ignored.
    let (_, body) = json(post_webhook(&app, &started, &signed(&app, &started)).await).await;
    assert_eq!(body["outcome"], "duplicate");

    // Another project's prefix or none: acknowledged, ignored.
    let foreign = event("EV_3", "room_started", "pnobody_room", "RM_x", now);
    let (status, body) = json(post_webhook(&app, &foreign, &signed(&app, &foreign)).await).await;
    assert_eq!((status, body["outcome"].clone()), (200, json!("ignored")));
    assert_eq!(room_status(&app, "RM_x").await, None);
}
