//! Sessions, transcripts, automatic lifecycle, usage and costs.

use crate::common::{TestApp, expect_error, json};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use voxplane::embedded::livekit::{SimKind, SimParticipant};
use voxplane::limits::plans::Plan;

mod isolation;
mod started;

async fn start(app: &TestApp, room: &str) -> Value {
    let (status, body) = json(
        app.post_json("/api/v1/sessions", &json!({"room_name": room}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["session"].clone()
}

async fn line(app: &TestApp, room: &str, body: Value) -> reqwest::Response {
    app.post_json(&format!("/api/v1/sessions/{room}/transcript"), &body)
        .await
}

/// The `timestamp_ms` of a session's transcript lines, in the order listed.
async fn timestamps(app: &TestApp, session: &Value) -> Vec<i64> {
    let (_, t) = json(
        app.get(&format!("/api/v1/sessions/{}/transcript", session["id"]))
            .await,
    )
    .await;
    t["transcripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["timestamp_ms"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn session_lifecycle_through_the_api() {
    let app = TestApp::spawn().await;
    let full = format!("{}_my-room", app.project.room_prefix);
    let s = start(&app, &full).await;
    assert_eq!(s["room_name"], full);
    assert_eq!(s["status"], "active");
    assert_eq!(s["session_type"], "voice");
    assert_eq!(s["project_id"], app.project.id);
    let id = s["id"].as_i64().unwrap();
    // The short name addresses the same room; one active session per room.
    expect_error(
        app.post_json("/api/v1/sessions", &json!({"room_name": "my-room"}))
            .await,
        409,
        "CONFLICT",
    )
    .await;

    for (speaker, content, ts, fin) in [
        ("agent", "Hi! How can I help?", 1200, true),
        ("user", "Hel", 0, false),
        ("user", "Hello", 0, true),
        ("user", "I need to update my billing info", 3_725_000, true),
    ] {
        let res = line(
            &app,
            "my-room",
            json!({"speaker": speaker, "content": content, "timestamp_ms": ts, "is_final": fin}),
        )
        .await;
        assert_eq!(res.status(), 201);
    }
    let (_, t) = json(app.get(&format!("/api/v1/sessions/{id}/transcript")).await).await;
    assert_eq!(t["session_id"], id);
    let contents: Vec<&str> = t["transcripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        [
            "Hel",
            "Hello",
            "Hi! How can I help?",
            "I need to update my billing info"
        ]
    );
    assert_eq!(t["transcripts"][0]["is_final"], false);

    let res = app
        .get(&format!("/api/v1/sessions/{id}/transcript/text"))
        .await;
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        res.text().await.unwrap(),
        "[00:00] User: Hello\n[00:01] Agent: Hi! How can I help?\n[1:02:05] User: I need to update my billing info\n"
    );

    let (status, ended) = json(
        app.post_json(
            &format!("/api/v1/sessions/{full}/end"),
            &json!({"summary": "Billing", "duration": 185}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["session"]["status"], "completed");
    expect_error(
        app.post_json("/api/v1/sessions/my-room/end", &json!({}))
            .await,
        409,
        "CONFLICT",
    )
    .await;
    expect_error(
        app.post_json("/api/v1/sessions/nobody/end", &json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        line(
            &app,
            "my-room",
            json!({"speaker": "user", "content": "late"}),
        )
        .await,
        404,
        "NOT_FOUND",
    )
    .await;

    let (_, d) = json(app.get(&format!("/api/v1/sessions/{id}/detail")).await).await;
    assert_eq!(d["session"]["duration_seconds"], 185);
    assert_eq!(d["session"]["message_count"], 3);
    assert_eq!(d["session"]["summary"], "Billing");
    assert_eq!(
        d["costs"],
        json!({"total": 0.0, "llm": 0.0, "stt": 0.0, "tts": 0.0})
    );
    let (_, list) = json(app.get("/api/v1/sessions").await).await;
    assert_eq!(list["total"], 1);
    let row = &list["sessions"][0];
    assert_eq!(
        (
            row["duration"].clone(),
            row["message_count"].clone(),
            row["status"].clone()
        ),
        (json!(185), json!(3), json!("completed"))
    );
    assert!(row["ended_at"].is_string());
}

#[tokio::test]
async fn transcript_input_errors() {
    let app = TestApp::spawn().await;
    start(&app, "r").await;
    for (body, field) in [
        (json!({"content": "x"}), "speaker"),
        (json!({"speaker": "bot", "content": "x"}), "speaker"),
        (json!({"speaker": "user", "content": "   "}), "content"),
        (
            json!({"speaker": "user", "content": "x", "timestamp_ms": -1}),
            "timestamp_ms",
        ),
    ] {
        let err = expect_error(line(&app, "r", body.clone()).await, 400, "INVALID_REQUEST").await;
        assert_eq!(err["details"]["field"], field, "{body}");
    }
    expect_error(
        app.post_json(
            "/api/v1/sessions",
            &json!({"room_name": "x", "session_type": "video"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.post_json("/api/v1/sessions", &json!({})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get("/api/v1/sessions/999999/detail").await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.get("/api/v1/sessions/999999/transcript").await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn list_filters_and_pagination() {
    let app = TestApp::spawn().await;
    let (_, a) = json(
        app.post_json("/api/v1/agents", &json!({"name": "Support Agent"}))
            .await,
    )
    .await;
    let agent = a["agent"]["id"].as_i64().unwrap();
    for i in 0..5 {
        let body = json!({"room_name": format!("r{i}"), "agent_config_id": if i < 2 { Some(agent) } else { None }, "session_type": if i == 4 { "sip" } else { "voice" }});
        assert_eq!(app.post_json("/api/v1/sessions", &body).await.status(), 201);
    }
    app.post_json("/api/v1/sessions/r0/end", &json!({})).await;
    let app = &app;
    let q = |query: &str| {
        let path = format!("/api/v1/sessions?{query}");
        async move { app.get(&path).await }
    };
    let (_, p) = json(q("per_page=2&page=2").await).await;
    assert_eq!(
        (
            p["total"].clone(),
            p["page"].clone(),
            p["total_pages"].clone()
        ),
        (json!(5), json!(2), json!(3))
    );
    assert_eq!(p["sessions"].as_array().unwrap().len(), 2);
    let (_, p) = json(q("per_page=2&page=9").await).await;
    assert_eq!(p["sessions"], json!([]));
    assert_eq!(p["total"], 5);
    assert_eq!(json(q("status=completed").await).await.1["total"], 1);
    assert_eq!(json(q("status=active").await).await.1["total"], 4);
    assert_eq!(json(q("session_type=sip").await).await.1["total"], 1);
    let (_, p) = json(q(&format!("agent_config_id={agent}")).await).await;
    assert_eq!(p["total"], 2);
    assert_eq!(p["sessions"][0]["agent_name"], "Support Agent");
    assert_eq!(
        json(q("from=2000-01-01&to=2100-01-01T00:00:00Z").await)
            .await
            .1["total"],
        5
    );
    assert_eq!(json(q("from=2100-01-01").await).await.1["total"], 0);
    // A date as `to` takes in the whole day; as `from`, from its start.
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(
        json(q(&format!("from={today}&to={today}")).await).await.1["total"],
        5
    );
    for bad in [
        "page=0",
        "page=9223372036854775807",
        "per_page=101",
        "status=done",
        "session_type=video",
        "from=yesterday",
        "to=2026-13-01",
    ] {
        expect_error(q(bad).await, 400, "INVALID_REQUEST").await;
    }
    // Another project sees none of them.
    let other = app.create_project(Plan::Professional).await;
    let (_, p) = json(
        app.req_as(&other.key, Method::GET, "/api/v1/sessions")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p["total"], 0);
    let (_, mine) = json(q("").await).await;
    let id = mine["sessions"][0]["id"].as_i64().unwrap();
    for path in [
        format!("/api/v1/sessions/{id}/detail"),
        format!("/api/v1/sessions/{id}/transcript"),
        format!("/api/v1/sessions/{id}/transcript/text"),
    ] {
        expect_error(
            app.req_as(&other.key, Method::GET, &path)
                .send()
                .await
                .unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
    }
    let res = app
        .req_as(&other.key, Method::POST, "/api/v1/sessions/r1/transcript")
        .json(&json!({"speaker": "user", "content": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    // An agent with active sessions cannot be deleted.
    expect_error(
        app.delete(&format!("/api/v1/agents/{agent}")).await,
        409,
        "CONFLICT",
    )
    .await;
}

#[tokio::test]
async fn concurrent_transcript_appends_lose_nothing() {
    let app = TestApp::spawn().await;
    let s = start(&app, "busy").await;
    let results = join_all((0..60).map(|i| {
        line(
            &app,
            "busy",
            json!({"speaker": "user", "content": format!("line {i}"), "timestamp_ms": i * 10}),
        )
    }))
    .await;
    assert!(results.iter().all(|r| r.status() == 201));
    let got = timestamps(&app, &s).await;
    assert_eq!(got, (0..60).map(|i| i * 10).collect::<Vec<_>>());
}

#[tokio::test]
async fn sessions_start_and_end_automatically() {
    let app = TestApp::spawn().await;
    let (_, a) = json(
        app.post_json("/api/v1/agents", &json!({"name": "Support"}))
            .await,
    )
    .await;
    let agent = a["agent"]["id"].as_i64().unwrap();
    // A token that dispatches an agent starts the room's session, once.
    for _ in 0..2 {
        let (status, _) = json(
            app.post_json(
                "/api/v1/token",
                &json!({"identity": "caller", "room": "auto"}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, list) = json(app.get("/api/v1/sessions?status=active").await).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["sessions"][0]["agent_config_id"], agent);
    // An agent joining a room without a session starts one.
    let full = format!("{}_agent-room", app.project.room_prefix);
    app.sim()
        .join(&full, SimParticipant::new("user"))
        .await
        .unwrap();
    app.sim()
        .join(&full, SimParticipant::new("agent-x").kind(SimKind::Agent))
        .await
        .unwrap();
    app.sim().flush_webhooks().await;
    let (_, list) = json(app.get("/api/v1/sessions?status=active").await).await;
    assert_eq!(list["total"], 2);
    // Closing the rooms ends their sessions with a duration.
    app.post_json("/api/v1/rooms", &json!({"name": "auto"}))
        .await;
    assert_eq!(app.delete("/api/v1/rooms/auto").await.status(), 200);
    assert_eq!(app.delete("/api/v1/rooms/agent-room").await.status(), 200);
    app.sim().flush_webhooks().await;
    let (_, list) = json(app.get("/api/v1/sessions?status=completed").await).await;
    assert_eq!(list["total"], 2, "{list}");
    assert!(list["sessions"][0]["duration"].as_i64().unwrap() >= 0);
    assert_eq!(
        json(app.get("/api/v1/sessions?status=active").await)
            .await
            .1["total"],
        0
    );
}

#[tokio::test]
async fn usage_is_priced_exactly_and_aggregated() {
    let app = TestApp::spawn().await;
    let s = start(&app, "paid").await;
    let id = s["id"].as_i64().unwrap();
    let batch = json!([
        {"session_id": id, "service": "llm", "provider": "openai", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 500},
        {"room_name": "paid", "service": "stt", "provider": "deepgram", "model": "nova-3", "audio_seconds": 90},
        {"session_id": id, "service": "tts", "provider": "cartesia", "model": "sonic-2", "characters": 1000},
        {"session_id": id, "service": "llm", "provider": "acme", "model": "mystery-1", "input_tokens": 10}
    ]);
    let (status, out) = json(app.post_json("/api/v1/usage", &batch).await).await;
    assert_eq!(status, 201, "{out}");
    assert_eq!(out["recorded"], 4);
    // 1000 * 2.50/1M + 500 * 10/1M = 0.0075; 1.5 min * 0.0043 = 0.00645; 1k chars * 0.038
    assert_eq!(out["usage"][0]["cost_usd"], "0.00750000");
    assert_eq!(out["usage"][1]["cost_usd"], "0.00645000");
    assert_eq!(out["usage"][2]["cost_usd"], "0.03800000");
    assert_eq!(
        (
            out["usage"][3]["cost_usd"].clone(),
            out["usage"][3]["priced"].clone()
        ),
        (json!("0.00000000"), json!(false))
    );

    let (_, d) = json(app.get(&format!("/api/v1/sessions/{id}/detail")).await).await;
    assert_eq!(
        d["costs"],
        json!({"total": 0.05195, "llm": 0.0075, "stt": 0.00645, "tts": 0.038})
    );

    for group in ["day", "model", "agent", "service"] {
        let (status, u) = json(
            app.get(&format!("/api/v1/usage?period=7d&group_by={group}"))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(u["period"], "7d");
        assert_eq!(u["group_by"], group);
        let t = &u["totals"];
        assert_eq!(t["cost_usd"], 0.05195);
        assert_eq!(t["input_tokens"], 1010);
        assert_eq!(t["output_tokens"], 500);
        assert_eq!(t["audio_minutes"], 1.5);
        assert_eq!(t["tts_characters"], 1000);
        assert!(t["api_calls"].as_i64().unwrap() >= 3);
        let sum: f64 = u["breakdown"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["cost"].as_f64().unwrap())
            .sum();
        assert!((sum - 0.05195).abs() < 1e-9, "{u}");
        let calls: i64 = u["breakdown"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["calls"].as_i64().unwrap())
            .sum();
        assert_eq!(calls, 4);
    }
    let (_, u) = json(app.get("/api/v1/usage?group_by=service").await).await;
    let llm = u["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "llm")
        .unwrap()
        .clone();
    assert_eq!(
        (
            llm["cost"].clone(),
            llm["llm_cost"].clone(),
            llm["stt_cost"].clone()
        ),
        (json!(0.0075), json!(0.0075), json!(0.0))
    );
    let (_, u) = json(app.get("/api/v1/usage").await).await;
    assert_eq!(
        (u["period"].clone(), u["group_by"].clone()),
        (json!("30d"), json!("day"))
    );
    assert!(u["breakdown"][0]["period"].as_str().unwrap().len() == 10);

    let err = expect_error(
        app.get("/api/v1/usage?period=week").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(
        err["details"]["allowed"],
        json!(["today", "7d", "30d", "month", "all"])
    );
    // This calendar month holds what was just recorded.
    let (status, month) = json(app.get("/api/v1/usage?period=month").await).await;
    assert_eq!(status, 200);
    assert_eq!(month["totals"]["cost_usd"], u["totals"]["cost_usd"]);
    expect_error(
        app.get("/api/v1/usage?group_by=color").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    for bad in [
        json!({"session_id": id, "service": "vision", "provider": "x", "model": "y"}),
        json!({"service": "llm", "provider": "x", "model": "y"}),
        json!([]),
        json!(5),
    ] {
        expect_error(
            app.post_json("/api/v1/usage", &bad).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
    let res = app.post_json("/api/v1/usage", &json!({"session_id": 999_999, "service": "llm", "provider": "openai", "model": "gpt-4o"})).await;
    expect_error(res, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn a_line_without_timestamp_is_stamped_from_the_session_start() {
    let app = TestApp::spawn().await;
    let full = format!("{}_stamp", app.project.room_prefix);
    let s = start(&app, &full).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) =
        json(line(&app, "stamp", json!({"speaker": "user", "content": "late"})).await).await;
    assert_eq!(status, 201, "{body}");
    let ts = body["transcript"]["timestamp_ms"].as_i64().unwrap();
    assert!((1000..60_000).contains(&ts), "{ts}");
    let text = app
        .get(&format!("/api/v1/sessions/{}/transcript/text", s["id"]))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(text.trim_end(), "[00:01] User: late");
}

#[tokio::test]
async fn the_default_page_is_25_sessions() {
    let app = TestApp::spawn().await;
    for i in 0..27 {
        let body = json!({"room_name": format!("p{i}")});
        assert_eq!(app.post_json("/api/v1/sessions", &body).await.status(), 201);
    }
    let (_, p) = json(app.get("/api/v1/sessions").await).await;
    assert_eq!(p["sessions"].as_array().unwrap().len(), 25);
    assert_eq!(
        (p["total"].clone(), p["total_pages"].clone()),
        (json!(27), json!(2))
    );
    let (_, p) = json(app.get("/api/v1/sessions?page=2").await).await;
    assert_eq!(p["sessions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn costs_are_exact_decimals_from_postgres_to_the_json() {
    use voxplane::config::ModelPrice;
    let per_char = |model: &str, per_thousand: &str| ModelPrice {
        provider: "acme".into(),
        model: model.into(),
        input_per_million: "0".into(),
        output_per_million: "0".into(),
        per_minute: "0".into(),
        per_thousand_chars: per_thousand.into(),
    };
    let app = TestApp::spawn_with(move |s| {
        // A character costs 0.1 (a dime) or 0.000001 (a micro).
        s.prices.push(per_char("dime", "100"));
        s.prices.push(per_char("micro", "0.001"));
    })
    .await;
    let s = start(&app, "exact").await;
    let id = s["id"].as_i64().unwrap();
    let record = |model: &str, characters: i64| {
        json!({"session_id": id, "service": "tts", "provider": "acme", "model": model,
               "characters": characters})
    };
    // 2 × 9,000,000,000 + 10 × 0.1 + 0.000001: 17 significant digits,
    // more than an f64 holds (it would say 18000000001.0).
    let mut batch = vec![
        record("dime", 90_000_000_000),
        record("dime", 90_000_000_000),
    ];
    batch.extend((0..10).map(|_| record("dime", 1)));
    batch.push(record("micro", 1));
    let (status, out) = json(app.post_json("/api/v1/usage", &json!(batch)).await).await;
    assert_eq!(status, 201, "{out}");
    let exact = "18000000001.000001";

    let detail = app
        .get(&format!("/api/v1/sessions/{id}/detail"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        detail.contains(&format!(
            r#""costs":{{"total":{exact},"llm":0.0,"stt":0.0,"tts":{exact}}}"#
        )),
        "{detail}"
    );
    for group in ["day", "model", "service"] {
        let report = app
            .get(&format!("/api/v1/usage?period=7d&group_by={group}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            report.contains(&format!(r#""totals":{{"cost_usd":{exact},"#)),
            "{report}"
        );
    }
    // Each group exact too.
    let by_model = app
        .get("/api/v1/usage?group_by=model")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        by_model.contains(r#"{"model":"acme/dime","cost":18000000001.0,"llm_cost":0.0,"stt_cost":0.0,"tts_cost":18000000001.0,"calls":12}"#),
        "{by_model}"
    );
    assert!(
        by_model.contains(r#""model":"acme/micro","cost":0.000001,"#),
        "{by_model}"
    );
}

#[tokio::test]
async fn usage_is_per_project_and_counts_every_call() {
    let app = TestApp::spawn().await;
    let s = start(&app, "billed").await;
    let body = json!({"session_id": s["id"], "service": "llm", "provider": "openai", "model": "gpt-4o", "input_tokens": 1000});
    assert_eq!(app.post_json("/api/v1/usage", &body).await.status(), 201);
    let other = app.create_project(Plan::Free).await;
    for _ in 0..2 {
        let r = app
            .req_as(&other.key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for period in ["today", "all"] {
        let (status, u) = json(
            app.req_as(
                &other.key,
                Method::GET,
                &format!("/api/v1/usage?period={period}"),
            )
            .send()
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{u}");
        assert_eq!(u["totals"]["cost_usd"], 0.0, "{u}");
        assert_eq!(u["breakdown"], json!([]), "{u}");
        // Two project reads, then this call and the one before it.
        let expected = if period == "today" { 3 } else { 4 };
        assert_eq!(u["totals"]["api_calls"], expected, "{u}");
    }
    // Another project's session cannot be billed.
    let res = app
        .req_as(&other.key, Method::POST, "/api/v1/usage")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    for period in ["today", "all"] {
        let (_, u) = json(app.get(&format!("/api/v1/usage?period={period}")).await).await;
        assert_eq!(u["totals"]["cost_usd"], 0.0025, "{u}");
        assert_eq!(u["totals"]["input_tokens"], 1000, "{u}");
    }
}

/// Posts a LiveKit webhook about room `sid` (named `room`), as LiveKit
/// signs it; `extra` adds fields (a participant). It must be processed.
async fn hook(app: &TestApp, id: &str, event: &str, room: &str, sid: &str, at: i64, extra: Value) {
    let mut body = json!({
        "event": event, "id": id, "createdAt": at.to_string(),
        "room": {"sid": sid, "name": room, "creationTime": (at - 5).to_string()},
    });
    if let (Some(b), Value::Object(x)) = (body.as_object_mut(), extra) {
        b.extend(x);
    }
    let body = body.to_string();
    let auth = crate::livekit::signed(app, &body);
    let (status, out) = json(crate::livekit::post_webhook(app, &body, &auth).await).await;
    assert_eq!(
        (status, out["outcome"].as_str()),
        (200, Some("processed")),
        "{out}"
    );
}

fn agent_joined(sid: &str) -> Value {
    json!({"participant": {"sid": sid, "identity": "agent-1", "kind": "AGENT", "state": "ACTIVE"}})
}

/// The room's sessions, oldest first: (id, status).
async fn sessions_of(app: &TestApp, room: &str) -> Vec<(i64, String)> {
    let (_, list) = json(app.get("/api/v1/sessions?per_page=100").await).await;
    let mut out: Vec<(i64, String)> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["room_name"] == room)
        .map(|s| {
            (
                s["id"].as_i64().unwrap(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}
