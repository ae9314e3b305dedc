//! How each send behaves: a process killed mid-delivery, redelivery and recovery, leases, SSRF at send time, Retry-After, kept response bodies, redirects, timeouts; the endpoints' quota, URL changes and the end of a rotation window.

use super::*;

#[tokio::test]
async fn a_process_killed_mid_delivery_leaves_the_event_to_another() {
    let mut first = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0, 0, 0];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    let rx = Receiver::start(vec![Reply::Hang(Duration::from_secs(3))]);
    let (id, _) = create_endpoint(&first, &rx.url, json!([])).await;
    first.post_json("/api/v1/webhooks/test", &json!({})).await;
    rx.wait_for(1, WAIT).await; // the first process is sending it now
    first.stop();
    // From here on the first process is gone: its server, workers and
    // runtime have stopped, so whatever arrives now comes from the second.
    let stopped = std::time::Instant::now();
    let second = first
        .another_node(|s| {
            s.webhook_retry_schedule_secs = vec![0, 0, 0];
            s.webhook_timeout_ms = 1000;
            s.events_poll_ms = 100;
        })
        .await;
    let got = rx.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert!(
        got[0].at < stopped,
        "the first send was the first process's"
    );
    assert!(
        got[1].at > stopped,
        "the second send came from the other process"
    );
    // The killed process recorded nothing; the other one took the claim
    // over once its lease ran out and delivered.
    let d = wait_status(&second, id, "delivered").await;
    assert_eq!(d["last_status_code"], 200);
    assert_eq!(
        d["attempts"], 2,
        "two claims: the killed one and the successful one"
    );
    let detail = wait_attempts(&second, id, &d, 1).await;
    let codes: Vec<&Value> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(200)], "{detail}");
    assert_eq!(detail["attempts"][0]["attempt"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), 2);
}

#[tokio::test]
async fn redeliver_and_recover_requeue_deliveries() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    let rx = Receiver::start(vec![Reply::Status(500), Reply::Status(500)]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    rx.wait_for(2, WAIT).await;
    let failed = wait_status(&app, id, "failed").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, page) = json(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries?status=failed"))
            .await,
    )
    .await;
    assert_eq!(page["total"], 2, "{page}");

    let (status, body) = json(redeliver(&app, id, &failed).await).await;
    // The answer is the delivery with its attempts so far, as its GET shows
    // (the redelivered try may be under way already).
    assert_eq!(body["attempts"][0]["status_code"], 500, "{body}");
    assert_eq!(status, 200);
    rx.wait_for(3, WAIT).await;
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, rec) = json(
        app.post_json(
            &format!("/api/v1/webhooks/{id}/recover"),
            &json!({"since": since}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rec["recovered"], 1);
    rx.wait_for(4, WAIT).await;
    expect_error(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries?status=bogus"))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries?per_page=0"))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let huge = format!("/api/v1/webhooks/{id}/deliveries?page=9223372036854775807");
    expect_error(app.get(&huge).await, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn a_send_that_outlives_its_lease_does_not_overwrite_the_newer_outcome() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0, 60];
        s.webhook_timeout_ms = 5000;
        s.events_poll_ms = 50;
    })
    .await;
    // The first send hangs and then fails; the one after it succeeds.
    let rx = Receiver::start(vec![Reply::HangThen(Duration::from_millis(1500), 500)]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    rx.wait_for(1, WAIT).await;
    // The lease runs out while the first send is still waiting: the delivery
    // is claimed and sent again, and that send succeeds.
    expire_leases(&app).await;
    rx.wait_for(2, WAIT).await;
    let d = wait_status(&app, id, "delivered").await;
    // The late failure of the first send is logged, but it does not undo
    // the success recorded by the claim that replaced it.
    let detail = wait_attempts(&app, id, &d, 2).await;
    let mut tries: Vec<(i64, i64)> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["status_code"].as_i64().unwrap(),
            )
        })
        .collect();
    tries.sort();
    assert_eq!(tries, [(1, 500), (2, 200)], "{detail}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, detail) = json(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries/{}", d["id"]))
            .await,
    )
    .await;
    assert_eq!(detail["delivery"]["status"], "delivered", "{detail}");
    assert_eq!(detail["delivery"]["last_status_code"], 200);
    assert_eq!(detail["delivery"]["attempts"], 2);
    assert_eq!(rx.received().len(), 2, "nothing is sent a third time");
}

