//! The control surface: what the real server learns over WebRTC (people
//! joining and leaving) and what tests want to look at (data packets,
//! dispatches), as Rust calls and as JSON endpoints under `/_sim/`
//! (loopback clients only):
//!
//! | endpoint | does |
//! |---|---|
//! | `GET /_sim/rooms` | rooms (`Room` JSON, camelCase) |
//! | `GET /_sim/rooms/{room}/participants` | participants (`ParticipantInfo` JSON) |
//! | `POST /_sim/rooms/{room}/participants` | join: `{"identity", "name"?, "kind"?: "standard"\|"sip"\|"agent", "metadata"?, "attributes"?, "audio_track"?: true}` → the `ParticipantInfo` |
//! | `DELETE /_sim/rooms/{room}/participants/{identity}` | leave → 204, 404 when not there |
//! | `GET /_sim/rooms/{room}/dispatches` | agent dispatches (`AgentDispatch` JSON) |
//! | `GET /_sim/data[?room=…]` | data packets sent with `SendData` |
//! | `POST /_sim/webhooks/flush` | 204 once every queued webhook was delivered or given up |
//! | `PUT /_sim/webhooks` | `{"enabled": false}`: webhooks from now on are lost (as LiveKit's in-memory queue loses them); `true` sends again → 204 |
//! | `GET /_sim/sip/calls` | placed calls: `{"call_id", "room", "identity", "phone_number", "status", "reason"}` |
//! | `POST /_sim/sip/calls/{call_id}/{action}` | `answer`, `busy`, `no-answer`, `fail` (body `{"reason"}` optional) or `hangup` → the call; 404 unknown, 409 when its status does not allow it |
//! | `PUT /_sim/sip/progress` | `{"ring_after_ms", "answer_after_ms": null\|ms}`: how calls move on by themselves (null: ring until answered) |
//! | `POST /_sim/sip/next-call` | `{"outcome": "busy"\|"no-answer"\|"fail"}`: the next CreateSIPParticipant is rejected with that SIP status → 204 |
//! | `PUT /_sim/latency` | `{"rpc": "CreateSIPParticipant", "ms": 2000}`: that RPC answers `ms` later (it takes effect at once); `"ms": null` or `0` answers at once again → 204 |
//! | `PUT /_sim/failing` | `{"rpc": "CreateRoom", "failing": true}`: that RPC answers Twirp `unavailable` (503) and changes nothing; `false` answers normally again → 204 |
//! | `POST /_sim/egress/{egress_id}/fail` | `{"error"}`: a running egress ends `EGRESS_FAILED` with it (`egress_ended`) → 204; 404 unknown or ended |

