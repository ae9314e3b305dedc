//! Call outcomes: disposition from the project's list, tags, notes, rating;
//! filters in the session list and usage; `session.updated` once per change.

use crate::common::{TestApp, expect_error, json};
use crate::monitor::{next_of, subscribed};
use serde_json::json;
use voxplane::limits::plans::Plan;

async fn start(app: &TestApp, room: &str) -> i64 {
    let (status, body) = json(
        app.post_json("/api/v1/sessions", &json!({"room_name": room}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["session"]["id"].as_i64().unwrap()
}

#[tokio::test]
async fn outcomes_are_validated_filtered_and_reported_once() {
    let app = TestApp::spawn().await;
    let mut ws = subscribed(&app, &app.project.key, "sessions").await;
    let a = start(&app, "a").await;
    let b = start(&app, "b").await;

    let (status, body) = json(
        app.patch_json(&format!("/api/v1/sessions/{a}"), &json!({"disposition": "resolved", "tags": ["vip", "vip", " billing "], "notes": "ok", "rating": 5}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["tags"], json!(["vip", "billing"]));
    assert_eq!(body["session"]["rating"], 5);
    let m = next_of(&mut ws, "session.updated").await;
    assert_eq!(m["data"]["session_id"], a);
    assert_eq!(m["data"]["disposition"], "resolved");
    // The same values again change nothing and emit nothing; a clear does.
    app.patch_json(&format!("/api/v1/sessions/{a}"), &json!({"rating": 5}))
        .await;
    let (_, body) = json(
        app.patch_json(&format!("/api/v1/sessions/{a}"), &json!({"notes": null}))
            .await,
    )
    .await;
    assert!(body["session"]["notes"].is_null());
    assert_eq!(
        body["session"]["disposition"], "resolved",
        "absent fields stay"
    );
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.conn().await;
    let n: N = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM events WHERE event_type = 'session.updated' AND project_id = {}",
        app.project.id
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(n.n, 2);

    for bad in [
        json!({"disposition": "made-up"}),
        json!({"rating": 0}),
        json!({"rating": 6}),
        json!({"rating": 2.5}),
        json!({"tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
        json!({"tags": [""]}),
        json!({"notes": "a\u{0000}b"}),
        json!({"disposition": "re\u{0000}"}),
        json!({"colour": "red"}),
    ] {
        expect_error(
            app.patch_json(&format!("/api/v1/sessions/{b}"), &bad).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
    expect_error(
        app.patch_json("/api/v1/sessions/999999", &json!({"rating": 1}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.patch_json("/api/v1/sessions/abc", &json!({"rating": 1}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    let other = app.create_project(Plan::Professional).await;
    let res = app
        .req_as(
            &other.key,
            reqwest::Method::PATCH,
            &format!("/api/v1/sessions/{a}"),
        )
        .json(&json!({"rating": 1}))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;

    // The project's own list replaces the default one.
    let (_, list) = json(app.get("/api/v1/sessions/dispositions").await).await;
    assert_eq!(list["is_default"], true);
    let (status, list) = json(
        app.put_json(
            "/api/v1/sessions/dispositions",
            &json!({"dispositions": ["sale", "no_sale", "sale"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        list,
        json!({"dispositions": ["sale", "no_sale"], "is_default": false})
    );
    expect_error(
        app.patch_json(
            &format!("/api/v1/sessions/{b}"),
            &json!({"disposition": "resolved"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let (status, _) = json(
        app.patch_json(
            &format!("/api/v1/sessions/{b}"),
            &json!({"disposition": "sale", "tags": ["new"], "rating": 2}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    expect_error(
        app.put_json(
            "/api/v1/sessions/dispositions",
            &json!({"dispositions": []}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;

    // Filters in the list.
    let ids = |v: &serde_json::Value| -> Vec<i64> {
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_i64().unwrap())
            .collect()
    };
    let (_, l) = json(app.get("/api/v1/sessions?disposition=resolved").await).await;
    assert_eq!(ids(&l), [a]);
    assert_eq!(l["sessions"][0]["tags"], json!(["vip", "billing"]));
    let (_, l) = json(app.get("/api/v1/sessions?tag=new").await).await;
    assert_eq!(ids(&l), [b]);
    let (_, l) = json(app.get("/api/v1/sessions?rating=5").await).await;
    assert_eq!(ids(&l), [a]);
    let (_, d) = json(app.get(&format!("/api/v1/sessions/{a}/detail")).await).await;
    assert_eq!(d["session"]["disposition"], "resolved");

    // Usage of the sessions with an outcome.
    let usage = json!([
        {"session_id": a, "service": "llm", "provider": "openai", "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 500},
        {"session_id": b, "service": "llm", "provider": "openai", "model": "gpt-4o", "input_tokens": 2000, "output_tokens": 1000}
    ]);
    assert_eq!(app.post_json("/api/v1/usage", &usage).await.status(), 201);
    let (_, all) = json(app.get("/api/v1/usage?period=all").await).await;
    assert_eq!(all["totals"]["cost_usd"], 0.0225);
    let (_, only) = json(
        app.get("/api/v1/usage?period=all&disposition=resolved")
            .await,
    )
    .await;
    assert_eq!(only["totals"]["cost_usd"], 0.0075, "{only}");
    let (_, tagged) = json(app.get("/api/v1/usage?period=all&tag=new").await).await;
    assert_eq!(tagged["totals"]["cost_usd"], 0.015);
}
