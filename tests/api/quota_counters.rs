//! Quota counters (issue #20): exact under concurrency for every counted
//! resource, slots freed by deletes and ends, months that start empty, and
//! counters repaired after rows change behind their back.

use crate::common::{TestApp, expect_error, json};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use futures_util::future::join_all;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn used(app: &TestApp, resource: &str) -> Value {
    let (status, body) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(status, 200, "{body}");
    body["quotas"][resource].clone()
}

async fn create_agent(app: &TestApp, name: &str) -> i64 {
    let (status, body) = json(
        app.post_json("/api/v1/agents", &json!({ "name": name }))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["agent"]["id"].as_i64().unwrap()
}

/// Sends `n` requests at once; returns how many answered `ok` and checks
/// every other answer is the quota's 429 for `resource` at `limit`.
async fn race(
    requests: Vec<reqwest::RequestBuilder>,
    ok: u16,
    resource: &str,
    limit: i64,
) -> usize {
    let answers: Vec<Response> = join_all(requests.into_iter().map(|r| r.send()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut passed = 0;
    for res in answers {
        let status = res.status().as_u16();
        if status == ok {
            passed += 1;
            continue;
        }
        let body = expect_error(res, 429, "QUOTA_EXCEEDED").await;
        assert_eq!(body["details"]["resource"], resource, "{body}");
        assert_eq!(body["details"]["limit"], limit, "{body}");
        assert_eq!(body["details"]["used"], limit, "{body}");
    }
    passed
}

#[tokio::test]
async fn concurrent_call_starts_take_exactly_the_months_remaining_sessions() {
    let app = TestApp::spawn_with(|s| s.plans.professional.sessions = 7).await;
    create_agent(&app, "Support").await;
    // Two used: one by a token, one by POST /sessions.
    let (status, _) = json(
        app.post_json("/api/v1/token", &json!({"identity": "u", "room": "first"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = json(
        app.post_json("/api/v1/sessions", &json!({"room_name": "second"}))
            .await,
    )
    .await;
    assert_eq!(status, 201);
    // 30 starts at once, tokens and sessions mixed, against 5 left.
    let requests: Vec<reqwest::RequestBuilder> = (0..30)
        .map(|i| {
            if i % 3 == 0 {
                app.req(Method::POST, "/api/v1/sessions")
                    .json(&json!({ "room_name": format!("s-{i}") }))
            } else {
                app.req(Method::POST, "/api/v1/token")
                    .json(&json!({ "identity": "caller", "room": format!("t-{i}") }))
            }
        })
        .collect();
    let answers: Vec<Response> = join_all(requests.into_iter().map(|r| r.send()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut started = 0;
    for res in answers {
        match res.status().as_u16() {
            200 | 201 => started += 1,
            _ => {
                let body = expect_error(res, 429, "QUOTA_EXCEEDED").await;
                assert_eq!(body["details"]["resource"], "sessions");
                assert_eq!(body["details"]["used"], 7);
            }
        }
    }
    assert_eq!(started, 5);
    assert_eq!(
        used(&app, "sessions").await,
        json!({"limit": 7, "used": 7, "remaining": 0})
    );
    // Every answered start has its session and its event.
    let (_, list) = json(app.get("/api/v1/sessions?per_page=100").await).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 7, "{list}");
    // A token for a room whose session runs needs no new one, but the quota
    // is checked first (as before the counters): still refused.
    expect_error(
        app.post_json("/api/v1/token", &json!({"identity": "v", "room": "first"}))
            .await,
        429,
        "QUOTA_EXCEEDED",
    )
    .await;
    // no_agent tokens start no session and are not counted.
    let (status, _) = json(
        app.post_json(
            "/api/v1/token",
            &json!({"identity": "u", "room": "x", "no_agent": true}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_token_for_a_room_with_a_session_reuses_it_and_counts_once() {
    let app = TestApp::spawn().await;
    create_agent(&app, "Support").await;
    let requests = (0..10)
        .map(|i| {
            app.req(Method::POST, "/api/v1/token")
                .json(&json!({ "identity": format!("u{i}"), "room": "same" }))
        })
        .collect();
    assert_eq!(race(requests, 200, "sessions", 0).await, 10);
    assert_eq!(used(&app, "sessions").await["used"], 1);
    let (_, list) = json(app.get("/api/v1/sessions").await).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn standing_resources_are_exact_under_concurrency_and_deletes_free_slots() {
    let app = TestApp::spawn_with(|s| {
        s.plans.professional.knowledge_bases = 2;
        s.plans.professional.webhook_configs = 2;
        s.plans.professional.rooms = 2;
    })
    .await;
    // Knowledge bases: one made, 20 race for the last slot.
    let (status, kb) = json(
        app.post_json("/api/v1/knowledge-bases", &json!({"name": "kb-0"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{kb}");
    let requests = (1..=20)
        .map(|i| {
            app.req(Method::POST, "/api/v1/knowledge-bases")
                .json(&json!({ "name": format!("kb-{i}") }))
        })
        .collect();
    assert_eq!(race(requests, 201, "knowledge_bases", 2).await, 1);
    let kb_id = kb["knowledge_base"]["id"].as_i64().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/knowledge-bases/{kb_id}"))
            .await
            .status(),
        200
    );
    assert_eq!(used(&app, "knowledge_bases").await["used"], 1);

    // Webhook endpoints.
    let (status, hook) = json(
        app.post_json("/api/v1/webhooks", &json!({"url": "http://8.8.8.8/h0"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let requests = (1..=20)
        .map(|i| {
            app.req(Method::POST, "/api/v1/webhooks")
                .json(&json!({ "url": format!("http://8.8.8.8/h{i}") }))
        })
        .collect();
    assert_eq!(race(requests, 201, "webhook_configs", 2).await, 1);
    let hook_id = hook["webhook"]["id"].as_i64().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{hook_id}"))
            .await
            .status(),
        200
    );
    assert_eq!(used(&app, "webhook_configs").await["used"], 1);

    // Rooms (active ones): a closed room frees its slot.
    let (status, _) = json(
        app.post_json("/api/v1/rooms", &json!({"name": "r-0"}))
            .await,
    )
    .await;
    assert_eq!(status, 201);
    let requests = (1..=20)
        .map(|i| {
            app.req(Method::POST, "/api/v1/rooms")
                .json(&json!({ "name": format!("r-{i}") }))
        })
        .collect();
    assert_eq!(race(requests, 201, "rooms", 2).await, 1);
    assert_eq!(app.delete("/api/v1/rooms/r-0").await.status(), 200);
    assert_eq!(used(&app, "rooms").await["used"], 1);
    let (status, _) = json(
        app.post_json("/api/v1/rooms", &json!({"name": "r-again"}))
            .await,
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_new_utc_month_starts_with_its_sessions_free() {
    let app = TestApp::spawn_with(|s| s.plans.professional.sessions = 3).await;
    create_agent(&app, "Support").await;
    let mut conn = app.conn().await;
    // The month is the UTC one, whatever the session's time zone.
    #[derive(diesel::QueryableByName)]
    struct Months {
        #[diesel(sql_type = diesel::sql_types::Text)]
        m: String,
    }
    let m: Months = diesel::sql_query(
        "SELECT concat_ws(' ', voxplane_month('2026-12-31 23:59:59.999+00'), \
         voxplane_month('2027-01-01 00:00:00+00'), voxplane_month('2027-01-01 00:30:00+01')) AS m",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(m.m, "2026-12-01 2027-01-01 2026-12-01");
    // Last month's sessions fill last month's counter, not this one's.
    diesel::sql_query(
        "INSERT INTO sessions (project_id, room_name, status, started_at, ended_at) \
         SELECT $1, 'old-' || g, 'completed', date_trunc('month', now()) - interval '1 day', \
         date_trunc('month', now()) - interval '1 day' FROM generate_series(1, 5) g",
    )
    .bind::<diesel::sql_types::BigInt, _>(app.project.id)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(used(&app, "sessions").await["used"], 0);
    for i in 0..3 {
        let (status, body) = json(
            app.post_json(
                "/api/v1/token",
                &json!({"identity": "u", "room": format!("m-{i}")}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    expect_error(
        app.post_json("/api/v1/token", &json!({"identity": "u", "room": "m-3"}))
            .await,
        429,
        "QUOTA_EXCEEDED",
    )
    .await;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        used: i64,
    }
    let last: Row = diesel::sql_query(
        "SELECT used FROM quota_counters WHERE project_id = $1 AND resource = 'sessions' \
         AND period = voxplane_month(now() - interval '1 month')",
    )
    .bind::<diesel::sql_types::BigInt, _>(app.project.id)
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(last.used, 5);
}

#[tokio::test]
async fn counters_changed_behind_their_back_are_repaired_by_the_cli() {
    // The periodic check at its default (an hour): the command repairs.
    let app = TestApp::spawn_with(|s| s.plans.professional.agents = 3).await;
    for i in 0..3 {
        create_agent(&app, &format!("a{i}")).await;
    }
    expect_error(
        app.post_json("/api/v1/agents", &json!({"name": "a3"}))
            .await,
        429,
        "QUOTA_EXCEEDED",
    )
    .await;
    // Rows deleted with the triggers off (as a restore or a manual fix might).
    let mut conn = app.conn().await;
    conn.batch_execute(
        "BEGIN; SET LOCAL session_replication_role = replica; \
         DELETE FROM agents WHERE name = 'a0'; COMMIT",
    )
    .await
    .unwrap();
    assert_eq!(
        used(&app, "agents").await["used"],
        3,
        "the counter did not see it"
    );
    let out = crate::cli::voxplane()
        .args([
            "admin",
            "recount-quotas",
            "--project",
            &app.project.id.to_string(),
        ])
        .env("DATABASE_URL", &app.db_url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("project {}: agents was 3, now 2", app.project.id)),
        "{stdout}"
    );
    assert_eq!(used(&app, "agents").await["used"], 2);
    create_agent(&app, "a3").await;
    assert_eq!(used(&app, "agents").await["used"], 3);
    // And an unknown project is a clear CLI error.
    let out = crate::cli::voxplane()
        .args(["admin", "recount-quotas", "--project", "999999"])
        .env("DATABASE_URL", &app.db_url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("project 999999 does not exist"));
}

#[tokio::test]
async fn a_counter_set_wrong_is_repaired_by_the_periodic_check() {
    let app = TestApp::spawn_with(|s| s.quota_recount_secs = 1).await;
    for i in 0..3 {
        create_agent(&app, &format!("a{i}")).await;
    }
    let mut conn = app.conn().await;
    diesel::sql_query(
        "UPDATE quota_counters SET used = 0 WHERE project_id = $1 AND resource = 'agents'",
    )
    .bind::<diesel::sql_types::BigInt, _>(app.project.id)
    .execute(&mut conn)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if used(&app, "agents").await["used"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "not repaired in 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn deleting_an_agent_clears_it_from_its_sessions_and_frees_its_slot() {
    let app = TestApp::spawn_with(|s| s.plans.professional.agents = 1).await;
    let agent = create_agent(&app, "Support").await;
    let (status, token) = json(
        app.post_json("/api/v1/token", &json!({"identity": "u", "room": "r"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["agents_dispatched"], json!([agent]));
    let (_, list) = json(app.get("/api/v1/sessions").await).await;
    let session = list["sessions"][0]["id"].as_i64().unwrap();
    assert_eq!(list["sessions"][0]["agent_config_id"], agent);
    // An agent on a call is not deleted; once the call ended it is.
    let path = format!("/api/v1/agents/{agent}");
    let gone = || app.delete(&path);
    assert_eq!(gone().await.status(), 409);
    let (status, body) = json(app.post_json("/api/v1/sessions/r/end", &json!({})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(gone().await.status(), 200);
    let (_, one) = json(app.get(&format!("/api/v1/sessions/{session}/detail")).await).await;
    assert_eq!(one["session"]["agent_config_id"], Value::Null, "{one}");
    assert_eq!(used(&app, "agents").await["used"], 0);
    create_agent(&app, "Next").await;
}

#[tokio::test]
async fn an_agent_delete_waits_for_the_starts_in_flight_and_counts_them() {
    use diesel_async::{
        AnsiTransactionManager, AsyncConnection, AsyncPgConnection, TransactionManager,
    };
    let app = TestApp::spawn().await;
    let agent = create_agent(&app, "Support").await;
    let project = app.project.id;
    // A start in flight: the agents read under the starts' lock, its
    // session written, not yet committed.
    let mut start = AsyncPgConnection::establish(&app.db_url).await.unwrap();
    AnsiTransactionManager::begin_transaction(&mut start)
        .await
        .unwrap();
    let known = voxplane::calls::dispatch::candidates(&mut start, &[project], &[])
        .await
        .unwrap();
    assert_eq!(known.len(), 1);
    start
        .batch_execute(&format!(
            "INSERT INTO sessions (project_id, room_name, agent_config_id, session_type, metadata)
             VALUES ({project}, 'in-flight', {agent}, 'voice', '{{}}')"
        ))
        .await
        .unwrap();
    let path = format!("/api/v1/agents/{agent}");
    let delete = tokio::spawn({
        let (client, url, key) = (
            app.client.clone(),
            format!("{}{path}", app.base),
            app.project.key.clone(),
        );
        async move {
            client
                .delete(url)
                .header("X-API-Key", key)
                .send()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!delete.is_finished(), "the delete must wait for the start");
    AnsiTransactionManager::commit_transaction(&mut start)
        .await
        .unwrap();
    // The start committed first: the agent is on a call and stays.
    let res = delete.await.unwrap();
    let body = expect_error(res, 409, "CONFLICT").await;
    assert_eq!(body["details"]["active_sessions"], 1, "{body}");
    let (status, _) = json(app.get(&path).await).await;
    assert_eq!(status, 200);
    // A start after a delete (here by SQL: the trigger's path) waits for it
    // and sees the agent gone.
    let other = create_agent(&app, "Other").await;
    let mut del = AsyncPgConnection::establish(&app.db_url).await.unwrap();
    AnsiTransactionManager::begin_transaction(&mut del)
        .await
        .unwrap();
    del.batch_execute(&format!("DELETE FROM agents WHERE id = {other}"))
        .await
        .unwrap();
    let token = tokio::spawn({
        let (client, url, key) = (
            app.client.clone(),
            format!("{}/api/v1/token", app.base),
            app.project.key.clone(),
        );
        async move {
            client
                .post(url)
                .header("X-API-Key", key)
                .json(&json!({"identity": "u", "room": "after", "agent_config_ids": [other]}))
                .send()
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!token.is_finished(), "the start must wait for the delete");
    AnsiTransactionManager::commit_transaction(&mut del)
        .await
        .unwrap();
    let body = expect_error(token.await.unwrap(), 400, "INVALID_REQUEST").await;
    assert_eq!(body["details"]["unknown"], json!([other]), "{body}");
}
