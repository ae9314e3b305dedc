//! LiveKit webhooks applied in batches (`livekit::applier`): concurrent
//! webhooks share transactions, each answered after the commit holding its
//! effects; a retried webhook in the same batch counts once; a bad event
//! fails alone.

use crate::common::*;
use crate::livekit::{post_webhook, signed};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

fn agent_joined(id: &str, room: &str, identity: &str) -> String {
    let at = chrono::Utc::now().timestamp();
    json!({
        "event": "participant_joined", "id": id, "createdAt": at.to_string(),
        "room": {"sid": format!("RM_{id}"), "name": room, "creationTime": (at - 5).to_string()},
        "participant": {"sid": format!("PA_{id}"), "identity": identity, "kind": "AGENT", "state": "ACTIVE"},
    })
    .to_string()
}

/// `voxplane_<family>{name="livekit_webhooks"}` from `/metrics`.
async fn batch_metric(app: &TestApp, family: &str) -> f64 {
    let text = app
        .anon(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("voxplane_{family}_total{{name=\"livekit_webhooks\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

#[tokio::test]
async fn concurrent_agent_joins_share_commits_and_each_starts_one_session() {
    let app = TestApp::spawn().await;
    const ROOMS: usize = 40;
    let mut sends = Vec::new();
    for i in 0..ROOMS {
        let room = format!("{}_batch-{i}", app.project.room_prefix);
        let body = agent_joined(&format!("EV_b{i}"), &room, "agent-1");
        // LiveKit retrying at once: the same event twice.
        sends.push(body.clone());
        sends.push(body);
    }
    // A bad event among them: one the database refuses (a trigger stands
    // for whatever Postgres may refuse in a batch: it fails the batch).
    let mut conn = app.conn().await;
    for sql in [
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.identity = 'poison' THEN RAISE EXCEPTION 'poison'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON participants
         FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ] {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
    let bad_room = format!("{}_batch-bad", app.project.room_prefix);
    sends.insert(ROOMS, agent_joined("EV_bad", &bad_room, "poison"));
    let answers = futures_util::future::join_all(sends.iter().map(|body| {
        let app = &app;
        async move {
            let res = post_webhook(app, body, &signed(app, body)).await;
            let status = res.status().as_u16();
            let out: Value = res.json().await.unwrap_or(Value::Null);
            (status, out)
        }
    }))
    .await;
    let outcome = |o: &str| {
        answers
            .iter()
            .filter(|(s, out)| *s == 200 && out["outcome"] == o)
            .count()
    };
    assert_eq!(outcome("processed"), ROOMS, "{answers:?}");
    assert_eq!(outcome("duplicate"), ROOMS, "{answers:?}");
    let failed: Vec<_> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert_eq!(failed.len(), 1, "only the bad event fails: {failed:?}");
    assert_eq!(failed[0].1["code"], "INTERNAL_ERROR", "{failed:?}");

    // Each room: one session, one session.started, one participant.joined.
    let sql = |what: &str| format!("SELECT count(*) AS n FROM {what} AND project_id = $1");
    assert_eq!(
        scalar(
            &app,
            &sql("sessions WHERE status = 'active' AND room_name LIKE '%_batch-%'")
        )
        .await,
        ROOMS as i64
    );
    assert_eq!(
        scalar(&app, &sql("events WHERE event_type = 'session.started'")).await,
        ROOMS as i64
    );
    assert_eq!(
        scalar(&app, &sql("events WHERE event_type = 'participant.joined'")).await,
        ROOMS as i64
    );
    assert_eq!(
        scalar(&app, &sql("sessions WHERE room_name LIKE '%_batch-bad'")).await,
        0,
        "the bad event left nothing behind"
    );

    // LiveKit sends it again: still refused, still alone.
    let bad = &sends[ROOMS];
    let res = post_webhook(&app, bad, &signed(&app, bad)).await;
    assert_eq!(res.status(), 500);

    // Written together: fewer transactions than webhooks.
    let batches = batch_metric(&app, "batches").await;
    let items = batch_metric(&app, "batched_items").await;
    assert_eq!(items as usize, sends.len() + 1);
    assert!(
        batches < items,
        "{items} webhooks in {batches} batches: none shared a commit"
    );
}

#[tokio::test]
async fn a_webhook_holding_a_nul_is_refused_not_failed() {
    let app = TestApp::spawn().await;
    let room = format!("{}_nul", app.project.room_prefix);
    let body = agent_joined("EV_nul", &room, "agent\u{0}1");
    let res = post_webhook(&app, &body, &signed(&app, &body)).await;
    let (status, out) = json(res).await;
    assert_eq!(status, 400, "{out}");
    assert_eq!(out["details"]["field"], "participant.identity", "{out}");
    // Unsigned, it is still a 401 first.
    let res = post_webhook(&app, &body, "Bearer nope").await;
    assert_eq!(res.status(), 401);
}
