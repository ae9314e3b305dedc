//! `voxplane serve` (the real binary) stopped with SIGTERM in the middle of
//! a burst of webhook deliveries: the tries under way finish, nothing new
//! is claimed, and another node delivers the rest — none lost, none sent
//! twice; a monitor socket is closed with 1001 (going away).

use crate::common::receiver::{Receiver, Reply};
use crate::common::{TestApp, create_project_in, fresh_database, json};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use voxplane::limits::plans::Plan;

const EVENTS: usize = 24;
const HANG: Duration = Duration::from_millis(300);

fn serve(db_url: &str, port: u16) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_voxplane"));
    for (k, _) in std::env::vars() {
        if k.starts_with("VOXPLANE_") || k == "DATABASE_URL" || k == "HOST" || k == "PORT" {
            cmd.env_remove(k);
        }
    }
    cmd.arg("serve")
        .env("DATABASE_URL", db_url)
        .env("VOXPLANE_PORT", port.to_string())
        .env("VOXPLANE_STANDALONE", "true")
        .env("VOXPLANE_WEBHOOK_ALLOW_LOOPBACK", "true")
        .env("VOXPLANE_WEBHOOK_CONCURRENCY", "4")
        .env("VOXPLANE_EVENTS_POLL_MS", "100")
        .env("VOXPLANE_SHUTDOWN_GRACE_SECS", "10")
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[derive(diesel::QueryableByName)]
struct Pending {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn undelivered(db_url: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(db_url).await.unwrap();
    diesel::sql_query("SELECT count(*) AS n FROM webhook_deliveries WHERE status <> 'delivered'")
        .get_result::<Pending>(&mut conn)
        .await
        .unwrap()
        .n
}

#[tokio::test]
async fn sigterm_during_a_burst_of_deliveries_loses_none_and_sends_none_twice() {
    let (name, db_url) = fresh_database().await;
    let project = create_project_in(&db_url, "Shutdown", Plan::Professional).await;
    let receiver = Receiver::start(vec![Reply::Hang(HANG); EVENTS * 2]);
    let port = voxplane::embedded::postgres::free_port().unwrap();
    let mut child = serve(&db_url, port);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = client
        .post(format!("{base}/api/v1/webhooks"))
        .header("X-API-Key", &project.key)
        .json(&json!({"url": receiver.url, "event_types": ["room.started"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(created).await.0, 201);
    {
        let mut conn = AsyncPgConnection::establish(&db_url).await.unwrap();
        for i in 0..EVENTS {
            voxplane::events::emit(
                &mut conn,
                project.id,
                "room.started",
                json!({"room_name": format!("r{i}"), "room": format!("r{i}")}),
            )
            .await
            .unwrap();
        }
    }
    let mut monitor = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{port}/ws/monitor?api_key={}",
        project.key
    ))
    .await
    .expect("monitor upgrade")
    .0;
    assert_eq!(
        crate::monitor::next(&mut monitor).await.unwrap()["type"],
        "connected"
    );
    // Mid-burst: 4 at a time, 300 ms each.
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.received().len() < 5 {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .code(),
        Some(0)
    );
    let stopped_at = Instant::now();
    let close = loop {
        match crate::monitor::next(&mut monitor).await {
            Ok(_) => continue,
            Err(code) => break code,
        }
    };
    assert_eq!(
        close,
        Some(1001),
        "monitor sockets are told the server goes away"
    );
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}"
    );
    assert!(stopped_at.elapsed() < Duration::from_secs(10));
    let at_stop = receiver.received().len();
    assert!(at_stop < EVENTS, "stopped mid-burst ({at_stop})");
    assert!(undelivered(&db_url).await > 0);

    // Another node takes over what was left.
    let node = TestApp::spawn_on(&db_url, |s| {
        s.webhook_concurrency = 4;
        s.events_poll_ms = 100;
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while undelivered(&db_url).await > 0 {
        assert!(Instant::now() < deadline, "deliveries lost");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        *by_id
            .entry(r.header("webhook-id").unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(by_id.len(), EVENTS, "every event delivered");
    assert!(
        by_id.values().all(|n| *n == 1),
        "none sent twice: {by_id:?}"
    );
    drop(node);
    crate::common::drop_database(&name);
}
