//! SIP calls after the dial: outcomes and failures, a fresh process enforcing limits, concurrency, undoing rejected and timed-out dials, and inbound routing.

use super::*;

#[tokio::test]
async fn busy_no_answer_and_failed_calls_report_failed_with_a_reason() {
    use crate::monitor::{next_of, subscribed};
    let app = TestApp::spawn().await;
    trunk(&app, "+18001234567").await;
    app.sim()
        .set_call_progress(voxplane::embedded::livekit::SimCallProgress {
            ring_after: Duration::from_millis(50),
            answer_after: None,
        });
    let mut ws = subscribed(&app, &app.project.key, "rooms").await;
    for (room, action, body, reason) in [
        ("busy", "busy", json!({}), "busy"),
        ("nobody", "no-answer", json!({}), "no_answer"),
        (
            "broken",
            "fail",
            json!({"reason": "503 Service Unavailable"}),
            "sip_trunk_failure",
        ),
    ] {
        let full = dial_into(&app, room).await;
        let m = next_of(&mut ws, "call.status").await;
        assert_eq!(
            (
                m["data"]["room_name"].as_str(),
                m["data"]["status"].as_str()
            ),
            (Some(full.as_str()), Some("dialing"))
        );
        let id = call_id(&app, &full).await;
        let (status, call) = sim_post(&app, &format!("/_sim/sip/calls/{id}/{action}"), body).await;
        assert_eq!(status, 200, "{call}");
        assert_eq!(call["status"], "failed");
        loop {
            let m = next_of(&mut ws, "call.status").await;
            if m["data"]["status"] == "ringing" {
                continue;
            }
            assert_eq!(m["data"]["room_name"], full.as_str());
            assert_eq!(m["data"]["status"], "failed", "{m}");
            assert_eq!(m["data"]["reason"], reason, "{m}");
            break;
        }
    }
    // The simulator keeps the control's reason; a failed call is not answered.
    let calls = app.sim().sip_placed_calls();
    let broken = calls.iter().find(|c| c.room.ends_with("_broken")).unwrap();
    assert_eq!(broken.reason.as_deref(), Some("503 Service Unavailable"));
    let (status, _) = sim_post(
        &app,
        &format!("/_sim/sip/calls/{}/answer", broken.call_id),
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
    // The next call rejected at the RPC itself, armed over /_sim.
    let (status, _) = sim_post(&app, "/_sim/sip/next-call", json!({"outcome": "no-answer"})).await;
    assert_eq!(status, 204);
    let body = expect_error(
        app.post_json(
            "/api/v1/sip/dial",
            &json!({"phone_number": "+17751234567", "room_name": "later"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(body["details"]["sip_status_code"], 408, "{body}");
    let (status, _) = sim_post(&app, "/_sim/sip/next-call", json!({"outcome": "maybe"})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn max_call_duration_is_enforced_by_a_fresh_process() {
    let mut app = TestApp::spawn().await;
    let out = short_call(&app, 2).await;
    let full = out["call"]["full_room_name"].as_str().unwrap().to_owned();
    let session_id = out["call"]["session_id"].as_i64().unwrap();
    // The process that placed the call goes away before the deadline.
    app.stop();
    assert_eq!(app.sim().participants(&full).len(), 1, "still on the call");
    // The deadline is in the database.
    {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Double)]
            secs: f64,
        }
        let mut conn = app.conn().await;
        let r: Row = diesel::sql_query(
            "SELECT extract(epoch FROM deadline - created_at)::float8 AS secs FROM sip_calls WHERE room_name = $1",
        )
        .bind::<diesel::sql_types::Text, _>(&full)
        .get_result(&mut conn)
        .await
        .unwrap();
        assert!((r.secs - 2.0).abs() < 0.5, "{}", r.secs);
    }
    // A fresh process on the same database ends it.
    let node = app.another_node(|_| {}).await;
    app.sim()
        .set_webhook_url(Some(node.url("/livekit/webhook")));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !app.sim().participants(&full).is_empty() {
        assert!(Instant::now() < deadline, "the call was not ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.sim().flush_webhooks().await;
    let ended = wait_for(&app, |e| e["reason"] == "max_call_duration").await;
    assert_eq!(ended["status"], "ended");
    assert_eq!(ended["room_name"], full.as_str());
    let (_, s) = json(
        node.get(&format!("/api/v1/sessions/{session_id}/detail"))
            .await,
    )
    .await;
    assert_eq!(s["session"]["status"], "completed", "{s}");
    assert!(
        s["session"]["duration_seconds"].as_i64().unwrap() >= 2,
        "{s}"
    );
    // Reported once, though the participant's leaving came after.
    let ends = events(&app, "sip.call_status")
        .await
        .into_iter()
        .filter(|e| e["status"] == "ended" || e["status"] == "failed")
        .count();
    assert_eq!(ends, 1);
}

#[tokio::test]
async fn an_ended_call_ends_its_session_and_frees_the_dial_quota() {
    let app = TestApp::spawn_with(|s| s.plans.professional.sip_configs = 1).await;
    trunk(&app, "+18001234567").await;
    app.sim()
        .set_call_progress(voxplane::embedded::livekit::SimCallProgress {
            ring_after: Duration::from_millis(10),
            answer_after: Some(Duration::from_millis(10)),
        });
    // Answered, then the callee hangs up: the room stays, the session ends.
    let (status, out) = json(
        app.post_json(
            "/api/v1/sip/dial",
            &json!({"phone_number": "+17751234567", "room_name": "first"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let full = out["call"]["full_room_name"].as_str().unwrap().to_owned();
    let session_id = out["call"]["session_id"].as_i64().unwrap();
    let room = full.clone();
    wait_for(&app, move |e| {
        e["room_name"] == room.as_str() && e["status"] == "active"
    })
    .await;
    let id = call_id(&app, &full).await;
    let (status, _) = sim_post(&app, &format!("/_sim/sip/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 200);
    app.sim().flush_webhooks().await;
    assert_eq!(session_status(&app, session_id).await, "completed");
    assert!(
        app.sim().rooms().iter().any(|r| r.name == full),
        "the room is still open"
    );
    // The quota (one call at a time) is free again; a busy callee ends
    // that call's session too.
    app.sim()
        .set_call_progress(voxplane::embedded::livekit::SimCallProgress {
            ring_after: Duration::from_millis(10),
            answer_after: None,
        });
    let (status, out) = json(
        app.post_json(
            "/api/v1/sip/dial",
            &json!({"phone_number": "+17751234567", "room_name": "second"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let full = out["call"]["full_room_name"].as_str().unwrap().to_owned();
    let id = call_id(&app, &full).await;
    let (status, _) = sim_post(&app, &format!("/_sim/sip/calls/{id}/busy"), json!({})).await;
    assert_eq!(status, 200);
    app.sim().flush_webhooks().await;
    let second = out["call"]["session_id"].as_i64().unwrap();
    assert_eq!(session_status(&app, second).await, "completed");
    let (status, out) = json(
        app.post_json("/api/v1/sip/dial", &json!({"phone_number": "+17751234567"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test]
async fn concurrent_dials_without_a_room_name_get_distinct_rooms() {
    let app = TestApp::spawn().await;
    trunk(&app, "+18001234567").await;
    // A call already in `outbound-call-2` (named by hand): that number is skipped.
    let taken = dial_into(&app, "outbound-call-2").await;
    let body = json!({"phone_number": "+17751234567"});
    let results =
        futures_util::future::join_all((0..4).map(|_| app.post_json("/api/v1/sip/dial", &body)))
            .await;
    let mut rooms = Vec::new();
    for res in results {
        let (status, out) = json(res).await;
        assert_eq!(status, 200, "{out}");
        rooms.push(out["call"]["room_name"].as_str().unwrap().to_owned());
    }
    rooms.sort();
    assert_eq!(
        rooms,
        [
            "outbound-call-3",
            "outbound-call-4",
            "outbound-call-5",
            "outbound-call-6"
        ]
    );
    assert!(taken.ends_with("_outbound-call-2"));
    assert_eq!(app.sim().sip_calls().len(), 5);
}

#[tokio::test]
async fn a_slow_dial_does_not_hold_up_the_projects_other_quota_checks() {
    let app = TestApp::spawn().await;
    trunk(&app, "+18001234567").await;
    // LiveKit takes 2.5 s to answer CreateSIPParticipant.
    let res = app
        .client
        .put(format!("{}/_sim/latency", app.sim().url()))
        .json(&json!({"rpc": "CreateSIPParticipant", "ms": 2500}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let dial = app
        .req(Method::POST, "/api/v1/sip/dial")
        .json(&json!({"phone_number": "+17751234567"}))
        .send();
    let dial = tokio::spawn(dial);
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.sim().sip_calls().is_empty() {
        assert!(Instant::now() < deadline, "the dial did not reach LiveKit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While the dial waits for LiveKit, creates that check a quota of the
    // same project go through.
    let started = Instant::now();
    let (status, body) = json(
        app.post_json(
            "/api/v1/agents",
            &json!({"name": "Meanwhile", "instructions": "Hi."}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = json(
        app.post_json("/api/v1/rooms", &json!({"name": "meanwhile"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        !dial.is_finished(),
        "answered after {:?}, while the dial still waited",
        started.elapsed()
    );
    let (status, out) = json(dial.await.unwrap().unwrap()).await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test]
async fn a_rejected_dial_leaves_nothing_in_livekit_but_a_room_that_was_there() {
    let app = TestApp::spawn().await;
    agent(&app, "Caller").await;
    trunk(&app, "+18001234567").await;
    // The callee is busy: the room this dial created goes, with its dispatch.
    let (status, _) = sim_post(&app, "/_sim/sip/next-call", json!({"outcome": "busy"})).await;
    assert_eq!(status, 204);
    expect_error(
        app.post_json(
            "/api/v1/sip/dial",
            &json!({"phone_number": "+17751234567", "room_name": "busy-room"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    let full = format!("{}_busy-room", app.project.room_prefix);
    assert!(
        app.sim().rooms().iter().all(|r| r.name != full),
        "{:?}",
        app.sim().rooms()
    );
    assert!(!room_names(&app).await.contains(&"busy-room".to_owned()));

    // Dialing into a room that existed: the room stays, with only what it
    // had before (the dial's dispatch is gone).
    let (status, body) = json(
        app.post_json("/api/v1/rooms", &json!({"name": "keep"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let keep = format!("{}_keep", app.project.room_prefix);
    let before = app.sim().dispatches(&keep).len();
    let (status, _) = sim_post(&app, "/_sim/sip/next-call", json!({"outcome": "busy"})).await;
    assert_eq!(status, 204);
    expect_error(
        app.post_json(
            "/api/v1/sip/dial",
            &json!({"phone_number": "+17751234567", "room_name": "keep"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    assert!(room_names(&app).await.contains(&"keep".to_owned()));
    assert_eq!(app.sim().dispatches(&keep).len(), before);
    assert!(app.sim().participants(&keep).is_empty());
}

#[tokio::test]
async fn a_dial_that_times_out_is_undone_and_can_be_retried() {
    let app = TestApp::spawn_with(|s| s.livekit_timeout_ms = 1000).await;
    agent(&app, "Caller").await;
    trunk(&app, "+18001234567").await;
    // LiveKit places the call but answers after the timeout.
    app.sim()
        .set_latency("CreateSIPParticipant", Some(Duration::from_millis(1500)));
    let send = || {
        app.req(Method::POST, "/api/v1/sip/dial")
            .header("Idempotency-Key", "retry-me")
            .json(&json!({"phone_number": "+17751234567"}))
            .send()
    };
    expect_error(send().await.unwrap(), 503, "SERVICE_UNAVAILABLE").await;
    let full = format!("{}_outbound-call-1", app.project.room_prefix);
    assert!(app.sim().rooms().iter().all(|r| r.name != full));
    assert!(room_names(&app).await.is_empty());
    app.sim().flush_webhooks().await;
    let (_, list) = json(app.get("/api/v1/sessions?session_type=sip").await).await;
    assert_eq!(list["total"], 0, "{list}");

    // The retry (the key is forgotten after a 5xx) places the one call.
    app.sim().set_latency("CreateSIPParticipant", None);
    let (status, out) = json(send().await.unwrap()).await;
    assert_eq!(status, 200, "{out}");
    let live: Vec<_> = app
        .sim()
        .sip_placed_calls()
        .into_iter()
        .filter(|c| matches!(c.status.as_str(), "dialing" | "ringing" | "active"))
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        live[0].room,
        out["call"]["full_room_name"].as_str().unwrap()
    );
    assert_eq!(app.sim().participants(&live[0].room).len(), 1);
}

#[tokio::test]
async fn the_inbound_dispatch_rule_follows_the_lines_agent() {
    let app = TestApp::spawn().await;
    // The trunk first, while the project has no agent.
    let t = trunk(&app, "+18005550100").await;
    assert_eq!(rule_of(&app).await.1, None);
    // The first agent: the rule falls back to it.
    let first = agent(&app, "First").await;
    assert_eq!(rule_of(&app).await.1, Some(first));
    // Another agent changes nothing: the rule is kept as it is.
    let (rule_id, _, _) = rule_of(&app).await;
    let second = agent(&app, "Second").await;
    assert_eq!(rule_of(&app).await.0, rule_id);
    // A config of the line names the second agent.
    let (status, c) = json(
        app.post_json(
            "/api/v1/sip/configs",
            &json!({"name": "Line", "phone_number": "+18005550100", "agent_config_id": second, "trunk_id": t["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let cid = c["config"]["id"].as_i64().unwrap();
    let (rule_id, agent_id, _) = rule_of(&app).await;
    assert_eq!(agent_id, Some(second));
    // Its agent's new instructions reach the rule.
    let res = app
        .patch_json(
            &format!("/api/v1/agents/{second}"),
            &json!({"instructions": "Be brief."}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (new_id, agent_id, meta) = rule_of(&app).await;
    assert_eq!(
        (agent_id, meta["instructions"].as_str()),
        (Some(second), Some("Be brief."))
    );
    assert_ne!(new_id, rule_id);
    // Deactivated: the first active agent; active again: the config's.
    let res = app
        .patch_json(
            &format!("/api/v1/agents/{second}"),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(rule_of(&app).await.1, Some(first));
    let res = app
        .patch_json(
            &format!("/api/v1/agents/{second}"),
            &json!({"is_active": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(rule_of(&app).await.1, Some(second));
    // The config changes its agent, then goes: the first active agent.
    let res = app
        .patch_json(
            &format!("/api/v1/sip/configs/{cid}"),
            &json!({"agent_config_id": first}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(rule_of(&app).await.1, Some(first));
    let res = app
        .patch_json(
            &format!("/api/v1/sip/configs/{cid}"),
            &json!({"agent_config_id": second}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(rule_of(&app).await.1, Some(second));
    assert_eq!(
        app.delete(&format!("/api/v1/sip/configs/{cid}"))
            .await
            .status(),
        200
    );
    assert_eq!(rule_of(&app).await.1, Some(first));
    // The first agent deleted: the next one.
    assert_eq!(
        app.delete(&format!("/api/v1/agents/{first}"))
            .await
            .status(),
        200
    );
    assert_eq!(rule_of(&app).await.1, Some(second));

    // An inbound call's session records the agent the rule dispatched.
    let room = format!("{}_call-_+17755550123_xyz", app.project.room_prefix);
    app.sim().join(&room, caller()).await.unwrap();
    app.sim().flush_webhooks().await;
    let inbound = events(&app, "sip.inbound_call").await;
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    assert_eq!(inbound[0]["agent_config_id"], second);
}

#[tokio::test]
async fn a_trunk_patched_to_another_trunks_number_is_refused_before_livekit() {
    let app = TestApp::spawn().await;
    trunk(&app, "+18005550100").await;
    let b = trunk(&app, "+18005550101").await;
    let before = (
        app.sim().sip_outbound_trunks().len(),
        app.sim().sip_dispatch_rules().len(),
    );
    assert_eq!(before, (2, 2));
    let body = expect_error(
        app.patch_json(
            &format!("/api/v1/sip/trunks/{}", b["id"]),
            &json!({"phone_number": "+18005550100", "auth_password": "p"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    assert!(
        body["error"].as_str().unwrap().contains("+18005550100"),
        "{body}"
    );
    assert_eq!(
        (
            app.sim().sip_outbound_trunks().len(),
            app.sim().sip_dispatch_rules().len()
        ),
        before,
        "no LiveKit trunk or rule left behind"
    );
    let (_, list) = json(app.get("/api/v1/sip/trunks").await).await;
    assert_eq!(list["trunks"][1], b, "trunk B is unchanged");
    // Its own number again is no conflict.
    let (status, out) = json(
        app.patch_json(
            &format!("/api/v1/sip/trunks/{}", b["id"]),
            &json!({"phone_number": "+18005550101", "name": "B"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
}

#[tokio::test]
async fn an_inbound_call_whose_agent_joined_first_turns_its_session_into_a_sip_session() {
    let app = TestApp::spawn().await;
    let agent_id = agent(&app, "Receptionist").await;
    line(&app, agent_id).await;
    let room = format!("{}_call-_+17755550123_first", app.project.room_prefix);
    // The dispatched agent's join is handled first: a voice session.
    app.sim()
        .join(&room, SimParticipant::new("agent-1").kind(SimKind::Agent))
        .await
        .unwrap();
    app.sim().flush_webhooks().await;
    let (_, list) = json(app.get("/api/v1/sessions").await).await;
    assert_eq!(list["total"], 1, "{list}");
    let id = list["sessions"][0]["id"].as_i64().unwrap();
    // Then the caller's: the call is inbound, in that session.
    let caller = caller().attribute("sip.callID", "SCL_in1");
    app.sim().join(&room, caller.clone()).await.unwrap();
    app.sim().flush_webhooks().await;
    let inbound = events(&app, "sip.inbound_call").await;
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    assert_eq!(inbound[0]["session_id"], id);
    assert_eq!(inbound[0]["phone_number"], "+17755550123");
    let (_, d) = json(app.get(&format!("/api/v1/sessions/{id}/detail")).await).await;
    let s = &d["session"];
    assert_eq!(s["session_type"], "sip", "{d}");
    assert_eq!(s["caller_identity"], "+17755550123");
    assert_eq!(s["agent_config_id"], agent_id);
    assert_eq!(s["metadata"]["direction"], "inbound");
    assert_eq!(s["metadata"]["phone_number"], "+17755550123");
    assert_eq!(s["metadata"]["sip_call_id"], "SCL_in1");
    assert_eq!(s["metadata"]["agent_identity"], "agent-1", "kept");
    let (_, list) = json(app.get("/api/v1/sessions").await).await;
    assert_eq!(list["total"], 1, "{list}");
    let status = events(&app, "sip.call_status").await;
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(
        (
            status[0]["direction"].as_str(),
            status[0]["session_id"].as_i64()
        ),
        (Some("inbound"), Some(id))
    );
    // A reconnect of the same caller is the same call; hanging up ends it
    // and its session.
    app.sim().join(&room, caller).await.unwrap();
    app.sim().flush_webhooks().await;
    assert_eq!(events(&app, "sip.inbound_call").await.len(), 1);
    app.sim().leave(&room, "sip_+17755550123").await.unwrap();
    app.sim().flush_webhooks().await;
    assert_eq!(session_status(&app, id).await, "completed");
    let last = events(&app, "sip.call_status").await.pop().unwrap();
    assert_eq!(
        (last["status"].as_str(), last["reason"].as_str()),
        (Some("ended"), Some("hangup"))
    );
}
