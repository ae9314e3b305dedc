//! SSRF: internal addresses hidden in IPv6 forms (webhooks) and SIP trunk
//! addresses; inbound numbers unique across projects; bodies of idempotent
//! requests bounded by the route's own limit.

use crate::common::{TestApp, expect_error, json};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use voxplane::limits::plans::Plan;

#[tokio::test]
async fn webhook_urls_hiding_internal_ipv4_in_ipv6_or_special_ranges_are_refused() {
    let app = TestApp::spawn_with(|s| s.webhook_allow_loopback = false).await;
    for url in [
        "http://[64:ff9b::a9fe:a9fe]/", // NAT64 of 169.254.169.254
        "http://[::a00:1]/",            // IPv4-compatible 10.0.0.1
        "http://[::ffff:0:a00:1]/",     // SIIT 10.0.0.1
        "http://[::ffff:127.0.0.1]/",   // IPv4-mapped loopback
        "http://[2002:a9fe:a9fe::]/",   // 6to4 of 169.254.169.254
        "http://[2001:0:a9fe:a9fe::]/", // Teredo server 169.254.169.254
        "http://[fec0::1]/",            // site-local
        "http://198.18.0.1/",           // benchmarking
        "http://[64:ff9b:1::a00:1]/",   // local-use NAT64
    ] {
        let err = expect_error(
            app.post_json("/api/v1/webhooks", &json!({"url": url}))
                .await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], "url", "{url}: {err}");
    }
    // A public address in the same forms is fine.
    let res = app
        .post_json(
            "/api/v1/webhooks",
            &json!({"url": "http://[64:ff9b::808:808]/"}),
        )
        .await;
    assert_eq!(res.status(), 201);
}

async fn create_trunk(app: &TestApp, key: &str, number: &str, address: &str) -> reqwest::Response {
    app.req_as(key, reqwest::Method::POST, "/api/v1/sip/trunks")
        .json(
            &json!({"name": "Trunk", "phone_number": number, "address": address,
                      "auth_username": "u", "auth_password": "p"}),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sip_trunk_addresses_may_not_point_into_internal_networks() {
    let app = TestApp::spawn_with(|s| s.sip_allowed_networks = vec!["10.20.0.0/16".into()]).await;
    let key = app.project.key.clone();
    for (i, address) in [
        "169.254.169.254:80",
        "127.0.0.1",
        "10.0.0.5:5060",
        "192.168.1.10",
        "[::ffff:10.0.0.1]:5060",
        "localhost:5060",
    ]
    .into_iter()
    .enumerate()
    {
        let err = expect_error(
            create_trunk(&app, &key, &format!("+1800555010{i}"), address).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], "address", "{address}: {err}");
    }
    // The operator's own SIP gear, and public addresses.
    for (n, address) in [
        ("+18005550190", "10.20.3.4:5060"),
        ("+18005550191", "8.8.8.8"),
    ] {
        let res = create_trunk(&app, &key, n, address).await;
        assert_eq!(
            res.status(),
            201,
            "{address}: {}",
            res.text().await.unwrap()
        );
    }
    // An address change goes through the same guard.
    let (_, list) = json(app.get("/api/v1/sip/trunks").await).await;
    let id = list["trunks"][0]["id"].as_i64().unwrap();
    expect_error(
        app.patch_json(
            &format!("/api/v1/sip/trunks/{id}"),
            &json!({"address": "169.254.169.254"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn an_inbound_number_belongs_to_one_project_of_the_installation() {
    let app = TestApp::spawn().await;
    let other = app.create_project(Plan::Professional).await;
    let res = create_trunk(&app, &app.project.key, "+18005550123", "sip.example.com").await;
    assert_eq!(res.status(), 201);
    let err = expect_error(
        create_trunk(&app, &other.key, "+18005550123", "sip.example.com").await,
        409,
        "CONFLICT",
    )
    .await;
    let message = err["error"].as_str().unwrap();
    assert!(message.contains("+18005550123"), "{message}");
    assert!(!message.to_lowercase().contains("project"), "{message}");
    assert!(err["details"].get("project_id").is_none(), "{err}");
    // Nor by renumbering an existing trunk.
    let res = create_trunk(&app, &other.key, "+18005550124", "sip.example.com").await;
    let (status, body) = json(res).await;
    assert_eq!(status, 201, "{body}");
    let id = body["trunk"]["id"].as_i64().unwrap();
    let res = app
        .req_as(
            &other.key,
            reqwest::Method::PATCH,
            &format!("/api/v1/sip/trunks/{id}"),
        )
        .json(&json!({"phone_number": "+18005550123", "auth_password": "p"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
}

#[tokio::test]
async fn an_idempotent_request_larger_than_its_route_accepts_is_refused_before_it_is_read() {
    let app = TestApp::spawn().await;
    // Headers announce 64 MB and no body follows: the answer must not wait
    // for it (before the fix the server buffered up to 16 MB first).
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/rooms HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Idempotency-Key: big-1\r\nContent-Type: application/json\r\n\
         Content-Length: 67108864\r\n\r\n",
        app.project.key
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("an answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");

    // A body just over the JSON limit, sent in full: the envelope with the
    // route's limit, not the middleware's.
    let big = json!({"name": "x".repeat(300 * 1024)});
    let res = app
        .req(reqwest::Method::POST, "/api/v1/rooms")
        .header("Idempotency-Key", "big-2")
        .json(&big)
        .send()
        .await
        .unwrap();
    let err = expect_error(res, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(err["error"].as_str().unwrap().contains("262144"), "{err}");
}
