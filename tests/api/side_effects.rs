//! Remote calls after commit (issue 19): no LiveKit call runs while a
//! transaction, a row lock or an advisory lock is held. A slow LiveKit
//! stalls only the requests that wait for it; a failing one leaves a clear
//! error and nothing half-created behind.

use crate::common::{TestApp, expect_error, json, scalar};
use crate::sip::trunk_body;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn agent() -> Value {
    json!({"name": "Support Agent", "llm_provider": "openai", "llm_model": "gpt-4o",
           "instructions": "Be helpful."})
}

/// Runs `n` requests at once; returns their statuses and how long all took.
async fn concurrently<F, Fut>(n: usize, f: F) -> (Vec<u16>, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let began = Instant::now();
    let all = futures_util::future::join_all((0..n).map(&f)).await;
    (
        all.iter().map(|r| r.status().as_u16()).collect(),
        began.elapsed(),
    )
}

/// While `slow` runs (its LiveKit call stalled), an agent create and a
/// project read in the same project answer at once.
async fn others_proceed(app: &TestApp, stall: Duration) {
    // Let the slow requests reach LiveKit, then one round of the others.
    let took: Duration = timed_others(app, 1, stall / 4).await.into_iter().sum();
    // Held behind the stalled calls, they would wait a whole stall at least.
    assert!(
        took < stall * 3 / 4,
        "other requests waited {took:?} for the stalled LiveKit call"
    );
}

#[tokio::test]
async fn room_creates_do_not_hold_the_project_while_livekit_is_slow() {
    let app = TestApp::spawn().await;
    let stall = Duration::from_secs(2);
    app.sim().set_latency("CreateRoom", Some(stall));
    let creates = concurrently(8, |i| {
        let app = &app;
        async move {
            let body = json!({"name": format!("slow-{i}")});
            app.post_json("/api/v1/rooms", &body).await
        }
    });
    let ((statuses, took), ()) = tokio::join!(creates, others_proceed(&app, stall));
    assert_eq!(statuses, vec![201; 8]);
    // Eight stalled creates ran side by side (serialised: 8 × 2 s), and
    // none held a pooled connection (5) across the call.
    assert!(took < stall * 3, "8 creates took {took:?}");
    app.sim().set_latency("CreateRoom", None);
    let (_, q) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(q["quotas"]["rooms"]["used"], 8);
    let (status, room) = json(app.get("/api/v1/rooms/slow-3").await).await;
    assert_eq!(status, 200, "{room}");
    assert!(
        room["room"]["sid"]
            .as_str()
            .is_some_and(|s| s.starts_with("RM_")),
        "{room}"
    );
}

