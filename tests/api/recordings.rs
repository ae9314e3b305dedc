//! Recordings through LiveKit Egress, against the simulator: start, stop,
//! the egress webhooks, list and detail, download with byte ranges,
//! deletion, failures and cross-project isolation.

use crate::common::{TestApp, expect_error, json};
use reqwest::Method;
use serde_json::{Value, json};
use voxplane::limits::plans::Plan;

async fn create_room(app: &TestApp, name: &str) {
    let (status, body) = json(app.post_json("/api/v1/rooms", &json!({"name": name})).await).await;
    assert_eq!(status, 201, "{body}");
}

async fn start(app: &TestApp, room: &str, body: Value) -> Value {
    let (status, out) = json(
        app.post_json(&format!("/api/v1/rooms/{room}/recordings/start"), &body)
            .await,
    )
    .await;
    assert_eq!(status, 201, "{out}");
    out
}

async fn stop_all(app: &TestApp, room: &str) -> Value {
    let (status, out) = json(
        app.post_json(&format!("/api/v1/rooms/{room}/recordings/stop"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    app.sim().flush_webhooks().await;
    out
}

/// The event types emitted for the test project, in order.
async fn event_types(app: &TestApp) -> Vec<(String, Value)> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_type: String,
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        data: Value,
    }
    let mut conn = app.conn().await;
    let rows: Vec<Row> =
        diesel::sql_query("SELECT event_type, data FROM events WHERE project_id = $1 ORDER BY id")
            .bind::<diesel::sql_types::Int8, _>(app.project.id)
            .load(&mut conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| (r.event_type, r.data)).collect()
}

async fn download(app: &TestApp, id: i64, range: Option<&str>) -> reqwest::Response {
    let mut req = app.req(Method::GET, &format!("/api/v1/recordings/{id}/download"));
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn recording_lifecycle_ogg_with_webhooks_events_and_download() {
    let app = TestApp::spawn().await;
    create_room(&app, "rec-room").await;
    let full = format!("{}_rec-room", app.project.room_prefix);

    let out = start(&app, "rec-room", json!({})).await;
    let rec = &out["recording"];
    assert_eq!(out["success"], true);
    assert_eq!(rec["room_name"], full);
    assert_eq!(rec["format"], "ogg");
    assert_eq!(rec["status"], "recording");
    let id = rec["id"].as_i64().unwrap();
    let egress_id = rec["egress_id"].as_str().unwrap().to_owned();
    assert!(egress_id.starts_with("EG_"));

    // The egress is an audio-only room composite with one OGG file under
    // <recordings_dir>/<project>/<room>/ (named by a key until its egress id
    // is known).
    let eg = app
        .sim()
        .egresses()
        .into_iter()
        .find(|e| e.egress_id == egress_id)
        .unwrap();
    let Some(voxplane::livekit::proto::egress_info::Request::RoomComposite(req)) = &eg.request
    else {
        panic!("room composite expected")
    };
    assert!(req.audio_only);
    assert_eq!(req.file_outputs.len(), 1);
    let expected_dir = std::path::absolute(&app.state.settings.recordings_dir)
        .unwrap()
        .join(app.project.id.to_string())
        .join(&full);
    assert!(
        std::path::Path::new(&req.file_outputs[0].filepath).starts_with(&expected_dir),
        "{}",
        req.file_outputs[0].filepath
    );

    // Not downloadable while recording.
    expect_error(download(&app, id, None).await, 409, "CONFLICT").await;

    let stopped = stop_all(&app, "rec-room").await;
    assert_eq!(stopped["stopped"][0]["egress_id"], egress_id.as_str());

    let (status, detail) = json(app.get(&format!("/api/v1/recordings/{id}")).await).await;
    assert_eq!(status, 200, "{detail}");
    let r = &detail["recording"];
    assert_eq!(r["status"], "completed", "{detail}");
    assert!(r["ended_at"].is_string());
    assert!(r["duration_seconds"].as_f64().unwrap() >= 2.0);
    let size = r["size_bytes"].as_i64().unwrap();
    assert!(size > 100);

    // The downloaded bytes are the file the egress wrote.
    let eg = app
        .sim()
        .egresses()
        .into_iter()
        .find(|e| e.egress_id == egress_id)
        .unwrap();
    // Once complete, the file is <recordings_dir>/<project>/<room>/<egress_id>.ogg.
    let final_path = expected_dir.join(format!("{egress_id}.ogg"));
    assert!(
        !std::path::Path::new(&eg.file_results[0].location).exists(),
        "the pending file was renamed"
    );
    let written = std::fs::read(&final_path).unwrap();
    assert_eq!(written.len() as i64, size);
    assert_eq!(eg.file_results[0].size, size);
    assert_eq!(&written[..4], b"OggS");
    let res = download(&app, id, None).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "audio/ogg");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-length"], size.to_string().as_str());
    assert!(h.contains_key("etag") && h.contains_key("last-modified"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), written.as_slice());

    // Events, in order, with the monitor fields.
    let events = event_types(&app).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("recording.") || k.starts_with("egress."))
        .collect();
    // `egress_started` is posted while the start's transaction is still
    // open, so egress.started and recording.started may commit in either
    // order; the ends come after both.
    let mut starts = kinds[..2].to_vec();
    starts.sort_unstable();
    assert_eq!(starts, ["egress.started", "recording.started"], "{kinds:?}");
    assert_eq!(
        kinds[2..],
        ["egress.ended", "recording.stopped"],
        "{kinds:?}"
    );
    let stopped_ev = &events
        .iter()
        .find(|(k, _)| k == "recording.stopped")
        .unwrap()
        .1;
    assert_eq!(stopped_ev["room_name"], full);
    assert_eq!(stopped_ev["recording_id"], id);
    assert_eq!(stopped_ev["status"], "completed");

    // Listed with filters.
    let (_, list) = json(app.get("/api/v1/recordings?status=completed").await).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["recordings"][0]["id"], id);
    let (_, list) = json(app.get("/api/v1/recordings?status=recording").await).await;
    assert_eq!(list["total"], 0);
    let (_, list) = json(
        app.get("/api/v1/recordings?room_name=rec-room&per_page=1")
            .await,
    )
    .await;
    assert_eq!(
        (list["total"].as_i64(), list["per_page"].as_i64()),
        (Some(1), Some(1))
    );
    let (_, list) = json(app.get("/api/v1/recordings?room_name=other").await).await;
    assert_eq!(list["total"], 0);
    expect_error(
        app.get("/api/v1/recordings?status=done").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get("/api/v1/recordings?per_page=0").await,
        400,
        "INVALID_REQUEST",
    )
    .await;

    // Stopping again: nothing active.
    let again = stop_all(&app, "rec-room").await;
    assert_eq!(again["stopped"], json!([]));
    let (status, _) = json(
        app.post_json(
            "/api/v1/rooms/rec-room/recordings/stop",
            &json!({"egress_id": egress_id}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409);

    // Delete removes the row and the file.
    let (status, _) = json(app.delete(&format!("/api/v1/recordings/{id}")).await).await;
    assert_eq!(status, 200);
    assert!(!final_path.exists());
    expect_error(
        app.get(&format!("/api/v1/recordings/{id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn download_byte_ranges() {
    let app = TestApp::spawn().await;
    create_room(&app, "ranges").await;
    let out = start(&app, "ranges", json!({"format": "wav"})).await;
    assert_eq!(out["recording"]["format"], "wav");
    let id = out["recording"]["id"].as_i64().unwrap();
    stop_all(&app, "ranges").await;
    let full = download(&app, id, None).await;
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "audio/wav");
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    let all = full.bytes().await.unwrap();
    assert_eq!(&all[..4], b"RIFF");
    assert_eq!(&all[8..12], b"WAVE");
    let len = all.len();

    for (range, from, to) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1999", 1000, 1999),
        (&*format!("bytes=-{}", 500), len - 500, len - 1),
        (&*format!("bytes={}-", len - 10), len - 10, len - 1),
        (
            &*format!("bytes={}-{}", len - 5, len + 100),
            len - 5,
            len - 1,
        ),
    ] {
        let res = download(&app, id, Some(range)).await;
        assert_eq!(res.status(), 206, "{range}");
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes {from}-{to}/{len}").as_str()
        );
        assert_eq!(
            res.headers()["content-length"],
            (to - from + 1).to_string().as_str()
        );
        assert_eq!(res.bytes().await.unwrap(), all.slice(from..=to), "{range}");
    }
    // Unsatisfiable: 416 with Content-Range: bytes */len, in the envelope.
    for range in [format!("bytes={len}-"), "bytes=-0".to_owned()] {
        let res = download(&app, id, Some(&range)).await;
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes */{len}").as_str()
        );
        expect_error(res, 416, "RANGE_NOT_SATISFIABLE").await;
    }
    // Malformed ranges and several ranges: the whole file, 200.
    for range in ["bytes=abc", "bytes=5-1", "items=0-1", "bytes=0-1,5-6"] {
        let res = download(&app, id, Some(range)).await;
        assert_eq!(res.status(), 200, "{range}");
        assert_eq!(res.bytes().await.unwrap(), all, "{range}");
    }
    // Conditional requests.
    let res = app
        .req(Method::GET, &format!("/api/v1/recordings/{id}/download"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    let res = app
        .req(Method::GET, &format!("/api/v1/recordings/{id}/download"))
        .header("Range", "bytes=0-9")
        .header("If-Range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn start_refusals_room_format_quota() {
    let app = TestApp::spawn_with(|s| s.plans.free.recordings = 1).await;
    // Unknown room → 404.
    expect_error(
        app.post_json("/api/v1/rooms/nowhere/recordings/start", &json!({}))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    create_room(&app, "fmt").await;
    expect_error(
        app.post_json(
            "/api/v1/rooms/fmt/recordings/start",
            &json!({"format": "flac"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    // No recording row was left behind by the refusals.
    let (_, list) = json(app.get("/api/v1/recordings").await).await;
    assert_eq!(list["total"], 0);

    // Quota (free plan: 1 per month).
    let free = app.create_project(Plan::Free).await;
    let res = app
        .client
        .post(app.url("/api/v1/rooms"))
        .header("X-API-Key", &free.key)
        .json(&json!({"name": "q"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let start_free = || {
        app.client
            .post(app.url("/api/v1/rooms/q/recordings/start"))
            .header("X-API-Key", &free.key)
            .json(&json!({}))
            .send()
    };
    assert_eq!(start_free().await.unwrap().status(), 201);
    expect_error(start_free().await.unwrap(), 429, "QUOTA_EXCEEDED").await;
}

#[tokio::test]
async fn delete_while_recording_stops_it_and_removes_everything() {
    delete_while_recording(TestApp::spawn().await).await;
    // `voxplane dev`'s recordings directory is relative (`.local/recordings`),
    // and so are the locations its simulator's egresses report.
    let relative = format!(
        ".local/test-recordings/relative-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let app =
        TestApp::spawn_with_sim(|sim| sim.recordings_dir = relative.clone().into(), |_| {}).await;
    assert!(app.sim().recordings_dir().is_relative());
    delete_while_recording(app).await;
    let _ = std::fs::remove_dir_all(&relative);
}

async fn delete_while_recording(app: TestApp) {
    create_room(&app, "del").await;
    let out = start(&app, "del", json!({})).await;
    let id = out["recording"]["id"].as_i64().unwrap();
    let egress_id = out["recording"]["egress_id"].as_str().unwrap().to_owned();
    let (status, body) = json(app.delete(&format!("/api/v1/recordings/{id}")).await).await;
    assert_eq!((status, body["success"].clone()), (200, json!(true)));
    app.sim().flush_webhooks().await;
    let eg = app
        .sim()
        .egresses()
        .into_iter()
        .find(|e| e.egress_id == egress_id)
        .unwrap();
    assert_eq!(
        eg.status,
        voxplane::livekit::proto::EgressStatus::EgressComplete as i32
    );
    assert!(!std::path::Path::new(&eg.file_results[0].location).exists());
    expect_error(
        app.get(&format!("/api/v1/recordings/{id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let (_, list) = json(app.get("/api/v1/recordings").await).await;
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn egress_failure_is_reported() {
    let app = TestApp::spawn().await;
    create_room(&app, "fail").await;
    let out = start(&app, "fail", json!({})).await;
    let id = out["recording"]["id"].as_i64().unwrap();
    let egress_id = out["recording"]["egress_id"].as_str().unwrap();
    // Over the simulator's control endpoint, as a person would.
    let fail = || {
        app.client
            .post(format!("{}/_sim/egress/{egress_id}/fail", app.sim().url()))
            .json(&json!({"error": "pipeline crashed"}))
            .send()
    };
    assert_eq!(fail().await.unwrap().status(), 204);
    app.sim().flush_webhooks().await;
    // Ended already: nothing to fail.
    assert_eq!(fail().await.unwrap().status(), 404);
    let (_, detail) = json(app.get(&format!("/api/v1/recordings/{id}")).await).await;
    assert_eq!(detail["recording"]["status"], "error", "{detail}");
    assert_eq!(detail["recording"]["error"], "pipeline crashed");
    let body = expect_error(download(&app, id, None).await, 409, "CONFLICT").await;
    assert!(body["error"].as_str().unwrap().contains("pipeline crashed"));
    let (_, list) = json(app.get("/api/v1/recordings?status=error").await).await;
    assert_eq!(list["total"], 1);
    let events = event_types(&app).await;
    let stopped = events
        .iter()
        .find(|(k, _)| k == "recording.stopped")
        .unwrap();
    assert_eq!(stopped.1["status"], "error");
}

#[tokio::test]
async fn room_deletion_completes_its_recordings() {
    let app = TestApp::spawn().await;
    create_room(&app, "gone").await;
    let out = start(&app, "gone", json!({})).await;
    let id = out["recording"]["id"].as_i64().unwrap();
    let (status, _) = json(app.delete("/api/v1/rooms/gone").await).await;
    assert_eq!(status, 200);
    app.sim().flush_webhooks().await;
    let (_, detail) = json(app.get(&format!("/api/v1/recordings/{id}")).await).await;
    assert_eq!(detail["recording"]["status"], "completed");
}

#[tokio::test]
async fn another_projects_recording_is_forbidden() {
    let app = TestApp::spawn().await;
    create_room(&app, "mine").await;
    let out = start(&app, "mine", json!({})).await;
    let id = out["recording"]["id"].as_i64().unwrap();
    stop_all(&app, "mine").await;
    let other = app.create_project(Plan::Professional).await;
    let as_other = |m: Method, p: String| {
        app.client
            .request(m, app.url(&p))
            .header("X-API-Key", &other.key)
            .send()
    };
    for path in [
        format!("/api/v1/recordings/{id}"),
        format!("/api/v1/recordings/{id}/download"),
    ] {
        expect_error(as_other(Method::GET, path).await.unwrap(), 403, "FORBIDDEN").await;
    }
    expect_error(
        as_other(Method::DELETE, format!("/api/v1/recordings/{id}"))
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    // Not in the other project's list; the owner still has it.
    let (_, list) = json(
        as_other(Method::GET, "/api/v1/recordings".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["total"], 0);
    // Stopping by egress id from another project: not found.
    let res = app
        .client
        .post(app.url("/api/v1/rooms/mine/recordings/stop"))
        .header("X-API-Key", &other.key)
        .json(&json!({"egress_id": out["recording"]["egress_id"]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    expect_error(app.get("/api/v1/recordings/999999").await, 404, "NOT_FOUND").await;
    assert_eq!(download(&app, id, None).await.status(), 200);
}

#[tokio::test]
async fn simulator_egress_rpcs_grants_list_and_stop() {
    use livekit_api::access_token::{AccessToken, VideoGrants};
    use livekit_api::services::egress::{EgressClient, EgressListFilter, EgressListOptions};
    let app = TestApp::spawn().await;
    let sim = app.sim();
    create_room(&app, "sim").await;
    let full = format!("{}_sim", app.project.room_prefix);
    let out = start(&app, "sim", json!({})).await;
    let egress_id = out["recording"]["egress_id"].as_str().unwrap().to_owned();
    let client = EgressClient::with_api_key(&sim.url(), sim.api_key(), sim.api_secret());
    let active = |active| EgressListOptions {
        filter: EgressListFilter::Room(full.clone()),
        active,
        page_token: None,
    };
    assert_eq!(client.list_egress(active(true)).await.unwrap().len(), 1);
    let ending = client.stop_egress(&egress_id).await.unwrap();
    assert_eq!(
        ending.status,
        voxplane::livekit::proto::EgressStatus::EgressEnding as i32
    );
    assert!(client.list_egress(active(true)).await.unwrap().is_empty());
    let all = client.list_egress(active(false)).await.unwrap();
    assert_eq!(all[0].file_results.len(), 1);
    let file = &all[0].file_results[0];
    // Voxplane renames the complete file to its egress id.
    sim.flush_webhooks().await;
    let renamed = std::path::Path::new(&file.location).with_file_name(format!("{egress_id}.ogg"));
    assert_eq!(std::fs::metadata(&renamed).unwrap().len() as i64, file.size);
    // Stopping a completed egress: failed_precondition; unknown: not_found.
    let err = client
        .stop_egress(&egress_id)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot be stopped"), "{err}");
    let err = client.stop_egress("EG_nope").await.unwrap_err().to_string();
    assert!(err.contains("egress does not exist"), "{err}");

    // A token without roomRecord is refused, as by the real server.
    let token = AccessToken::with_api_key(sim.api_key(), sim.api_secret())
        .with_grants(VideoGrants {
            room_admin: true,
            room: full.clone(),
            ..Default::default()
        })
        .to_jwt()
        .unwrap();
    for path in [
        "/twirp/livekit.Egress/ListEgress",
        "/twirp/livekit.SIP/ListSIPOutboundTrunk",
        "/twirp/livekit.SIP/CreateSIPParticipant",
    ] {
        let res = app
            .client
            .post(format!("{}{path}", sim.url()))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "unauthenticated", "{path}");
    }
}

/// Decodes a downloaded file with decoders independent of the simulator's
/// encoder (symphonia's demuxers and PCM decoder; the opus-rs Opus decoder)
/// and returns (mono samples in -1..1, sample rate, samples to skip).
fn decode(bytes: Vec<u8>, ext: &str) -> (Vec<f32>, u32, usize) {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::{CODEC_TYPE_OPUS, DecoderOptions};
    use symphonia::core::errors::Error;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;
    let mss = MediaSourceStream::new(Box::new(std::io::Cursor::new(bytes)), Default::default());
    let mut hint = Hint::new();
    hint.with_extension(ext);
    let mut format = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{ext}: not a readable container: {e}"))
        .format;
    let track = format.default_track().expect("an audio track").clone();
    let params = &track.codec_params;
    let mut out = Vec::new();
    if params.codec == CODEC_TYPE_OPUS {
        // The identification header (Ogg) or `dOps` (MP4), behind "OpusHead".
        let head = params.extra_data.as_deref().expect("an Opus header");
        assert_eq!(&head[..8], b"OpusHead", "{ext}");
        assert_eq!(head[9], 1, "{ext}: mono");
        let mut dec = opus_rs::OpusDecoder::new(48_000, 1).unwrap();
        let mut pcm = vec![0f32; 5760];
        loop {
            match format.next_packet() {
                Ok(p) => {
                    let n = dec.decode(&p.data, 5760, &mut pcm).unwrap();
                    out.extend_from_slice(&pcm[..n]);
                }
                Err(Error::IoError(_)) => break,
                Err(e) => panic!("{ext}: {e}"),
            }
        }
        // The encoder's delay (312 samples with libopus' defaults).
        (out, 48_000, 312)
    } else {
        let rate = params.sample_rate.unwrap();
        let mut dec = symphonia::default::get_codecs()
            .make(params, &DecoderOptions::default())
            .unwrap();
        loop {
            match format.next_packet() {
                Ok(p) => {
                    let buf = dec.decode(&p).unwrap();
                    let mut s = SampleBuffer::<f32>::new(buf.capacity() as u64, *buf.spec());
                    s.copy_interleaved_ref(buf);
                    out.extend_from_slice(s.samples());
                }
                Err(Error::IoError(_)) => break,
                Err(e) => panic!("{ext}: {e}"),
            }
        }
        (out, rate, 0)
    }
}

#[tokio::test]
async fn recordings_are_a_playable_tone_in_every_format() {
    let app = TestApp::spawn().await;
    create_room(&app, "tone").await;
    for (format, content_type, magic) in [
        ("ogg", "audio/ogg", &b"OggS"[..]),
        ("mp4", "audio/mp4", &b"ftyp"[..]),
        ("wav", "audio/wav", &b"RIFF"[..]),
    ] {
        let out = start(&app, "tone", json!({"format": format})).await;
        assert_eq!(out["recording"]["format"], format);
        let id = out["recording"]["id"].as_i64().unwrap();
        stop_all(&app, "tone").await;
        let (_, detail) = json(app.get(&format!("/api/v1/recordings/{id}")).await).await;
        let r = &detail["recording"];
        assert_eq!(r["status"], "completed", "{detail}");
        assert_eq!(r["content_type"], content_type);
        let seconds = r["duration_seconds"].as_f64().unwrap();
        let res = download(&app, id, None).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], content_type);
        let bytes = res.bytes().await.unwrap().to_vec();
        assert!(bytes.windows(4).take(16).any(|w| w == magic), "{format}");

        let (pcm, rate, skip) = decode(bytes, format);
        let rate_f = f64::from(rate);
        // As long as the recording says, give or take one Opus frame.
        let audio = pcm.len().saturating_sub(skip) as f64 / rate_f;
        assert!(
            (audio - seconds).abs() <= 0.03,
            "{format}: {audio} s decoded, {seconds} s reported"
        );
        // An audible 440 Hz tone: loud enough, and crossing zero upwards
        // 440 times a second.
        let mid = &pcm[skip + rate as usize / 10..pcm.len() - rate as usize / 10];
        let rms =
            (mid.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / mid.len() as f64).sqrt();
        assert!(rms > 0.15 && rms < 0.25, "{format}: rms {rms}");
        let ups = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        let hz = ups as f64 / (mid.len() as f64 / rate_f);
        assert!((hz - 440.0).abs() < 5.0, "{format}: {hz} Hz");
    }
}

#[tokio::test]
async fn a_format_the_egress_cannot_write_is_refused() {
    // Against LiveKit Egress (no WAV file type) only ogg and mp4 are offered.
    let app = TestApp::spawn_with(|s| s.recording_formats = vec!["ogg".into(), "mp4".into()]).await;
    create_room(&app, "lk").await;
    let e = expect_error(
        app.post_json(
            "/api/v1/rooms/lk/recordings/start",
            &json!({"format": "wav"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(e["error"], "format must be one of: ogg, mp4");
    assert_eq!(e["details"]["allowed"], json!(["ogg", "mp4"]));
    let (_, list) = json(app.get("/api/v1/recordings").await).await;
    assert_eq!(list["recordings"], json!([]));
    start(&app, "lk", json!({"format": "mp4"})).await;
}
