//! `/ws/monitor`: authentication, subscriptions, isolation, slow consumers,
//! and events committed by another process.

use crate::common::TestApp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use voxplane::embedded::livekit::SimParticipant;
use voxplane::limits::plans::Plan;

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(app: &TestApp, key: Option<&str>) -> Ws {
    let base = app.base.replace("http://", "ws://");
    let url = match key {
        Some(k) => format!("{base}/ws/monitor?api_key={k}"),
        None => format!("{base}/ws/monitor"),
    };
    tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade")
        .0
}

/// The next JSON text message (pings answered by the library), or the close code.
pub(crate) async fn next(ws: &mut Ws) -> Result<Value, Option<u16>> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s");
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// The next message of a given type, skipping others.
pub(crate) async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = next(ws)
            .await
            .unwrap_or_else(|code| panic!("closed ({code:?}) waiting for {kind}"));
        if m["type"] == kind {
            return m;
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

pub(crate) async fn subscribed(app: &TestApp, key: &str, channel: &str) -> Ws {
    let mut ws = connect(app, Some(key)).await;
    next_of(&mut ws, "connected").await;
    send(&mut ws, json!({"action": "subscribe", "channel": channel})).await;
    let ack = next_of(&mut ws, "subscribed").await;
    assert_eq!(ack["data"]["channel"], channel);
    ws
}

#[tokio::test]
async fn missing_or_invalid_keys_close_with_4001() {
    let app = TestApp::spawn().await;
    for key in [None, Some("pk_nope"), Some("garbage")] {
        let mut ws = connect(&app, key).await;
        assert_eq!(next(&mut ws).await, Err(Some(4001)), "{key:?}");
    }
}

#[tokio::test]
async fn subscribed_sockets_see_their_rooms_events_with_the_contract_fields() {
    let app = TestApp::spawn().await;
    let mut ws = subscribed(&app, &app.project.key, "rooms").await;
    let full = format!("{}_live", app.project.room_prefix);
    app.sim()
        .join(&full, SimParticipant::new("alice").name("Alice"))
        .await
        .unwrap();
    let created = next_of(&mut ws, "room.created").await;
    assert_eq!(created["data"]["room_name"], full);
    assert!(created["data"]["created_at"].is_string());
    let joined = next_of(&mut ws, "participant.joined").await;
    assert_eq!(
        joined["data"],
        json!({"room_name": full, "identity": "alice", "name": "Alice", "joined_at": joined["data"]["joined_at"]})
    );
    assert!(joined["timestamp"].is_string());
    app.sim().leave(&full, "alice").await.unwrap();
    let left = next_of(&mut ws, "participant.left").await;
    assert_eq!(left["data"]["identity"], "alice");
    assert_eq!(left["data"]["reason"], "CLIENT_INITIATED");
    app.delete("/api/v1/rooms/live").await;
    let closed = next_of(&mut ws, "room.closed").await;
    assert_eq!(closed["data"], json!({"room_name": full}));
}

#[tokio::test]
async fn bad_messages_get_errors_and_unsubscribe_stops_events() {
    let app = TestApp::spawn().await;
    let mut ws = connect(&app, Some(&app.project.key)).await;
    next_of(&mut ws, "connected").await;
    for bad in [
        json!("hello"),
        json!({"action": "dance", "channel": "rooms"}),
        json!({"action": "subscribe", "channel": "everything"}),
    ] {
        send(&mut ws, bad).await;
        let e = next(&mut ws).await.unwrap();
        assert_eq!(e["type"], "error", "{e}");
        assert!(e["data"]["message"].is_string());
    }
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["type"], "error");

    // room:<name> only sees that room; after unsubscribing nothing arrives.
    send(&mut ws, json!({"action": "subscribe", "channel": "room:a"})).await;
    next_of(&mut ws, "subscribed").await;
    let prefix = &app.project.room_prefix;
    app.sim()
        .join(&format!("{prefix}_b"), SimParticipant::new("bob"))
        .await
        .unwrap();
    app.sim()
        .join(&format!("{prefix}_a"), SimParticipant::new("ann"))
        .await
        .unwrap();
    let m = next_of(&mut ws, "participant.joined").await;
    assert_eq!(
        m["data"]["identity"], "ann",
        "events of room b never reach a room:a subscriber"
    );
    send(
        &mut ws,
        json!({"action": "unsubscribe", "channel": "room:a"}),
    )
    .await;
    next_of(&mut ws, "unsubscribed").await;
    send(&mut ws, json!({"action": "subscribe", "channel": "room:c"})).await;
    next_of(&mut ws, "subscribed").await;
    app.sim()
        .join(&format!("{prefix}_a"), SimParticipant::new("ann2"))
        .await
        .unwrap();
    app.sim()
        .join(&format!("{prefix}_c"), SimParticipant::new("cid"))
        .await
        .unwrap();
    let m = next_of(&mut ws, "participant.joined").await;
    assert_eq!(m["data"]["identity"], "cid");
}

