//! Background jobs (issue 19): a create that calls LiveKit commits a
//! settle job with its reservation; when the process dies between the
//! steps, a fresh process settles the reservation within one job period,
//! emitting the create's events once. The runner claims with SKIP LOCKED
//! and a lease: each job runs once across nodes, a failing job is retried
//! with backoff and kept as failed after its attempts, a job whose lease
//! ran out is taken over.

use crate::common::{TestApp, exec, json, scalar};
use crate::sip::{trunk, trunk_body};
use serde_json::json;
use std::time::{Duration, Instant};

/// Waits until `sql` returns `want`, at most `within`.
async fn until(app: &TestApp, sql: &str, want: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = scalar(app, sql).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got}, not {want} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn events(kind: &str) -> String {
    format!("SELECT count(*) AS n FROM events WHERE project_id = $1 AND event_type = '{kind}'")
}

const JOBS: &str = "SELECT count(*) AS n FROM background_jobs";

/// The value of a counter or gauge line of `/metrics` (0 when absent).
fn metric(app: &TestApp, line_start: &str) -> i64 {
    app.state
        .metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as i64)
}

fn job_runs(app: &TestApp, job_type: &str, outcome: &str) -> i64 {
    metric(
        app,
        &format!("voxplane_jobs_run_total{{job_type=\"{job_type}\",outcome=\"{outcome}\"}}"),
    )
}

/// Inserts `n` room reservations LiveKit never made, each with its settle
/// job (in one statement, as the create's transaction commits them), due
/// after `after_ms`.
async fn ghost_rooms(app: &TestApp, n: i64, after_ms: i64) {
    exec(
        app,
        &format!(
            "WITH r AS (
               INSERT INTO rooms (project_id, name, full_name, created_at)
               SELECT $1, 'ghost-' || i, p.room_prefix || '_ghost-' || i, now() - interval '1 minute'
                 FROM generate_series(1, {n}) i, projects p WHERE p.id = $1
               RETURNING id)
             INSERT INTO background_jobs (job_type, data, run_at)
             SELECT 'settle_room', jsonb_build_object('room_id', id),
                    now() + interval '{after_ms} milliseconds' FROM r"
        ),
    )
    .await;
}

