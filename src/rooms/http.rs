//! Rooms (contract section 6), the HTTP layer: create, list, detail,
//! participants, close, kick — parse, call [`super::service`], respond.

use super::service::{self, NewRoom, live_room};
use crate::auth::Auth;
use crate::db::rooms::{self as room_rows, RoomStatus};
use crate::error::{ApiError, ApiResult};
use crate::livekit::names::{RoomName, identity};
use crate::livekit::proto;
use crate::livekit::webhook::kind_name;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `POST /api/v1/rooms`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "my-room", "empty_timeout": 600}))]
pub struct RoomIn {
    /// Room name (auto-prefixed): 1 to 128 letters, digits, `-`, `_`, `.`,
    /// `:`, `@` or `+`.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:@+-]+$")]
    pub name: String,
    /// Seconds before an empty room closes (default 300, at most 86400).
    #[schema(maximum = 86400)]
    pub empty_timeout: Option<u32>,
    /// Maximum participants, 0 = unlimited (default 0, at most 100000).
    #[schema(maximum = 100000)]
    pub max_participants: Option<u32>,
    /// Room metadata (at most 64 KB of UTF-8).
    #[schema(max_length = 65536)]
    pub metadata: Option<String>,
}

/// A created room.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomCreated {
    #[schema(example = "my-room")]
    pub name: String,
    #[schema(example = "proj_my-room")]
    pub full_name: String,
    #[schema(example = "RM_abc123")]
    pub sid: String,
    #[schema(example = 300)]
    pub empty_timeout: u32,
    #[schema(example = 0)]
    pub max_participants: u32,
    pub metadata: String,
    /// Unix seconds.
    #[schema(example = 1711900000)]
    pub creation_time: i64,
}

/// `{"success": true, "room": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomCreatedResponse {
    pub success: bool,
    pub room: RoomCreated,
}

/// A room in the list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    #[schema(example = "my-room")]
    pub name: String,
    #[schema(example = "proj_my-room")]
    pub full_name: String,
    #[schema(example = "RM_abc123")]
    pub sid: String,
    #[schema(example = 2)]
    pub num_participants: u32,
    /// Unix seconds.
    #[schema(example = 1711900000)]
    pub created_at: i64,
}

/// `{"rooms": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomSummary>,
}

/// A participant in a room detail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomParticipant {
    #[schema(example = "user1")]
    pub identity: String,
    #[schema(example = "User")]
    pub name: String,
    /// standard, sip, agent, egress, ingress.
    #[schema(example = "standard")]
    pub kind: String,
    /// Unix seconds.
    #[schema(example = 1711900010)]
    pub joined_at: Option<i64>,
    /// Unix seconds (closed rooms only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_at: Option<i64>,
}

/// Room detail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomDetail {
    pub name: String,
    pub full_name: String,
    pub sid: Option<String>,
    /// `active` or `closed`.
    pub status: RoomStatus,
    pub num_participants: u32,
    pub max_participants: u32,
    pub empty_timeout: u32,
    pub metadata: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, closed rooms only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<i64>,
    pub participants: Vec<RoomParticipant>,
}

/// `{"room": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomDetailResponse {
    pub room: RoomDetail,
}

/// A track of a participant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrackOut {
    #[schema(example = "TR_abc")]
    pub sid: String,
    /// AUDIO, VIDEO or DATA.
    #[serde(rename = "type")]
    #[schema(example = "AUDIO")]
    pub kind: String,
    pub name: String,
    pub muted: bool,
    /// MICROPHONE, CAMERA, SCREEN_SHARE, …
    #[schema(example = "MICROPHONE")]
    pub source: String,
    pub mime_type: String,
}

impl From<&proto::TrackInfo> for TrackOut {
    fn from(t: &proto::TrackInfo) -> Self {
        Self {
            sid: t.sid.clone(),
            kind: proto::TrackType::try_from(t.r#type)
                .map(|k| k.as_str_name())
                .unwrap_or("UNKNOWN")
                .to_owned(),
            name: t.name.clone(),
            muted: t.muted,
            source: proto::TrackSource::try_from(t.source)
                .map(|s| s.as_str_name())
                .unwrap_or("UNKNOWN")
                .to_owned(),
            mime_type: t.mime_type.clone(),
        }
    }
}

/// A live participant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantOut {
    #[schema(example = "user1")]
    pub identity: String,
    #[schema(example = "PA_abc")]
    pub sid: String,
    #[schema(example = "User")]
    pub name: String,
    /// JOINING, JOINED, ACTIVE, DISCONNECTED.
    #[schema(example = "ACTIVE")]
    pub state: String,
    /// standard, sip, agent, egress, ingress.
    pub kind: String,
    /// Unix seconds.
    #[schema(example = 1711900010)]
    pub joined_at: i64,
    pub metadata: String,
    #[schema(value_type = Object)]
    pub attributes: Value,
    pub permission: Option<PermissionOut>,
    pub tracks: Vec<TrackOut>,
}