use super::services::sip::{self, ActError, CallAction, CallFailure, CallProgress, SimCall};
use super::state::{Shared, new_id, now_millis};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, guard, web};
use anyhow::{anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use livekit_protocol::participant_info::{Kind, State};
use livekit_protocol::{
    DisconnectReason, ParticipantInfo, ParticipantPermission, TrackInfo, TrackSource, TrackType,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The kind of a simulated participant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimKind {
    /// A person with a LiveKit client (`STANDARD`).
    #[default]
    Standard,
    /// A phone call bridged by LiveKit SIP (`SIP`).
    Sip,
    /// An agent worker (`AGENT`).
    Agent,
}

impl SimKind {
    fn proto(self) -> Kind {
        match self {
            Self::Standard => Kind::Standard,
            Self::Sip => Kind::Sip,
            Self::Agent => Kind::Agent,
        }
    }
}

/// A participant to join into a room (see [`LiveKitSim::join`](super::LiveKitSim::join)).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SimParticipant {
    /// The identity (unique within the room; joining again replaces it).
    pub identity: String,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// The participant kind.
    #[serde(default)]
    pub kind: SimKind,
    /// The participant metadata.
    #[serde(default)]
    pub metadata: String,
    /// The participant attributes.
    #[serde(default)]
    pub attributes: HashMap<String, String>,
    /// Whether it publishes one microphone (Opus) track.
    #[serde(default = "yes")]
    pub audio_track: bool,
}

fn yes() -> bool {
    true
}

impl SimParticipant {
    /// A standard participant with one audio track and nothing else set.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            name: String::new(),
            kind: SimKind::Standard,
            metadata: String::new(),
            attributes: HashMap::new(),
            audio_track: true,
        }
    }

    /// With a display name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// With a kind.
    pub fn kind(mut self, kind: SimKind) -> Self {
        self.kind = kind;
        self
    }

    /// With metadata.
    pub fn metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// With one more attribute.
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Publishing no track.
    pub fn without_audio(mut self) -> Self {
        self.audio_track = false;
        self
    }

    /// The `ParticipantInfo` of an active participant that just joined.
    fn into_info(self) -> ParticipantInfo {
        let ms = now_millis();
        let tracks: Vec<TrackInfo> = if self.audio_track {
            vec![TrackInfo {
                sid: new_id("TR_"),
                r#type: TrackType::Audio as i32,
                name: "microphone".to_owned(),
                source: TrackSource::Microphone as i32,
                mime_type: "audio/opus".to_owned(),
                ..Default::default()
            }]
        } else {
            Vec::new()
        };
        ParticipantInfo {
            sid: new_id("PA_"),
            identity: self.identity,
            state: State::Active as i32,
            is_publisher: !tracks.is_empty(),
            tracks,
            metadata: self.metadata,
            joined_at: ms / 1000,
            joined_at_ms: ms,
            name: self.name,
            version: 1,
            permission: Some(ParticipantPermission {
                can_subscribe: true,
                can_publish: true,
                can_publish_data: true,
                ..Default::default()
            }),
            kind: self.kind.proto() as i32,
            attributes: self.attributes,
            ..Default::default()
        }
    }
}

/// Joins `p` into `room` (created when missing): `room_started` if new,
/// `participant_joined`, then `track_published` per track.
pub fn join(shared: &Shared, room: &str, p: SimParticipant) -> anyhow::Result<ParticipantInfo> {
    if room.is_empty() {
        bail!("a participant needs a room name");
    }
    if p.identity.is_empty() {
        bail!("a participant needs an identity");
    }
    let info = p.into_info();
    Ok(shared.update(|s, ev| s.add_participant(room, info, ev)))
}

/// `identity` leaves `room`: `track_unpublished` per track, `participant_left`.
pub fn leave(shared: &Shared, room: &str, identity: &str) -> anyhow::Result<()> {
    shared
        .update(|s, ev| s.remove_participant(room, identity, DisconnectReason::ClientInitiated, ev))
        .map(|_| ())
        .ok_or_else(|| anyhow!("participant {identity:?} is not in room {room:?}"))
}

/// Mounts the `/_sim/` endpoints (loopback peers only; others fall through
/// to the Twirp router, which answers `bad_route`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_sim")
            .guard(guard::fn_guard(|ctx| {
                ctx.head().peer_addr.is_some_and(|a| a.ip().is_loopback())
            }))
            .route("/rooms", web::get().to(list_rooms))
            .route(
                "/rooms/{room}/participants",
                web::get().to(list_participants),
            )
            .route(
                "/rooms/{room}/participants",
                web::post().to(join_participant),
            )
            .route(
                "/rooms/{room}/participants/{identity}",
                web::delete().to(leave_participant),
            )
            .route("/rooms/{room}/dispatches", web::get().to(list_dispatches))
            .route("/data", web::get().to(list_data))
            .route("/webhooks/flush", web::post().to(flush_webhooks))
            .route("/webhooks", web::put().to(switch_webhooks))
            .route("/sip/calls", web::get().to(list_calls))
            .route("/sip/calls/{call_id}/{action}", web::post().to(call_action))
            .route("/sip/progress", web::put().to(set_progress))
            .route("/sip/next-call", web::post().to(next_call))
            .route("/latency", web::put().to(set_latency))
            .route("/failing", web::put().to(set_failing))
            .route("/egress/{egress_id}/fail", web::post().to(fail_egress)),
    );
}

