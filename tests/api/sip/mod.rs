//! SIP telephony against the simulator: trunks and configs (with their
//! LiveKit trunks and dispatch rules), outbound dial (validation, missing
//! trunk, idempotency, failures, max duration) and inbound calls.

use crate::common::{TestApp, expect_error, json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use voxplane::embedded::livekit::{SimCallFailure, SimKind, SimParticipant};
use voxplane::limits::plans::Plan;

mod calls;

/// Creates an agent; its id.
pub(crate) async fn agent(app: &TestApp, name: &str) -> i64 {
    let (status, body) = json(
        app.post_json(
            "/api/v1/agents",
            &json!({"name": name, "instructions": "Answer calls."}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["agent"]["id"].as_i64().unwrap()
}

/// A call dialed on a line whose calls last at most `max_secs`; the dial's
/// answer.
pub(crate) async fn short_call(app: &TestApp, max_secs: u32) -> Value {
    let t = trunk(app, "+18001234567").await;
    let (status, _) = json(
        app.post_json(
            "/api/v1/sip/configs",
            &json!({"name": "Short", "phone_number": "+18001234567", "max_call_duration": max_secs, "trunk_id": t["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    let (status, out) = json(
        app.post_json("/api/v1/sip/dial", &json!({"phone_number": "+17751234567"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    out
}

/// The line +18005550100 (no trunk of its own), answered by `agent_id`.
pub(crate) async fn line(app: &TestApp, agent_id: i64) {
    let (status, body) = json(
        app.post_json(
            "/api/v1/sip/configs",
            &json!({"name": "Line", "phone_number": "+18005550100", "agent_config_id": agent_id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// The SIP participant LiveKit joins to a room for a call from
/// +17755550123 to the line +18005550100.
pub(crate) fn caller() -> SimParticipant {
    SimParticipant::new("sip_+17755550123")
        .kind(SimKind::Sip)
        .attribute("sip.phoneNumber", "+17755550123")
        .attribute("sip.trunkPhoneNumber", "+18005550100")
        .attribute("sip.callStatus", "active")
}

/// A trunk's create body for `number`.
pub(crate) fn trunk_body(number: &str) -> Value {
    json!({"name": "Main Trunk", "phone_number": number, "address": "sip.provider.example",
           "auth_username": "u", "auth_password": "p"})
}

/// Creates a trunk for `number`; its `trunk` object.
pub(crate) async fn trunk(app: &TestApp, number: &str) -> Value {
    let (status, body) = json(
        app.post_json("/api/v1/sip/trunks", &trunk_body(number))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["trunk"].clone()
}

async fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        data: Value,
    }
    let mut conn = app.conn().await;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT data FROM events WHERE project_id = $1 AND event_type = $2 ORDER BY id",
    )
    .bind::<diesel::sql_types::Int8, _>(app.project.id)
    .bind::<diesel::sql_types::Text, _>(kind)
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.data).collect()
}

/// Waits (up to 10 s) for a `sip.call_status` event matching `f`.
async fn wait_for(app: &TestApp, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(e) = events(app, "sip.call_status").await.into_iter().find(&f) {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no such call.status: {:?}",
            events(app, "sip.call_status").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn trunks_and_configs_crud_with_livekit_resources() {
    let app = TestApp::spawn().await;
    let agent_id = agent(&app, "Support Agent").await;
    let t = trunk(&app, "+18005550100").await;
    assert_eq!(t["name"], "Main Trunk");
    assert_eq!(t["phone_number"], "+18005550100");
    let (inb, out, rule) = (
        t["inbound_trunk_id"].as_str().unwrap(),
        t["outbound_trunk_id"].as_str().unwrap(),
        t["dispatch_rule_id"].as_str().unwrap(),
    );
    assert!(inb.starts_with("ST_") && out.starts_with("ST_") && rule.starts_with("SDR_"));
    let lk_out = app.sim().sip_outbound_trunks();
    assert_eq!(lk_out.len(), 1);
    assert_eq!(lk_out[0].numbers, ["+18005550100"]);
    assert_eq!(lk_out[0].address, "sip.provider.example");
    assert_eq!(lk_out[0].auth_username, "u");
    let rules = app.sim().sip_dispatch_rules();
    assert_eq!(rules[0].trunk_ids, [inb]);
    let agents = &rules[0].room_config.as_ref().unwrap().agents;
    assert_eq!(agents.len(), 1);

    // Exactly the contract's fields.
    let (_, list) = json(app.get("/api/v1/sip/trunks").await).await;
    let keys: Vec<&String> = list["trunks"][0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "phone_number",
            "inbound_trunk_id",
            "outbound_trunk_id",
            "dispatch_rule_id"
        ]
    );
    expect_error(
        app.post_json(
            "/api/v1/sip/trunks",
            &json!({"name": "x", "phone_number": "+18005550100", "address": "h"}),
        )
        .await,
        409,
        "CONFLICT",
    )
    .await;
    expect_error(
        app.post_json(
            "/api/v1/sip/trunks",
            &json!({"name": "x", "phone_number": "12", "address": "h"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;

    // Configs.
    let (status, c) = json(
        app.post_json(
            "/api/v1/sip/configs",
            &json!({"name": "Inbound Line", "phone_number": "+18005550100", "agent_config_id": agent_id,
                    "dtmf_enabled": false, "max_call_duration": 600, "trunk_id": t["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let cid = c["config"]["id"].as_i64().unwrap();
    let (_, list) = json(app.get("/api/v1/sip/configs").await).await;
    let got = &list["configs"][0];
    assert_eq!(got["agent_name"], "Support Agent");
    assert_eq!(got["agent_config_id"], agent_id);
    assert_eq!(got["dtmf_enabled"], false);
    assert_eq!(got["max_call_duration"], 600);
    assert!(got["created_at"].is_string());
    let (status, c) = json(
        app.req(Method::PATCH, &format!("/api/v1/sip/configs/{cid}"))
            .json(&json!({"max_call_duration": 30}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, c["config"]["max_call_duration"].clone()),
        (200, json!(30))
    );
    expect_error(
        app.post_json(
            "/api/v1/sip/configs",
            &json!({"name": "x", "phone_number": "+18005550100", "agent_config_id": 999999}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;

    // PATCH the trunk's number: LiveKit resources are recreated (the
    // password, never stored, must come again).
    let tid0 = t["id"].as_i64().unwrap();
    expect_error(
        app.req(Method::PATCH, &format!("/api/v1/sip/trunks/{tid0}"))
            .json(&json!({"phone_number": "+18005550199"}))
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    let tid = t["id"].as_i64().unwrap();
    let (status, t2) = json(
        app.req(Method::PATCH, &format!("/api/v1/sip/trunks/{tid}"))
            .json(&json!({"phone_number": "+18005550199", "auth_password": "p2"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{t2}");
    assert_ne!(t2["trunk"]["outbound_trunk_id"], out);
    let lk_out = app.sim().sip_outbound_trunks();
    assert_eq!(lk_out.len(), 1);
    assert_eq!(lk_out[0].numbers, ["+18005550199"]);

    // Other projects see none of it.
    let other = app.create_project(Plan::Professional).await;
    let res = app
        .client
        .get(app.url("/api/v1/sip/trunks"))
        .header("X-API-Key", &other.key)
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await.1, json!({"trunks": []}));
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/sip/trunks/{tid}")))
        .header("X-API-Key", &other.key)
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;

    // Delete: gone here and in LiveKit.
    let (status, _) = json(app.delete(&format!("/api/v1/sip/configs/{cid}")).await).await;
    assert_eq!(status, 200);
    let (status, _) = json(app.delete(&format!("/api/v1/sip/trunks/{tid}")).await).await;
    assert_eq!(status, 200);
    assert!(app.sim().sip_outbound_trunks().is_empty());
    assert!(app.sim().sip_dispatch_rules().is_empty());
}

#[tokio::test]
async fn config_quota() {
    let app = TestApp::spawn_with(|s| s.plans.professional.sip_configs = 1).await;
    let body = json!({"name": "L", "phone_number": "+18005550100"});
    let (status, _) = json(app.post_json("/api/v1/sip/configs", &body).await).await;
    assert_eq!(status, 201);
    expect_error(
        app.post_json("/api/v1/sip/configs", &body).await,
        429,
        "QUOTA_EXCEEDED",
    )
    .await;
}

#[tokio::test]
async fn dial_validation_and_missing_trunk() {
    let app = TestApp::spawn().await;
    for bad in [
        "+1775abc4567",  // letters
        "+1775",         // too short
        "17751234567",   // missing +
        "+999123456789", // unassigned country code
        "+1775123456789012",
        "",
    ] {
        let body = expect_error(
            app.post_json("/api/v1/sip/dial", &json!({"phone_number": bad}))
                .await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(body["error"], "Invalid phone number format", "{bad}");
    }
    let body = expect_error(
        app.post_json("/api/v1/sip/dial", &json!({"phone_number": "+17751234567"}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"], "No SIP trunk configured");
    assert!(app.sim().sip_calls().is_empty());
}

#[tokio::test]
async fn dial_places_one_call_per_idempotency_key() {
    let app = TestApp::spawn().await;
    let agent_id = agent(&app, "Caller").await;
    let t = trunk(&app, "+18001234567").await;
    let send = || {
        app.req(Method::POST, "/api/v1/sip/dial")
            .header("Idempotency-Key", "dial-1")
            .json(&json!({"phone_number": "+17751234567", "metadata": {"order": 42}}))
            .send()
    };
    let (status, first) = json(send().await.unwrap()).await;
    assert_eq!(status, 200, "{first}");
    let call = &first["call"];
    let full = format!("{}_outbound-call-1", app.project.room_prefix);
    assert_eq!(first["success"], true);
    assert_eq!(call["room_name"], "outbound-call-1");
    assert_eq!(call["full_room_name"], full);
    assert_eq!(call["phone_number"], "+17751234567");
    assert_eq!(call["caller_id"], "+18001234567");
    assert_eq!(call["trunk_id"], t["outbound_trunk_id"]);
    assert!(
        call["sip_participant_id"]
            .as_str()
            .unwrap()
            .starts_with("PA_")
    );
    assert!(first["token"].as_str().is_some());
    assert_eq!(first["wsUrl"], app.sim().url().replace("http://", "ws://"));

    let (status, second) = json(send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(second, first);
    assert_eq!(
        app.sim().sip_calls().len(),
        1,
        "a retried dial never calls twice"
    );

    // The room has the SIP participant and the agent's dispatch.
    let ps = app.sim().participants(&full);
    assert_eq!(ps.len(), 1);
    assert_eq!(
        ps[0].kind,
        livekit_protocol::participant_info::Kind::Sip as i32
    );
    assert_eq!(ps[0].attributes["sip.phoneNumber"], "+17751234567");
    let ds = app.sim().dispatches(&full);
    assert_eq!(ds.len(), 1);
    assert!(
        ds[0]
            .metadata
            .contains(&format!("\"agent_config_id\":{agent_id}"))
    );

    // A sip session, events; the call rings and is answered.
    app.sim().flush_webhooks().await;
    let full_room = full.clone();
    wait_for(&app, move |e| {
        e["room_name"] == full_room.as_str() && e["status"] == "active"
    })
    .await;
    let session_id = call["session_id"].as_i64().unwrap();
    let (status, s) = json(
        app.get(&format!("/api/v1/sessions/{session_id}/detail"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["session"]["session_type"], "sip", "{s}");
    let initiated = events(&app, "sip.call_initiated").await;
    assert_eq!(initiated.len(), 1);
    assert_eq!(initiated[0]["session_id"], session_id);
    let statuses: Vec<Value> = events(&app, "sip.call_status")
        .await
        .into_iter()
        .map(|e| e["status"].clone())
        .collect();
    // The worker may read the call between its rings or not.
    assert!(
        statuses == [json!("dialing"), json!("ringing"), json!("active")]
            || statuses == [json!("dialing"), json!("active")],
        "{statuses:?}"
    );
    assert!(events(&app, "sip.inbound_call").await.is_empty());

    // A new call gets the next room; hang-up reports ended.
    let (status, next) = json(
        app.post_json("/api/v1/sip/dial", &json!({"phone_number": "+442071838750", "room_name": "vip", "caller_id": "+18005550000"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["call"]["room_name"], "vip");
    assert_eq!(next["call"]["caller_id"], "+18005550000");
    let vip = format!("{}_vip", app.project.room_prefix);
    let vip_room = vip.clone();
    wait_for(&app, move |e| {
        e["room_name"] == vip_room.as_str() && e["status"] == "active"
    })
    .await;
    app.sim().leave(&vip, "sip_442071838750").await.unwrap();
    app.sim().flush_webhooks().await;
    let last = events(&app, "sip.call_status").await.pop().unwrap();
    assert_eq!(
        (last["status"].clone(), last["room_name"].clone()),
        (json!("ended"), json!(vip))
    );
}

#[tokio::test]
async fn failed_calls_report_the_sip_status() {
    let app = TestApp::spawn().await;
    trunk(&app, "+18001234567").await;
    app.sim().fail_next_call(SimCallFailure::Busy);
    let body = expect_error(
        app.post_json("/api/v1/sip/dial", &json!({"phone_number": "+17751234567"}))
            .await,
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(body["details"]["sip_status_code"], 486, "{body}");
    // No session was left behind; call.status says failed with the reason.
    let (_, list) = json(app.get("/api/v1/sessions?session_type=sip").await).await;
    assert_eq!(list["total"], 0, "{list}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = events(&app, "sip.call_status").await;
        if let Some(e) = st.iter().find(|e| e["status"] == "failed") {
            assert!(e["reason"].as_str().unwrap().contains("486"));
            break;
        }
        assert!(Instant::now() < deadline, "no failed call.status");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The next call goes through.
    let (status, _) = json(
        app.post_json("/api/v1/sip/dial", &json!({"phone_number": "+17751234567"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn max_call_duration_ends_the_call() {
    let app = TestApp::spawn().await;
    let out = short_call(&app, 1).await;
    let full = out["call"]["full_room_name"].as_str().unwrap().to_owned();
    let calls = app.sim().sip_calls();
    assert_eq!(
        calls[0].max_call_duration.as_ref().map(|d| d.seconds),
        Some(1)
    );
    assert_eq!(app.sim().participants(&full).len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.sim().participants(&full).is_empty() {
        assert!(Instant::now() < deadline, "the call was not ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.sim().flush_webhooks().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ended = events(&app, "sip.call_status")
            .await
            .into_iter()
            .any(|e| e["reason"] == "max_call_duration");
        let (_, s) = json(
            app.get(&format!(
                "/api/v1/sessions/{}/detail",
                out["call"]["session_id"]
            ))
            .await,
        )
        .await;
        if ended && s["session"]["status"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn inbound_call_creates_a_sip_session() {
    let app = TestApp::spawn().await;
    let agent_id = agent(&app, "Receptionist").await;
    line(&app, agent_id).await;
    let room = format!("{}_call-_+17755550123_abc", app.project.room_prefix);
    app.sim().join(&room, caller()).await.unwrap();
    app.sim().flush_webhooks().await;
    let inbound = events(&app, "sip.inbound_call").await;
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    assert_eq!(inbound[0]["phone_number"], "+17755550123");
    assert_eq!(inbound[0]["agent_config_id"], agent_id);
    let (_, list) = json(app.get("/api/v1/sessions?session_type=sip").await).await;
    assert_eq!(list["total"], 1, "{list}");
    let s = &list["sessions"][0];
    assert_eq!(s["room_name"], room);
    // The caller is the number the SIP participant's attributes carry.
    let (_, d) = json(
        app.get(&format!("/api/v1/sessions/{}/detail", s["id"]))
            .await,
    )
    .await;
    assert_eq!(d["session"]["caller_identity"], "+17755550123", "{d}");
    assert_eq!(d["session"]["metadata"]["phone_number"], "+17755550123");
    assert_eq!(
        d["session"]["metadata"]["trunk_phone_number"],
        "+18005550100"
    );
    assert_eq!(d["session"]["agent_config_id"], agent_id);
    // The same participant rejoining does not start a second session.
    app.sim()
        .join(
            &room,
            SimParticipant::new("sip_+17755550123").kind(SimKind::Sip),
        )
        .await
        .unwrap();
    app.sim().flush_webhooks().await;
    assert_eq!(events(&app, "sip.inbound_call").await.len(), 1);
}

#[tokio::test]
async fn dial_quota_counts_calls_in_progress() {
    let app = TestApp::spawn_with(|s| s.plans.professional.sip_configs = 1).await;
    trunk(&app, "+18001234567").await;
    let body = json!({"phone_number": "+17751234567"});
    let dial = || app.post_json("/api/v1/sip/dial", &body);
    let (status, first) = json(dial().await).await;
    assert_eq!(status, 200, "{first}");
    let body = expect_error(dial().await, 429, "QUOTA_EXCEEDED").await;
    assert_eq!(body["details"]["resource"], "sip_configs");
    assert_eq!(app.sim().sip_calls().len(), 1);
}

/// `/_sim` over HTTP, as a person or a test drives the simulator.
async fn sim_post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let res = app
        .client
        .post(format!("{}{path}", app.sim().url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The simulator's call id of the call placed into `room` (over `/_sim`).
async fn call_id(app: &TestApp, room: &str) -> String {
    let calls: Value = app
        .client
        .get(format!("{}/_sim/sip/calls", app.sim().url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["room"] == room)
        .unwrap_or_else(|| panic!("no call in {room}: {calls}"))["call_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn dial_into(app: &TestApp, room: &str) -> String {
    let (status, out) = json(
        app.post_json(
            "/api/v1/sip/dial",
            &json!({"phone_number": "+17751234567", "room_name": room}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    out["call"]["full_room_name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn call_status_follows_the_sip_participant_on_the_monitor() {
    use crate::monitor::{next_of, subscribed};
    let app = TestApp::spawn().await;
    trunk(&app, "+18001234567").await;
    // Calls ring but wait for an answer from the control.
    let (status, _) = json(
        app.client
            .put(format!("{}/_sim/sip/progress", app.sim().url()))
            .json(&json!({"ring_after_ms": 50, "answer_after_ms": null}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let full = format!("{}_progress", app.project.room_prefix);
    let mut ws = subscribed(&app, &app.project.key, &format!("room:{full}")).await;
    assert_eq!(dial_into(&app, "progress").await, full);
    let expect = |status: &str, reason: Value| json!({"room_name": full, "phone_number": "+17751234567", "status": status, "reason": reason});
    let m = next_of(&mut ws, "call.status").await;
    assert_eq!(m["data"], expect("dialing", Value::Null));
    // LiveKit sends no webhook for the attribute change: Voxplane reads it.
    let m = next_of(&mut ws, "call.status").await;
    assert_eq!(m["data"], expect("ringing", Value::Null));
    let id = call_id(&app, &full).await;
    let (status, call) = sim_post(&app, &format!("/_sim/sip/calls/{id}/answer"), json!({})).await;
    assert_eq!((status, call["status"].clone()), (200, json!("active")));
    let m = next_of(&mut ws, "call.status").await;
    assert_eq!(m["data"], expect("active", Value::Null));
    let participant = &app.sim().participants(&full)[0];
    assert_eq!(participant.attributes["sip.callStatus"], "active");
    // Answering twice is refused; hanging up ends the call.
    let (status, _) = sim_post(&app, &format!("/_sim/sip/calls/{id}/answer"), json!({})).await;
    assert_eq!(status, 409);
    let (status, _) = sim_post(&app, &format!("/_sim/sip/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 200);
    let m = next_of(&mut ws, "call.status").await;
    assert_eq!(m["data"], expect("ended", json!("hangup")));
    assert!(app.sim().participants(&full).is_empty());
    let (status, _) = sim_post(&app, "/_sim/sip/calls/SCL_nope/hangup", json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = sim_post(&app, &format!("/_sim/sip/calls/{id}/dance"), json!({})).await;
    assert_eq!(status, 400);
}

/// The status of a session, through the API.
async fn session_status(app: &TestApp, id: i64) -> String {
    let (status, s) = json(app.get(&format!("/api/v1/sessions/{id}/detail")).await).await;
    assert_eq!(status, 200, "{s}");
    s["session"]["status"].as_str().unwrap().to_owned()
}

/// The short names of the project's rooms, as `GET /api/v1/rooms` lists them.
async fn room_names(app: &TestApp) -> Vec<String> {
    let (status, list) = json(app.get("/api/v1/rooms").await).await;
    assert_eq!(status, 200, "{list}");
    list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The trunk's dispatch rule in LiveKit (by the id `GET /sip/trunks`
/// gives): its id and the `agent_config_id` of the agent it dispatches,
/// with the agent's metadata. Exactly one rule is on the trunk.
async fn rule_of(app: &TestApp) -> (String, Option<i64>, Value) {
    let (_, list) = json(app.get("/api/v1/sip/trunks").await).await;
    let t = &list["trunks"][0];
    let id = t["dispatch_rule_id"].as_str().unwrap().to_owned();
    let inbound = t["inbound_trunk_id"].as_str().unwrap();
    let rules = app.sim().sip_dispatch_rules();
    let on_trunk: Vec<_> = rules
        .iter()
        .filter(|r| r.trunk_ids.iter().any(|t| t == inbound))
        .collect();
    assert_eq!(on_trunk.len(), 1, "{rules:?}");
    assert_eq!(on_trunk[0].sip_dispatch_rule_id, id);
    let agents = on_trunk[0]
        .room_config
        .as_ref()
        .map(|c| c.agents.clone())
        .unwrap_or_default();
    assert!(agents.len() <= 1, "{agents:?}");
    let Some(a) = agents.first() else {
        return (id, None, Value::Null);
    };
    let meta: Value = serde_json::from_str(&a.metadata).unwrap();
    (id, meta["agent_config_id"].as_i64(), meta)
}