/// Switches the simulator's webhooks on or off.
async fn set_webhooks(app: &TestApp, enabled: bool) {
    let res = app
        .client
        .put(format!("{}/_sim/webhooks", app.sim().url()))
        .json(&json!({ "enabled": enabled }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

const RESERVED_ROOMS: &str =
    "SELECT count(*) AS n FROM rooms WHERE project_id = $1 AND sid IS NULL AND status = 'active'";

#[tokio::test]
async fn a_room_create_whose_process_died_during_the_call_is_settled_by_a_fresh_process() {
    let mut app = TestApp::spawn_with(|s| s.livekit_timeout_ms = 1500).await;
    // LiveKit makes the room, then answers slowly: the process dies before
    // it hears back (and LiveKit's webhooks are lost).
    set_webhooks(&app, false).await;
    app.sim()
        .set_latency("CreateRoom", Some(Duration::from_millis(1200)));
    let request = app
        .req(reqwest::Method::POST, "/api/v1/rooms")
        .json(&json!({"name": "orphan"}));
    let pending = tokio::spawn(request.send());
    let full = format!("{}_orphan", app.project.room_prefix);
    let began = Instant::now();
    while !app.sim().rooms().iter().any(|r| r.name == full) {
        assert!(began.elapsed() < Duration::from_secs(5), "no CreateRoom");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop();
    let _ = pending.await;
    // Left half-done: the reservation (no sid) and its settle job.
    assert_eq!(scalar(&app, RESERVED_ROOMS).await, 1);
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM background_jobs WHERE job_type = 'settle_room'"
        )
        .await,
        1
    );
    // A fresh process records the room LiveKit made, once: due after the
    // LiveKit timeout and the margin (3.5 s), then one job period.
    let node = app.another_node(|s| s.livekit_timeout_ms = 1500).await;
    until(&node, RESERVED_ROOMS, 0, Duration::from_secs(8)).await;
    let sid = app
        .sim()
        .rooms()
        .into_iter()
        .find(|r| r.name == full)
        .unwrap()
        .sid;
    let (status, body) = json(node.get("/api/v1/rooms/orphan").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room"]["sid"], sid.as_str(), "{body}");
    until(&node, JOBS, 0, Duration::from_secs(2)).await;
    assert_eq!(scalar(&node, &events("room.started")).await, 1);
    assert_eq!(job_runs(&node, "settle_room", "room_recorded"), 1);
    let (_, q) = json(node.get("/api/v1/quota").await).await;
    assert_eq!(q["quotas"]["rooms"]["used"], 1, "{q}");
}

#[tokio::test]
async fn a_recording_start_whose_process_died_during_the_call_is_adopted_once() {
    let mut app = TestApp::spawn_with(|s| s.livekit_timeout_ms = 1500).await;
    let (status, body) = json(
        app.post_json("/api/v1/rooms", &json!({"name": "rec"}))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    set_webhooks(&app, false).await;
    app.sim().set_latency(
        "StartRoomCompositeEgress",
        Some(Duration::from_millis(1200)),
    );
    let request = app
        .req(reqwest::Method::POST, "/api/v1/rooms/rec/recordings/start")
        .json(&json!({}));
    let pending = tokio::spawn(request.send());
    let began = Instant::now();
    while app.sim().egresses().is_empty() {
        assert!(began.elapsed() < Duration::from_secs(5), "no egress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop();
    let _ = pending.await;
    let starting =
        "SELECT count(*) AS n FROM recordings WHERE project_id = $1 AND status = 'starting'";
    assert_eq!(scalar(&app, starting).await, 1);
    // Due after twice the LiveKit timeout and the margin (5 s).
    let node = app.another_node(|s| s.livekit_timeout_ms = 1500).await;
    until(&node, starting, 0, Duration::from_secs(9)).await;
    let egress = app.sim().egresses().pop().unwrap().egress_id;
    let (_, page) = json(node.get("/api/v1/recordings").await).await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(
        page["recordings"][0]["egress_id"],
        egress.as_str(),
        "{page}"
    );
    assert_eq!(page["recordings"][0]["status"], "recording", "{page}");
    assert_eq!(scalar(&node, &events("recording.started")).await, 1);
    // Reported as the start would have.
    let reported = "SELECT count(*) AS n FROM events WHERE project_id = $1
                     AND event_type = 'recording.started' AND data->>'room' = 'rec'
                     AND data->>'status' = 'recording'";
    assert_eq!(scalar(&node, reported).await, 1);
    until(&node, JOBS, 0, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_create_commits_its_settle_job_and_its_confirmation_cancels_it() {
    let app = TestApp::spawn().await;
    app.sim()
        .set_latency("CreateRoom", Some(Duration::from_millis(1500)));
    let body = json!({"name": "watched"});
    let create = app.post_json("/api/v1/rooms", &body);
    let look = async {
        // Committed with the reservation, due once the create can no
        // longer be waiting (LiveKit timeout 5 s + 2 s).
        let sql = "SELECT count(*) AS n FROM background_jobs j JOIN rooms r
                       ON r.id = (j.data->>'room_id')::bigint
                    WHERE j.job_type = 'settle_room' AND r.name = 'watched' AND r.project_id = $1
                      AND j.run_at - j.created_at BETWEEN interval '6.5 seconds' AND interval '7.5 seconds'";
        let deadline = Instant::now() + Duration::from_millis(1200);
        loop {
            let n = scalar(&app, sql).await;
            if n > 0 || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (created, during) = tokio::join!(create, look);
    assert_eq!(created.status(), 201);
    assert_eq!(
        during, 1,
        "the settle job is committed with the reservation"
    );
    assert_eq!(scalar(&app, JOBS).await, 0, "cancelled by the confirmation");
    // A create LiveKit refuses: compensated inline, its job cancelled too.
    app.sim().set_latency("CreateRoom", None);
    app.sim().set_failing("CreateRoom", true);
    let res = app
        .post_json("/api/v1/rooms", &json!({"name": "refused"}))
        .await;
    assert_eq!(res.status(), 503);
    assert_eq!(scalar(&app, JOBS).await, 0);
    app.sim().set_failing("CreateRoom", false);
    let (status, _) = json(
        app.post_json("/api/v1/rooms/watched/recordings/start", &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(scalar(&app, JOBS).await, 0);
}

#[tokio::test]
async fn two_nodes_run_each_job_exactly_once() {
    let app = TestApp::spawn_with(|s| s.jobs_poll_ms = 50).await;
    let node = app.another_node(|s| s.jobs_poll_ms = 50).await;
    // Due in a moment, for both runners at once.
    ghost_rooms(&app, 60, 500).await;
    until(&app, JOBS, 0, Duration::from_secs(10)).await;
    assert_eq!(scalar(&app, RESERVED_ROOMS).await, 0);
    let released =
        |outcome| job_runs(&app, "settle_room", outcome) + job_runs(&node, "settle_room", outcome);
    // Run twice, a job would find its reservation gone the second time.
    assert_eq!(released("room_released"), 60);
    assert_eq!(released("done"), 0);
    assert_eq!(released("retried"), 0);
    eprintln!(
        "settled by the first node {}, by the second {}",
        job_runs(&app, "settle_room", "room_released"),
        job_runs(&node, "settle_room", "room_released")
    );
    let (_, q) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(q["quotas"]["rooms"]["used"], 0, "{q}");
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_then_kept_as_failed() {
    let app = TestApp::spawn_with(|s| {
        s.jobs_poll_ms = 300;
        s.jobs_max_attempts = 3;
    })
    .await;
    // LiveKit failing while the job runs: nothing is decided without it.
    app.sim().set_failing("ListEgress", true);
    exec(
        &app,
        "WITH r AS (
           INSERT INTO recordings (project_id, room_name, egress_id, format, file_path, status, created_at)
           SELECT $1, p.room_prefix || '_rec', 'starting:abc', 'ogg', '/nowhere/pending-abc.ogg',
                  'starting', now() - interval '1 minute' FROM projects p WHERE p.id = $1
           RETURNING id)
         INSERT INTO background_jobs (job_type, data)
         SELECT 'settle_recording', jsonb_build_object('recording_id', id) FROM r",
    )
    .await;
    // Each failure recorded with its error, the lease released, the next
    // attempt after 300 ms, then 600 ms (from when each failed, so at
    // least that far from the enqueue).
    let after = |attempts: i64, ms: i64| {
        format!(
            "SELECT count(*) AS n FROM background_jobs
              WHERE attempts = {attempts} AND locked_by IS NULL AND locked_until IS NULL
                AND last_error LIKE '%ListEgress%' AND failed_at IS NULL
                AND run_at >= created_at + interval '{ms} milliseconds'"
        )
    };
    until(&app, &after(1, 300), 1, Duration::from_secs(3)).await;
    until(&app, &after(2, 900), 1, Duration::from_secs(3)).await;
    let failed = "SELECT count(*) AS n FROM background_jobs
                   WHERE failed_at IS NOT NULL AND attempts = 3 AND locked_by IS NULL
                     AND last_error LIKE '%ListEgress%'";
    until(&app, failed, 1, Duration::from_secs(5)).await;
    assert_eq!(job_runs(&app, "settle_recording", "retried"), 2);
    assert_eq!(job_runs(&app, "settle_recording", "failed"), 1);
    // Kept and visible, not run again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(scalar(&app, failed).await, 1);
    let reserved =
        "SELECT count(*) AS n FROM recordings WHERE project_id = $1 AND status = 'starting'";
    assert_eq!(scalar(&app, reserved).await, 1);
    assert_eq!(metric(&app, "voxplane_jobs{state=\"failed\"}"), 1);
    let (status, text) = {
        let res = app
            .anon(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };
    assert_eq!(status, 200);
    assert!(text.contains("voxplane_jobs{state=\"failed\"} 1"), "{text}");
    // Put back once LiveKit answers: the reservation is dropped.
    app.sim().set_failing("ListEgress", false);
    let id = scalar(&app, "SELECT id AS n FROM background_jobs").await;
    let admin = |args: &[&str]| {
        let out = crate::cli::voxplane()
            .arg("admin")
            .args(args)
            .env("DATABASE_URL", &app.db_url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = admin(&["jobs", "--failed"]);
    assert!(
        listed.starts_with(&format!("{id}\tsettle_recording\tfailed\tattempts=3\t"))
            && listed.contains("ListEgress"),
        "{listed}"
    );
    admin(&["retry-job", "--id", &id.to_string()]);
    until(&app, reserved, 0, Duration::from_secs(3)).await;
    until(&app, JOBS, 0, Duration::from_secs(2)).await;
    assert_eq!(job_runs(&app, "settle_recording", "recording_released"), 1);
}

#[tokio::test]
async fn a_job_whose_lease_ran_out_is_taken_over_and_a_live_lease_is_respected() {
    let app = TestApp::spawn().await;
    ghost_rooms(&app, 2, 60_000).await;
    // Both held (and due) at once: one by a process that died (its lease
    // ran out), one by a runner still working on it.
    exec(
        &app,
        "UPDATE background_jobs
            SET run_at = now(), locked_by = CASE WHEN data->>'room_id' = (SELECT min(id)::text FROM rooms)
                                 THEN 'dead-node' ELSE 'busy-node' END,
                locked_until = CASE WHEN data->>'room_id' = (SELECT min(id)::text FROM rooms)
                                    THEN now() - interval '1 second' ELSE now() + interval '1 hour' END,
                attempts = 1",
    )
    .await;
    until(&app, RESERVED_ROOMS, 1, Duration::from_secs(3)).await;
    let (_, first) = json(app.get("/api/v1/rooms/ghost-1").await).await;
    assert_eq!(first["code"], "NOT_FOUND", "{first}");
    assert_eq!(
        scalar(&app, "SELECT count(*) AS n FROM background_jobs WHERE locked_by = 'busy-node' AND attempts = 1").await,
        1
    );
    assert_eq!(scalar(&app, JOBS).await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(scalar(&app, RESERVED_ROOMS).await, 1, "the live lease held");
    assert_eq!(job_runs(&app, "settle_room", "room_released"), 1);
}

#[tokio::test]
async fn a_job_of_an_unknown_type_is_left_visible_not_dropped() {
    let app = TestApp::spawn().await;
    exec(
        &app,
        "INSERT INTO background_jobs (job_type, data) SELECT 'send_fax', '{\"to\": 1}' WHERE $1 > 0",
    )
    .await;
    let kept = "SELECT count(*) AS n FROM background_jobs
                 WHERE job_type = 'send_fax' AND failed_at IS NULL AND attempts = 0
                   AND locked_by IS NULL AND last_error LIKE 'unknown job type%'
                   AND run_at > now() + interval '5 minutes'";
    until(&app, kept, 1, Duration::from_secs(3)).await;
    assert_eq!(job_runs(&app, "send_fax", "unknown"), 1);
}

#[tokio::test]
async fn a_dial_whose_process_died_while_placing_the_call_is_adopted_once() {
    let mut app = TestApp::spawn().await;
    trunk(&app, "+18001234567").await;
    set_webhooks(&app, false).await;
    // LiveKit places the call, then answers slowly: the dial's process dies
    // before it confirms.
    app.sim()
        .set_latency("CreateSIPParticipant", Some(Duration::from_millis(1500)));
    let request = app
        .req(reqwest::Method::POST, "/api/v1/sip/dial")
        .json(&json!({"phone_number": "+17751234567"}));
    let pending = tokio::spawn(request.send());
    let placed = || {
        app.sim()
            .rooms()
            .iter()
            .any(|r| !app.sim().participants(&r.name).is_empty())
    };
    let began = Instant::now();
    while !placed() {
        assert!(began.elapsed() < Duration::from_secs(5), "no call placed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop();
    let _ = pending.await;
    let reserved =
        "SELECT count(*) AS n FROM sip_calls WHERE project_id = $1 AND status = 'reserved'";
    assert_eq!(scalar(&app, reserved).await, 1);
    // Its settle job is due once no dial can still be placing the call
    // (35 s + 4 × the LiveKit timeout + 2 s): brought forward here.
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM background_jobs WHERE job_type = 'settle_dial'
                AND run_at > now() + interval '50 seconds'"
        )
        .await,
        1
    );
    exec(
        &app,
        "UPDATE background_jobs SET run_at = now() WHERE $1 > 0",
    )
    .await;
    let node = app.another_node(|_| {}).await;
    until(&node, reserved, 0, Duration::from_secs(3)).await;
    let live = "SELECT count(*) AS n FROM sip_calls
                 WHERE project_id = $1 AND status IN ('dialing', 'ringing', 'active')";
    assert_eq!(scalar(&node, live).await, 1);
    until(&node, JOBS, 0, Duration::from_secs(2)).await;
    assert_eq!(scalar(&node, &events("session.started")).await, 1);
    assert_eq!(scalar(&node, &events("sip.call_initiated")).await, 1);
    assert_eq!(job_runs(&node, "settle_dial", "dial_adopted"), 1);
}

#[tokio::test]
async fn a_trunk_create_whose_process_died_is_undone_in_livekit_and_dropped() {
    let mut app = TestApp::spawn().await;
    let body = trunk_body("+18001234567");
    // A trunk whose LiveKit side is complete and recorded: left alone.
    let (status, kept) = json(
        app.post_json(
            "/api/v1/sip/trunks",
            &json!({"name": "Other", "phone_number": "+18001234599",
                    "address": "sip.provider.example", "auth_username": "u", "auth_password": "p"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{kept}");
    // LiveKit makes both trunks and the rule, then answers slowly: the
    // process dies before it records them.
    app.sim()
        .set_latency("CreateSIPDispatchRule", Some(Duration::from_millis(1500)));
    let pending = tokio::spawn(
        app.req(reqwest::Method::POST, "/api/v1/sip/trunks")
            .json(&body)
            .send(),
    );
    let began = Instant::now();
    while app.sim().sip_dispatch_rules().len() < 2 {
        assert!(began.elapsed() < Duration::from_secs(5), "no rule made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop();
    let _ = pending.await;
    app.sim().set_latency("CreateSIPDispatchRule", None);
    assert_eq!(app.sim().sip_outbound_trunks().len(), 2);
    assert_eq!(app.sim().sip_inbound_trunks().len(), 2);
    // Its settle job is due after the create's four LiveKit timeouts and
    // the margin (22 s): brought forward here.
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM background_jobs WHERE job_type = 'settle_trunk'
                AND run_at > now() + interval '15 seconds'"
        )
        .await,
        1
    );
    exec(
        &app,
        "UPDATE background_jobs SET run_at = now() WHERE $1 > 0",
    )
    .await;
    let node = app.another_node(|_| {}).await;
    until(
        &node,
        "SELECT count(*) AS n FROM sip_trunks WHERE project_id = $1",
        1,
        Duration::from_secs(3),
    )
    .await;
    until(&node, JOBS, 0, Duration::from_secs(2)).await;
    // What LiveKit made for it is gone; the other trunk's side is intact.
    let outbound = app.sim().sip_outbound_trunks();
    assert_eq!(outbound.len(), 1);
    assert_eq!(
        outbound[0].sip_trunk_id,
        kept["trunk"]["outbound_trunk_id"].as_str().unwrap()
    );
    let inbound = app.sim().sip_inbound_trunks();
    assert_eq!(inbound.len(), 1);
    assert_eq!(
        inbound[0].sip_trunk_id,
        kept["trunk"]["inbound_trunk_id"].as_str().unwrap()
    );
    let rules = app.sim().sip_dispatch_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].sip_dispatch_rule_id,
        kept["trunk"]["dispatch_rule_id"].as_str().unwrap()
    );
    assert_eq!(job_runs(&node, "settle_trunk", "trunk_released"), 1);
    // The number is free again.
    let (status, again) = json(node.post_json("/api/v1/sip/trunks", &body).await).await;
    assert_eq!(status, 201, "{again}");
}

#[tokio::test]
async fn a_trunk_change_whose_process_died_is_put_back_on_its_old_livekit_trunks() {
    let mut app = TestApp::spawn().await;
    let trunk = &trunk(&app, "+18001234567").await;
    let path = format!("/api/v1/sip/trunks/{}", trunk["id"]);
    let lk_id = |name: &str| trunk[name].as_str().unwrap().to_owned();
    let (old_out, old_in, old_rule) = (
        lk_id("outbound_trunk_id"),
        lk_id("inbound_trunk_id"),
        lk_id("dispatch_rule_id"),
    );
    // A new number recreates the LiveKit side; LiveKit makes it, then
    // answers slowly: the process dies before it records the new ids.
    app.sim()
        .set_latency("CreateSIPDispatchRule", Some(Duration::from_millis(1500)));
    let pending = tokio::spawn(
        app.req(reqwest::Method::PATCH, &path)
            .json(&json!({"phone_number": "+18001234568", "auth_password": "p"}))
            .send(),
    );
    let began = Instant::now();
    while app.sim().sip_dispatch_rules().len() < 2 {
        assert!(began.elapsed() < Duration::from_secs(5), "no rule made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop();
    let _ = pending.await;
    app.sim().set_latency("CreateSIPDispatchRule", None);
    assert_eq!(app.sim().sip_outbound_trunks().len(), 2);
    // Left half-done: the new number on the old LiveKit trunks.
    let half_done = format!(
        "SELECT count(*) AS n FROM sip_trunks WHERE project_id = $1
            AND phone_number = '+18001234568' AND outbound_trunk_id = '{old_out}'"
    );
    assert_eq!(scalar(&app, &half_done).await, 1);
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) AS n FROM background_jobs WHERE job_type = 'settle_relink'
                AND run_at > now() + interval '15 seconds' AND $1 > 0"
        )
        .await,
        1
    );
    exec(
        &app,
        "UPDATE background_jobs SET run_at = now() WHERE $1 > 0",
    )
    .await;
    let node = app.another_node(|_| {}).await;
    until(&node, JOBS, 0, Duration::from_secs(3)).await;
    assert_eq!(job_runs(&node, "settle_relink", "trunk_restored"), 1);
    // Put back: the old number on its old LiveKit side, which is all LiveKit has.
    let (_, list) = json(node.get("/api/v1/sip/trunks").await).await;
    let row = &list["trunks"][0];
    assert_eq!(row["phone_number"], "+18001234567", "{list}");
    assert_eq!(row["outbound_trunk_id"], old_out.as_str());
    let ids = |v: Vec<String>| v;
    assert_eq!(
        ids(app
            .sim()
            .sip_outbound_trunks()
            .into_iter()
            .map(|t| t.sip_trunk_id)
            .collect()),
        vec![old_out.clone()]
    );
    assert_eq!(
        ids(app
            .sim()
            .sip_inbound_trunks()
            .into_iter()
            .map(|t| t.sip_trunk_id)
            .collect()),
        vec![old_in]
    );
    assert_eq!(
        ids(app
            .sim()
            .sip_dispatch_rules()
            .into_iter()
            .map(|r| r.sip_dispatch_rule_id)
            .collect()),
        vec![old_rule]
    );
    // The change can be made again, and then sticks.
    let (status, changed) = json(
        node.req(reqwest::Method::PATCH, &path)
            .json(&json!({"phone_number": "+18001234568", "auth_password": "p"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["trunk"]["phone_number"], "+18001234568");
    assert_eq!(app.sim().sip_outbound_trunks().len(), 1);
    assert_eq!(scalar(&node, JOBS).await, 0, "its settle job cancelled");
}
