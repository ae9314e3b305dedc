//! Who may chat: members of the project (viewers too), not other
//! projects' accounts, not API keys; leaving the project leaves its chats;
//! chat events stay off the webhooks and are purged when old.

use super::*;
use crate::common::expect_error;

#[tokio::test]
async fn viewers_chat_too() {
    let t = team(1).await;
    let viewer = signup(&t.app, &t.smtp, "viewer@example.com").await;
    add_member(&t.app, &t.smtp, &t.people[0], t.project, &viewer, "viewer").await;
    let chat = ok(
        &t.app,
        &viewer,
        t.project,
        "create-chat",
        json!({"account_id": t.people[0].id}),
        201,
    )
    .await;
    let chat = chat["chat"]["id"].as_i64().unwrap();
    let sent = ok(
        &t.app,
        &viewer,
        t.project,
        "send-message",
        json!({"chat_id": chat, "content": "read-only, but talking"}),
        201,
    )
    .await;
    assert_eq!(sent["message"]["sender_account_id"], viewer.id);
    // The role still rules the project's resources.
    let res = t
        .app
        .anon(Method::POST, "/api/v1/agents")
        .bearer_auth(&viewer.access)
        .header("X-Project-Id", t.project)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "FORBIDDEN").await;
}

#[tokio::test]
async fn chat_events_are_not_webhook_deliveries() {
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Text};
    use diesel_async::RunQueryDsl;
    let t = team(2).await;
    // An endpoint of the team's project for every event type.
    let (status, body) = json(
        t.app
            .anon(
                Method::POST,
                &format!("/api/v1/projects/{}/keys", t.project),
            )
            .bearer_auth(&t.people[0].access)
            .json(&json!({"name": "hooks"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let api_key = body["key"]["key"].as_str().unwrap().to_owned();
    let (status, body) = json(
        t.app
            .req_as(&api_key, Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": "http://127.0.0.1:9/hook"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let group = t.group(0, "Hooks", &[1]).await;
    t.say(0, group, "not for webhooks").await;
    let res = t
        .app
        .req_as(&api_key, Method::POST, "/api/v1/sessions")
        .json(&json!({"room_name": "hooked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    #[derive(QueryableByName, Debug)]
    struct Row {
        #[diesel(sql_type = Text)]
        event_type: String,
        #[diesel(sql_type = BigInt)]
        deliveries: i64,
    }
    let mut conn = t.app.conn().await;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT e.event_type, count(d.id) AS deliveries FROM events e
         LEFT JOIN webhook_deliveries d ON d.event_id = e.id
         WHERE e.project_id = $1 GROUP BY e.event_type ORDER BY e.event_type",
    )
    .bind::<BigInt, _>(t.project)
    .load(&mut conn)
    .await
    .unwrap();
    let of = |kind: &str| {
        rows.iter()
            .find(|r| r.event_type == kind)
            .map(|r| r.deliveries)
    };
    assert_eq!(of("session.started"), Some(1), "{rows:?}");
    assert_eq!(of("chat.message"), Some(0), "{rows:?}");
    assert_eq!(of("chat.chat"), Some(0), "{rows:?}");
}

#[tokio::test]
async fn other_projects_and_api_keys_cannot_use_a_projects_chats() {
    let t = team(2).await;
    let chat = t.group(0, "Inner circle", &[1]).await;
    t.say(0, chat, "secret plans").await;
    // An account of another project.
    let stranger = signup(&t.app, &t.smtp, "stranger@example.com").await;
    let theirs = create_project(&t.app, &stranger, "Elsewhere").await;
    for (route, body) in [
        ("messages", json!({"chat_id": chat})),
        ("get-members", json!({"chat_id": chat})),
        ("archive-chat", json!({"chat_id": chat})),
        ("send-message", json!({"chat_id": chat, "content": "hi"})),
        ("start-call", json!({"chat_id": chat})),
    ] {
        let res = post(&t.app, &stranger, theirs, route, body).await;
        expect_error(res, 404, "NOT_FOUND").await;
    }
    let res = post(&t.app, &stranger, t.project, "fetch-chats", json!({})).await;
    expect_error(res, 404, "NOT_FOUND").await;
    // Not a member of this project: no direct chat with them, no group.
    let res = post(
        &t.app,
        &t.people[0],
        t.project,
        "create-chat",
        json!({"account_id": stranger.id}),
    )
    .await;
    expect_error(res, 404, "NOT_FOUND").await;
    let res = post(
        &t.app,
        &t.people[0],
        t.project,
        "create-group",
        json!({"name": "g", "account_ids": [stranger.id]}),
    )
    .await;
    let body = expect_error(res, 400, "INVALID_REQUEST").await;
    assert_eq!(body["details"]["unknown"], json!([stranger.id]));
    // Nor over a socket.
    let mut ws = socket_at(&t.app, &stranger, "/ws/chat").await;
    send(&mut ws, json!({"type": "join_chat", "chat_id": chat})).await;
    let e = next_of(&mut ws, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["chat_id"].as_i64()),
        (Some("NOT_FOUND"), Some(chat))
    );
    send(
        &mut ws,
        json!({"type": "send_message", "chat_id": chat, "content": "let me in", "client_id": "x"}),
    )
    .await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "NOT_FOUND");
    let found = ok(
        &t.app,
        &stranger,
        theirs,
        "search",
        json!({"query": "secret"}),
        200,
    )
    .await;
    assert_eq!(found["messages"], json!([]));
    // An API key is not a chat user.
    let key = t
        .app
        .create_project(voxplane::limits::plans::Plan::Professional)
        .await;
    let res = t
        .app
        .req_as(&key.key, Method::POST, "/api/v1/chat/fetch-chats")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 403, "FORBIDDEN").await;
    assert!(
        body["error"].as_str().unwrap().contains("API keys"),
        "{body}"
    );
    // No credentials at all.
    let res = t
        .app
        .anon(Method::POST, "/api/v1/chat/fetch-chats")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn a_member_who_leaves_the_project_leaves_its_chats() {
    let t = team(2).await;
    let chat = t.group(0, "Team", &[1]).await;
    let b = &t.people[1];
    let res = t
        .app
        .anon(
            Method::DELETE,
            &format!("/api/v1/projects/{}/members/{}", t.project, b.id),
        )
        .bearer_auth(&b.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let members = t.call(0, "get-members", json!({"chat_id": chat})).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn old_chat_events_are_purged_and_nothing_else() {
    use diesel::sql_types::{BigInt, Text};
    use diesel_async::RunQueryDsl;
    let t = team(1).await;
    let mut conn = t.app.conn().await;
    diesel::sql_query(
        "INSERT INTO events (public_id, project_id, event_type, data, created_at) VALUES
           ('evt_old_chat', $1, 'chat.message', '{}', now() - interval '1 hour'),
           ('evt_new_chat', $1, 'chat.message', '{}', now()),
           ('evt_old_room', $1, 'room.started', '{}', now() - interval '1 hour')",
    )
    .bind::<BigInt, _>(t.project)
    .execute(&mut conn)
    .await
    .unwrap();
    let deleted = voxplane::chat::presence::purge_events(&t.app.state)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    #[derive(diesel::QueryableByName)]
    struct Left {
        #[diesel(sql_type = Text)]
        public_id: String,
    }
    let left: Vec<String> = diesel::sql_query(
        "SELECT public_id FROM events WHERE public_id LIKE 'evt_%_%' AND project_id = $1 ORDER BY public_id",
    )
    .bind::<BigInt, _>(t.project)
    .load::<Left>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|l| l.public_id)
    .filter(|p| p == "evt_new_chat" || p == "evt_old_room" || p == "evt_old_chat")
    .collect();
    assert_eq!(left, ["evt_new_chat", "evt_old_room"]);
}
