//! `/ws/monitor` sockets: closed when their key is revoked or their project
//! deleted (on this node and on others), and bounded per socket.

use crate::accounts::{Session, bearer, create_project, signup, spawn_with};
use crate::common::{TestApp, json};
use crate::monitor::{Ws, connect, next, next_of};
use futures_util::SinkExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A project owned by a fresh account, and an API key of it: (owner,
/// project id, key id, key).
async fn keyed_project(
    app: &TestApp,
    smtp: &crate::common::smtp::SmtpServer,
) -> (Session, i64, i64, String) {
    let owner = signup(app, smtp, "owner@example.com").await;
    let project = create_project(app, &owner, "Watched").await;
    let (status, body) = json(
        bearer(
            app,
            &owner.access,
            Method::POST,
            &format!("/api/v1/projects/{project}/keys"),
        )
        .json(&json!({"name": "monitor"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let key = &body["key"];
    (
        owner,
        project,
        key["id"].as_i64().unwrap(),
        key["key"].as_str().unwrap().to_owned(),
    )
}

async fn watching(app: &TestApp, key: &str) -> Ws {
    let mut ws = connect(app, Some(key)).await;
    next_of(&mut ws, "connected").await;
    send(&mut ws, json!({"action": "subscribe", "channel": "rooms"})).await;
    next_of(&mut ws, "subscribed").await;
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Waits for the socket to close; its close code.
async fn closed(ws: &mut Ws) -> Option<u16> {
    loop {
        match next(ws).await {
            Ok(_) => continue,
            Err(code) => return code,
        }
    }
}

/// A dashboard DELETE by the owner; panics unless it succeeds.
async fn delete_as(app: &TestApp, owner: &Session, path: &str) {
    let res = bearer(app, &owner.access, Method::DELETE, path)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
}

#[tokio::test]
async fn revoking_a_key_closes_its_monitor_sockets_at_once() {
    let (app, smtp) = spawn_with(|_| {}).await;
    let (owner, project, key_id, key) = keyed_project(&app, &smtp).await;
    let mut ws = watching(&app, &key).await;
    delete_as(
        &app,
        &owner,
        &format!("/api/v1/projects/{project}/keys/{key_id}"),
    )
    .await;
    let t = Instant::now();
    assert_eq!(closed(&mut ws).await, Some(4001));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn deleting_a_project_closes_its_monitor_sockets() {
    let (app, smtp) = spawn_with(|_| {}).await;
    let (owner, project, _, key) = keyed_project(&app, &smtp).await;
    let mut ws = watching(&app, &key).await;
    delete_as(&app, &owner, &format!("/api/v1/projects/{project}")).await;
    assert_eq!(closed(&mut ws).await, Some(4001));
}

#[tokio::test]
async fn a_key_revoked_on_one_node_closes_its_sockets_on_another_within_the_cache_ttl() {
    let (app, smtp) = spawn_with(|s| s.key_cache_ttl_ms = 1000).await;
    let other = app.another_node(|s| s.key_cache_ttl_ms = 1000).await;
    let (owner, project, key_id, key) = keyed_project(&app, &smtp).await;
    let mut ws = watching(&other, &key).await;
    delete_as(
        &app,
        &owner,
        &format!("/api/v1/projects/{project}/keys/{key_id}"),
    )
    .await;
    let t = Instant::now();
    assert_eq!(closed(&mut ws).await, Some(4001));
    // The other node checks every half TTL.
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_socket_has_a_bounded_number_of_channels_and_message_rate() {
    let app = TestApp::spawn_with(|s| {
        s.monitor_max_channels = 5;
        s.monitor_messages_per_sec = 10;
    })
    .await;
    let mut ws = connect(&app, Some(&app.project.key)).await;
    next_of(&mut ws, "connected").await;
    for i in 0..5 {
        send(
            &mut ws,
            json!({"action": "subscribe", "channel": format!("room:r{i}")}),
        )
        .await;
        next_of(&mut ws, "subscribed").await;
    }
    send(
        &mut ws,
        json!({"action": "subscribe", "channel": "room:one-too-many"}),
    )
    .await;
    let err = next_of(&mut ws, "error").await;
    assert!(
        err["data"]["message"].as_str().unwrap().contains('5'),
        "{err}"
    );
    // A flood: the bucket holds two seconds' worth, the rest is refused.
    for _ in 0..200 {
        send(&mut ws, json!({"action": "ping"})).await;
    }
    let mut warned = false;
    for _ in 0..200 {
        let m = next(&mut ws).await.expect("open");
        if m["type"] == "error" && m["data"]["message"].as_str().unwrap().contains("slow down") {
            warned = true;
            break;
        }
    }
    assert!(warned);
}
