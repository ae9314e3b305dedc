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

use super::state::{Shared, new_id, now_millis};
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
            .route("/webhooks/flush", web::post().to(flush_webhooks)),
    );
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

async fn flush_webhooks(shared: web::Data<Shared>) -> HttpResponse {
    shared.webhooks.flush().await;
    HttpResponse::NoContent().finish()
}