/// What a participant may do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionOut {
    pub can_publish: bool,
    pub can_subscribe: bool,
    pub can_publish_data: bool,
}

impl From<&proto::ParticipantInfo> for ParticipantOut {
    fn from(p: &proto::ParticipantInfo) -> Self {
        Self {
            identity: p.identity.clone(),
            sid: p.sid.clone(),
            name: p.name.clone(),
            state: proto::participant_info::State::try_from(p.state)
                .map(|s| s.as_str_name())
                .unwrap_or("ACTIVE")
                .to_owned(),
            kind: kind_name(p.kind).to_owned(),
            joined_at: p.joined_at,
            metadata: p.metadata.clone(),
            attributes: serde_json::to_value(&p.attributes).unwrap_or_default(),
            permission: p.permission.as_ref().map(|perm| PermissionOut {
                can_publish: perm.can_publish,
                can_subscribe: perm.can_subscribe,
                can_publish_data: perm.can_publish_data,
            }),
            tracks: p.tracks.iter().map(TrackOut::from).collect(),
        }
    }
}

/// `{"participants": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParticipantList {
    pub participants: Vec<ParticipantOut>,
}

/// Path of room routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RoomPath {
    /// Room name, without (or with) the project prefix.
    #[serde(rename = "roomName")]
    #[param(
        rename = "roomName",
        example = "my-room",
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:@+-]+$"
    )]
    pub room_name: String,
}

/// Path of participant routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ParticipantPath {
    /// Room name.
    #[serde(rename = "roomName")]
    #[param(
        rename = "roomName",
        example = "my-room",
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:@+-]+$"
    )]
    pub room_name: String,
    /// Participant identity.
    #[param(
        example = "user1",
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:@+-]+$"
    )]
    pub identity: String,
}

