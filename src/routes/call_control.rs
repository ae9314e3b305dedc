//! Call control (contract section 14): data to a room (broadcast or whisper),
//! participant updates, mute/unmute.

use super::allow;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::livekit::names::{RoomName, identity};
use crate::livekit::proto;
use crate::rooms::http::{ParticipantOut, ParticipantPath, RoomPath, TrackOut};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use livekit_api::services::room::{SendDataOptions, UpdateParticipantOptions};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest data payload (LiveKit's reliable packet limit is about 15 KiB).
const MAX_DATA: usize = 15 * 1024;

/// Body of `send-data`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"data": "Only you can see this", "destination_identities": ["agent-1"], "topic": "chat"}))]
pub struct SendDataIn {
    /// A string (sent as UTF-8) or any JSON value (sent as its JSON text),
    /// 1 byte to 15 KB.
    #[schema(schema_with = data_schema, required = true)]
    pub data: Option<Value>,
    /// Only these participants receive it (whisper); omitted = everyone.
    #[schema(schema_with = crate::openapi::fields::identities)]
    pub destination_identities: Option<Vec<String>>,
    /// Topic / channel, 1 to 128 characters.
    #[schema(schema_with = crate::openapi::fields::text128)]
    pub topic: Option<String>,
}

/// `data`: a non-empty string or any other JSON value but null.
fn data_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_DATA)),
        )
        .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([
            Type::Number,
            Type::Boolean,
            Type::Object,
            Type::Array,
        ])))
        .description(Some(
            "A string (sent as UTF-8) or any JSON value (sent as its JSON text), 1 byte to 15 KB.",
        ))
        .build()
        .into()
}

/// Response of `send-data`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SendDataOut {
    pub success: bool,
    /// Payload size in bytes.
    pub bytes: usize,
    /// The identities it was sent to; empty = broadcast.
    pub destination_identities: Vec<String>,
}

/// Permission changes; absent fields keep their value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PermissionIn {
    pub can_publish: Option<bool>,
    pub can_subscribe: Option<bool>,
    pub can_publish_data: Option<bool>,
}

/// Body of the participant update.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"permission": {"canPublish": false}}), min_properties = 1)]
pub struct ParticipantUpdateIn {
    /// Up to 64 KiB.
    #[schema(nullable = false)]
    pub metadata: Option<String>,
    #[schema(nullable = false)]
    pub permission: Option<PermissionIn>,
    /// Display name, 1 to 256 characters.
    #[schema(schema_with = crate::openapi::fields::name256)]
    pub name: Option<String>,
}

/// `{"success": true, "participant": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ParticipantUpdated {
    pub success: bool,
    pub participant: ParticipantOut,
}

/// Body of mute.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"muted": true}))]
pub struct MuteIn {
    /// true to mute, false to unmute.
    #[schema(required = true, nullable = false)]
    pub muted: Option<bool>,
    /// A specific track; default: the participant's first audio track.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._-]+$")]
    pub track_sid: Option<String>,
}

/// `{"success": true, "track": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MuteOut {
    pub success: bool,
    pub track: TrackOut,
}

/// Send data to everyone in a room or, with `destination_identities`, to some.
#[utoipa::path(
    post, path = "/api/v1/rooms/{roomName}/send-data", tag = "Call Control",
    params(RoomPath),
    request_body = SendDataIn,
    responses(
        (status = 200, description = "Sent", body = SendDataOut),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such active room", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn send_data(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RoomPath>,
    body: web::Json<SendDataIn>,
) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let room = RoomName::parse(&auth.project.room_prefix, &path.room_name)?;
    let body = body.into_inner();
    let bytes = match body.data {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_field("data", "data is required"));
        }
        Some(Value::String(s)) => s.into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    if bytes.is_empty() || bytes.len() > MAX_DATA {
        return Err(ApiError::invalid_field(
            "data",
            format!("data must be 1 to {MAX_DATA} bytes"),
        ));
    }
    let destinations = body
        .destination_identities
        .unwrap_or_default()
        .iter()
        .map(|i| identity("destination_identities", i))
        .collect::<ApiResult<Vec<_>>>()?;
    let topic = validate::opt_text("topic", body.topic.as_deref(), 128)?;
    let size = bytes.len();
    let options = SendDataOptions {
        kind: proto::data_packet::Kind::Reliable,
        destination_identities: destinations.clone(),
        topic,
        ..Default::default()
    };
    lk.call(lk.rooms.send_data(&room.full, bytes, options))
        .await
        .map_err(|e| e.or_not_found("Room not found"))?;
    Ok(HttpResponse::Ok().json(SendDataOut {
        success: true,
        bytes: size,
        destination_identities: destinations,
    }))
}

