//! `/ws/chat`: delivery across nodes, typing, presence, chat list updates,
//! catching up, limits and authentication.

use super::*;

/// Exactly `n` frames of a type (others skipped).
async fn take(ws: &mut Ws, kind: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(next_of(ws, kind).await);
    }
    out
}

/// No frame of these types within `wait`.
async fn quiet(ws: &mut Ws, kinds: &[&str], wait: Duration) {
    let got = collect(ws, kinds, wait).await;
    assert!(got.is_empty(), "unexpected frames: {got:?}");
}

fn contents(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["message"]["content"].as_str().unwrap().to_owned())
        .collect()
}

fn ids(frames: &[Value]) -> Vec<i64> {
    frames
        .iter()
        .map(|f| f["message"]["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn messages_reach_members_on_another_node_in_order_and_once() {
    let t = team(3).await;
    let node2 = t.app.another_node(chat_settings).await;
    let group = t.group(0, "Floor", &[1, 2]).await;
    let mut a = chat_socket(&t.app, &t.people[0], &[group]).await;
    let mut b = chat_socket(&node2, &t.people[1], &[group]).await;
    let mut c = chat_socket(&t.app, &t.people[2], &[group]).await;
    for i in 0..20 {
        send(
            &mut a,
            json!({"type": "send_message", "chat_id": group, "content": format!("ws {i}"), "client_id": format!("c{i}")}),
        )
        .await;
    }
    let acks = take(&mut a, "message_ack", 20).await;
    let acked: Vec<String> = acks
        .iter()
        .map(|f| f["client_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(acked, (0..20).map(|i| format!("c{i}")).collect::<Vec<_>>());
    assert!(ids(&acks).windows(2).all(|w| w[0] < w[1]));
    assert_eq!(acks[0]["message"]["client_id"], "c0");
    // Over HTTP on the second node, by a member whose socket is there.
    for i in 0..5 {
        ok(
            &node2,
            &t.people[1],
            t.project,
            "send-message",
            json!({"chat_id": group, "content": format!("http {i}")}),
            201,
        )
        .await;
    }
    for (who, ws) in [("b on node 2", &mut b), ("c on node 1", &mut c)] {
        let got = take(ws, "new_message", 25).await;
        let got_ids = ids(&got);
        assert!(
            got_ids.windows(2).all(|w| w[0] < w[1]),
            "{who}: in the chat's order, once: {got_ids:?}"
        );
        let from_a: Vec<String> = contents(&got)
            .into_iter()
            .filter(|c| c.starts_with("ws "))
            .collect();
        assert_eq!(
            from_a,
            (0..20).map(|i| format!("ws {i}")).collect::<Vec<_>>(),
            "{who}"
        );
        quiet(ws, &["new_message"], Duration::from_millis(500)).await;
    }
    // The sender's socket had acks for its own: only the others' arrive.
    let got = take(&mut a, "new_message", 5).await;
    assert_eq!(
        contents(&got),
        (0..5).map(|i| format!("http {i}")).collect::<Vec<_>>()
    );
    assert_eq!(got[0]["message"]["sender_account_id"], t.people[1].id);
    quiet(&mut a, &["new_message"], Duration::from_millis(300)).await;
}

#[tokio::test]
async fn typing_and_presence_reach_the_right_members_only() {
    let t = team(3).await;
    let (a, b, c) = (&t.people[0], &t.people[1], &t.people[2]);
    let direct = ok(
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
    let bc = t.group(1, "B and C", &[2]).await;
    let mut bs = chat_socket(&t.app, b, &[direct, bc]).await;
    let mut cs = chat_socket(&t.app, c, &[bc]).await;
    // c and b are contacts: b sees c come online.
    let p = next_of(&mut bs, "presence").await;
    assert_eq!(
        p,
        json!({"type": "presence", "account_id": c.id, "status": "online"})
    );
    // a connects: b sees it, c (no chat with a) does not; a is told b is online.
    let mut asock = socket_at(&t.app, a, "/ws/chat").await;
    let snapshot = next_of(&mut asock, "presence").await;
    assert_eq!(snapshot["account_id"], b.id);
    assert_eq!(snapshot["status"], "online");
    let p = next_of(&mut bs, "presence").await;
    assert_eq!(
        p,
        json!({"type": "presence", "account_id": a.id, "status": "online"})
    );
    // Typing needs the chat joined.
    send(
        &mut asock,
        json!({"type": "typing", "chat_id": direct, "state": "start"}),
    )
    .await;
    let e = next_of(&mut asock, "error").await;
    assert_eq!(e["code"], "NOT_FOUND");
    send(&mut asock, json!({"type": "join_chat", "chat_id": direct})).await;
    next_of(&mut asock, "joined").await;
    send(
        &mut asock,
        json!({"type": "typing", "chat_id": direct, "state": "start"}),
    )
    .await;
    // A second start within the interval is dropped; stop passes.
    send(
        &mut asock,
        json!({"type": "typing", "chat_id": direct, "state": "start"}),
    )
    .await;
    send(
        &mut asock,
        json!({"type": "typing", "chat_id": direct, "state": "stop"}),
    )
    .await;
    let typing = take(&mut bs, "typing", 2).await;
    assert_eq!(
        typing[0],
        json!({"type": "typing", "chat_id": direct, "account_id": a.id, "state": "start"})
    );
    assert_eq!(typing[1]["state"], "stop");
    quiet(&mut bs, &["typing"], Duration::from_millis(300)).await;
    quiet(&mut asock, &["typing"], Duration::from_millis(10)).await;
    // a leaves: offline for b after the grace; a quick reconnect changes nothing.
    drop(asock);
    let p = next_of(&mut bs, "presence").await;
    assert_eq!(
        p,
        json!({"type": "presence", "account_id": a.id, "status": "offline"})
    );
    let again = socket_at(&t.app, a, "/ws/chat").await;
    let p = next_of(&mut bs, "presence").await;
    assert_eq!(p["status"], "online");
    let second = socket_at(&t.app, a, "/ws/chat").await;
    drop(again);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = socket_at(&t.app, a, "/ws/chat").await;
    drop(second);
    quiet(&mut bs, &["presence"], Duration::from_millis(800)).await;
    drop(third);
    next_of(&mut bs, "presence").await;
    // c heard nothing of a, ever.
    let heard = collect(&mut cs, &["presence", "typing"], Duration::from_millis(200)).await;
    assert!(heard.iter().all(|f| f["account_id"] != a.id), "{heard:?}");
    // Presence shows in get-members too.
    let members = t.call(2, "get-members", json!({"chat_id": bc})).await;
    let online: Vec<bool> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["online"].as_bool().unwrap())
        .collect();
    assert_eq!(online, vec![true, true]);
}

#[tokio::test]
async fn a_dead_nodes_accounts_go_offline() {
    // Node 2 never reports its own accounts offline (a grace longer than
    // the test): only the other node's sweep can.
    let fast = |s: &mut Settings| {
        chat_settings(s);
        s.chat.node_heartbeat_ms = 200;
        s.chat.node_timeout_ms = 1000;
        s.chat.presence_grace_ms = 60_000;
    };
    let t = team_with(2, |s| {
        s.chat.node_heartbeat_ms = 200;
        s.chat.node_timeout_ms = 1000;
    })
    .await;
    let (a, b) = (&t.people[0], &t.people[1]);
    ok(
        &t.app,
        a,
        t.project,
        "create-chat",
        json!({"account_id": b.id}),
        201,
    )
    .await;
    let mut node2 = t.app.another_node(fast).await;
    let mut asock = socket_at(&t.app, a, "/ws/chat").await;
    let _bsock = socket_at(&node2, b, "/ws/chat").await;
    let p = next_of(&mut asock, "presence").await;
    assert_eq!(
        p,
        json!({"type": "presence", "account_id": b.id, "status": "online"})
    );
    // Node 2 dies: nothing of it runs any more, its row stops beating.
    node2.stop();
    let started = std::time::Instant::now();
    let p = next_of(&mut asock, "presence").await;
    assert_eq!(
        p,
        json!({"type": "presence", "account_id": b.id, "status": "offline"})
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_reconnecting_client_catches_up_after_its_last_id() {
    let t = team(2).await;
    let chat = t.group(0, "Desk", &[1]).await;
    let mut b = chat_socket(&t.app, &t.people[1], &[chat]).await;
    t.say(0, chat, "one").await;
    let last = next_of(&mut b, "new_message").await["message"]["id"]
        .as_i64()
        .unwrap();
    drop(b);
    for text in ["two", "three", "four"] {
        t.say(0, chat, text).await;
    }
    let mut b = chat_socket(&t.app, &t.people[1], &[chat]).await;
    let missed = t
        .call(1, "messages", json!({"chat_id": chat, "after": last}))
        .await;
    let got: Vec<&str> = missed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["four", "three", "two"]);
    assert_eq!(missed["has_more"], false);
    t.say(0, chat, "five").await;
    // Messages committed before the socket joined may still be on their way
    // to it (the dispatcher's round runs after the join): a client skips the
    // ids it caught up with. Nothing older than the catch-up comes.
    let caught_up = missed["messages"][0]["id"].as_i64().unwrap();
    loop {
        let m = next_of(&mut b, "new_message").await;
        let id = m["message"]["id"].as_i64().unwrap();
        if m["message"]["content"] == "five" {
            assert!(id > caught_up);
            break;
        }
        assert!(id > last && id <= caught_up, "{m}");
    }
}

#[tokio::test]
async fn chat_list_updates_follow_membership() {
    let t = team(3).await;
    let (b, c) = (&t.people[1], &t.people[2]);
    let mut bs = chat_socket(&t.app, b, &[]).await;
    let mut cs = chat_socket(&t.app, c, &[]).await;
    let group = t.group(0, "Ops", &[1]).await;
    let u = next_of(&mut bs, "chat_list_update").await;
    assert_eq!(u["change"], "added");
    assert_eq!(u["chat"]["id"], group);
    assert_eq!(u["chat"]["name"], "Ops");
    assert_eq!(u["chat"]["archived"], false);
    assert_eq!(u["chat"]["members"].as_array().unwrap().len(), 2);
    // Not joined: no new_message for this socket.
    t.say(0, group, "hello").await;
    quiet(&mut bs, &["new_message"], Duration::from_millis(300)).await;
    send(&mut bs, json!({"type": "join_chat", "chat_id": group})).await;
    next_of(&mut bs, "joined").await;
    t.call(
        0,
        "add-members",
        json!({"chat_id": group, "account_ids": [c.id]}),
    )
    .await;
    assert_eq!(
        next_of(&mut cs, "chat_list_update").await["change"],
        "added"
    );
    let u = next_of(&mut bs, "chat_list_update").await;
    assert_eq!(u["change"], "members_changed");
    assert_eq!(u["chat"]["unread_count"], 1);
    t.call(
        0,
        "rename-group",
        json!({"chat_id": group, "name": "Ops 2"}),
    )
    .await;
    let u = next_of(&mut cs, "chat_list_update").await;
    assert_eq!(
        (u["change"].as_str(), u["chat"]["name"].as_str()),
        (Some("renamed"), Some("Ops 2"))
    );
    t.call(
        0,
        "remove-members",
        json!({"chat_id": group, "account_ids": [b.id]}),
    )
    .await;
    let u = next_of(&mut bs, "chat_list_update").await;
    assert_eq!(u["change"], "renamed");
    let u = next_of(&mut bs, "chat_list_update").await;
    assert_eq!(u["change"], "removed");
    // Removed: the socket hears nothing more of the chat.
    t.say(0, group, "after b left").await;
    quiet(&mut bs, &["new_message"], Duration::from_millis(400)).await;
}

#[tokio::test]
async fn unauthenticated_sockets_are_closed_with_4001() {
    let t = team(1).await;
    let wait = Duration::from_secs(3);
    let mut ws = open(&t.app, "/ws/chat").await;
    send(
        &mut ws,
        json!({"type": "authenticate", "token": "not-a-token"}),
    )
    .await;
    assert_eq!(closed_with(&mut ws, wait).await, Some(4001));
    let mut ws = open(&t.app, "/ws/chat").await;
    send(&mut ws, json!({"type": "join_chat", "chat_id": 1})).await;
    assert_eq!(closed_with(&mut ws, wait).await, Some(4001));
    let mut ws = open(&t.app, "/ws/chat").await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(closed_with(&mut ws, wait).await, Some(4001));
    // A well-formed access token signed with another secret.
    let forged = voxplane::auth::tokens::sign_access(
        b"another-secret-of-at-least-32-characters",
        t.people[0].id,
        1,
        600,
    );
    let mut ws = open(&t.app, "/ws/call/1").await;
    send(&mut ws, json!({"type": "authenticate", "token": forged})).await;
    assert_eq!(closed_with(&mut ws, wait).await, Some(4001));
    // Silence: closed within 5 s.
    let started = std::time::Instant::now();
    let mut ws = open(&t.app, "/ws/chat").await;
    assert_eq!(
        closed_with(&mut ws, Duration::from_secs(7)).await,
        Some(4001)
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(4500) && took <= Duration::from_millis(6000),
        "{took:?}"
    );
}

#[tokio::test]
async fn socket_errors_name_the_problem_and_keep_the_socket() {
    let t = team_with(2, |s| {
        s.chat.max_message_bytes = 100;
        s.chat.messages_per_second = 1;
        s.chat.message_burst = 2;
        s.chat.max_chats_per_socket = 1;
    })
    .await;
    let chat = t.group(0, "Limits", &[1]).await;
    let other = t.group(1, "Other", &[]).await;
    let mut ws = chat_socket(&t.app, &t.people[0], &[chat]).await;
    let err = |frame: &Value| (frame["code"].as_str().unwrap().to_owned(), frame.clone());
    send(&mut ws, json!({"type": "join_chat", "chat_id": 999_999})).await;
    let (code, f) = err(&next_of(&mut ws, "error").await);
    assert_eq!(
        (code.as_str(), f["chat_id"].as_i64()),
        ("NOT_FOUND", Some(999_999))
    );
    send(&mut ws, json!({"type": "join_chat", "chat_id": other})).await;
    assert_eq!(
        err(&next_of(&mut ws, "error").await).0,
        "NOT_FOUND",
        "not a member"
    );
    let mine = t.group(0, "Second", &[]).await;
    send(&mut ws, json!({"type": "join_chat", "chat_id": mine})).await;
    let (code, f) = err(&next_of(&mut ws, "error").await);
    assert_eq!(
        (code.as_str(), &f["details"]["limit"]),
        ("INVALID_REQUEST", &json!(1))
    );
    send(&mut ws, json!({"type": "send_message", "chat_id": chat, "content": "x".repeat(101), "client_id": "big"})).await;
    let (code, f) = err(&next_of(&mut ws, "error").await);
    assert_eq!(code, "INVALID_REQUEST");
    assert_eq!(f["client_id"], "big");
    assert_eq!(f["details"]["limit_bytes"], 100);
    send(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(err(&next_of(&mut ws, "error").await).0, "INVALID_REQUEST");
    send(
        &mut ws,
        json!({"type": "send_message", "chat_id": chat, "content": "a\u{0}"}),
    )
    .await;
    assert_eq!(err(&next_of(&mut ws, "error").await).0, "INVALID_REQUEST");
    // Flooding: the burst passes, then RATE_LIMITED frames.
    for i in 0..3 {
        send(&mut ws, json!({"type": "send_message", "chat_id": chat, "content": "m", "client_id": format!("f{i}")})).await;
    }
    take(&mut ws, "message_ack", 2).await;
    let (code, f) = err(&next_of(&mut ws, "error").await);
    assert_eq!(
        (code.as_str(), f["client_id"].as_str()),
        ("RATE_LIMITED", Some("f2"))
    );
    assert!(f["retry_after"].as_u64().unwrap() >= 1);
    // Still open: once the rate allows, it sends.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(
        &mut ws,
        json!({"type": "send_message", "chat_id": chat, "content": "later", "client_id": "f3"}),
    )
    .await;
    assert_eq!(next_of(&mut ws, "message_ack").await["client_id"], "f3");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(
        &mut ws,
        json!({"type": "send_message", "chat_id": other, "content": "hi", "client_id": "nope"}),
    )
    .await;
    let (code, f) = err(&next_of(&mut ws, "error").await);
    assert_eq!(
        (code.as_str(), f["client_id"].as_str()),
        ("NOT_FOUND", Some("nope"))
    );
}

/// A socket whose client reads nothing and holds little in its buffer.
async fn not_reading(t: &Team, s: &Session, chat: i64) -> Ws {
    let addr: std::net::SocketAddr = t.app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!("{}/ws/chat", t.app.base.replace("http://", "ws://"));
    let mut ws =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrade")
            .0;
    send(&mut ws, json!({"type": "authenticate", "token": s.access})).await;
    next_of(&mut ws, "authenticated").await;
    send(&mut ws, json!({"type": "join_chat", "chat_id": chat})).await;
    next_of(&mut ws, "joined").await;
    ws
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_4008_without_slowing_others() {
    use diesel_async::RunQueryDsl;
    let t = team_with(2, |s| s.chat.socket_buffer = 16).await;
    let flood = t.group(0, "Flood", &[1]).await;
    let calm = t.group(0, "Calm", &[]).await;
    let mut slow = not_reading(&t, &t.people[1], flood).await;
    let mut fast = chat_socket(&t.app, &t.people[0], &[calm]).await;
    // ~9 MB of messages for the slow socket, straight into the outbox.
    let mut conn = t.app.conn().await;
    diesel::sql_query(format!(
        "INSERT INTO events (public_id, project_id, event_type, data)
         SELECT 'evt_' || md5(random()::text) || g, {}, 'chat.message',
                jsonb_build_object('chat_id', {flood}, 'recipients', jsonb_build_array({}),
                                   'message', jsonb_build_object('id', g, 'content', repeat('x', 300)))
         FROM generate_series(1, 30000) g",
        t.project, t.people[1].id
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    t.say(0, calm, "still here").await;
    let m = next_of(&mut fast, "new_message").await;
    assert_eq!(m["message"]["content"], "still here");
    assert_eq!(
        closed_with(&mut slow, Duration::from_secs(30)).await,
        Some(4008)
    );
}