/// Create a room. Quota: rooms (active at once).
#[utoipa::path(
    post, path = "/api/v1/rooms", tag = "Rooms",
    request_body = RoomIn,
    responses(
        (status = 201, description = "Created", body = RoomCreatedResponse),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 409, description = "An active room has this name", body = crate::error::ErrorBody),
        (status = 429, description = "Room quota reached", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_room(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<RoomIn>,
) -> ApiResult<HttpResponse> {
    // 503 without LiveKit before anything else, as always.
    state.livekit()?;
    let body = body.into_inner();
    let room = RoomName::parse(&auth.project.room_prefix, &body.name)
        .map_err(|_| ApiError::invalid_field("name", crate::livekit::names::ROOM_RULE))?;
    let new = NewRoom {
        empty_timeout: body.empty_timeout,
        max_participants: body.max_participants,
        metadata: body.metadata,
    };
    let lk_room = service::create(&state, &auth.project, &room, new).await?;
    Ok(HttpResponse::Created().json(RoomCreatedResponse {
        success: true,
        room: RoomCreated {
            name: room.short,
            full_name: room.full,
            sid: lk_room.sid,
            empty_timeout: lk_room.empty_timeout,
            max_participants: lk_room.max_participants,
            metadata: lk_room.metadata,
            creation_time: lk_room.creation_time,
        },
    }))
}

/// List the project's active rooms, live from LiveKit.
#[utoipa::path(
    get, path = "/api/v1/rooms", tag = "Rooms",
    responses(
        (status = 200, description = "Active rooms", body = RoomList),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_rooms(auth: Auth, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let prefix = &auth.project.room_prefix;
    let mut rooms: Vec<RoomSummary> = lk
        .call(lk.rooms.list_rooms(Vec::new()))
        .await?
        .into_iter()
        .filter_map(|r| {
            let name = RoomName::from_full(prefix, &r.name)?;
            Some(RoomSummary {
                name: name.short,
                full_name: name.full,
                sid: r.sid,
                num_participants: r.num_participants,
                created_at: r.creation_time,
            })
        })
        .collect();
    rooms.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(HttpResponse::Ok().json(RoomList { rooms }))
}

/// Room detail with participants: live from LiveKit, or the stored record
/// (`status: closed`) once the room is gone.
#[utoipa::path(
    get, path = "/api/v1/rooms/{roomName}", tag = "Rooms",
    params(RoomPath),
    responses(
        (status = 200, description = "Room detail", body = RoomDetailResponse),
        (status = 404, description = "No such room", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_room(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RoomPath>,
) -> ApiResult<HttpResponse> {
    let room = RoomName::parse(&auth.project.room_prefix, &path.room_name)?;
    if let Some(live) = live_room(&state, &room).await? {
        let lk = state.livekit()?;
        let participants = lk.call(lk.rooms.list_participants(&room.full)).await?;
        return Ok(HttpResponse::Ok().json(RoomDetailResponse {
            room: RoomDetail {
                name: room.short,
                full_name: room.full,
                sid: Some(live.sid),
                status: RoomStatus::Active,
                num_participants: live.num_participants,
                max_participants: live.max_participants,
                empty_timeout: live.empty_timeout,
                metadata: live.metadata,
                created_at: live.creation_time,
                closed_at: None,
                participants: participants
                    .iter()
                    .map(|p| RoomParticipant {
                        identity: p.identity.clone(),
                        name: p.name.clone(),
                        kind: kind_name(p.kind).into(),
                        joined_at: Some(p.joined_at),
                        left_at: None,
                    })
                    .collect(),
            },
        }));
    }
    let mut conn = state.pool.get().await?;
    let Some(row) = room_rows::latest(&mut conn, auth.project.id, &room.short).await? else {
        return Err(ApiError::not_found("Room"));
    };
    let participants = room_rows::participants_of(&mut conn, row.id).await?;
    Ok(HttpResponse::Ok().json(RoomDetailResponse {
        room: RoomDetail {
            name: row.name,
            full_name: row.full_name,
            sid: row.sid,
            status: RoomStatus::Closed,
            num_participants: 0,
            max_participants: row.max_participants.max(0) as u32,
            empty_timeout: row.empty_timeout.max(0) as u32,
            metadata: row.metadata,
            created_at: row.created_at.timestamp(),
            closed_at: Some(row.closed_at.unwrap_or(row.updated_at).timestamp()),
            participants: participants
                .into_iter()
                .map(|p| RoomParticipant {
                    identity: p.identity,
                    name: p.name,
                    kind: p.kind,
                    joined_at: p.joined_at.map(|t| t.timestamp()),
                    left_at: p.left_at.map(|t| t.timestamp()),
                })
                .collect(),
        },
    }))
}

/// The participants in a room now, with their tracks.
#[utoipa::path(
    get, path = "/api/v1/rooms/{roomName}/participants", tag = "Rooms",
    params(RoomPath),
    responses(
        (status = 200, description = "Participants", body = ParticipantList),
        (status = 404, description = "No such active room", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list_participants(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RoomPath>,
) -> ApiResult<HttpResponse> {
    let room = RoomName::parse(&auth.project.room_prefix, &path.room_name)?;
    if live_room(&state, &room).await?.is_none() {
        return Err(ApiError::not_found("Room"));
    }
    let lk = state.livekit()?;
    let participants = lk.call(lk.rooms.list_participants(&room.full)).await?;
    Ok(HttpResponse::Ok().json(ParticipantList {
        participants: participants.iter().map(ParticipantOut::from).collect(),
    }))
}

/// Close a room: LiveKit disconnects everyone; the record is marked closed.
#[utoipa::path(
    delete, path = "/api/v1/rooms/{roomName}", tag = "Rooms",
    params(RoomPath),
    responses(
        (status = 200, description = "Closed", body = crate::routes::SuccessMessage),
        (status = 404, description = "No such active room", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete_room(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RoomPath>,
) -> ApiResult<HttpResponse> {
    state.livekit()?;
    let room = RoomName::parse(&auth.project.room_prefix, &path.room_name)?;
    service::close(&state, auth.project.id, &room).await?;
    Ok(HttpResponse::Ok().json(crate::routes::SuccessMessage {
        success: true,
        message: "Room closed".into(),
    }))
}

/// Remove a participant from a room.
#[utoipa::path(
    post, path = "/api/v1/rooms/{roomName}/kick/{identity}", tag = "Rooms",
    params(ParticipantPath),
    responses(
        (status = 200, description = "Removed", body = crate::routes::SuccessMessage),
        (status = 404, description = "No such room or participant", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn kick_participant(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<ParticipantPath>,
) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let room = RoomName::parse(&auth.project.room_prefix, &path.room_name)?;
    let who = identity("identity", &path.identity)?;
    lk.call(lk.rooms.remove_participant(&room.full, &who))
        .await
        .map_err(|e| e.or_not_found("Participant not found in this room"))?;
    Ok(HttpResponse::Ok().json(crate::routes::SuccessMessage {
        success: true,
        message: "Participant removed".into(),
    }))
}
