//! `POST /sip/dial` (contract section 10): an outbound call — the HTTP
//! layer: the body validated (the number with libphonenumber, the trunk,
//! the line's config and agent, the room name), the call placed by
//! [`super::dialing`] (reserve → commit → call LiveKit → confirm), a
//! supervisor token for its room.

use super::dialing::{self, Dial};
use super::store;
use super::{DEFAULT_MAX_CALL_SECS, e164};
use crate::auth::Auth;
use crate::calls::dispatch::agents_to_dispatch;
use crate::error::{ApiError, ApiResult};
use crate::livekit::grants::client_grants;
use crate::livekit::names::RoomName;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use diesel_async::AsyncPgConnection;
use livekit_api::access_token::AccessToken;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// Body of `POST /sip/dial`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone_number": "+17751234567"}))]
pub struct DialIn {
    /// E.164.
    pub phone_number: String,
    /// Agent to dispatch (default: the project's first active one).
    pub agent_config_id: Option<i64>,
    /// Room name suffix (default `outbound-call-<n>`).
    pub room_name: Option<String>,
    /// Outbound caller ID (default: the trunk's number).
    pub caller_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
}

/// The placed call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallOut {
    #[schema(example = "outbound-call-1")]
    pub room_name: String,
    #[schema(example = "proj_outbound-call-1")]
    pub full_room_name: String,
    #[schema(example = "+17751234567")]
    pub phone_number: String,
    #[schema(example = "+18001234567")]
    pub caller_id: String,
    #[schema(example = "ST_abc123")]
    pub trunk_id: String,
    #[schema(example = 55)]
    pub session_id: i64,
    #[schema(example = "PA_xyz")]
    pub sip_participant_id: String,
}

/// `{"success", "call", "token", "wsUrl"}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DialOut {
    pub success: bool,
    pub call: CallOut,
    /// A token for a supervisor to join the call's room.
    pub token: String,
    #[serde(rename = "wsUrl")]
    #[schema(example = "wss://livekit.example")]
    pub ws_url: String,
}

/// Validates a dial: the numbers, the trunk, the line's config, the agent
/// and the room name.
async fn prepare(conn: &mut AsyncPgConnection, auth: &Auth, body: DialIn) -> ApiResult<Dial> {
    let project_id = auth.project.id;
    let phone = e164("phone_number", &body.phone_number)?;
    let caller_override = match body.caller_id.as_deref() {
        Some(c) => Some(e164("caller_id", c)?),
        None => None,
    };
    let trunk = store::trunks(conn, project_id)
        .await?
        .into_iter()
        .find(|t| t.outbound_trunk_id.is_some())
        .ok_or_else(|| ApiError::bad_request("No SIP trunk configured"))?;
    let config =
        store::config_for_line(conn, project_id, &trunk.phone_number, Some(trunk.id)).await?;
    let ids: Vec<i64> = body
        .agent_config_id
        .or(config.as_ref().and_then(|c| c.agent_config_id))
        .into_iter()
        .collect();
    let agent = agents_to_dispatch(conn, project_id, &ids, true)
        .await
        .map_err(|e| match e {
            ApiError::BadRequest { .. } => {
                ApiError::invalid_field("agent_config_id", "Unknown or inactive agent")
            }
            other => other,
        })?
        .pop();
    let room = match body.room_name.as_deref() {
        Some(r) => Some(
            RoomName::parse(&auth.project.room_prefix, r)
                .map_err(|_| ApiError::invalid_field("room_name", "invalid room name"))?,
        ),
        None => None,
    };
    Ok(Dial {
        identity: format!("sip_{}", phone.trim_start_matches('+')),
        caller_id: caller_override.unwrap_or_else(|| trunk.phone_number.clone()),
        outbound_id: trunk.outbound_trunk_id.clone().unwrap_or_default(),
        max_secs: config
            .as_ref()
            .map_or(DEFAULT_MAX_CALL_SECS, |c| c.max_call_duration),
        phone,
        agent,
        room,
        metadata: Value::Object(body.metadata.unwrap_or_default()),
    })
}

#[utoipa::path(
    post, path = "/api/v1/sip/dial", tag = "SIP",
    request_body = DialIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "A retried dial with the same key never places a second call")),
    responses(
        (status = 200, description = "Dialing", body = DialOut),
        (status = 400, description = "Invalid phone number format, or no SIP trunk configured", body = crate::error::ErrorBody),
        (status = 409, description = "The call failed (busy, no answer, …); nothing is left in LiveKit", body = crate::error::ErrorBody),
        (status = 429, description = "SIP config quota reached", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable; nothing is left in LiveKit, so the dial can be retried", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn dial(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<DialIn>,
) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let d = {
        let mut conn = state.pool.get().await?;
        prepare(&mut conn, &auth, body.into_inner()).await?
    };
    let placed = dialing::place(&state, lk, &auth.project, &d).await?;
    let grants = client_grants(&placed.room.full, None)?;
    let token = AccessToken::with_api_key(lk.api_key(), lk.api_secret())
        .with_identity(&format!("supervisor-{}", placed.session_id))
        .with_name("Supervisor")
        .with_ttl(Duration::from_secs(3600))
        .with_grants(grants)
        .to_jwt()
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(DialOut {
        success: true,
        call: CallOut {
            room_name: placed.room.short,
            full_room_name: placed.room.full,
            phone_number: d.phone,
            caller_id: d.caller_id,
            trunk_id: d.outbound_id,
            session_id: placed.session_id,
            sip_participant_id: placed.participant_id,
        },
        token,
        ws_url: lk.ws_url().to_owned(),
    }))
}