#[tokio::test]
async fn a_socket_only_sees_its_own_project() {
    let app = TestApp::spawn().await;
    let other = app.create_project(Plan::Professional).await;
    let mut theirs = subscribed(&app, &other.key, "rooms").await;
    app.sim()
        .join(
            &format!("{}_mine", app.project.room_prefix),
            SimParticipant::new("me"),
        )
        .await
        .unwrap();
    app.sim()
        .join(
            &format!("{}_theirs", other.room_prefix),
            SimParticipant::new("them"),
        )
        .await
        .unwrap();
    let m = next_of(&mut theirs, "participant.joined").await;
    assert_eq!(m["data"]["identity"], "them");
    // Subscribing to the other project's room by its full name stays inside one's own prefix.
    send(
        &mut theirs,
        json!({"action": "subscribe", "channel": format!("room:{}_mine", app.project.room_prefix)}),
    )
    .await;
    next_of(&mut theirs, "subscribed").await;
    app.sim()
        .join(
            &format!("{}_mine", app.project.room_prefix),
            SimParticipant::new("me2"),
        )
        .await
        .unwrap();
    app.sim()
        .join(
            &format!("{}_theirs", other.room_prefix),
            SimParticipant::new("them2"),
        )
        .await
        .unwrap();
    let m = next_of(&mut theirs, "participant.joined").await;
    assert_eq!(m["data"]["identity"], "them2");
}

/// A socket whose client reads nothing: a tiny receive buffer (which also
/// turns off the kernel's receive-buffer autotuning), so a burst of events
/// cannot hide in the kernel's buffers.
async fn connect_not_reading(app: &TestApp, key: &str) -> Ws {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let url = format!(
        "{}/ws/monitor?api_key={key}",
        app.base.replace("http://", "ws://")
    );
    tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
        .await
        .expect("upgrade")
        .0
}

