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

    // And statements. Forty more agents join at once (no bad event: a
    // failed batch is applied one by one): the sessions a transaction
    // started, and the events it emitted, were each written by one
    // statement (the rows a statement writes share its transaction's xmin
    // and its command id, cmin).
    futures_util::future::join_all((0..ROOMS).map(|i| {
        let app = &app;
        let room = format!("{}_again-{i}", app.project.room_prefix);
        async move {
            let body = agent_joined(&format!("EV_a{i}"), &room, "agent-1");
            let res = post_webhook(app, &body, &signed(app, &body)).await;
            assert_eq!(res.status(), 200);
        }
    }))
    .await;
    for rows in [
        "sessions WHERE room_name LIKE '%_again-%'",
        "events WHERE data->>'room_name' LIKE '%_again-%'",
    ] {
        let commits = scalar(
            &app,
            &format!("SELECT count(DISTINCT xmin::text) AS n FROM {rows} AND project_id = $1"),
        )
        .await;
        let statements = scalar(
            &app,
            &format!(
                "SELECT count(DISTINCT (xmin::text, cmin::text)) AS n FROM {rows} AND project_id = $1"
            ),
        )
        .await;
        assert!(commits < ROOMS as i64, "{rows}: {commits} commits");
        assert_eq!(statements, commits, "{rows}: a statement per webhook");
    }
}

/// A webhook about `room` (sid `RM_<room>`), at `at` seconds.
fn room_event(id: &str, event: &str, room: &str, at: i64, extra: Value) -> String {
    let mut body = json!({
        "event": event, "id": id, "createdAt": at.to_string(),
        "room": {"sid": format!("RM_{room}"), "name": room, "creationTime": (at - 60).to_string()},
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    body.to_string()
}

/// A call's webhooks, in LiveKit's order: the room starts, the agent joins
/// (starting a voice session) and publishes, a phone caller joins (the
/// session becomes the SIP call's), a web participant joins and leaves, the
/// room finishes (ending the session).
fn call_webhooks(room: &str) -> Vec<String> {
    let at = chrono::Utc::now().timestamp() - 30;
    let who = |sid: &str, identity: &str, kind: &str, attributes: Value| {
        json!({"participant": {"sid": format!("{sid}_{room}"), "identity": identity, "kind": kind,
                               "state": "ACTIVE", "attributes": attributes}})
    };
    let agent = || who("PA_agent", "agent-1", "AGENT", json!({}));
    let caller = who(
        "PA_sip",
        "sip_+17755550123",
        "SIP",
        json!({"sip.phoneNumber": "+17755550123", "sip.trunkPhoneNumber": "+18005550100",
               "sip.callStatus": "active"}),
    );
    let web = || who("PA_web", "web-1", "STANDARD", json!({}));
    let mut track = agent();
    track["track"] = json!({"sid": format!("TR_{room}"), "type": "AUDIO", "source": "MICROPHONE"});
    [
        ("room_started", json!({})),
        ("participant_joined", agent()),
        ("track_published", track),
        ("participant_joined", caller),
        ("participant_joined", web()),
        ("participant_left", web()),
        ("room_finished", json!({})),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (event, extra))| {
        room_event(&format!("EV_{room}_{i}"), event, room, at + i as i64, extra)
    })
    .collect()
}

/// What a room's webhooks left: its events' types in order, and its
/// sessions (type, status, caller).
async fn left_by(app: &TestApp, room: &str) -> (Vec<String>, Vec<String>) {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        t: String,
    }
    let mut conn = app.conn().await;
    let load = async |conn: &mut diesel_async::AsyncPgConnection, sql: &str| {
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::BigInt, _>(app.project.id)
            .bind::<diesel::sql_types::Text, _>(room)
            .load::<Row>(conn)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.t)
            .collect::<Vec<_>>()
    };
    let events = load(
        &mut conn,
        "SELECT event_type AS t FROM events WHERE project_id = $1
           AND (data->>'room_name' = $2 OR (data->>'session_id')::int8 IN
                (SELECT id FROM sessions WHERE room_name = $2))
         ORDER BY id",
    )
    .await;
    let sessions = load(
        &mut conn,
        "SELECT concat_ws(' ', session_type, status, caller_identity) AS t FROM sessions
         WHERE project_id = $1 AND room_name = $2 ORDER BY id",
    )
    .await;
    (events, sessions)
}

