//! The LiveKit simulator, driven by the real `livekit-api` clients over HTTP
//! (plus raw requests for routing and auth edge cases), and its webhooks
//! checked with the real `WebhookReceiver`.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use livekit_api::access_token::{AccessToken, TokenVerifier, VideoGrants};
use livekit_api::services::agent_dispatch::AgentDispatchClient;
use livekit_api::services::room::{
    CreateRoomOptions, RoomClient, SendDataOptions, UpdateParticipantOptions,
};
use livekit_api::services::{ServerError, ServiceError};
use livekit_api::webhooks::{WebhookError, WebhookReceiver};
use livekit_protocol as proto;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use voxplane::embedded::livekit::{LiveKitSim, SimConfig, SimKind, SimParticipant};

mod protocol;

fn start() -> LiveKitSim {
    LiveKitSim::start(SimConfig::dev_defaults()).expect("simulator")
}

fn rooms(sim: &LiveKitSim) -> RoomClient {
    RoomClient::with_api_key(&sim.url(), sim.api_key(), sim.api_secret())
}

fn dispatches(sim: &LiveKitSim) -> AgentDispatchClient {
    AgentDispatchClient::with_api_key(&sim.url(), sim.api_key(), sim.api_secret())
}

fn token(sim: &LiveKitSim, video: VideoGrants) -> String {
    AccessToken::with_api_key(sim.api_key(), sim.api_secret())
        .with_grants(video)
        .to_jwt()
        .unwrap()
}

/// An HS256 JWT with exactly these claims.
fn jwt(secret: &str, claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::Mac;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{sig}")
}

fn admin(room: &str) -> VideoGrants {
    VideoGrants {
        room_admin: true,
        room: room.to_owned(),
        ..Default::default()
    }
}

/// The Twirp code and message of a failed call.
fn twirp<T: std::fmt::Debug>(res: Result<T, ServiceError>) -> (String, String) {
    match res {
        Err(ServiceError::Twirp(ServerError::Twirp(e))) => (e.code, e.msg),
        other => panic!("expected a Twirp error, got {other:?}"),
    }
}

/// Whether a call failed at the HTTP level (plain-text 401, transport error).
fn is_request_error<T: std::fmt::Debug>(res: &Result<T, ServiceError>) -> bool {
    matches!(res, Err(ServiceError::Twirp(ServerError::Request(_))))
}

/// A raw Twirp request.
async fn raw(
    sim: &LiveKitSim,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    auth: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut req = client
        .request(method, format!("{}{path}", sim.url()))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.send().await.unwrap()
}

async fn json_body(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, ct, body)
}

// ---------------------------------------------------------------- webhooks

/// One webhook as received.
#[derive(Debug, Clone)]
struct Hook {
    auth: String,
    content_type: String,
    user_agent: String,
    body: String,
}

#[derive(Default)]
struct HookState {
    got: Mutex<Vec<Hook>>,
    fail_next: AtomicUsize,
}