/// Update a participant's metadata, permissions or name (at least one).
#[utoipa::path(
    post, path = "/api/v1/rooms/{roomName}/participants/{identity}", tag = "Call Control",
    params(ParticipantPath),
    request_body = ParticipantUpdateIn,
    responses(
        (status = 200, description = "Updated", body = ParticipantUpdated),
        (status = 400, description = "Nothing to update, or invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such room or participant", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn update_participant(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<ParticipantPath>,
    body: web::Json<ParticipantUpdateIn>,
) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let room = RoomName::parse(&auth.project.room_prefix, &path.room_name)?;
    let who = identity("identity", &path.identity)?;
    let body = body.into_inner();
    if body.metadata.is_none() && body.permission.is_none() && body.name.is_none() {
        return Err(ApiError::bad_request(
            "At least one of metadata, permission or name is required",
        ));
    }
    let name = validate::opt_text("name", body.name.as_deref(), 256)?;
    if body.metadata.as_ref().is_some_and(|m| m.len() > 64 * 1024) {
        return Err(ApiError::invalid_field(
            "metadata",
            "metadata must be at most 64 KB",
        ));
    }
    let not_found = "Participant not found in this room";
    let current = lk
        .call(lk.rooms.get_participant(&room.full, &who))
        .await
        .map_err(|e| e.or_not_found(not_found))?;
    let permission = body.permission.map(|change| {
        let mut p = current
            .permission
            .clone()
            .unwrap_or(proto::ParticipantPermission {
                can_subscribe: true,
                can_publish: true,
                can_publish_data: true,
                ..Default::default()
            });
        if let Some(v) = change.can_publish {
            p.can_publish = v;
        }
        if let Some(v) = change.can_subscribe {
            p.can_subscribe = v;
        }
        if let Some(v) = change.can_publish_data {
            p.can_publish_data = v;
        }
        p
    });
    let options = UpdateParticipantOptions {
        metadata: body.metadata.unwrap_or(current.metadata.clone()),
        attributes: Default::default(),
        permission,
        name: name.unwrap_or_default(),
    };
    let updated = lk
        .call(lk.rooms.update_participant(&room.full, &who, options))
        .await
        .map_err(|e| e.or_not_found(not_found))?;
    Ok(HttpResponse::Ok().json(ParticipantUpdated {
        success: true,
        participant: ParticipantOut::from(&updated),
    }))
}

/// Mute or unmute a participant's audio (first audio track unless `track_sid`).
#[utoipa::path(
    post, path = "/api/v1/rooms/{roomName}/participants/{identity}/mute", tag = "Call Control",
    params(ParticipantPath),
    request_body = MuteIn,
    responses(
        (status = 200, description = "Done", body = MuteOut),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 404, description = "No such room, participant or audio track", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn mute_participant(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<ParticipantPath>,
    body: web::Json<MuteIn>,
) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let room = RoomName::parse(&auth.project.room_prefix, &path.room_name)?;
    let who = identity("identity", &path.identity)?;
    let Some(muted) = body.muted else {
        return Err(ApiError::invalid_field(
            "muted",
            "muted (true or false) is required",
        ));
    };
    let not_found = "Participant not found in this room";
    let track_sid = match &body.track_sid {
        Some(sid) => validate::ident("track_sid", sid, 128)?,
        None => {
            let p = lk
                .call(lk.rooms.get_participant(&room.full, &who))
                .await
                .map_err(|e| e.or_not_found(not_found))?;
            p.tracks
                .iter()
                .find(|t| t.r#type == proto::TrackType::Audio as i32)
                .map(|t| t.sid.clone())
                .ok_or_else(|| {
                    ApiError::NotFound(format!("Participant {who} has no audio track"))
                })?
        }
    };
    let track = lk
        .call(
            lk.rooms
                .mute_published_track(&room.full, &who, &track_sid, muted),
        )
        .await
        .map_err(|e| e.or_not_found("Participant or track not found in this room"))?;
    Ok(HttpResponse::Ok().json(MuteOut {
        success: true,
        track: TrackOut::from(&track),
    }))
}

/// Registers the routes, relative to the `/rooms` scope they are mounted in
/// (`routes::configure_api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{roomName}/send-data")
            .route(web::post().to(send_data))
            .default_service(allow(&["POST"])),
    )
    .service(
        web::resource("/{roomName}/participants/{identity}")
            .route(web::post().to(update_participant))
            .default_service(allow(&["POST"])),
    )
    .service(
        web::resource("/{roomName}/participants/{identity}/mute")
            .route(web::post().to(mute_participant))
            .default_service(allow(&["POST"])),
    );
}
