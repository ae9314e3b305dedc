//! `POST /api/v1/token`: a LiveKit access token for a project room, optionally
//! dispatching agents through the token's room configuration.

use super::allow;
use crate::auth::Auth;
use crate::calls::dispatch::agent_metadata;
use crate::calls::starts::{Agents, StartRequest};
use crate::db::sessions::NewSession;
use crate::error::{ApiError, ApiResult};
use crate::limits::quota::Resource;
use crate::livekit::grants::client_grants;
use crate::livekit::names::{RoomName, identity};
use crate::livekit::proto;
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use livekit_api::access_token::AccessToken;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Body of `POST /api/v1/token`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"identity": "user1", "room": "my-room"}))]
pub struct TokenIn {
    /// User identity for the room.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:@+-]+$"
    )]
    pub identity: Option<String>,
    /// Room name (auto-prefixed with the project prefix).
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_.:@+-]+$"
    )]
    pub room: Option<String>,
    /// Single agent to dispatch.
    pub agent_config_id: Option<i64>,
    /// Several agents to dispatch.
    pub agent_config_ids: Option<Vec<i64>>,
    /// If true, no agent is dispatched (otherwise the first active agent is, when neither id is given).
    pub no_agent: Option<bool>,
    /// Extra LiveKit video grants: canPublish, canSubscribe, canPublishData,
    /// canPublishSources, canUpdateOwnMetadata, hidden.
    #[schema(value_type = Option<Object>)]
    pub grants: Option<Map<String, Value>>,
    /// Display name.
    pub name: Option<String>,
    /// Participant metadata.
    pub metadata: Option<String>,
    /// Participant attributes.
    pub attributes: Option<HashMap<String, String>>,
    /// Lifetime in seconds (default 3600, 60 to 86400).
    #[schema(minimum = 60, maximum = 86400)]
    pub ttl: Option<u64>,
}

/// Response of `POST /api/v1/token`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    /// The LiveKit JWT.
    #[schema(example = "eyJhbGciOi...")]
    pub token: String,
    /// The full (prefixed) room name.
    #[schema(example = "proj_my-room")]
    pub room: String,
    /// Where clients connect.
    #[serde(rename = "wsUrl")]
    #[schema(example = "wss://livekit.example.com")]
    pub ws_url: String,
    /// Ids of the agents dispatched into the room.
    #[schema(example = json!([1]))]
    pub agents_dispatched: Vec<i64>,
}

const DEFAULT_TTL: u64 = 3600;
const MAX_TTL: u64 = 86_400;
const MIN_TTL: u64 = 60;

/// Generate a LiveKit room token. Quota: sessions (when an agent is dispatched).
#[utoipa::path(
    post, path = "/api/v1/token", tag = "Tokens",
    request_body = TokenIn,
    responses(
        (status = 200, description = "Token", body = TokenOut),
        (status = 400, description = "Missing identity or room, bad grants or agents", body = crate::error::ErrorBody),
        (status = 429, description = "Session quota reached", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit not configured", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_token(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<TokenIn>,
) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let body = body.into_inner();
    let identity = match body.identity.as_deref() {
        Some(i) => identity("identity", i)?,
        None => return Err(ApiError::invalid_field("identity", "identity is required")),
    };
    let room = match body.room.as_deref() {
        Some(r) => RoomName::parse(&auth.project.room_prefix, r)?,
        None => return Err(ApiError::invalid_field("room", "room is required")),
    };
    let ttl = body.ttl.unwrap_or(DEFAULT_TTL);
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::invalid_field(
            "ttl",
            format!("ttl must be between {MIN_TTL} and {MAX_TTL} seconds"),
        ));
    }
    let grants = client_grants(&room.full, body.grants.as_ref())?;
    let name = validate::opt_text("name", body.name.as_deref(), 256)?;
    if body.metadata.as_ref().is_some_and(|m| m.len() > 16 * 1024) {
        return Err(ApiError::invalid_field(
            "metadata",
            "metadata must be at most 16 KB",
        ));
    }
    let attributes = body.attributes.unwrap_or_default();
    if attributes.len() > 64
        || attributes
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 4096)
    {
        return Err(ApiError::invalid_field(
            "attributes",
            "at most 64 attributes, keys 1-128 and values up to 4096 bytes",
        ));
    }
    let mut ids: Vec<i64> = body.agent_config_ids.unwrap_or_default();
    ids.extend(body.agent_config_id);
    let no_agent = body.no_agent.unwrap_or(false);
    if no_agent && !ids.is_empty() {
        return Err(ApiError::invalid_field(
            "no_agent",
            "no_agent cannot be combined with agent_config_id(s)",
        ));
    }

    let agents = if no_agent {
        Vec::new()
    } else {
        // Dispatching an agent starts the room's session (once), batched
        // with the other starts of the moment.
        let request = StartRequest {
            project_id: auth.project.id,
            limit: Resource::Sessions.limit(&state.settings.plans, &auth.project),
            agents: Agents::Dispatch(ids),
            session: NewSession {
                room_name: room.full.clone(),
                caller_identity: Some(identity.clone()),
                session_type: "voice".into(),
                ..Default::default()
            },
        };
        match state.starts.start(&state, request).await? {
            Ok(started) => started.agents,
            Err(refused) => return Err(refused.into_error(&state.settings.upgrade_url)),
        }
    };

    let mut token = AccessToken::with_api_key(lk.api_key(), lk.api_secret())
        .with_identity(&identity)
        .with_ttl(Duration::from_secs(ttl))
        .with_grants(grants);
    if let Some(name) = &name {
        token = token.with_name(name);
    }
    if let Some(metadata) = &body.metadata {
        token = token.with_metadata(metadata);
    }
    if !attributes.is_empty() {
        token = token.with_attributes(attributes);
    }
    if !agents.is_empty() {
        token = token.with_room_config(proto::RoomConfiguration {
            agents: agents
                .iter()
                .map(|a| proto::RoomAgentDispatch {
                    agent_name: a.dispatch_name.clone(),
                    metadata: agent_metadata(a, &room.full),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    }
    let jwt = token.to_jwt().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(TokenOut {
        token: jwt,
        room: room.full,
        ws_url: lk.ws_url().to_owned(),
        agents_dispatched: agents.iter().map(|a| a.id).collect(),
    }))
}

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/token")
            .route(web::post().to(create_token))
            .default_service(allow(&["POST"])),
    );
}