#[tokio::test]
async fn a_duplicate_room_create_during_the_call_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.sim()
        .set_latency("CreateRoom", Some(Duration::from_millis(800)));
    let dup = json!({"name": "dup"});
    let first = app.post_json("/api/v1/rooms", &dup);
    let second = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.post_json("/api/v1/rooms", &dup).await
    };
    let (first, second) = tokio::join!(first, second);
    // One is created, the other (whichever came second) is refused.
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM rooms WHERE project_id = $1"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_failed_room_create_leaves_no_row_and_frees_the_quota() {
    let app = TestApp::spawn_with(|s| s.plans.professional.rooms = 1).await;
    app.sim().set_failing("CreateRoom", true);
    let err = expect_error(
        app.post_json("/api/v1/rooms", &json!({"name": "down"}))
            .await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert_eq!(err["error"], "LiveKit unavailable");
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM rooms WHERE project_id = $1"
        )
        .await,
        0
    );
    expect_error(app.get("/api/v1/rooms/down").await, 404, "NOT_FOUND").await;
    // The one room of the quota is free again, and the same name works.
    app.sim().set_failing("CreateRoom", false);
    let (status, body) = json(
        app.post_json("/api/v1/rooms", &json!({"name": "down"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// No settle job left.
const NO_JOBS: &str = "SELECT count(*) AS n FROM background_jobs WHERE $1 > 0";

/// Waits (at most 3 s: a few job periods) until `sql` counts `want`.
async fn settled(app: &TestApp, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while scalar(app, sql).await != want {
        assert!(Instant::now() < deadline, "{sql} not {want}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_room_reservation_whose_process_died_is_dropped_by_its_job() {
    let app = TestApp::spawn().await;
    // A reservation and its settle job, due, as a process that died before
    // LiveKit answered left them.
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query(
            "WITH r AS (INSERT INTO rooms (project_id, name, full_name, created_at)
                        VALUES ($1, 'ghost', $2, now() - interval '1 minute') RETURNING id)
             INSERT INTO background_jobs (job_type, data, run_at)
             SELECT 'settle_room', jsonb_build_object('room_id', id), now() + interval '1 second'
               FROM r",
        )
        .bind::<diesel::sql_types::Int8, _>(app.project.id)
        .bind::<diesel::sql_types::Text, _>(format!("{}_ghost", app.project.room_prefix))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let (_, q) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(q["quotas"]["rooms"]["used"], 1);
    let sql = "SELECT count(*) AS n FROM rooms WHERE project_id = $1";
    settled(&app, sql, 0).await;
    let (_, q) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(q["quotas"]["rooms"]["used"], 0);
}

async fn create_room(app: &TestApp, name: &str) {
    let (status, body) = json(app.post_json("/api/v1/rooms", &json!({"name": name})).await).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn recording_starts_do_not_hold_the_project_while_livekit_is_slow() {
    let app = TestApp::spawn().await;
    create_room(&app, "rec").await;
    let stall = Duration::from_secs(2);
    app.sim()
        .set_latency("StartRoomCompositeEgress", Some(stall));
    let starts = concurrently(6, |_| {
        app.post_json("/api/v1/rooms/rec/recordings/start", &Value::Null)
    });
    let ((statuses, took), ()) = tokio::join!(starts, others_proceed(&app, stall));
    assert_eq!(statuses, vec![201; 6]);
    assert!(took < stall * 3, "6 starts took {took:?}");
    let (_, page) = json(app.get("/api/v1/recordings").await).await;
    assert_eq!(page["total"], 6);
    assert!(
        page["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "recording"
                && r["egress_id"].as_str().unwrap().starts_with("EG_")),
        "{page}"
    );
}

#[tokio::test]
async fn a_recording_in_flight_is_not_listed_and_a_failed_start_leaves_nothing() {
    let app = TestApp::spawn_with(|s| s.plans.professional.recordings = 1).await;
    create_room(&app, "rec").await;
    // While LiveKit has not answered, the reservation is not shown.
    app.sim()
        .set_latency("StartRoomCompositeEgress", Some(Duration::from_millis(800)));
    let start = app.post_json("/api/v1/rooms/rec/recordings/start", &Value::Null);
    let look = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        json(app.get("/api/v1/recordings").await).await
    };
    let (started, (_, page)) = tokio::join!(start, look);
    assert_eq!(page["total"], 0, "{page}");
    let (status, started) = json(started).await;
    assert_eq!(status, 201, "{started}");
    let id = started["recording"]["id"].as_i64().unwrap();
    let (status, _) = json(app.delete(&format!("/api/v1/recordings/{id}")).await).await;
    assert_eq!(status, 200);
    app.sim().set_latency("StartRoomCompositeEgress", None);
    // LiveKit failing: a clear 503, no row, no event, the quota untouched.
    app.sim().set_failing("StartRoomCompositeEgress", true);
    let quota_before = scalar(
        &app,
        "SELECT count(*) AS n FROM recordings WHERE project_id = $1",
    )
    .await;
    let err = expect_error(
        app.post_json("/api/v1/rooms/rec/recordings/start", &Value::Null)
            .await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert_eq!(err["error"], "LiveKit unavailable");
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM recordings WHERE project_id = $1"
        )
        .await,
        quota_before
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM events WHERE project_id = $1 AND event_type = 'recording.started'"
        )
        .await,
        1
    );
    assert!(app.sim().egresses().len() == 1, "no second egress");
}

#[tokio::test]
async fn a_recording_reservation_whose_process_died_is_dropped_by_its_job() {
    let app = TestApp::spawn().await;
    create_room(&app, "rec").await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query(
            "WITH r AS (INSERT INTO recordings (project_id, room_name, egress_id, format, file_path, status, created_at)
             VALUES ($1, $2, 'starting:abc', 'ogg', '/nowhere/pending-abc.ogg', 'starting', now() - interval '1 minute')
             RETURNING id)
             INSERT INTO background_jobs (job_type, data)
             SELECT 'settle_recording', jsonb_build_object('recording_id', id) FROM r",
        )
        .bind::<diesel::sql_types::Int8, _>(app.project.id)
        .bind::<diesel::sql_types::Text, _>(format!("{}_rec", app.project.room_prefix))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let sql = "SELECT count(*) AS n FROM recordings WHERE project_id = $1";
    settled(&app, sql, 0).await;
    settled(&app, NO_JOBS, 0).await;
}

#[tokio::test]
async fn trunk_creates_do_not_hold_a_lock_while_livekit_is_slow() {
    let app = TestApp::spawn().await;
    let stall = Duration::from_secs(2);
    app.sim().set_latency("CreateSIPOutboundTrunk", Some(stall));
    let creates = concurrently(4, |i| {
        let app = &app;
        async move {
            let body = trunk_body(&format!("+1800123456{i}"));
            app.post_json("/api/v1/sip/trunks", &body).await
        }
    });
    let ((statuses, took), ()) = tokio::join!(creates, others_proceed(&app, stall));
    assert_eq!(statuses, vec![201; 4]);
    // Serialised under the rules lock they took 4 × 2 s.
    assert!(took < stall * 3, "4 trunk creates took {took:?}");
    let (_, list) = json(app.get("/api/v1/sip/trunks").await).await;
    let trunks = list["trunks"].as_array().unwrap();
    assert_eq!(trunks.len(), 4);
    assert!(
        trunks.iter().all(|t| t["dispatch_rule_id"].is_string()),
        "{list}"
    );
    // Each trunk's rule is the one LiveKit has, and dispatches the agent
    // created meanwhile (the line's agent).
    let rules = app.sim().sip_dispatch_rules();
    for t in trunks {
        assert!(
            rules
                .iter()
                .any(|r| Some(r.sip_dispatch_rule_id.as_str()) == t["dispatch_rule_id"].as_str()),
            "{t} {rules:?}"
        );
    }
    assert_eq!(app.sim().sip_outbound_trunks().len(), 4);
    assert_eq!(app.sim().sip_dispatch_rules().len(), 4);
}

#[tokio::test]
async fn a_trunk_livekit_fails_to_make_leaves_nothing_and_its_number_free() {
    let app = TestApp::spawn().await;
    // The outbound trunk is made, the inbound one fails.
    app.sim().set_failing("CreateSIPInboundTrunk", true);
    let body = trunk_body("+18001234567");
    let err = expect_error(
        app.post_json("/api/v1/sip/trunks", &body).await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert_eq!(err["error"], "LiveKit unavailable");
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM sip_trunks WHERE project_id = $1"
        )
        .await,
        0
    );
    assert!(
        app.sim().sip_outbound_trunks().is_empty(),
        "undone in LiveKit"
    );
    let (_, list) = json(app.get("/api/v1/sip/trunks").await).await;
    assert_eq!(list["trunks"], json!([]));
    app.sim().set_failing("CreateSIPInboundTrunk", false);
    let (status, created) = json(app.post_json("/api/v1/sip/trunks", &body).await).await;
    assert_eq!(status, 201, "{created}");

    // A change LiveKit refuses puts the trunk back as it was.
    app.sim().set_failing("CreateSIPDispatchRule", true);
    let id = created["trunk"]["id"].as_i64().unwrap();
    expect_error(
        app.patch_json(
            &format!("/api/v1/sip/trunks/{id}"),
            &json!({"phone_number": "+18001234599", "auth_password": "p"}),
        )
        .await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    app.sim().set_failing("CreateSIPDispatchRule", false);
    let (_, list) = json(app.get("/api/v1/sip/trunks").await).await;
    assert_eq!(list["trunks"][0]["phone_number"], "+18001234567");
    assert_eq!(
        list["trunks"][0]["outbound_trunk_id"],
        created["trunk"]["outbound_trunk_id"]
    );
    assert_eq!(app.sim().sip_outbound_trunks().len(), 1);
}

#[tokio::test]
async fn an_overdue_call_livekit_cannot_end_is_ended_once_it_can() {
    let app = TestApp::spawn().await;
    let (status, t) = json(
        app.post_json("/api/v1/sip/trunks", &trunk_body("+18001234567"))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{t}");
    let (status, _) = json(
        app.post_json(
            "/api/v1/sip/configs",
            &json!({"name": "Short", "phone_number": "+18001234567", "max_call_duration": 1,
                    "trunk_id": t["trunk"]["id"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    app.sim().set_failing("RemoveParticipant", true);
    let (status, out) = json(
        app.post_json("/api/v1/sip/dial", &json!({"phone_number": "+17751234567"}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let full = out["call"]["full_room_name"].as_str().unwrap().to_owned();
    // Past the deadline, LiveKit refusing: the call stays live, the worker
    // holds no lock (a dial in the same project goes through).
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(app.sim().participants(&full).len(), 1);
    let live = "SELECT count(*) AS n FROM sip_calls WHERE project_id = $1 AND status IN ('dialing', 'ringing', 'active')";
    assert_eq!(scalar(&app, live).await, 1);
    app.sim().set_failing("RemoveParticipant", false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while scalar(&app, live).await > 0 {
        assert!(Instant::now() < deadline, "the overdue call was not ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(app.sim().participants(&full).is_empty());
    let ended = scalar(
        &app,
        "SELECT count(*) AS n FROM sip_calls WHERE project_id = $1 AND reason = 'max_call_duration'",
    )
    .await;
    assert_eq!(ended, 1);
}

#[tokio::test]
async fn a_trunk_reservation_whose_process_died_is_dropped_by_its_job() {
    let app = TestApp::spawn().await;
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query(
            "WITH t AS (INSERT INTO sip_trunks (project_id, name, phone_number, address, created_at, updated_at)
             VALUES ($1, 'Ghost', '+18001234567', 'sip.provider.example',
                     now() - interval '1 minute', now() - interval '1 minute') RETURNING id)
             INSERT INTO background_jobs (job_type, data, run_at)
             SELECT 'settle_trunk', jsonb_build_object('trunk_id', id), now() + interval '1 second'
               FROM t",
        )
        .bind::<diesel::sql_types::Int8, _>(app.project.id)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    // Not listed while LiveKit has not made it; its number is held.
    let (_, list) = json(app.get("/api/v1/sip/trunks").await).await;
    assert_eq!(list["trunks"], json!([]));
    expect_error(
        app.post_json("/api/v1/sip/trunks", &trunk_body("+18001234567"))
            .await,
        409,
        "CONFLICT",
    )
    .await;
    let sql = "SELECT count(*) AS n FROM sip_trunks WHERE project_id = $1";
    settled(&app, sql, 0).await;
    let (status, body) = json(
        app.post_json("/api/v1/sip/trunks", &trunk_body("+18001234567"))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// After `after`, `rounds` × (`GET /project`, `POST /agents`, `POST /token`
/// without agent) in the project, one after the other, each answered
/// with success (a pool timeout would be a 503); their times, sorted.
async fn timed_others(app: &TestApp, rounds: usize, after: Duration) -> Vec<Duration> {
    tokio::time::sleep(after).await;
    let mut took = Vec::new();
    for i in 0..rounds {
        let began = Instant::now();
        let (status, body) = json(app.get("/api/v1/project").await).await;
        assert_eq!(status, 200, "{body}");
        took.push(began.elapsed());
        let began = Instant::now();
        let mut body = agent();
        body["name"] = json!(format!("Agent {i}"));
        let (status, body) = json(app.post_json("/api/v1/agents", &body).await).await;
        assert_eq!(status, 201, "{body}");
        took.push(began.elapsed());
        let began = Instant::now();
        let token = json!({"identity": format!("u{i}"), "room": "side", "no_agent": true});
        let (status, body) = json(app.post_json("/api/v1/token", &token).await).await;
        assert_eq!(status, 200, "{body}");
        took.push(began.elapsed());
    }
    took.sort_unstable();
    took
}

#[tokio::test]
async fn forty_stalled_room_creates_leave_the_projects_other_requests_fast() {
    let app = TestApp::spawn().await;
    let stall = Duration::from_secs(2);
    app.sim().set_latency("CreateRoom", Some(stall));
    let creates = concurrently(40, |i| {
        let app = &app;
        async move {
            let body = json!({"name": format!("load-{i}")});
            app.post_json("/api/v1/rooms", &body).await
        }
    });
    let others = timed_others(&app, 15, Duration::from_millis(300));
    let ((statuses, all), took) = tokio::join!(creates, others);
    assert_eq!(statuses, vec![201; 40]);
    let p99 = took[took.len() * 99 / 100];
    eprintln!(
        "40 creates stalled 2 s: all done in {all:?}; other requests p50 {:?}, p99 {p99:?}",
        took[took.len() / 2]
    );
    // Behind the project lock they waited for whole stalls (seconds, each
    // create after the other). The p99 itself is a figure of
    // bench/stalled.sh: a debug build on a busy 2-core host saw 604 ms
    // (the 40 confirms and their webhooks land at once when the stall
    // ends), so this bound only tells "waited for a stall" apart.
    assert!(p99 < stall * 3 / 4, "p99 {p99:?}");
    assert!(all < stall * 3, "40 creates took {all:?}");
}

/// A trunk for the project's dials.
async fn dial_ready(app: &TestApp) {
    let (status, t) = json(
        app.post_json("/api/v1/sip/trunks", &trunk_body("+18001234567"))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{t}");
}

fn dial_body() -> Value {
    json!({"phone_number": "+17751234567"})
}

const SIP_CALLS_USED: &str = "SELECT coalesce(sum(used), 0)::bigint AS n FROM quota_counters
     WHERE project_id = $1 AND resource = 'sip_calls'";

#[tokio::test]
async fn twenty_stalled_dials_leave_the_projects_other_requests_fast() {
    let app = TestApp::spawn_with(|s| s.plans.professional.sip_configs = 50).await;
    dial_ready(&app).await;
    let stall = Duration::from_secs(2);
    app.sim().set_latency("CreateSIPParticipant", Some(stall));
    let body = dial_body();
    let dials = concurrently(20, |_| app.post_json("/api/v1/sip/dial", &body));
    let ((statuses, all), took) =
        tokio::join!(dials, timed_others(&app, 15, Duration::from_millis(300)));
    assert_eq!(statuses, vec![200; 20]);
    let p99 = took[took.len() * 99 / 100];
    eprintln!(
        "20 dials stalled 2 s: all done in {all:?}; other requests p50 {:?}, p99 {p99:?}",
        took[took.len() / 2]
    );
    // Held behind the dials' transactions (the dial lock, the sessions
    // counter) they waited for whole stalls (seconds). The p99 itself is a
    // figure of bench/stalled.sh (a debug build on a busy host is no
    // measure of it): this bound only tells "waited for a stall" apart.
    assert!(p99 < stall * 3 / 4, "p99 {p99:?}");
    assert!(all < stall * 3, "20 dials took {all:?}");
    app.sim().set_latency("CreateSIPParticipant", None);
    // Twenty calls, each in its own room, each reported once.
    let rooms = "SELECT count(DISTINCT room_name) AS n FROM sip_calls WHERE project_id = $1";
    assert_eq!(scalar(&app, rooms).await, 20);
    let initiated = "SELECT count(*) AS n FROM events
                     WHERE project_id = $1 AND event_type = 'sip.call_initiated'";
    assert_eq!(scalar(&app, initiated).await, 20);
    assert_eq!(scalar(&app, SIP_CALLS_USED).await, 20);
}

#[tokio::test]
async fn a_dial_livekit_fails_after_the_commit_leaves_no_call_and_frees_the_quota() {
    let app = TestApp::spawn_with(|s| s.plans.professional.sip_configs = 1).await;
    dial_ready(&app).await;
    let rows = "SELECT (SELECT count(*) FROM sip_calls WHERE project_id = $1)
                     + (SELECT count(*) FROM sessions WHERE project_id = $1) AS n";
    let events = |kind: &str| {
        format!("SELECT count(*) AS n FROM events WHERE project_id = $1 AND event_type = '{kind}'")
    };
    // LiveKit down when the call is placed (the room was made): 503, the
    // room undone, no call, no session, no event, the quota free.
    app.sim().set_failing("CreateSIPParticipant", true);
    let err = expect_error(
        app.post_json("/api/v1/sip/dial", &dial_body()).await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
    assert_eq!(err["error"], "LiveKit unavailable");
    app.sim().set_failing("CreateSIPParticipant", false);
    assert_eq!(scalar(&app, rows).await, 0);
    assert_eq!(scalar(&app, SIP_CALLS_USED).await, 0);
    assert!(app.sim().rooms().is_empty(), "{:?}", app.sim().rooms());
    assert_eq!(scalar(&app, &events("session.started")).await, 0);
    assert_eq!(scalar(&app, &events("sip.call_status")).await, 0);

    // The callee busy: 409, the call reported failed exactly once.
    app.sim()
        .fail_next_call(voxplane::embedded::livekit::SimCallFailure::Busy);
    expect_error(
        app.post_json("/api/v1/sip/dial", &dial_body()).await,
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(scalar(&app, rows).await, 0);
    assert_eq!(scalar(&app, SIP_CALLS_USED).await, 0);
    assert_eq!(scalar(&app, &events("sip.call_status")).await, 1);
    assert_eq!(scalar(&app, &events("session.started")).await, 0);

    // The one call of the quota goes through now, reported once.
    let (status, out) = json(app.post_json("/api/v1/sip/dial", &dial_body()).await).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(scalar(&app, SIP_CALLS_USED).await, 1);
    assert_eq!(scalar(&app, &events("session.started")).await, 1);
    assert_eq!(scalar(&app, &events("sip.call_initiated")).await, 1);
}

#[tokio::test]
async fn dial_reservations_whose_process_died_are_settled_by_their_jobs() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    dial_ready(&app).await;
    // A call placed in LiveKit whose dial died before confirming it: the
    // row put back as the reservation it was.
    let (status, out) = json(app.post_json("/api/v1/sip/dial", &dial_body()).await).await;
    assert_eq!(status, 200, "{out}");
    let mut conn = app.conn().await;
    diesel::sql_query(
        "UPDATE sip_calls SET status = 'reserved', created_at = now() - interval '10 minutes'
         WHERE project_id = $1",
    )
    .bind::<diesel::sql_types::Int8, _>(app.project.id)
    .execute(&mut conn)
    .await
    .unwrap();
    // A reservation LiveKit never placed (a session and its call).
    let room = format!("{}_ghost-call", app.project.room_prefix);
    diesel::sql_query(
        "WITH s AS (INSERT INTO sessions (project_id, room_name, session_type, metadata)
                    VALUES ($1, $2, 'sip', '{}') RETURNING id)
         INSERT INTO sip_calls (project_id, session_id, room_name, participant_identity,
                                phone_number, direction, status, max_call_duration, deadline, created_at)
         SELECT $1, s.id, $2, 'sip_17751234599', '+17751234599', 'outbound', 'reserved', 60,
                now() + interval '1 minute', now() - interval '10 minutes' FROM s",
    )
    .bind::<diesel::sql_types::Int8, _>(app.project.id)
    .bind::<diesel::sql_types::Text, _>(&room)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(scalar(&app, SIP_CALLS_USED).await, 2);
    // Their settle jobs, due.
    diesel::sql_query(
        "INSERT INTO background_jobs (job_type, data)
         SELECT 'settle_dial', jsonb_build_object('call_id', id) FROM sip_calls
          WHERE project_id = $1 AND status = 'reserved'",
    )
    .bind::<diesel::sql_types::Int8, _>(app.project.id)
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    settled(&app, SIP_CALLS_USED, 1).await;
    settled(&app, NO_JOBS, 0).await;
    let metrics = app.state.metrics.render();
    for kind in ["dial_adopted", "dial_released"] {
        let line =
            format!("voxplane_jobs_run_total{{job_type=\"settle_dial\",outcome=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{metrics}");
    }
    // Adopted: live (the calls worker may have moved it on already).
    let calls = "SELECT count(*) AS n FROM sip_calls
                 WHERE project_id = $1 AND status IN ('dialing', 'ringing', 'active')";
    assert_eq!(scalar(&app, calls).await, 1);
    let reserved =
        "SELECT count(*) AS n FROM sip_calls WHERE project_id = $1 AND status = 'reserved'";
    assert_eq!(scalar(&app, reserved).await, 0);
}
