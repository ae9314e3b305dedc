//! Webhook endpoints and delivery: signatures checked by an independent
//! implementation, retries, outages, rotation, SSRF, several processes.

use crate::common::receiver::{Receiver, Reply};
use crate::common::{TestApp, expect_error, json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;
use voxplane::embedded::livekit::SimParticipant;
use voxplane::limits::plans::Plan;

mod sending;

const WAIT: Duration = Duration::from_secs(15);

/// The contract's scheme, computed here independently: hex HMAC-SHA256 of the raw body.
fn hex_hmac(secret: &str, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// Standard Webhooks, computed here independently.
fn standard(secret: &str, id: &str, ts: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    m.update(format!("{id}.{ts}.").as_bytes());
    m.update(body);
    format!("v1,{}", STANDARD.encode(m.finalize().into_bytes()))
}

async fn create_endpoint(app: &TestApp, url: &str, types: Value) -> (i64, String) {
    let (status, body) = json(
        app.post_json(
            "/api/v1/webhooks",
            &json!({"url": url, "event_types": types}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["webhook"]["secret"].as_str().unwrap().to_owned();
    (body["webhook"]["id"].as_i64().unwrap(), secret)
}

async fn fast_app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0, 0, 0, 0];
        s.webhook_timeout_ms = 1000;
    })
    .await
}

#[tokio::test]
async fn a_test_event_goes_once_to_every_active_endpoint_whatever_it_subscribes_to() {
    let app = fast_app().await;
    let all = Receiver::start(vec![]);
    let other = Receiver::start(vec![]);
    let (all_id, _) = create_endpoint(&app, &all.url, json!([])).await;
    let (other_id, _) = create_endpoint(&app, &other.url, json!(["session.started"])).await;
    for event_type in ["test", "room.started"] {
        let (status, out) = json(
            app.post_json("/api/v1/webhooks/test", &json!({"event_type": event_type}))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["enqueued"], 2);
        assert_eq!(out["webhook_ids"], json!([all_id, other_id]));
    }
    assert_eq!(other.wait_for(2, WAIT).await.len(), 2);
    assert_eq!(all.wait_for(2, WAIT).await.len(), 2);
    // The endpoint subscribed to everything got its deliveries from the
    // event's own fan-out too: still one each.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got: Vec<String> = all
        .received()
        .iter()
        .map(|r| r.json()["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
}

#[tokio::test]
async fn test_event_is_delivered_signed_in_the_contract_shape() {
    let app = fast_app().await;
    let rx = Receiver::start(vec![]);
    let (id, secret) = create_endpoint(&app, &rx.url, json!([])).await;
    assert!(secret.starts_with("whsec_"));
    let (_, inactive) = json(
        app.post_json(
            "/api/v1/webhooks",
            &json!({"url": rx.url, "is_active": false}),
        )
        .await,
    )
    .await;
    assert_eq!(inactive["webhook"]["is_active"], false);

    let (status, out) = json(
        app.post_json(
            "/api/v1/webhooks/test",
            &json!({"payload": {"hello": "world"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["event_type"], "test");
    assert_eq!(out["enqueued"], 1);
    assert_eq!(out["webhook_ids"], json!([id]));

    let got = rx.wait_for(1, WAIT).await;
    let r = &got[0];
    let body = r.json();
    assert_eq!(body["event_type"], "test");
    assert_eq!(body["project_id"], app.project.id);
    assert_eq!(body["data"], json!({"hello": "world"}));
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    assert_eq!(body.as_object().unwrap().len(), 4);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("x-webhook-signature").unwrap(),
        hex_hmac(&secret, &r.body)
    );
    let (wid, ts) = (
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
    );
    assert_eq!(wid, out["event_id"]);
    assert_eq!(
        r.header("webhook-signature").unwrap(),
        standard(&secret, wid, ts, &r.body)
    );
    assert!((chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap()).abs() < 30);

    // The delivery log shows it delivered.
    let (_, page) = json(app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await).await;
    let (deadline, mut page) = (std::time::Instant::now() + WAIT, page);
    while page["deliveries"][0]["status"] != "delivered" && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        page = json(app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await)
            .await
            .1;
    }
    assert_eq!(page["total"], 1);
    assert_eq!(page["deliveries"][0]["status"], "delivered");
    assert_eq!(page["deliveries"][0]["attempts"], 1);
    assert_eq!(page["deliveries"][0]["last_status_code"], 200);

    expect_error(
        app.post_json("/api/v1/webhooks/test", &json!({"event_type": "nope"}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    // An event's `data` is an object: a test payload that is not one is
    // refused, not sent.
    for payload in [json!([1, 2]), json!("text"), json!(3)] {
        let err = expect_error(
            app.post_json("/api/v1/webhooks/test", &json!({"payload": payload}))
                .await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert!(err["error"].as_str().unwrap().contains("payload"), "{err}");
    }
}

async fn wait_status(app: &TestApp, webhook: i64, status: &str) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, page) = json(
            app.get(&format!("/api/v1/webhooks/{webhook}/deliveries"))
                .await,
        )
        .await;
        if page["deliveries"][0]["status"] == status {
            return page["deliveries"][0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivery never became {status}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn failures_are_retried_and_every_attempt_is_logged() {
    let app = fast_app().await;
    let rx = Receiver::start(vec![Reply::Status(500), Reply::Status(503)]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let d = wait_status(&app, id, "delivered").await;
    assert_eq!(d["attempts"], 3);
    let got = rx.received();
    assert_eq!(got.len(), 3);
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the webhook-id is stable across retries"
    );
    let (_, detail) = json(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries/{}", d["id"]))
            .await,
    )
    .await;
    let codes: Vec<Value> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(503), json!(200)]);
    assert_eq!(detail["attempts"][0]["response_body"], "status 500");
}

#[tokio::test]
async fn a_receiver_that_is_down_for_a_while_loses_nothing() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0, 1, 1, 1, 1, 1, 1, 1];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    // Reserve a port, then leave it closed.
    let port = voxplane::embedded::postgres::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");
    let (id, _) = create_endpoint(&app, &url, json!([])).await;
    for _ in 0..3 {
        app.post_json("/api/v1/webhooks/test", &json!({})).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, page) = json(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries?status=pending"))
            .await,
    )
    .await;
    assert_eq!(page["total"], 3, "{page}");
    assert!(
        page["deliveries"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("connection")
    );
    let rx = Receiver::start_on(port, vec![]);
    let got = rx.wait_for(3, WAIT).await;
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_says_so() {
    let app = fast_app().await;
    let gone = Receiver::start(vec![Reply::Status(410)]);
    let watcher = Receiver::start(vec![]);
    let (id, _) = create_endpoint(&app, &gone.url, json!(["test"])).await;
    create_endpoint(&app, &watcher.url, json!(["webhook.disabled"])).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    // The test event goes to every active endpoint; then the disabling is announced.
    let got = watcher.wait_for(2, WAIT).await;
    let disabled = got
        .iter()
        .map(|r| r.json())
        .find(|b| b["event_type"] == "webhook.disabled")
        .expect("webhook.disabled");
    assert_eq!(disabled["data"]["webhook_id"], id);
    let (_, w) = json(app.get(&format!("/api/v1/webhooks/{id}")).await).await;
    assert_eq!(w["webhook"]["is_active"], false);
    assert!(
        w["webhook"]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    // Re-enabling works.
    let (_, w) = json(
        app.patch_json(
            &format!("/api/v1/webhooks/{id}"),
            &json!({"is_active": true}),
        )
        .await,
    )
    .await;
    assert_eq!(w["webhook"]["disabled_reason"], Value::Null);
}

/// Sets (or clears) when an endpoint started failing, as if time had passed.
/// `POST /webhooks/{webhook}/deliveries/{delivery}/redeliver`.
async fn redeliver(app: &TestApp, webhook: i64, delivery: &Value) -> reqwest::Response {
    app.req(
        Method::POST,
        &format!(
            "/api/v1/webhooks/{webhook}/deliveries/{}/redeliver",
            delivery["id"]
        ),
    )
    .send()
    .await
    .unwrap()
}

async fn set_failing_since(app: &TestApp, id: i64, hours_ago: Option<i64>) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use voxplane::db::schema::webhook_endpoints as we;
    let since = hours_ago.map(|h| chrono::Utc::now() - chrono::Duration::hours(h));
    diesel::update(we::table.find(id))
        .set(we::failing_since.eq(since))
        .execute(&mut app.conn().await)
        .await
        .unwrap();
}

async fn failing_since(app: &TestApp, id: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use voxplane::db::schema::webhook_endpoints as we;
    we::table
        .find(id)
        .select(we::failing_since)
        .first(&mut app.conn().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_a_success_ends_a_streak() {
    let app = fast_app().await;
    let watcher = Receiver::start(vec![]);
    create_endpoint(&app, &watcher.url, json!(["webhook.disabled"])).await;

    // Failing since 4 days: one more failure starts nothing new and disables nothing.
    let flaky = Receiver::start(vec![Reply::Status(500)]);
    let (flaky_id, _) = create_endpoint(&app, &flaky.url, json!(["test"])).await;
    set_failing_since(&app, flaky_id, Some(96)).await;
    // Failing since 5 days and an hour: the next failure disables it.
    let dead = Receiver::start(vec![Reply::Status(500); 8]);
    let (dead_id, _) = create_endpoint(&app, &dead.url, json!(["test"])).await;
    set_failing_since(&app, dead_id, Some(121)).await;

    // The test event goes to every active endpoint (the watcher too); then
    // the disabling is announced.
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let got = watcher.wait_for(2, WAIT).await;
    let disabled = got
        .iter()
        .map(|r| r.json())
        .find(|b| b["event_type"] == "webhook.disabled")
        .expect("webhook.disabled");
    assert_eq!(disabled["data"]["webhook_id"], dead_id);
    let (_, w) = json(app.get(&format!("/api/v1/webhooks/{dead_id}")).await).await;
    assert_eq!(w["webhook"]["is_active"], false);
    assert!(
        w["webhook"]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed continuously"),
        "{w}"
    );

    // The flaky endpoint failed once, then the retry went through: its streak is over.
    wait_status(&app, flaky_id, "delivered").await;
    assert_eq!(failing_since(&app, flaky_id).await, None);
    let (_, w) = json(app.get(&format!("/api/v1/webhooks/{flaky_id}")).await).await;
    assert_eq!(w["webhook"]["is_active"], true);

    // A healthy endpoint's first failure starts a streak.
    let fresh = Receiver::start(vec![Reply::Status(500); 8]);
    let (fresh_id, _) = create_endpoint(&app, &fresh.url, json!(["test"])).await;
    assert_eq!(failing_since(&app, fresh_id).await, None);
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    fresh.wait_for(1, WAIT).await;
    let mut since = None;
    for _ in 0..50 {
        since = failing_since(&app, fresh_id).await;
        if since.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let since = since.expect("a failure starts the streak");
    assert!(chrono::Utc::now() - since < chrono::Duration::minutes(1));
    let (_, w) = json(app.get(&format!("/api/v1/webhooks/{fresh_id}")).await).await;
    assert_eq!(w["webhook"]["is_active"], true, "one bad day is not five");
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_during_the_window() {
    let app = fast_app().await;
    let rx = Receiver::start(vec![]);
    let (id, old) = create_endpoint(&app, &rx.url, json!([])).await;
    let (status, rotated) = json(
        app.req(
            Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let r = &rx.wait_for(1, WAIT).await[0];
    let (wid, ts) = (
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
    );
    let sigs: Vec<&str> = r.header("webhook-signature").unwrap().split(' ').collect();
    assert_eq!(
        sigs,
        [
            standard(&new, wid, ts, &r.body),
            standard(&old, wid, ts, &r.body)
        ]
    );
    assert_eq!(
        r.header("x-webhook-signature").unwrap(),
        hex_hmac(&new, &r.body)
    );
}

#[tokio::test]
async fn endpoints_validate_input_refuse_internal_urls_and_are_isolated() {
    let app = TestApp::spawn_with(|s| s.webhook_allow_loopback = false).await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/",
        "http://[::1]/",
        "ftp://example.com/",
        "not a url",
        "http://user:pw@8.8.8.8/",
    ] {
        let err = expect_error(
            app.post_json("/api/v1/webhooks", &json!({"url": url}))
                .await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], "url", "{url}");
    }
    let err = expect_error(
        app.post_json(
            "/api/v1/webhooks",
            &json!({"url": "http://8.8.8.8/x", "event_types": ["room.started", "bogus"]}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(err["details"]["field"], "event_types");

    let (_, created) = json(
        app.post_json(
            "/api/v1/webhooks",
            &json!({"url": "http://8.8.8.8/x", "description": "d"}),
        )
        .await,
    )
    .await;
    let id = created["webhook"]["id"].as_i64().unwrap();
    let (_, list) = json(app.get("/api/v1/webhooks").await).await;
    assert!(
        list["webhooks"][0].get("secret").is_none(),
        "secrets are shown once"
    );
    let (_, one) = json(app.get(&format!("/api/v1/webhooks/{id}")).await).await;
    assert!(one["webhook"].get("secret").is_none());

    let other = app.create_project(Plan::Professional).await;
    for (m, p) in [
        (Method::GET, format!("/api/v1/webhooks/{id}")),
        (Method::DELETE, format!("/api/v1/webhooks/{id}")),
        (Method::POST, format!("/api/v1/webhooks/{id}/rotate-secret")),
        (Method::GET, format!("/api/v1/webhooks/{id}/deliveries")),
    ] {
        expect_error(
            app.req_as(&other.key, m, &p).send().await.unwrap(),
            404,
            "NOT_FOUND",
        )
        .await;
    }
    let (_, theirs) = json(
        app.req_as(&other.key, Method::GET, "/api/v1/webhooks")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(theirs["webhooks"], json!([]));
    let (status, _) = json(app.delete(&format!("/api/v1/webhooks/{id}")).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn livekit_activity_reaches_subscribed_endpoints_only_for_their_types() {
    let app = fast_app().await;
    let all = Receiver::start(vec![]);
    let rooms_only = Receiver::start(vec![]);
    create_endpoint(&app, &all.url, json!([])).await;
    create_endpoint(
        &app,
        &rooms_only.url,
        json!(["room.started", "room.finished"]),
    )
    .await;
    let full = format!("{}_evented", app.project.room_prefix);
    app.sim()
        .join(&full, SimParticipant::new("alice"))
        .await
        .unwrap();
    app.sim().leave(&full, "alice").await.unwrap();
    app.sim().flush_webhooks().await;
    app.delete("/api/v1/rooms/evented").await;
    app.sim().flush_webhooks().await;

    let got = all.wait_for(6, WAIT).await;
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["event_type"].as_str().unwrap().to_owned())
        .collect();
    for t in [
        "room.started",
        "participant.joined",
        "track.published",
        "track.unpublished",
        "participant.left",
        "room.finished",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    let joined = got
        .iter()
        .map(|r| r.json())
        .find(|b| b["event_type"] == "participant.joined")
        .unwrap();
    assert_eq!(joined["data"]["room_name"], full);
    assert_eq!(joined["data"]["identity"], "alice");
    let only = rooms_only.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let types: Vec<String> = rooms_only
        .received()
        .iter()
        .map(|r| r.json()["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["room.started", "room.finished"], "{only:?}");
}

#[tokio::test]
async fn two_processes_never_deliver_the_same_event_twice() {
    let app = fast_app().await;
    let second = app
        .another_node(|s| {
            s.webhook_retry_schedule_secs = vec![0, 0, 0, 0];
            s.webhook_timeout_ms = 1000;
            s.events_poll_ms = 50;
        })
        .await;
    let rx = Receiver::start(vec![]);
    create_endpoint(&app, &rx.url, json!([])).await;
    for i in 0..30 {
        let node = if i % 2 == 0 { &app } else { &second };
        node.post_json("/api/v1/webhooks/test", &json!({"payload": {"n": i}}))
            .await;
    }
    rx.wait_for(30, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = rx.received();
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 30, "exactly one request per event");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
}

/// Ends the lease of every claimed delivery, as if its worker had overrun it
/// (a stalled DNS lookup, a paused process).
async fn expire_leases(app: &TestApp) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use voxplane::db::schema::webhook_deliveries as wd;
    diesel::update(wd::table.filter(wd::locked_until.is_not_null()))
        .set(wd::locked_until.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut app.conn().await)
        .await
        .unwrap();
}

/// The delivery with its attempts, once it has `n` attempt rows.
async fn wait_attempts(app: &TestApp, webhook: i64, delivery: &Value, n: usize) -> Value {
    let path = format!("/api/v1/webhooks/{webhook}/deliveries/{}", delivery["id"]);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, detail) = json(app.get(&path).await).await;
        if detail["attempts"].as_array().unwrap().len() >= n {
            return detail;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {n} attempts: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Points an endpoint somewhere else behind the API's back, as if its DNS
/// name had changed since it was checked.
async fn set_url(app: &TestApp, id: i64, url: &str) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use voxplane::db::schema::webhook_endpoints as we;
    diesel::update(we::table.find(id))
        .set(we::url.eq(url))
        .execute(&mut app.conn().await)
        .await
        .unwrap();
}

/// Ends the rotation window of an endpoint, as if its hours had passed.
async fn end_rotation_window(app: &TestApp, id: i64) {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use voxplane::db::schema::webhook_endpoints as we;
    diesel::update(we::table.find(id))
        .set(we::previous_secret_expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut app.conn().await)
        .await
        .unwrap();
}