async fn list_calls(shared: web::Data<Shared>) -> HttpResponse {
    let calls: Vec<SimCall> = shared.read(|s| s.sip.placed.values().cloned().collect());
    HttpResponse::Ok().json(calls)
}

#[derive(Deserialize, Default)]
struct ReasonIn {
    reason: Option<String>,
}

async fn call_action(
    shared: web::Data<Shared>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (call_id, action) = path.into_inner();
    let reason = if body.is_empty() {
        ReasonIn::default()
    } else {
        match serde_json::from_slice::<ReasonIn>(&body) {
            Ok(r) => r,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    };
    let action = match action.as_str() {
        "answer" => CallAction::Answer,
        "busy" => CallAction::Busy,
        "no-answer" => CallAction::NoAnswer,
        "fail" => CallAction::Fail(reason.reason),
        "hangup" => CallAction::Hangup,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown action {other:?} (answer, busy, no-answer, fail, hangup)"),
            );
        }
    };
    match shared.update(|s, ev| sip::act(s, &call_id, &action, ev)) {
        Ok(call) => HttpResponse::Ok().json(call),
        Err(ActError::Unknown) => error(StatusCode::NOT_FOUND, format!("no call {call_id:?}")),
        Err(ActError::NotApplicable(status)) => error(
            StatusCode::CONFLICT,
            format!("call {call_id:?} is {status}"),
        ),
    }
}

#[derive(Deserialize)]
struct ProgressIn {
    ring_after_ms: u64,
    answer_after_ms: Option<u64>,
}

async fn set_progress(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let p: ProgressIn = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let progress = CallProgress {
        ring_after: Duration::from_millis(p.ring_after_ms),
        answer_after: p.answer_after_ms.map(Duration::from_millis),
    };
    shared.update(|s, _| s.sip.progress = progress);
    HttpResponse::Ok().json(serde_json::json!({
        "ring_after_ms": p.ring_after_ms, "answer_after_ms": p.answer_after_ms,
    }))
}

#[derive(Deserialize)]
struct NextCallIn {
    outcome: String,
}

async fn next_call(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let n: NextCallIn = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let failure = match n.outcome.as_str() {
        "busy" => CallFailure::Busy,
        "no-answer" => CallFailure::NoAnswer,
        "fail" => CallFailure::Failed,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown outcome {other:?} (busy, no-answer, fail)"),
            );
        }
    };
    shared.update(|s, _| s.sip.next_failure = Some(failure));
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct LatencyIn {
    rpc: String,
    ms: Option<u64>,
}

async fn set_latency(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let l: LatencyIn = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if l.rpc.is_empty() {
        return error(StatusCode::BAD_REQUEST, "rpc must name a method");
    }
    shared.update(|s, _| match l.ms.filter(|ms| *ms > 0) {
        Some(ms) => s.latency.insert(l.rpc, Duration::from_millis(ms)),
        None => s.latency.remove(&l.rpc),
    });
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct FailingIn {
    rpc: String,
    failing: bool,
}

async fn set_failing(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    let f: FailingIn = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if f.rpc.is_empty() {
        return error(StatusCode::BAD_REQUEST, "rpc must name a method");
    }
    shared.update(|s, _| {
        if f.failing {
            s.failing.insert(f.rpc);
        } else {
            s.failing.remove(&f.rpc);
        }
    });
    HttpResponse::NoContent().finish()
}

#[derive(Deserialize)]
struct EgressFailIn {
    error: String,
}

async fn fail_egress(
    shared: web::Data<Shared>,
    egress_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let e: EgressFailIn = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(err) => return error(StatusCode::BAD_REQUEST, err),
    };
    if fail_egress_now(&shared, &egress_id, &e.error) {
        HttpResponse::NoContent().finish()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("no running egress {:?}", egress_id.as_str()),
        )
    }
}