/// A webhook receiver on 127.0.0.1:0 that records what it gets and can
/// refuse the first requests with a 500.
struct Hooks {
    url: String,
    state: Arc<HookState>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn receive_hook(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<HookState>,
) -> HttpResponse {
    if state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return HttpResponse::InternalServerError().finish();
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    state.got.lock().unwrap().push(Hook {
        auth: header("authorization"),
        content_type: header("content-type"),
        user_agent: header("user-agent"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    HttpResponse::Ok().finish()
}

impl Hooks {
    fn start(fail_first: usize) -> Self {
        let state = Arc::new(HookState::default());
        state.fail_next.store(fail_first, Ordering::SeqCst);
        let data = web::Data::from(state.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/livekit/webhook", web::post().to(receive_hook))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .unwrap()
                .run();
                tx.send((addr, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (addr, handle) = rx.recv().unwrap();
        Hooks {
            url: format!("http://{addr}/livekit/webhook"),
            state,
            handle,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<Hook> {
        self.state.got.lock().unwrap().clone()
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn verify(sim: &LiveKitSim, hook: &Hook) -> proto::WebhookEvent {
    WebhookReceiver::new(TokenVerifier::with_api_key(sim.api_key(), sim.api_secret()))
        .receive(&hook.body, &hook.auth)
        .unwrap_or_else(|e| panic!("webhook rejected: {e}: {}", hook.body))
}

fn names(sim: &LiveKitSim, hooks: &[Hook]) -> Vec<String> {
    hooks.iter().map(|h| verify(sim, h).event).collect()
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn room_service_happy_paths() {
    let sim = start();
    let client = rooms(&sim);

    let created = client
        .create_room(
            "r1",
            CreateRoomOptions {
                max_participants: 5,
                metadata: "m0".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(created.sid.starts_with("RM_"), "{}", created.sid);
    assert_eq!(created.name, "r1");
    assert_eq!(created.max_participants, 5);
    assert_eq!(created.metadata, "m0");
    assert_eq!(created.empty_timeout, 300);
    assert!(created.creation_time > 1_600_000_000);
    // Get-or-create: the same room comes back.
    let again = client.create_room("r1", Default::default()).await.unwrap();
    assert_eq!(again.sid, created.sid);
    client.create_room("r2", Default::default()).await.unwrap();

    let all = client.list_rooms(vec![]).await.unwrap();
    let listed: Vec<_> = all.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(listed, ["r1", "r2"]);
    let some = client
        .list_rooms(vec!["r2".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(some.len(), 1);
    assert_eq!(some[0].name, "r2");

    let updated = client.update_room_metadata("r1", "m1").await.unwrap();
    assert_eq!(updated.metadata, "m1");
    assert_eq!(updated.sid, created.sid);

    let alice = SimParticipant::new("alice")
        .name("Alice")
        .metadata("a")
        .attribute("k", "v")
        .attribute("gone", "soon");
    let joined = sim.join("r1", alice).await.unwrap();
    assert!(joined.sid.starts_with("PA_"));
    assert_eq!(joined.tracks.len(), 1);
    assert!(joined.tracks[0].sid.starts_with("TR_"));
    sim.join(
        "r1",
        SimParticipant::new("bot")
            .kind(SimKind::Agent)
            .without_audio(),
    )
    .await
    .unwrap();

    let people = client.list_participants("r1").await.unwrap();
    let ids: Vec<_> = people.iter().map(|p| p.identity.as_str()).collect();
    assert_eq!(ids, ["alice", "bot"]);
    assert_eq!(people[1].kind, proto::participant_info::Kind::Agent as i32);
    assert_eq!(
        people[0].state,
        proto::participant_info::State::Active as i32
    );
    let room = &client.list_rooms(vec!["r1".into()]).await.unwrap()[0];
    assert_eq!(room.num_participants, 2);
    assert_eq!(room.num_publishers, 1);

    let got = client.get_participant("r1", "alice").await.unwrap();
    assert_eq!(got.sid, joined.sid);
    assert_eq!(got.name, "Alice");
    assert_eq!(got.attributes["k"], "v");

    let changed = client
        .update_participant(
            "r1",
            "alice",
            UpdateParticipantOptions {
                metadata: "b".into(),
                attributes: HashMap::from([
                    ("k".to_owned(), "w".to_owned()),
                    ("gone".to_owned(), String::new()),
                ]),
                permission: Some(proto::ParticipantPermission {
                    can_subscribe: true,
                    ..Default::default()
                }),
                name: String::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.name, "Alice", "an empty name changes nothing");
    assert_eq!(changed.metadata, "b");
    assert_eq!(
        changed.attributes,
        HashMap::from([("k".to_owned(), "w".to_owned())])
    );
    assert!(!changed.permission.as_ref().unwrap().can_publish);
    assert_eq!(sim.participants("r1")[0].metadata, "b");

    client.remove_participant("r1", "bot").await.unwrap();
    assert_eq!(client.list_participants("r1").await.unwrap().len(), 1);
    assert_eq!(sim.rooms()[0].num_participants, 1);

    client.delete_room("r1").await.unwrap();
    let left: Vec<_> = client
        .list_rooms(vec![])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(left, ["r2"]);
    assert!(sim.participants("r1").is_empty());
}

#[tokio::test]
async fn unknown_rooms_participants_and_tracks_are_not_found_with_livekit_messages() {
    let sim = start();
    let client = rooms(&sim);
    let room_missing = (
        "not_found".to_owned(),
        "requested room does not exist".to_owned(),
    );
    let participant_missing = (
        "not_found".to_owned(),
        "participant does not exist".to_owned(),
    );

    assert_eq!(twirp(client.delete_room("nope").await), room_missing);
    assert_eq!(
        twirp(client.update_room_metadata("nope", "m").await),
        room_missing
    );
    assert_eq!(
        twirp(client.get_participant("nope", "a").await),
        participant_missing
    );
    assert!(client.list_participants("nope").await.unwrap().is_empty());
    assert_eq!(
        twirp(client.mute_published_track("nope", "a", "TR_x", true).await),
        room_missing
    );
    assert_eq!(
        twirp(
            client
                .send_data("nope", b"x".to_vec(), Default::default())
                .await
        ),
        room_missing
    );
    assert_eq!(
        twirp(dispatches(&sim).list_dispatch("nope").await),
        room_missing
    );

    sim.join("r", SimParticipant::new("alice")).await.unwrap();
    assert_eq!(
        twirp(client.get_participant("r", "bob").await),
        participant_missing
    );
    assert_eq!(
        twirp(
            client
                .update_participant("r", "bob", Default::default())
                .await
        ),
        participant_missing
    );
    assert_eq!(
        twirp(client.remove_participant("r", "bob").await),
        ("not_found".to_owned(), "participant not found".to_owned())
    );
    assert_eq!(
        twirp(client.mute_published_track("r", "bob", "TR_x", true).await),
        participant_missing
    );
    assert_eq!(
        twirp(
            client
                .mute_published_track("r", "alice", "TR_x", true)
                .await
        ),
        ("not_found".to_owned(), "track is not found".to_owned())
    );
    assert_eq!(
        twirp(dispatches(&sim).delete_dispatch("AD_nope", "r").await),
        ("not_found".to_owned(), "dispatch ID not found".to_owned())
    );
}

#[tokio::test]
async fn mute_published_track_returns_the_track_and_toggles_muted() {
    let sim = start();
    let client = rooms(&sim);
    let alice = sim.join("r", SimParticipant::new("alice")).await.unwrap();
    let sid = alice.tracks[0].sid.clone();
    assert!(!alice.tracks[0].muted);

    let muted = client
        .mute_published_track("r", "alice", &sid, true)
        .await
        .unwrap();
    assert_eq!(muted.sid, sid);
    assert!(muted.muted);
    assert_eq!(muted.r#type, proto::TrackType::Audio as i32);
    assert!(client.get_participant("r", "alice").await.unwrap().tracks[0].muted);

    let unmuted = client
        .mute_published_track("r", "alice", &sid, false)
        .await
        .unwrap();
    assert!(!unmuted.muted);
    assert!(!sim.participants("r")[0].tracks[0].muted);
}

#[tokio::test]
async fn send_data_whisper_reaches_only_the_named_identities() {
    let sim = start();
    let client = rooms(&sim);
    for who in ["caller", "agent", "supervisor"] {
        sim.join("call", SimParticipant::new(who)).await.unwrap();
    }
    client
        .send_data(
            "call",
            b"psst".to_vec(),
            SendDataOptions {
                destination_identities: vec!["agent".into()],
                topic: Some("whisper".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client
        .send_data(
            "call",
            vec![0xff, 0x00],
            SendDataOptions {
                kind: proto::data_packet::Kind::Lossy,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let sent = sim.data_packets();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].room, "call");
    assert_eq!(sent[0].data, b"psst");
    assert_eq!(sent[0].topic.as_deref(), Some("whisper"));
    assert_eq!(sent[0].destination_identities, ["agent"]);
    assert_eq!(sent[0].recipients, ["agent"]);
    assert_eq!(sent[0].kind, proto::data_packet::Kind::Reliable as i32);
    assert_eq!(sent[1].recipients, ["caller", "agent", "supervisor"]);
    assert_eq!(sent[1].kind, proto::data_packet::Kind::Lossy as i32);
    assert_eq!(sent[1].topic, None);

    // The same through the control endpoint.
    let res = reqwest::get(format!("{}/_sim/data?room=call", sim.url()))
        .await
        .unwrap();
    let (status, _, body) = json_body(res).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["data"], "psst");
    assert_eq!(body[0]["data_base64"], "cHNzdA==");
    assert_eq!(body[0]["recipients"], serde_json::json!(["agent"]));
    assert_eq!(body[1]["data"], Value::Null);
    assert_eq!(body[1]["data_base64"], "/wA=");
}
