//! Chats, members and history over HTTP.

use super::*;
use crate::common::expect_error;

#[tokio::test]
async fn direct_chats_are_created_once_and_groups_have_their_creator_as_admin() {
    let t = team(3).await;
    let (a, b, c) = (&t.people[0], &t.people[1], &t.people[2]);
    let first = ok(
        &t.app,
        a,
        t.project,
        "create-chat",
        json!({"account_id": b.id}),
        201,
    )
    .await;
    let chat = &first["chat"];
    assert_eq!(chat["kind"], "direct");
    assert_eq!(chat["name"], Value::Null);
    assert_eq!(chat["unread_count"], 0);
    assert_eq!(chat["archived"], false);
    assert_eq!(chat["last_message"], Value::Null);
    let ids: Vec<i64> = chat["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["account_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a.id) && ids.contains(&b.id));
    // Again, from either side: the same chat (200).
    let again = ok(
        &t.app,
        a,
        t.project,
        "create-chat",
        json!({"account_id": b.id}),
        200,
    )
    .await;
    assert_eq!(again["chat"]["id"], chat["id"]);
    let theirs = ok(
        &t.app,
        b,
        t.project,
        "create-chat",
        json!({"account_id": a.id}),
        200,
    )
    .await;
    assert_eq!(theirs["chat"]["id"], chat["id"]);

    let group = t.group(0, "Night shift", &[1, 2]).await;
    let members = t.call(2, "get-members", json!({"chat_id": group})).await;
    assert_eq!(members["chat_id"], group);
    let roles: Vec<(i64, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m["name"].is_string() && m["email"].is_string(), "{m}");
            (
                m["account_id"].as_i64().unwrap(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            (a.id, "admin".to_owned()),
            (b.id, "member".to_owned()),
            (c.id, "member".to_owned())
        ]
    );
    // c sees the group only; a sees both chats, the group (newer) first.
    let cs = t.call(2, "fetch-chats", json!({})).await;
    let c_ids: Vec<i64> = cs["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(c_ids, vec![group]);
    let r = t
        .app
        .anon(Method::POST, "/api/v1/chat/fetch-chats")
        .bearer_auth(&a.access)
        .header("X-Project-Id", t.project)
        .send()
        .await
        .unwrap();
    let (status, all) = json(r).await;
    assert_eq!(status, 200, "fetch-chats without a body: {all}");
    let a_ids: Vec<i64> = all["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(a_ids, vec![group, chat["id"].as_i64().unwrap()]);
    assert_eq!(all["chats"][0]["name"], "Night shift");
}

#[tokio::test]
async fn history_pages_are_exact_and_unread_counts_follow_the_read_pointer() {
    let t = team(2).await;
    let chat = t.group(0, "Pager", &[1]).await;
    let mut ids = Vec::new();
    for i in 1..=25 {
        ids.push(
            t.say(0, chat, &format!("message {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    let page = |body: &Value| -> Vec<i64> {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect()
    };
    let rev =
        |from: usize, to: usize| -> Vec<i64> { ids[from..to].iter().rev().copied().collect() };
    // Newest first, 10 at a time, back to the start.
    let p1 = t
        .call(1, "messages", json!({"chat_id": chat, "limit": 10}))
        .await;
    assert_eq!(page(&p1), rev(15, 25));
    assert_eq!(p1["has_more"], true);
    assert_eq!(p1["messages"][0]["content"], "message 25");
    assert_eq!(p1["messages"][0]["seq"], 25);
    assert_eq!(p1["messages"][0]["kind"], "text");
    assert_eq!(p1["messages"][0]["sender_account_id"], t.people[0].id);
    let p2 = t
        .call(
            1,
            "messages",
            json!({"chat_id": chat, "limit": 10, "before": ids[15]}),
        )
        .await;
    assert_eq!(page(&p2), rev(5, 15));
    assert_eq!(p2["has_more"], true);
    let p3 = t
        .call(
            1,
            "messages",
            json!({"chat_id": chat, "limit": 10, "before": ids[5]}),
        )
        .await;
    assert_eq!(page(&p3), rev(0, 5));
    assert_eq!(p3["has_more"], false);
    // Catching up: the ones right after an id, newest first.
    let up = t
        .call(
            1,
            "messages",
            json!({"chat_id": chat, "limit": 10, "after": ids[4]}),
        )
        .await;
    assert_eq!(page(&up), rev(5, 15));
    assert_eq!(up["has_more"], true);
    let rest = t
        .call(
            1,
            "messages",
            json!({"chat_id": chat, "limit": 10, "after": ids[14]}),
        )
        .await;
    assert_eq!(page(&rest), rev(15, 25));
    assert_eq!(rest["has_more"], false);
    let between = t
        .call(
            1,
            "messages",
            json!({"chat_id": chat, "after": ids[2], "before": ids[6]}),
        )
        .await;
    assert_eq!(page(&between), rev(3, 6));

    // Unread: the reader has read nothing, the sender everything.
    let listed = t.call(1, "fetch-chats", json!({})).await;
    assert_eq!(listed["chats"][0]["unread_count"], 25);
    assert_eq!(listed["chats"][0]["last_message"]["id"], ids[24]);
    let mine = t.call(0, "fetch-chats", json!({})).await;
    assert_eq!(mine["chats"][0]["unread_count"], 0);
    let read = t
        .call(
            1,
            "mark-read",
            json!({"chat_id": chat, "message_id": ids[9]}),
        )
        .await;
    assert_eq!(
        read,
        json!({"chat_id": chat, "read_seq": 10, "unread_count": 15})
    );
    // The pointer never moves back.
    let read = t
        .call(
            1,
            "mark-read",
            json!({"chat_id": chat, "message_id": ids[2]}),
        )
        .await;
    assert_eq!(read["unread_count"], 15);
    let listed = t.call(1, "fetch-chats", json!({})).await;
    assert_eq!(listed["chats"][0]["unread_count"], 15);
    // Sending moves the sender's pointer to its message.
    t.say(1, chat, "all caught up").await;
    let listed = t.call(1, "fetch-chats", json!({})).await;
    assert_eq!(listed["chats"][0]["unread_count"], 0);
    let res = post(
        &t.app,
        &t.people[1],
        t.project,
        "mark-read",
        json!({"chat_id": chat, "message_id": 999_999}),
    )
    .await;
    expect_error(res, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn archiving_is_per_member() {
    let t = team(2).await;
    let (a, b) = (&t.people[0], &t.people[1]);
    let chat = ok(
        &t.app,
        a,
        t.project,
        "create-chat",
        json!({"account_id": b.id}),
        201,
    )
    .await["chat"]["id"]
        .as_i64()
        .unwrap();
    let archived = t.call(0, "archive-chat", json!({"chat_id": chat})).await;
    assert_eq!(archived["chat"]["archived"], true);
    let count = |v: &Value| v["chats"].as_array().unwrap().len();
    assert_eq!(count(&t.call(0, "fetch-chats", json!({})).await), 0);
    let arch = t.call(0, "fetch-archived", json!({})).await;
    assert_eq!(count(&arch), 1);
    assert_eq!(arch["chats"][0]["id"], chat);
    // The other member's view does not change.
    let theirs = t.call(1, "fetch-chats", json!({})).await;
    assert_eq!(count(&theirs), 1);
    assert_eq!(theirs["chats"][0]["archived"], false);
    assert_eq!(count(&t.call(1, "fetch-archived", json!({})).await), 0);
    let back = t.call(0, "unarchive-chat", json!({"chat_id": chat})).await;
    assert_eq!(back["chat"]["archived"], false);
    assert_eq!(count(&t.call(0, "fetch-chats", json!({})).await), 1);
    assert_eq!(count(&t.call(0, "fetch-archived", json!({})).await), 0);
}

#[tokio::test]
async fn group_admins_manage_members_and_members_may_leave() {
    let t = team(4).await;
    let group = t.group(0, "Leads", &[1]).await;
    let c = t.people[2].id;
    // A member is no admin.
    let res = post(
        &t.app,
        &t.people[1],
        t.project,
        "add-members",
        json!({"chat_id": group, "account_ids": [c]}),
    )
    .await;
    expect_error(res, 403, "FORBIDDEN").await;
    let added = t
        .call(
            0,
            "add-members",
            json!({"chat_id": group, "account_ids": [c, t.people[3].id]}),
        )
        .await;
    assert_eq!(added["chat"]["members"].as_array().unwrap().len(), 4);
    let renamed = t
        .call(
            0,
            "rename-group",
            json!({"chat_id": group, "name": "Leads 2"}),
        )
        .await;
    assert_eq!(renamed["chat"]["name"], "Leads 2");
    let res = post(
        &t.app,
        &t.people[1],
        t.project,
        "rename-group",
        json!({"chat_id": group, "name": "x"}),
    )
    .await;
    expect_error(res, 403, "FORBIDDEN").await;
    // Removing someone else needs an admin; leaving does not.
    let res = post(
        &t.app,
        &t.people[1],
        t.project,
        "remove-members",
        json!({"chat_id": group, "account_ids": [c]}),
    )
    .await;
    expect_error(res, 403, "FORBIDDEN").await;
    let left = t
        .call(
            1,
            "remove-members",
            json!({"chat_id": group, "account_ids": [t.people[1].id]}),
        )
        .await;
    assert_eq!(left, json!({"chat_id": group, "chat": null}));
    let res = post(
        &t.app,
        &t.people[1],
        t.project,
        "messages",
        json!({"chat_id": group}),
    )
    .await;
    expect_error(res, 404, "NOT_FOUND").await;
    let removed = t
        .call(
            0,
            "remove-members",
            json!({"chat_id": group, "account_ids": [c]}),
        )
        .await;
    assert_eq!(removed["chat"]["members"].as_array().unwrap().len(), 2);
    // The admin leaves: the longest-standing member becomes admin.
    t.call(
        0,
        "remove-members",
        json!({"chat_id": group, "account_ids": [t.people[0].id]}),
    )
    .await;
    let members = t.call(3, "get-members", json!({"chat_id": group})).await;
    assert_eq!(members["members"][0]["account_id"], t.people[3].id);
    assert_eq!(members["members"][0]["role"], "admin");
    // Direct chats keep their two members.
    let direct = ok(
        &t.app,
        &t.people[0],
        t.project,
        "create-chat",
        json!({"account_id": c}),
        201,
    )
    .await["chat"]["id"]
        .as_i64()
        .unwrap();
    let res = post(
        &t.app,
        &t.people[0],
        t.project,
        "add-members",
        json!({"chat_id": direct, "account_ids": [t.people[3].id]}),
    )
    .await;
    expect_error(res, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn bad_input_is_refused_in_the_envelope() {
    let t = team_with(2, |s| s.chat.max_message_bytes = 100).await;
    let chat = t.group(0, "Checks", &[1]).await;
    let a = &t.people[0];
    let cases = [
        ("messages", json!({"chat_id": 999_999}), 404, "NOT_FOUND"),
        (
            "send-message",
            json!({"chat_id": 999_999, "content": "x"}),
            404,
            "NOT_FOUND",
        ),
        (
            "send-message",
            json!({"chat_id": chat, "content": "x".repeat(101)}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "send-message",
            json!({"chat_id": chat, "content": "a\u{0}b"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "send-message",
            json!({"chat_id": chat, "content": "  "}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "send-message",
            json!({"chat_id": chat, "content": "x", "client_id": ""}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "send-message",
            json!({"chat_id": chat, "content": "x", "session_id": 424_242}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "send-message",
            json!({"chat_id": chat}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "messages",
            json!({"chat_id": chat, "limit": 0}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "messages",
            json!({"chat_id": chat, "limit": 101}),
            400,
            "INVALID_REQUEST",
        ),
        ("fetch-chats", json!({"limit": 0}), 400, "INVALID_REQUEST"),
        (
            "create-chat",
            json!({"account_id": a.id}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "create-group",
            json!({"name": "", "account_ids": []}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "create-group",
            json!({"name": "n\u{0}", "account_ids": []}),
            400,
            "INVALID_REQUEST",
        ),
        ("search", json!({"query": ""}), 400, "INVALID_REQUEST"),
        ("search", json!({"query": "a\u{0}"}), 400, "INVALID_REQUEST"),
        ("join-call", json!({}), 400, "INVALID_REQUEST"),
        (
            "get-members",
            json!({"chat_id": "12"}),
            400,
            "INVALID_REQUEST",
        ),
        (
            "get-members",
            json!({"chat_id": chat, "extra": 1}),
            400,
            "INVALID_REQUEST",
        ),
    ];
    for (route, body, status, code) in cases {
        let res = post(&t.app, a, t.project, route, body.clone()).await;
        let got = expect_error(res, status, code).await;
        if body["content"].as_str().is_some_and(|c| c.len() > 100) {
            assert_eq!(got["details"]["limit_bytes"], 100, "{got}");
        }
    }
    let res = t
        .app
        .anon(Method::POST, "/api/v1/chat/messages")
        .bearer_auth(&a.access)
        .header("X-Project-Id", t.project)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "INVALID_REQUEST").await;
    let res = t
        .app
        .anon(Method::GET, "/api/v1/chat/messages")
        .bearer_auth(&a.access)
        .header("X-Project-Id", t.project)
        .send()
        .await
        .unwrap();
    expect_error(res, 405, "METHOD_NOT_ALLOWED").await;
    // Exactly at the limit (multi-byte characters count as bytes) is fine.
    let m = t.say(0, chat, &"é".repeat(50)).await;
    assert_eq!(m["content"].as_str().unwrap().len(), 100);
}

#[tokio::test]
async fn client_ids_deduplicate_and_sessions_can_be_referenced() {
    let t = team(2).await;
    let chat = t.group(0, "Watch", &[1]).await;
    let a = &t.people[0];
    let body = json!({"chat_id": chat, "content": "once", "client_id": "c-1"});
    let first = ok(&t.app, a, t.project, "send-message", body.clone(), 201).await;
    let again = ok(&t.app, a, t.project, "send-message", body, 200).await;
    assert_eq!(first["message"]["id"], again["message"]["id"]);
    assert_eq!(first["message"]["client_id"], "c-1");
    let history = t.call(1, "messages", json!({"chat_id": chat})).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    // Another member may use the same client id.
    let theirs = json!({"chat_id": chat, "content": "twice", "client_id": "c-1"});
    ok(&t.app, &t.people[1], t.project, "send-message", theirs, 201).await;

    // A session of the project, referred to in a message.
    let key = create_key(&t).await;
    let (status, s) = json(
        t.app
            .req_as(&key, Method::POST, "/api/v1/sessions")
            .json(&json!({"room_name": "support-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let session = s["session"]["id"].as_i64().unwrap();
    let m = ok(
        &t.app,
        a,
        t.project,
        "send-message",
        json!({"chat_id": chat, "content": "", "session_id": session}),
        201,
    )
    .await;
    assert_eq!(m["message"]["kind"], "session_ref");
    assert_eq!(m["message"]["session_id"], session);
    // A session of another project is not found in this one.
    let other = t
        .app
        .create_project(voxplane::limits::plans::Plan::Professional)
        .await;
    let (_, s) = json(
        t.app
            .req_as(&other.key, Method::POST, "/api/v1/sessions")
            .json(&json!({"room_name": "theirs"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let foreign = s["session"]["id"].as_i64().unwrap();
    let res = post(
        &t.app,
        a,
        t.project,
        "send-message",
        json!({"chat_id": chat, "content": "look", "session_id": foreign}),
    )
    .await;
    let body = expect_error(res, 400, "INVALID_REQUEST").await;
    assert_eq!(body["details"]["field"], "session_id");
}

/// An API key of the team's project (created by its owner).
async fn create_key(t: &Team) -> String {
    let (status, body) = json(
        t.app
            .anon(
                Method::POST,
                &format!("/api/v1/projects/{}/keys", t.project),
            )
            .bearer_auth(&t.people[0].access)
            .json(&json!({"name": "ops"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["key"]["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn search_finds_words_in_the_callers_chats_only() {
    let t = team(3).await;
    let ab = t.group(0, "AB", &[1]).await;
    let ac = t.group(0, "AC", &[2]).await;
    t.say(0, ab, "the printer on floor two is jammed").await;
    t.say(0, ac, "the printer works again").await;
    t.say(1, ab, "lunch at noon?").await;
    let hits = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = t.call(0, "search", json!({"query": "printer"})).await;
    assert_eq!(
        hits(&all),
        vec![
            "the printer works again",
            "the printer on floor two is jammed"
        ]
    );
    let b = t.call(1, "search", json!({"query": "printer"})).await;
    assert_eq!(hits(&b), vec!["the printer on floor two is jammed"]);
    let phrase = t
        .call(0, "search", json!({"query": "\"floor two\" -lunch"}))
        .await;
    assert_eq!(hits(&phrase).len(), 1);
    let in_chat = t
        .call(0, "search", json!({"query": "printer", "chat_id": ac}))
        .await;
    assert_eq!(hits(&in_chat), vec!["the printer works again"]);
    let res = post(
        &t.app,
        &t.people[1],
        t.project,
        "search",
        json!({"query": "printer", "chat_id": ac}),
    )
    .await;
    expect_error(res, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn flooding_over_http_is_answered_429() {
    let t = team_with(2, |s| {
        s.chat.messages_per_second = 1;
        s.chat.message_burst = 3;
    })
    .await;
    let chat = t.group(0, "Flood", &[1]).await;
    for i in 0..3 {
        t.say(0, chat, &format!("m{i}")).await;
    }
    let res = post(
        &t.app,
        &t.people[0],
        t.project,
        "send-message",
        json!({"chat_id": chat, "content": "one too many"}),
    )
    .await;
    assert!(res.headers().get("retry-after").is_some());
    let (status, body) = json(res).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "RATE_LIMITED");
    assert!(body["retry_after"].as_u64().unwrap() >= 1);
    // Per account: the other member still sends.
    t.say(1, chat, "me too").await;
}