#[tokio::test]
async fn redelivering_a_delivery_being_sent_is_a_conflict_not_a_second_send() {
    let app = fast_app().await;
    let rx = Receiver::start(vec![Reply::Hang(Duration::from_millis(800))]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    rx.wait_for(1, WAIT).await; // being sent now
    let (_, page) = json(app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await).await;
    let first = &page["deliveries"][0];
    let delivery = first["id"].as_i64().unwrap();
    let err = expect_error(redeliver(&app, id, first).await, 409, "CONFLICT").await;
    assert_eq!(err["details"]["delivery_id"], delivery);
    assert!(
        err["error"].as_str().unwrap().contains("being sent"),
        "{err}"
    );
    wait_status(&app, id, "delivered").await;
    assert_eq!(rx.received().len(), 1, "no second send alongside the first");

    // Once the attempt is over, redelivering sends it again.
    let (status, body) = json(redeliver(&app, id, first).await).await;
    assert_eq!(status, 200, "{body}");
    rx.wait_for(2, WAIT).await;
    let d = wait_status(&app, id, "delivered").await;
    assert_eq!(d["attempts"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), 2);
}

#[tokio::test]
async fn redeliver_and_recover_start_a_fresh_retry_cycle() {
    // Two tries per cycle.
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0, 0];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    let rx = Receiver::start(vec![
        // The first event: a cycle that fails, then one that fails once and succeeds.
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(200),
        // The second event: the same, recovered instead of redelivered.
        Reply::Status(500),
        Reply::Status(500),
        Reply::Status(500),
    ]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    let codes = |detail: &Value| -> Vec<i64> {
        detail["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status_code"].as_i64().unwrap())
            .collect()
    };

    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let failed = wait_status(&app, id, "failed").await;
    assert_eq!(failed["attempts"], 2, "the schedule is used up");
    let (status, _) = json(redeliver(&app, id, &failed).await).await;
    assert_eq!(status, 200);
    let d = wait_status(&app, id, "delivered").await;
    assert_eq!(d["attempts"], 4, "{d}");
    let detail = wait_attempts(&app, id, &d, 4).await;
    assert_eq!(codes(&detail), [500, 500, 500, 200], "history is kept");

    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let failed = wait_status(&app, id, "failed").await;
    assert_eq!(failed["attempts"], 2);
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let (status, rec) = json(
        app.post_json(
            &format!("/api/v1/webhooks/{id}/recover"),
            &json!({"since": since}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rec["recovered"], 1);
    let d = wait_status(&app, id, "delivered").await;
    assert_eq!(d["attempts"], 4, "{d}");
    let detail = wait_attempts(&app, id, &d, 4).await;
    assert_eq!(codes(&detail), [500, 500, 500, 200]);
    assert_eq!(rx.received().len(), 8);
}

#[tokio::test]
async fn a_send_is_refused_when_the_name_now_resolves_to_an_internal_address() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_allow_loopback = false;
        s.webhook_retry_schedule_secs = vec![0];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    let rx = Receiver::start(vec![]);
    let (id, _) = create_endpoint(&app, "http://8.8.8.8/hook", json!([])).await;
    let port = rx.url.rsplit(':').next().unwrap();
    for (n, url) in [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
    ]
    .iter()
    .enumerate()
    {
        set_url(&app, id, &format!("{url}/hook")).await;
        app.post_json("/api/v1/webhooks/test", &json!({})).await;
        let deadline = std::time::Instant::now() + WAIT;
        let d = loop {
            let (_, page) = json(
                app.get(&format!("/api/v1/webhooks/{id}/deliveries?status=failed"))
                    .await,
            )
            .await;
            if page["total"] == n + 1 {
                break page["deliveries"][0].clone();
            }
            assert!(std::time::Instant::now() < deadline, "{page}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let error = d["last_error"].as_str().unwrap();
        assert!(
            error.contains("loopback address (127.0.0.1)"),
            "{url}: {error}"
        );
    }
    assert!(rx.received().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn retry_after_is_honoured_but_clamped_to_the_longest_delay() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0, 0, 30];
        s.webhook_timeout_ms = 1000;
        s.events_poll_ms = 50;
    })
    .await;
    let rx = Receiver::start(vec![
        // The schedule says "again at once"; the receiver asks for 2 s.
        Reply::StatusRetryAfter(503, 2),
        // The receiver asks for an hour; the longest delay is 30 s.
        Reply::StatusRetryAfter(429, 3600),
    ]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let got = rx.wait_for(2, WAIT).await;
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5),
        "Retry-After: 2 honoured, waited {waited:?}"
    );
    let deadline = std::time::Instant::now() + WAIT;
    let d = loop {
        let (_, page) = json(app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await).await;
        let d = page["deliveries"][0].clone();
        if d["last_status_code"] == 429 {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(d["status"], "pending");
    let next = chrono::DateTime::parse_from_rfc3339(d["next_attempt_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let wait = (next - chrono::Utc::now()).num_seconds();
    assert!(
        (20..=40).contains(&wait),
        "clamped to the 30 s slot (±20 %), not an hour: {wait} s"
    );
}

#[tokio::test]
async fn the_response_body_kept_in_an_attempt_is_truncated_to_1_kib_of_text() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    // 6001 bytes whose 1024th byte is in the middle of a character.
    let long = format!("a{}", "é".repeat(3000)).into_bytes();
    let rx = Receiver::start(vec![
        Reply::Body(500, long),
        // Not UTF-8, and a NUL (which a Postgres text column refuses).
        Reply::Body(200, b"ok\0bin\xff".to_vec()),
    ]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let d = wait_status(&app, id, "failed").await;
    let detail = wait_attempts(&app, id, &d, 1).await;
    let kept = detail["attempts"][0]["response_body"].as_str().unwrap();
    assert_eq!(
        kept.len(),
        1023,
        "at most 1024 bytes, cut between characters"
    );
    assert_eq!(kept, format!("a{}", "é".repeat(511)));

    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let d = wait_status(&app, id, "delivered").await;
    let detail = wait_attempts(&app, id, &d, 1).await;
    assert_eq!(
        detail["attempts"][0]["response_body"],
        "ok\u{FFFD}bin\u{FFFD}"
    );
    assert_eq!(d["attempts"], 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    let rx = Receiver::start(vec![
        Reply::Redirect(302, "/elsewhere".into()),
        Reply::Redirect(307, "/elsewhere".into()),
    ]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    for code in [302, 307] {
        app.post_json("/api/v1/webhooks/test", &json!({})).await;
        let d = wait_status(&app, id, "failed").await;
        assert_eq!(d["last_status_code"], code, "{d}");
        assert_eq!(d["attempts"], 1);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paths: Vec<String> = rx.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/hook", "/hook"], "the Location is never requested");
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_a_failed_attempt() {
    let app = TestApp::spawn_with(|s| {
        s.webhook_retry_schedule_secs = vec![0];
        s.webhook_timeout_ms = 1000;
    })
    .await;
    let rx = Receiver::start(vec![Reply::Hang(Duration::from_secs(4))]);
    let (id, _) = create_endpoint(&app, &rx.url, json!([])).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let d = wait_status(&app, id, "failed").await;
    let detail = wait_attempts(&app, id, &d, 1).await;
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["status_code"], Value::Null);
    let error = attempt["error"].as_str().unwrap();
    assert!(error.contains("timed out after 1000 ms"), "{error}");
    assert_eq!(d["last_error"], error);
    let latency = attempt["latency_ms"].as_i64().unwrap();
    assert!((1000..3000).contains(&latency), "{latency} ms");
}

#[tokio::test]
async fn the_webhook_configs_quota_is_enforced() {
    let app = TestApp::spawn().await;
    let free = app.create_project(Plan::Free).await; // 2 endpoints allowed
    let create = |n: usize| {
        app.req_as(&free.key, Method::POST, "/api/v1/webhooks")
            .json(&json!({"url": format!("http://8.8.8.8/hook{n}")}))
            .send()
    };
    let mut ids = Vec::new();
    for n in 0..2 {
        let (status, body) = json(create(n).await.unwrap()).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["webhook"]["id"].as_i64().unwrap());
    }
    let err = expect_error(create(2).await.unwrap(), 429, "QUOTA_EXCEEDED").await;
    assert_eq!(err["details"]["resource"], "webhook_configs");
    assert_eq!(err["details"]["limit"], 2);
    assert_eq!(err["details"]["used"], 2);
    assert_eq!(err["details"]["remaining"], 0);
    assert!(
        err["details"]["upgrade_url"]
            .as_str()
            .unwrap()
            .starts_with("http"),
        "{err}"
    );
    // Deleting one frees its place.
    let res = app
        .req_as(
            &free.key,
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", ids[0]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(create(3).await.unwrap().status(), 201);
}

#[tokio::test]
async fn changing_the_url_is_held_to_the_same_ssrf_rules() {
    let app = TestApp::spawn_with(|s| s.webhook_allow_loopback = false).await;
    let (id, _) = create_endpoint(&app, "http://8.8.8.8/hook", json!([])).await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/",
        "http://[::1]/",
        "ftp://example.com/",
        "http://user:pw@8.8.8.8/",
    ] {
        let err = expect_error(
            app.patch_json(&format!("/api/v1/webhooks/{id}"), &json!({"url": url}))
                .await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], "url", "{url}");
    }
    let (_, w) = json(app.get(&format!("/api/v1/webhooks/{id}")).await).await;
    assert_eq!(
        w["webhook"]["url"], "http://8.8.8.8/hook",
        "nothing changed"
    );
    let (status, w) = json(
        app.patch_json(
            &format!("/api/v1/webhooks/{id}"),
            &json!({"url": "https://1.1.1.1/other"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["webhook"]["url"], "https://1.1.1.1/other");
}

#[tokio::test]
async fn after_the_rotation_window_only_the_new_secret_signs() {
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
    end_rotation_window(&app, id).await;
    app.post_json("/api/v1/webhooks/test", &json!({})).await;
    let r = &rx.wait_for(1, WAIT).await[0];
    let (wid, ts) = (
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
    );
    let sig = r.header("webhook-signature").unwrap();
    assert_eq!(
        sig,
        standard(&new, wid, ts, &r.body),
        "one signature, the new one"
    );
    assert!(!sig.contains(&standard(&old, wid, ts, &r.body)));
    assert_eq!(
        r.header("x-webhook-signature").unwrap(),
        hex_hmac(&new, &r.body)
    );
}

#[tokio::test]
async fn session_ended_reaches_a_subscribed_endpoint() {
    let app = fast_app().await;
    let rx = Receiver::start(vec![]);
    create_endpoint(&app, &rx.url, json!(["session.ended"])).await;
    let full = format!("{}_support-call", app.project.room_prefix);
    let (status, started) = json(
        app.post_json("/api/v1/sessions", &json!({"room_name": "support-call"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let (status, ended) = json(
        app.post_json(
            "/api/v1/sessions/support-call/end",
            &json!({"summary": "Billing", "duration": 185}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    let got = rx.wait_for(1, WAIT).await;
    let body = got[0].json();
    assert_eq!(body["event_type"], "session.ended", "{body}");
    assert_eq!(body["project_id"], app.project.id);
    assert_eq!(body["data"]["session_id"], started["session"]["id"]);
    assert_eq!(body["data"]["room_name"], full);
    assert_eq!(body["data"]["agent_config_id"], Value::Null);
    assert_eq!(body["data"]["duration"], 185);
    assert_eq!(body["data"]["summary"], "Billing");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received().len(), 1, "session.started is not subscribed");
}