/// Inserts `n` participant.joined events of a room in one transaction.
async fn burst(app: &TestApp, room: &str, n: u32) {
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    diesel::sql_query(format!(
        "INSERT INTO events (public_id, project_id, event_type, data)
         SELECT 'evt_' || md5(random()::text) || g, {}, 'participant.joined',
                jsonb_build_object('room_name', '{room}', 'identity', 'p' || g, 'name', repeat('x', 100))
         FROM generate_series(1, {n}) g",
        app.project.id
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_4008_without_slowing_others() {
    let app = TestApp::spawn_with(|s| s.monitor_buffer = 16).await;
    let mut slow = connect_not_reading(&app, &app.project.key).await;
    next_of(&mut slow, "connected").await;
    send(
        &mut slow,
        json!({"action": "subscribe", "channel": "rooms"}),
    )
    .await;
    next_of(&mut slow, "subscribed").await;
    let mut fast = subscribed(&app, &app.project.key, "room:calm").await;
    let prefix = &app.project.room_prefix;
    // ~8 MB of events for the slow socket: more than the server's send buffer
    // (4 MB at most here) and the client's 4 KB can hold, so its queue overflows.
    burst(&app, &format!("{prefix}_flood"), 30_000).await;
    // The other socket still gets its room's event, committed after the flood.
    burst(&app, &format!("{prefix}_calm"), 1).await;
    let m = next_of(&mut fast, "participant.joined").await;
    assert_eq!(m["data"]["room_name"], format!("{prefix}_calm"));
    // The slow one gets what was buffered, then the close with 4008.
    let mut received = 0u32;
    let code = loop {
        match next(&mut slow).await {
            Ok(_) => received += 1,
            Err(code) => break code,
        }
    };
    assert_eq!(code, Some(4008), "after {received} messages");
    assert!(received < 30_000, "events were dropped, not all delivered");
}

#[tokio::test]
async fn a_project_cannot_open_more_sockets_than_its_cap() {
    let app = TestApp::spawn_with(|s| s.monitor_max_connections_per_project = 2).await;
    let _a = subscribed(&app, &app.project.key, "rooms").await;
    let mut b = subscribed(&app, &app.project.key, "rooms").await;
    let mut third = connect(&app, Some(&app.project.key)).await;
    assert_eq!(next(&mut third).await, Err(Some(4029)));
    // Another project is not affected by this one's sockets.
    let other = app.create_project(Plan::Free).await;
    let mut theirs = connect(&app, Some(&other.key)).await;
    next_of(&mut theirs, "connected").await;
    // A closed socket frees its place.
    b.close(None).await.unwrap();
    while b.next().await.is_some() {}
    let mut again = None;
    for _ in 0..50 {
        let mut ws = connect(&app, Some(&app.project.key)).await;
        match next(&mut ws).await {
            Ok(m) if m["type"] == "connected" => {
                again = Some(ws);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(again.is_some(), "a freed place can be taken again");
}

#[tokio::test]
async fn sockets_on_one_process_see_events_committed_by_another() {
    let app = TestApp::spawn().await;
    // Without a poll to fall back on, only the NOTIFY sent after the commit
    // on the first process can wake this one.
    let other_node = app.another_node(|s| s.events_poll_ms = 60_000).await;
    let mut ws = subscribed(&other_node, &app.project.key, "rooms").await;
    // The simulator's webhooks go to the first process, which commits the events.
    app.sim()
        .join(
            &format!("{}_cross", app.project.room_prefix),
            SimParticipant::new("x"),
        )
        .await
        .unwrap();
    let m = next_of(&mut ws, "participant.joined").await;
    assert_eq!(m["data"]["identity"], "x");
}

#[tokio::test]
async fn final_transcript_lines_reach_session_subscribers_at_once() {
    // No poll to fall back on: the wake after the commit must do it.
    let app = TestApp::spawn_with(|s| s.events_poll_ms = 60_000).await;
    let mut ws = subscribed(&app, &app.project.key, "sessions").await;
    let (status, body) = crate::common::json(
        app.post_json("/api/v1/sessions", &json!({"room_name": "talk"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let session_id = body["session"]["id"].as_i64().unwrap();
    let started = next_of(&mut ws, "session.started").await;
    assert_eq!(started["data"]["session_id"], session_id);
    for (content, is_final) in [("Hel", false), ("Hello there", true)] {
        let res = app
            .post_json(
                "/api/v1/sessions/talk/transcript",
                &json!({"speaker": "user", "content": content, "timestamp_ms": 1500, "is_final": is_final}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    // The interim line reaches the monitor flagged (a `transcript.interim`
    // event, no webhook event type); the final one is `transcript.new`.
    let interim = next_of(&mut ws, "transcript.new").await;
    assert_eq!(interim["data"]["content"], "Hel");
    assert_eq!(interim["data"]["is_final"], false);
    let m = next_of(&mut ws, "transcript.new").await;
    assert_eq!(
        m["data"],
        json!({
            "room_name": format!("{}_talk", app.project.room_prefix),
            "session_id": session_id,
            "speaker": "user",
            "content": "Hello there",
            "timestamp_ms": 1500,
            "is_final": true,
        })
    );
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use voxplane::db::schema::events;
    let mut conn = app.conn().await;
    let n: i64 = events::table
        .filter(events::event_type.eq("transcript.new"))
        .filter(events::project_id.eq(app.project.id))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn recording_status_arrives_when_a_recording_starts_and_stops() {
    let app = TestApp::spawn().await;
    let (status, _) = crate::common::json(
        app.post_json("/api/v1/rooms", &json!({"name": "rec"}))
            .await,
    )
    .await;
    assert_eq!(status, 201);
    let full = format!("{}_rec", app.project.room_prefix);
    let mut ws = subscribed(&app, &app.project.key, &format!("room:{full}")).await;
    let (status, out) = crate::common::json(
        app.post_json("/api/v1/rooms/rec/recordings/start", &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{out}");
    let id = out["recording"]["id"].clone();
    let started = next_of(&mut ws, "recording.status").await;
    assert_eq!(
        started["data"],
        json!({"room_name": full, "recording_id": id, "status": "recording"})
    );
    let (status, _) = crate::common::json(
        app.post_json("/api/v1/rooms/rec/recordings/stop", &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let stopped = next_of(&mut ws, "recording.status").await;
    assert_eq!(
        stopped["data"],
        json!({"room_name": full, "recording_id": id, "status": "completed"})
    );
}

#[tokio::test]
async fn an_event_committed_after_a_later_one_still_reaches_the_socket() {
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::spawn().await;
    let mut ws = subscribed(&app, &app.project.key, "rooms").await;
    let full = format!("{}_late", app.project.room_prefix);
    // A transaction takes the next event id and holds it, uncommitted…
    let mut slow = app.conn().await;
    slow.batch_execute(&format!(
        "BEGIN; INSERT INTO events (public_id, project_id, event_type, data) VALUES \
         ('evt_early', {}, 'participant.joined', \
          jsonb_build_object('room_name', '{full}', 'identity', 'early', 'name', '', 'joined_at', now()))",
        app.project.id
    ))
    .await
    .unwrap();
    // …while later events commit and are published.
    app.sim()
        .join(&full, SimParticipant::new("later"))
        .await
        .unwrap();
    let later = next_of(&mut ws, "participant.joined").await;
    assert_eq!(later["data"]["identity"], "later");
    // The earlier id commits last: it is not skipped.
    slow.batch_execute("COMMIT; NOTIFY voxplane_events")
        .await
        .unwrap();
    let early = next_of(&mut ws, "participant.joined").await;
    assert_eq!(early["data"]["identity"], "early");
}

#[tokio::test]
async fn odd_query_strings_still_upgrade_and_only_the_key_decides() {
    let app = TestApp::spawn().await;
    let base = app.base.replace("http://", "ws://");
    let open = |q: String| {
        let url = format!("{base}/ws/monitor?{q}");
        async move {
            tokio_tungstenite::connect_async(url)
                .await
                .expect("upgrade")
                .0
        }
    };
    // Repeated parameters: the first api_key counts.
    let mut ws = open(format!("api_key=pk_nope&api_key={}", app.project.key)).await;
    assert_eq!(next(&mut ws).await, Err(Some(4001)));
    let mut ws = open(format!(
        "x=1&x=2&api_key={}&api_key=pk_nope",
        app.project.key
    ))
    .await;
    assert_eq!(next_of(&mut ws, "connected").await["type"], "connected");
    // Percent-encoded keys are decoded.
    let encoded = app.project.key.replace('_', "%5F");
    let mut ws = open(format!("api_key={encoded}")).await;
    assert_eq!(next_of(&mut ws, "connected").await["type"], "connected");
}
