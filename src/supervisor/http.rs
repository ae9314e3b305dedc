//! Handlers of live supervision (`/api/v1/sessions/{roomName}/supervise…`):
//! parse, call [`super::service`], respond.

use super::service::{self, Mode, TrackAudience};
use super::store::SupervisionPeriod;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::livekit::names::RoomName;
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

/// Body of `POST /api/v1/sessions/{roomName}/supervise`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"identity": "sup-anna", "mode": "listen"}))]
pub struct SuperviseIn {
    /// The supervisor's LiveKit identity (1–128 of letters, digits, `.`, `_`, `-`).
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9._-]+$"
    )]
    pub identity: Option<String>,
    /// Display name (default: the identity).
    #[schema(schema_with = crate::openapi::fields::name256)]
    pub name: Option<String>,
    /// listen, whisper, barge or take_over.
    #[schema(required = true, nullable = false, value_type = Option<SupervisionMode>)]
    pub mode: Option<String>,
    /// Whom a whisper reaches and a take-over mutes (default: the room's agents).
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9._-]+$"
    )]
    pub target_identity: Option<String>,
}

/// Response of `POST …/supervise`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuperviseOut {
    /// The LiveKit token for the supervisor's client.
    pub token: String,
    /// Where clients connect.
    #[serde(rename = "wsUrl")]
    pub ws_url: String,
    /// The full room name.
    pub room: String,
    /// The supervised session.
    pub session_id: i64,
    /// The live supervision period.
    pub supervision: SupervisionPeriod,
    /// The subscription permission the supervisor's client sets on its track.
    pub track_audience: TrackAudience,
}

/// Body of `PATCH …/supervise`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"identity": "sup-anna", "mode": "whisper"}))]
pub struct SupervisePatch {
    /// The live supervisor.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9._-]+$"
    )]
    pub identity: Option<String>,
    /// The new mode.
    #[schema(required = true, nullable = false, value_type = Option<SupervisionMode>)]
    pub mode: Option<String>,
    /// A new target (null: the room's agents; absent: unchanged).
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._-]+$")]
    pub target_identity: Option<Option<String>>,
}

/// Response of `PATCH …/supervise`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SupervisionChanged {
    /// The new live period.
    pub supervision: SupervisionPeriod,
    /// The subscription permission the supervisor's client sets on its track.
    pub track_audience: TrackAudience,
}

/// Body of `POST …/supervise/release`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"identity": "sup-anna"}))]
pub struct ReleaseIn {
    /// The live supervisor.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9._-]+$"
    )]
    pub identity: Option<String>,
}

/// The modes of supervision.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SupervisionMode {
    /// Hears the call, is not heard.
    Listen,
    /// Heard by the target only.
    Whisper,
    /// Heard by everyone.
    Barge,
    /// Replaces the agent (the target is muted).
    TakeOver,
}

/// Response of `POST …/supervise/release`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SupervisionReleased {
    pub success: bool,
    /// The period that ended.
    pub supervision: SupervisionPeriod,
}

fn room(prefix: &str, input: &str) -> ApiResult<RoomName> {
    RoomName::parse(prefix, input)
        .map_err(|_| ApiError::invalid_field("roomName", "invalid room name"))
}

fn identity(v: Option<&str>, field: &str) -> ApiResult<String> {
    let v = v.ok_or_else(|| ApiError::invalid_field(field, format!("{field} is required")))?;
    validate::ident(field, v, 128)
}

fn mode(v: Option<&str>) -> ApiResult<Mode> {
    Mode::parse(v.ok_or_else(|| ApiError::invalid_field("mode", "mode is required"))?)
}

/// Starts supervising the room's active session.
#[utoipa::path(
    post, path = "/api/v1/sessions/{roomName}/supervise", tag = "Supervision",
    params(("roomName" = String, Path, description = "Room name, full or short", example = "proj_my-room", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")),
    request_body = SuperviseIn,
    responses(
        (status = 201, description = "Token for the supervisor", body = SuperviseOut),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No active session in the room", body = crate::error::ErrorBody),
        (status = 409, description = "The identity already supervises the room", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn start_supervision(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SuperviseIn>,
) -> ApiResult<HttpResponse> {
    let room = room(&auth.project.room_prefix, &path)?;
    let b = body.into_inner();
    let req = service::Request {
        identity: identity(b.identity.as_deref(), "identity")?,
        name: validate::opt_text("name", b.name.as_deref(), 256)?,
        mode: mode(b.mode.as_deref())?,
        target_identity: b
            .target_identity
            .as_deref()
            .map(|t| identity(Some(t), "target_identity"))
            .transpose()?,
    };
    let s = service::start(&state, auth.project.id, &room, &req).await?;
    let lk = state.livekit()?;
    Ok(HttpResponse::Created().json(SuperviseOut {
        token: s.token.unwrap_or_default(),
        ws_url: lk.ws_url().to_owned(),
        room: room.full,
        session_id: s.period.session_id,
        supervision: s.period,
        track_audience: s.audience,
    }))
}

/// Changes a live supervisor's mode without rejoining.
#[utoipa::path(
    patch, path = "/api/v1/sessions/{roomName}/supervise", tag = "Supervision",
    params(("roomName" = String, Path, description = "Room name, full or short", example = "proj_my-room", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")),
    request_body = SupervisePatch,
    responses(
        (status = 200, description = "Changed", body = SupervisionChanged),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "The identity does not supervise the room", body = crate::error::ErrorBody),
        (status = 409, description = "Changed concurrently", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn change_supervision(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SupervisePatch>,
) -> ApiResult<HttpResponse> {
    let room = room(&auth.project.room_prefix, &path)?;
    let b = body.into_inner();
    let who = identity(b.identity.as_deref(), "identity")?;
    let mode = mode(b.mode.as_deref())?;
    let target = match b.target_identity {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(Some(identity(Some(&t), "target_identity")?)),
    };
    let s = service::change(&state, auth.project.id, &room, &who, mode, target).await?;
    Ok(HttpResponse::Ok().json(SupervisionChanged {
        supervision: s.period,
        track_audience: s.audience,
    }))
}

/// Ends a supervision (a take-over gives the agent its voice back).
#[utoipa::path(
    post, path = "/api/v1/sessions/{roomName}/supervise/release", tag = "Supervision",
    params(("roomName" = String, Path, description = "Room name, full or short", example = "proj_my-room", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")),
    request_body = ReleaseIn,
    responses(
        (status = 200, description = "Released", body = SupervisionReleased),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "The identity does not supervise the room", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn release_supervision(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ReleaseIn>,
) -> ApiResult<HttpResponse> {
    let room = room(&auth.project.room_prefix, &path)?;
    let who = identity(body.identity.as_deref(), "identity")?;
    let ended = service::release(&state, auth.project.id, &room, &who).await?;
    Ok(HttpResponse::Ok().json(SupervisionReleased {
        success: true,
        supervision: ended,
    }))
}
