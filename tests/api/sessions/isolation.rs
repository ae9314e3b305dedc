//! Sessions across projects and incarnations of a room: a deleted project's sessions, late room_finished and agent joins, lines written together.

use super::*;

#[tokio::test]
async fn deleting_a_project_deletes_its_sessions() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let app = TestApp::spawn().await;
    let other = app.create_project(Plan::Professional).await;
    let res = app
        .req_as(&other.key, Method::POST, "/api/v1/sessions")
        .json(&json!({"room_name": "doomed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .req_as(
            &other.key,
            Method::POST,
            "/api/v1/sessions/doomed/transcript",
        )
        .json(&json!({"speaker": "user", "content": "bye"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    start(&app, "kept").await;
    let res = line(&app, "kept", json!({"speaker": "user", "content": "hi"})).await;
    assert_eq!(res.status(), 201);
    let mut conn = app.conn().await;
    diesel::sql_query("DELETE FROM projects WHERE id = $1")
        .bind::<diesel::sql_types::BigInt, _>(other.id)
        .execute(&mut conn)
        .await
        .unwrap();
    let left: N = diesel::sql_query("SELECT count(*) AS n FROM sessions")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(left.n, 1, "only the other project's session is left");
    let lines: N = diesel::sql_query("SELECT count(*) AS n FROM transcripts")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(lines.n, 1, "and only its transcript line");
    let gone: N = diesel::sql_query("SELECT count(*) AS n FROM events WHERE project_id = $1")
        .bind::<diesel::sql_types::BigInt, _>(other.id)
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(gone.n, 0, "and none of its events");
    let kept: N = diesel::sql_query("SELECT count(*) AS n FROM events WHERE project_id = $1")
        .bind::<diesel::sql_types::BigInt, _>(app.project.id)
        .get_result(&mut conn)
        .await
        .unwrap();
    assert!(kept.n >= 2, "the other project keeps its events");
}

#[tokio::test]
async fn a_stale_room_finished_does_not_end_the_session_of_the_rooms_next_incarnation() {
    let app = TestApp::spawn().await;
    let room = format!("{}_lobby", app.project.room_prefix);
    let now = chrono::Utc::now().timestamp();
    // The first incarnation: an agent's session, ended through the API.
    hook(
        &app,
        "EV_o1",
        "room_started",
        &room,
        "RM_old",
        now - 60,
        json!({}),
    )
    .await;
    hook(
        &app,
        "EV_o2",
        "participant_joined",
        &room,
        "RM_old",
        now - 59,
        agent_joined("PA_o"),
    )
    .await;
    let res = app
        .post_json("/api/v1/sessions/lobby/end", &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    // The next one, with its own agent's session.
    hook(
        &app,
        "EV_n1",
        "room_started",
        &room,
        "RM_new",
        now - 1,
        json!({}),
    )
    .await;
    hook(
        &app,
        "EV_n2",
        "participant_joined",
        &room,
        "RM_new",
        now,
        agent_joined("PA_n"),
    )
    .await;
    let s = sessions_of(&app, &room).await;
    assert_eq!(s.len(), 2, "{s:?}");
    assert_eq!(s[1].1, "active");
    // The first one's room_finished, late: the running session stays.
    hook(
        &app,
        "EV_o3",
        "room_finished",
        &room,
        "RM_old",
        now - 30,
        json!({}),
    )
    .await;
    assert_eq!(sessions_of(&app, &room).await[1].1, "active");
    // Its own room_finished ends it.
    hook(
        &app,
        "EV_n3",
        "room_finished",
        &room,
        "RM_new",
        now + 1,
        json!({}),
    )
    .await;
    assert_eq!(sessions_of(&app, &room).await[1].1, "completed");

    // A session started through the API (its room's sid unknown) after an
    // incarnation finished outlives that incarnation's late room_finished.
    let other = format!("{}_desk", app.project.room_prefix);
    let s = start(&app, &other).await;
    hook(
        &app,
        "EV_d1",
        "room_finished",
        &other,
        "RM_desk_old",
        now - 30,
        json!({}),
    )
    .await;
    assert_eq!(
        sessions_of(&app, &other).await,
        [(s["id"].as_i64().unwrap(), "active".to_owned())]
    );
    // One of its own incarnation ends it.
    hook(
        &app,
        "EV_d2",
        "room_finished",
        &other,
        "RM_desk",
        now + 5,
        json!({}),
    )
    .await;
    assert_eq!(sessions_of(&app, &other).await[0].1, "completed");
}

#[tokio::test]
async fn an_agent_joining_after_its_rooms_room_finished_starts_no_session() {
    let app = TestApp::spawn().await;
    let room = format!("{}_gone", app.project.room_prefix);
    let now = chrono::Utc::now().timestamp();
    // LiveKit's webhooks arrive out of order: the room's end first.
    hook(
        &app,
        "EV_g1",
        "room_finished",
        &room,
        "RM_gone",
        now,
        json!({}),
    )
    .await;
    hook(
        &app,
        "EV_g2",
        "participant_joined",
        &room,
        "RM_gone",
        now - 10,
        agent_joined("PA_g"),
    )
    .await;
    hook(
        &app,
        "EV_g3",
        "room_started",
        &room,
        "RM_gone",
        now - 20,
        json!({}),
    )
    .await;
    assert_eq!(sessions_of(&app, &room).await, []);
    // A SIP caller in a finished room is no inbound call either.
    let sip = json!({"participant": {"sid": "PA_s", "identity": "sip_+17755550123", "kind": "SIP", "state": "ACTIVE",
                     "attributes": {"sip.phoneNumber": "+17755550123", "sip.callStatus": "active"}}});
    hook(
        &app,
        "EV_g4",
        "participant_joined",
        &room,
        "RM_gone",
        now - 9,
        sip,
    )
    .await;
    assert_eq!(sessions_of(&app, &room).await, []);
    // The next incarnation starts sessions as usual.
    hook(
        &app,
        "EV_g5",
        "participant_joined",
        &room,
        "RM_back",
        now + 1,
        agent_joined("PA_b"),
    )
    .await;
    let s = sessions_of(&app, &room).await;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].1, "active");
}

#[tokio::test]
async fn lines_written_together_succeed_or_fail_on_their_own() {
    let app = TestApp::spawn().await;
    let a = start(&app, "room-a").await;
    let b = start(&app, "room-b").await;
    // A line that passes validation but that Postgres refuses: a trigger of
    // this test's database rejects it, so its batch is refused as a whole
    // and has to be written again line by line.
    let mut conn = app.conn().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.content LIKE 'poison%' THEN RAISE EXCEPTION 'poisoned line'; END IF; \
         RETURN NEW; END $$; \
         CREATE TRIGGER reject_poison BEFORE INSERT ON transcripts \
         FOR EACH ROW EXECUTE FUNCTION reject_poison()",
    )
    .await
    .unwrap();
    // Lines for two live rooms, a room without a session, refused lines
    // and a line that fails validation, all at once: each gets its own answer.
    let poison = (0..3).map(|i| {
        line(
            &app,
            "room-b",
            json!({"speaker": "user", "content": format!("poison {i}"), "timestamp_ms": 1000 + i}),
        )
    });
    let reqs = (0..90).map(|i| {
        let (room, content) = match i % 3 {
            0 => ("room-a", format!("a {i}")),
            1 => ("room-b", format!("b {i}")),
            _ => ("no-session", format!("x {i}")),
        };
        line(
            &app,
            room,
            json!({"speaker": "agent", "content": content, "timestamp_ms": i}),
        )
    });
    let nul = line(
        &app,
        "room-a",
        json!({"speaker": "user", "content": "bad \u{0} byte"}),
    );
    let (results, poisoned, nul) = tokio::join!(join_all(reqs), join_all(poison), nul);
    for (i, r) in results.iter().enumerate() {
        let want = if i % 3 == 2 { 404 } else { 201 };
        assert_eq!(r.status(), want, "line {i}");
    }
    for r in poisoned {
        expect_error(r, 500, "INTERNAL_ERROR").await;
    }
    expect_error(nul, 400, "INVALID_REQUEST").await;
    for (s, want) in [(&a, 0), (&b, 1)] {
        let got = timestamps(&app, s).await;
        let expected: Vec<i64> = (0..90).filter(|i| i % 3 == want).collect();
        assert_eq!(got, expected);
    }
    // Every final line has its event, once (none for the refused ones).
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) AS n FROM events WHERE event_type = 'transcript.new' AND project_id = $1",
        )
        .bind::<diesel::sql_types::BigInt, _>(app.project.id),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(n.n, 60);
}