#[tokio::test]
async fn a_batch_of_mixed_webhooks_leaves_what_they_leave_applied_alone() {
    let app = TestApp::spawn().await;
    let room = |name: &str| format!("{}_{name}", app.project.room_prefix);
    // One call's webhooks applied one at a time: each alone in its batch.
    let alone = room("alone");
    for body in call_webhooks(&alone) {
        let res = post_webhook(&app, &body, &signed(&app, &body)).await;
        assert_eq!(res.status(), 200, "{body}");
    }
    let (events, sessions) = left_by(&app, &alone).await;
    let position = |t: &str| events.iter().position(|e| e == t);
    for t in [
        "room.started",
        "session.started",
        "participant.joined",
        "track.published",
        "sip.inbound_call",
        "participant.left",
        "room.finished",
    ] {
        assert!(position(t).is_some(), "no {t} in {events:?}");
    }
    assert!(
        position("room.started") < position("session.started"),
        "{events:?}"
    );
    assert!(
        position("session.started") < position("participant.joined"),
        "{events:?}"
    );
    assert!(
        position("sip.inbound_call") < position("room.finished"),
        "{events:?}"
    );
    assert_eq!(sessions, ["sip completed +17755550123"], "{events:?}");

    // Thirty calls at once: each call's webhooks in order, the calls side
    // by side, so batches mix every kind of webhook of many rooms. Each
    // room is left as the call applied alone left its room.
    const CALLS: usize = 30;
    let before = batch_metric(&app, "batches").await;
    futures_util::future::join_all((0..CALLS).map(|i| {
        let app = &app;
        let name = room(&format!("mixed-{i}"));
        async move {
            for body in call_webhooks(&name) {
                let res = post_webhook(app, &body, &signed(app, &body)).await;
                assert_eq!(res.status(), 200, "{body}");
            }
        }
    }))
    .await;
    for i in 0..CALLS {
        let name = room(&format!("mixed-{i}"));
        assert_eq!(
            left_by(&app, &name).await,
            (events.clone(), sessions.clone()),
            "{name}"
        );
    }
    let batches = batch_metric(&app, "batches").await - before;
    assert!(
        batches < (CALLS * 7) as f64,
        "{batches} batches for {} webhooks: none shared a commit",
        CALLS * 7
    );

    // A room's webhooks in one batch: its agent joins and, sent while the
    // join is on its way, the room finishes. Whatever batches they fall
    // in, the session the join started is ended by the room's end (or,
    // the end applied first, never started).
    futures_util::future::join_all((0..CALLS).map(|i| {
        let app = &app;
        let name = room(&format!("short-{i}"));
        async move {
            let at = chrono::Utc::now().timestamp();
            let join = agent_joined(&format!("EV_short_{i}"), &name, "agent-1");
            let join = join.replace(&format!("RM_EV_short_{i}"), &format!("RM_{name}"));
            let end = room_event(
                &format!("EV_end_{i}"),
                "room_finished",
                &name,
                at + 1,
                json!({}),
            );
            let join_auth = signed(app, &join);
            let joining = post_webhook(app, &join, &join_auth);
            let ending = async {
                tokio::task::yield_now().await;
                post_webhook(app, &end, &signed(app, &end)).await
            };
            let (a, b) = futures_util::join!(joining, ending);
            assert_eq!(
                (a.status().as_u16(), b.status().as_u16()),
                (200, 200),
                "{name}"
            );
        }
    }))
    .await;
    let active = scalar(
        &app,
        "SELECT count(*) AS n FROM sessions WHERE project_id = $1
           AND room_name LIKE '%_short-%' AND status = 'active'",
    )
    .await;
    assert_eq!(active, 0, "sessions left running in finished rooms");
    let started = scalar(
        &app,
        "SELECT count(*) AS n FROM events WHERE project_id = $1
           AND event_type = 'session.started' AND data->>'room_name' LIKE '%_short-%'",
    )
    .await;
    let ended = scalar(
        &app,
        "SELECT count(*) AS n FROM events WHERE project_id = $1 AND event_type = 'session.ended'
           AND (data->>'session_id')::int8 IN (SELECT id FROM sessions WHERE room_name LIKE '%_short-%')",
    )
    .await;
    assert_eq!(started, ended, "every session started was ended");
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

#[tokio::test]
async fn a_webhook_that_loses_a_deadlock_is_applied_on_its_next_try() {
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::spawn().await;
    let room = |name: &str| format!("{}_{name}", app.project.room_prefix);
    // The project's room and session counters exist.
    let warm = agent_joined("EV_warm", &room("warm"), "agent-1");
    assert_eq!(
        post_webhook(&app, &warm, &signed(&app, &warm))
            .await
            .status(),
        200
    );

    // Another transaction takes the session counter, as a batch whose
    // webhooks came in another order would, and then wants the room
    // counter the agent's join takes before its session: a deadlock,
    // which Postgres breaks by failing the webhook (it waited first).
    let mut other = app.conn().await;
    let project = app.project.id;
    other
        .batch_execute(&format!(
            "BEGIN; SELECT used FROM quota_counters WHERE project_id = {project}
               AND resource = 'sessions' FOR UPDATE"
        ))
        .await
        .unwrap();
    let join = agent_joined("EV_deadlock", &room("deadlock"), "agent-1");
    let sent = {
        let (app, join) = (&app, join.clone());
        async move {
            let res = post_webhook(app, &join, &signed(app, &join)).await;
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let waited = async {
        // The webhook's transaction waits for the session counter...
        for _ in 0..100 {
            let waiting = scalar(
                &app,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                   AND query LIKE '%sessions%' AND datname = current_database() AND $1 > 0",
            )
            .await;
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // ... and this one for the room counter it holds.
        let took = other
            .batch_execute(&format!(
                "UPDATE quota_counters SET used = used WHERE project_id = {project}
                   AND resource = 'rooms'"
            ))
            .await;
        let committed = other.batch_execute("COMMIT").await;
        (took, committed)
    };
    let ((status, out), (took, committed)) = tokio::join!(sent, waited);
    // The deadlock was the webhook's to lose: the other transaction went on.
    took.expect("the other transaction lost the deadlock");
    committed.unwrap();
    assert_eq!(
        (status, &out["outcome"]),
        (200, &json!("processed")),
        "{out}"
    );
    let sessions = scalar(
        &app,
        &format!(
            "SELECT count(*) AS n FROM sessions WHERE project_id = $1 AND room_name = '{}'",
            room("deadlock")
        ),
    )
    .await;
    assert_eq!(sessions, 1);
}
