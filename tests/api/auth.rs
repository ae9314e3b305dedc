//! API-key authentication and the key cache.

use crate::common::{TestApp, expect_error, json};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use reqwest::Method;
use sha2::{Digest, Sha256};
use std::time::Duration;
use voxplane::db::api_keys;
use voxplane::db::schema::api_keys as ak;

#[tokio::test]
async fn missing_and_invalid_keys_are_401_with_the_contract_messages() {
    let app = TestApp::spawn().await;
    let body = expect_error(
        app.anon(Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(body["error"], "Missing X-API-Key header");

    for bad in [
        "nope",
        "pk_",
        &format!("pk_{}", "A".repeat(40)),
        &format!("{}x", app.project.key),
    ] {
        let res = app
            .req_as(bad, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap();
        let body = expect_error(res, 401, "UNAUTHORIZED").await;
        assert_eq!(body["error"], "Invalid or deactivated API key", "{bad}");
    }
}

#[tokio::test]
async fn bearer_authorization_is_accepted() {
    let app = TestApp::spawn().await;
    let res = app
        .anon(Method::GET, "/api/v1/project")
        .header("Authorization", format!("Bearer {}", app.project.key))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200);
    assert_eq!(body["project"]["id"], app.project.id);
}

#[tokio::test]
async fn project_endpoint_returns_the_callers_project() {
    let app = TestApp::spawn().await;
    let (status, body) = json(app.get("/api/v1/project").await).await;
    assert_eq!(status, 200);
    let p = &body["project"];
    assert_eq!(p["id"], app.project.id);
    assert_eq!(p["name"], "Test Project");
    assert_eq!(p["plan"], "professional");
    assert_eq!(p["room_prefix"], app.project.room_prefix);
    assert_eq!(p["rate_limit_per_minute"], 300);
    assert!(p["created_at"].as_str().unwrap().ends_with('Z'));
    // Another project's key sees its own project only.
    let other = app
        .create_project(voxplane::limits::plans::Plan::Free)
        .await;
    let (_, body) = json(
        app.req_as(&other.key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["project"]["id"], other.id);
    assert_eq!(body["project"]["plan"], "free");
    assert_ne!(body["project"]["room_prefix"], app.project.room_prefix);
}

#[tokio::test]
async fn keys_are_stored_only_as_sha256_hashes() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn().await;
    let rows: Vec<(Vec<u8>, String, String)> = ak::table
        .filter(ak::id.eq(app.project.key_id))
        .select((ak::key_hash, ak::key_prefix, ak::key_last4))
        .load(&mut conn)
        .await
        .unwrap();
    let (hash, prefix, last4) = &rows[0];
    assert_eq!(
        hash.as_slice(),
        Sha256::digest(app.project.key.as_bytes()).as_slice()
    );
    assert_eq!(prefix, &app.project.key[..7]);
    assert_eq!(last4, &app.project.key[39..]);
    // Nothing in the database holds the key itself.
    let dump: Vec<String> = diesel::sql_query("SELECT row_to_json(k)::text AS j FROM api_keys k")
        .load::<Json>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.j)
        .collect();
    assert!(
        dump.iter().all(|row| !row.contains(&app.project.key[3..])),
        "{dump:?}"
    );
}

#[derive(QueryableByName)]
struct Json {
    #[diesel(sql_type = diesel::sql_types::Text)]
    j: String,
}

#[tokio::test]
async fn revocation_applies_at_once_on_the_revoking_node_and_within_the_ttl_elsewhere() {
    let app = TestApp::spawn().await;
    let other_node = app.another_node(|s| s.key_cache_ttl_ms = 300).await;
    assert_eq!(app.get("/api/v1/project").await.status(), 200);
    assert_eq!(other_node.get("/api/v1/project").await.status(), 200);

    let mut conn = app.conn().await;
    assert!(
        api_keys::revoke(&mut conn, app.project.id, app.project.key_id)
            .await
            .unwrap()
    );
    app.state.keys.evict_key(app.project.key_id);
    let body = expect_error(app.get("/api/v1/project").await, 401, "UNAUTHORIZED").await;
    assert_eq!(body["error"], "Invalid or deactivated API key");

    tokio::time::sleep(Duration::from_millis(400)).await;
    expect_error(other_node.get("/api/v1/project").await, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn cached_keys_do_not_touch_postgres_per_request_but_record_last_use() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/api/v1/project").await.status(), 200);
    let mut conn = app.conn().await;
    let used: Option<chrono::DateTime<chrono::Utc>> = ak::table
        .find(app.project.key_id)
        .select(ak::last_used_at)
        .first(&mut conn)
        .await
        .unwrap();
    assert!(
        used.is_some(),
        "last_used_at is recorded when the key is looked up"
    );
    // Revoke behind the cache's back: within the TTL the cached decision stands,
    // which shows the request path did not ask Postgres.
    diesel::update(ak::table.find(app.project.key_id))
        .set(ak::revoked_at.eq(chrono::Utc::now()))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(app.get("/api/v1/project").await.status(), 200);
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let app = TestApp::spawn().await;
    let mut conn = app.conn().await;
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let (_, key) = api_keys::create(&mut conn, app.project.id, "old", Some(past))
        .await
        .unwrap();
    expect_error(
        app.req_as(&key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let (_, key) = api_keys::create(&mut conn, app.project.id, "new", Some(future))
        .await
        .unwrap();
    assert_eq!(
        app.req_as(&key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn an_expired_entry_is_checked_again_and_last_use_is_written_once_a_minute() {
    let app = TestApp::spawn_with(|s| s.key_cache_ttl_ms = 50).await;
    assert_eq!(app.get("/api/v1/project").await.status(), 200);
    let mut conn = app.conn().await;
    let last_used = async |conn: &mut diesel_async::AsyncPgConnection| {
        ak::table
            .find(app.project.key_id)
            .select(ak::last_used_at)
            .first::<Option<chrono::DateTime<chrono::Utc>>>(conn)
            .await
            .unwrap()
            .unwrap()
    };
    let set_last_used = async |conn: &mut diesel_async::AsyncPgConnection, ago: i64| {
        diesel::update(ak::table.find(app.project.key_id))
            .set(ak::last_used_at.eq(chrono::Utc::now() - chrono::Duration::seconds(ago)))
            .execute(conn)
            .await
            .unwrap();
    };

    // Used 30 s ago: entries expiring and checked again (many requests at
    // once, all answered) leave last_used_at alone.
    set_last_used(&mut conn, 30).await;
    let before = last_used(&mut conn).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(80)).await;
        let answers =
            futures_util::future::join_all((0..20).map(|_| app.get("/api/v1/project"))).await;
        assert!(answers.iter().all(|r| r.status() == 200));
    }
    assert_eq!(
        last_used(&mut conn).await,
        before,
        "written at most once a minute"
    );

    // Used 2 minutes ago: the next check writes it.
    set_last_used(&mut conn, 120).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(app.get("/api/v1/project").await.status(), 200);
    let after = last_used(&mut conn).await;
    assert!(
        chrono::Utc::now() - after < chrono::Duration::seconds(10),
        "{after}"
    );

    // Revoked behind the cache's back: once the entry has expired, the
    // request that checks it again gets the new answer (stale entries only
    // serve the requests that arrive while a check runs).
    diesel::update(ak::table.find(app.project.key_id))
        .set(ak::revoked_at.eq(chrono::Utc::now()))
        .execute(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    expect_error(app.get("/api/v1/project").await, 401, "UNAUTHORIZED").await;
}