/// Ends a running egress as failed with `reason`; `false` when it is
/// unknown or already ended.
pub fn fail_egress_now(shared: &Shared, egress_id: &str, reason: &str) -> bool {
    shared.update(|s, ev| {
        let before = ev.len();
        super::services::egress::finish(s, egress_id, Some(reason), ev);
        ev.len() > before
    })
}

fn error(status: actix_web::http::StatusCode, msg: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": msg.to_string() }))
}

async fn list_rooms(shared: web::Data<Shared>) -> HttpResponse {
    let rooms: Vec<_> = shared.read(|s| s.rooms().map(|r| r.proto()).collect());
    HttpResponse::Ok().json(rooms)
}

async fn list_participants(shared: web::Data<Shared>, room: web::Path<String>) -> HttpResponse {
    let participants = shared.read(|s| {
        s.room(&room)
            .map(|r| r.participants.clone())
            .unwrap_or_default()
    });
    HttpResponse::Ok().json(participants)
}

async fn join_participant(
    shared: web::Data<Shared>,
    room: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let p: SimParticipant = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(actix_web::http::StatusCode::BAD_REQUEST, e),
    };
    match join(&shared, &room, p) {
        Ok(info) => HttpResponse::Ok().json(info),
        Err(e) => error(actix_web::http::StatusCode::BAD_REQUEST, e),
    }
}

async fn leave_participant(
    shared: web::Data<Shared>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (room, identity) = path.into_inner();
    match leave(&shared, &room, &identity) {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => error(actix_web::http::StatusCode::NOT_FOUND, e),
    }
}

async fn list_dispatches(shared: web::Data<Shared>, room: web::Path<String>) -> HttpResponse {
    let dispatches = shared.read(|s| {
        s.room(&room)
            .map(|r| r.dispatches.clone())
            .unwrap_or_default()
    });
    HttpResponse::Ok().json(dispatches)
}

/// A sent data packet as JSON: the payload as text when it is UTF-8, and
/// always as base64.
#[derive(Serialize)]
struct DataOut {
    room: String,
    data: Option<String>,
    data_base64: String,
    topic: Option<String>,
    destination_identities: Vec<String>,
    recipients: Vec<String>,
    kind: i32,
}

#[derive(Deserialize)]
struct DataQuery {
    room: Option<String>,
}

async fn list_data(shared: web::Data<Shared>, query: web::Query<DataQuery>) -> HttpResponse {
    let out: Vec<DataOut> = shared.read(|s| {
        s.data()
            .iter()
            .filter(|d| query.room.as_ref().is_none_or(|r| *r == d.room))
            .map(|d| DataOut {
                room: d.room.clone(),
                data: String::from_utf8(d.data.clone()).ok(),
                data_base64: STANDARD.encode(&d.data),
                topic: d.topic.clone(),
                destination_identities: d.destination_identities.clone(),
                recipients: d.recipients.clone(),
                kind: d.kind,
            })
            .collect()
    });
    HttpResponse::Ok().json(out)
}

#[derive(serde::Deserialize)]
struct WebhookSwitch {
    enabled: bool,
}

async fn switch_webhooks(shared: web::Data<Shared>, body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<WebhookSwitch>(&body) {
        Ok(s) => {
            shared.webhooks.set_enabled(s.enabled);
            HttpResponse::NoContent().finish()
        }
        Err(e) => error(actix_web::http::StatusCode::BAD_REQUEST, e),
    }
}

async fn flush_webhooks(shared: web::Data<Shared>) -> HttpResponse {
    shared.webhooks.flush().await;
    HttpResponse::NoContent().finish()
}
