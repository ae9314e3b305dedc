//! `POST /sip/dial` (contract section 10): an outbound call.
//!
//! The number is validated with libphonenumber, then one transaction,
//! serialised with the project's other dials by a transaction advisory lock
//! (never the project row: every quota check of the project locks that),
//! does it all:
//! 1. the quota: concurrent calls (active sip sessions) up to the plan's
//!    `sip_configs` limit;
//! 2. the room: `room_name`, or the first `outbound-call-<n>` (n from the
//!    project's sip sessions) on which no session or room is active;
//! 3. the session of type sip, the LiveKit room (created unless it exists),
//!    the agent's dispatch and CreateSIPParticipant, whose participant
//!    carries the session id ([`DIAL_SESSION`]) so that the webhook of its
//!    joining is never taken for an inbound call;
//! 4. `sip.call_initiated` and the call in `sip_calls` with its deadline
//!    (the line's `max_call_duration`, also passed to LiveKit).
//!
//! When a step fails the transaction rolls back and what the dial made in
//! LiveKit is undone: the room when this dial created it (its dispatch and
//! participant go with it), else its dispatch and SIP participant; a room
//! that existed before is never deleted. So a failed dial leaves nothing
//! behind, and a dial retried after a 5xx (the idempotency middleware
//! forgets the key then) never leaves two calls.

use super::store;
use super::{DEFAULT_MAX_CALL_SECS, e164};
use crate::auth::Auth;
use crate::calls::dispatch::{agent_metadata, agents_to_dispatch};
use crate::db::agents::Agent;
use crate::db::sessions::{self, NewSession};
use crate::error::{ApiError, ApiResult};
use crate::events::emit;
use crate::limits::quota::{self, Resource};
use crate::livekit::calls::DIAL_SESSION;
use crate::livekit::grants::client_grants;
use crate::livekit::names::RoomName;
use crate::livekit::{LiveKit, proto};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use livekit_api::access_token::AccessToken;
use livekit_api::services::ServiceError;
use livekit_api::services::SipCallError;
use livekit_api::services::room::CreateRoomOptions;
use livekit_api::services::sip::CreateSIPParticipantOptions;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
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

/// A validated dial: everything known before the transaction.
struct Dial {
    phone: String,
    caller_id: String,
    outbound_id: String,
    max_secs: i32,
    agent: Option<Agent>,
    /// The room asked for; `None`: the next free `outbound-call-<n>`.
    room: Option<RoomName>,
    identity: String,
    metadata: Value,
}

impl Dial {
    async fn prepare(conn: &mut AsyncPgConnection, auth: &Auth, body: DialIn) -> ApiResult<Self> {
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
        Ok(Self {
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
}

/// What a dial made in LiveKit so far: undone when the dial fails.
#[derive(Debug, Default)]
struct Made {
    /// The call's room, once named.
    room: Option<String>,
    /// Whether this dial created the room (it did not exist before).
    created_room: bool,
    /// The agent dispatch it created.
    dispatch_id: Option<String>,
    /// The SIP participant it placed (or may have: no answer in time).
    participant: Option<String>,
}

impl Made {
    /// Undoes it, best effort (already gone is fine): the room when this
    /// dial created it, else the SIP participant and the dispatch.
    async fn undo(&self, lk: &LiveKit) {
        let Some(room) = self.room.as_deref() else {
            return;
        };
        let gone = |what: &str, r: ApiResult<()>| match r {
            Ok(()) | Err(ApiError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(room, error = %e, "could not remove the {what} of a failed dial")
            }
        };
        if self.created_room {
            gone("room", lk.call(lk.rooms.delete_room(room)).await);
            return;
        }
        if let Some(identity) = self.participant.as_deref() {
            let removed = lk.call(lk.rooms.remove_participant(room, identity)).await;
            gone("SIP participant", removed);
        }
        if let Some(id) = self.dispatch_id.as_deref() {
            let deleted = lk.call(lk.dispatch.delete_dispatch(id, room)).await;
            gone("agent dispatch", deleted.map(|_| ()));
        }
    }
}

/// A placed call.
struct Placed {
    room: RoomName,
    session_id: i64,
    participant_id: String,
}

/// Serialises the project's dials and refuses a call past the plan's
/// `sip_configs` limit of concurrent calls (the `sip_calls` counter: SIP
/// sessions active now, kept by the sessions' triggers).
async fn reserve_call(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    auth: &Auth,
) -> ApiResult<()> {
    crate::db::sip_calls::lock_dials(conn, auth.project.id).await?;
    let used = quota::counter(conn, auth.project.id, quota::SIP_CALLS, false).await?;
    let limit = Resource::SipConfigs.limit(&state.settings.plans, &auth.project);
    if used >= limit {
        return Err(ApiError::QuotaExceeded {
            resource: Resource::SipConfigs.as_str(),
            limit,
            used,
            upgrade_url: state.settings.upgrade_url.clone(),
        });
    }
    Ok(())
}

/// The first `outbound-call-<n>`, from n = the project's sip sessions + 1,
/// on which no session and no room is active. Call under the dial lock.
async fn free_room(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    prefix: &str,
) -> ApiResult<RoomName> {
    let mut n = sessions::count_of_type(conn, project_id, "sip").await? + 1;
    loop {
        let room = RoomName::parse(prefix, &format!("outbound-call-{n}"))?;
        let busy = sessions::active(conn, project_id, &room.full)
            .await?
            .is_some()
            || crate::db::rooms::find_active(conn, project_id, &room.short)
                .await?
                .is_some();
        if !busy {
            return Ok(room);
        }
        n += 1;
    }
}

/// A call failure as an API error: 409 with LiveKit's SIP status.
fn call_failed(e: &ServiceError) -> Option<(ApiError, String)> {
    let sip = SipCallError::from_error(e)?;
    let reason = format!(
        "{} {}",
        sip.sip_status_code().unwrap_or_default(),
        sip.sip_status().unwrap_or_default()
    )
    .trim()
    .to_owned();
    Some((
        ApiError::Conflict {
            message: format!("The call failed: {reason}"),
            details: Some(json!({
                "sip_status_code": sip.sip_status_code(),
                "sip_status": sip.sip_status(),
            })),
        },
        reason,
    ))
}

/// The dial's transaction: see the module documentation. `made` records
/// each LiveKit resource as it is made.
async fn place(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    lk: &LiveKit,
    auth: &Auth,
    d: &Dial,
    made: &mut Made,
) -> ApiResult<Placed> {
    let project_id = auth.project.id;
    reserve_call(conn, state, auth).await?;
    let room = match &d.room {
        Some(r) => r.clone(),
        None => free_room(conn, project_id, &auth.project.room_prefix).await?,
    };
    made.room = Some(room.full.clone());
    let session = sessions::start(
        conn,
        project_id,
        &NewSession {
            room_name: room.full.clone(),
            agent_config_id: d.agent.as_ref().map(|a| a.id),
            caller_identity: Some(d.identity.clone()),
            session_type: "sip".into(),
            metadata: json!({
                "direction": "outbound", "phone_number": d.phone, "caller_id": d.caller_id,
                "trunk_id": d.outbound_id, "call_metadata": d.metadata,
            }),
            room_sid: None,
        },
    )
    .await?
    .ok_or_else(|| {
        ApiError::conflict(format!("Room {} already has an active session", room.short))
    })?;
    let existing = lk
        .call(lk.rooms.list_rooms(vec![room.full.clone()]))
        .await?
        .pop();
    let lk_room = match existing {
        Some(r) => r,
        None => {
            // Set first: a create that timed out may still have made it.
            made.created_room = true;
            let metadata = json!({ "sip": { "direction": "outbound", "phone_number": d.phone } });
            let options = CreateRoomOptions {
                metadata: metadata.to_string(),
                ..Default::default()
            };
            lk.call(lk.rooms.create_room(&room.full, options)).await?
        }
    };
    sessions::set_room_sid(conn, session.id, &lk_room.sid).await?;
    if let Some(agent) = &d.agent {
        let dispatch = lk
            .call(
                lk.dispatch
                    .create_dispatch(proto::CreateAgentDispatchRequest {
                        agent_name: agent.dispatch_name.clone(),
                        room: room.full.clone(),
                        metadata: agent_metadata(agent, &room.full),
                        ..Default::default()
                    }),
            )
            .await?;
        made.dispatch_id = Some(dispatch.id);
    }
    let options = CreateSIPParticipantOptions {
        participant_identity: d.identity.clone(),
        participant_name: Some(d.phone.clone()),
        participant_metadata: Some(d.metadata.to_string()),
        participant_attributes: Some(HashMap::from([(
            DIAL_SESSION.to_owned(),
            session.id.to_string(),
        )])),
        sip_number: Some(d.caller_id.clone()),
        max_call_duration: Some(Duration::from_secs(
            u64::try_from(d.max_secs).unwrap_or(1800),
        )),
        ..Default::default()
    };
    // Without an answer in time the call may have been placed.
    made.participant = Some(d.identity.clone());
    let placed = tokio::time::timeout(
        Duration::from_secs(35),
        lk.sip.create_sip_participant(
            d.outbound_id.clone(),
            d.phone.clone(),
            room.full.clone(),
            options,
            None,
        ),
    )
    .await
    .map_err(|_| ApiError::Unavailable("LiveKit unavailable".into()))?;
    let participant = match placed {
        Ok(p) => p,
        Err(e) => {
            let Some((err, reason)) = call_failed(&e) else {
                return Err(lk
                    .call(async { Err::<(), _>(e) })
                    .await
                    .err()
                    .unwrap_or_else(|| ApiError::Unavailable("LiveKit unavailable".into())));
            };
            // Refused: no participant joined.
            made.participant = None;
            return Err(FailedCall { err, reason }.into());
        }
    };
    emit(
        conn,
        project_id,
        "sip.call_initiated",
        json!({
            "room_name": room.full, "room": room.short, "phone_number": d.phone,
            "caller_id": d.caller_id, "trunk_id": d.outbound_id, "session_id": session.id,
            "sip_participant_id": participant.participant_id,
            "agent_config_id": d.agent.as_ref().map(|a| a.id),
        }),
    )
    .await?;
    // The call, with its deadline: the calls worker ends it there
    // (`crate::livekit::calls`), whichever process is running then.
    let call = crate::db::sip_calls::insert(
        conn,
        &crate::db::sip_calls::NewCall {
            project_id,
            session_id: Some(session.id),
            room_name: &room.full,
            participant_identity: &participant.participant_identity,
            phone_number: &d.phone,
            direction: "outbound",
            status: "dialing",
            max_call_duration: d.max_secs,
            deadline: Utc::now() + chrono::Duration::seconds(i64::from(d.max_secs)),
        },
    )
    .await?;
    crate::livekit::calls::report(conn, &call).await?;
    Ok(Placed {
        room,
        session_id: session.id,
        participant_id: participant.participant_id,
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
    let mut conn = state.pool.get().await?;
    let d = Dial::prepare(&mut conn, &auth, body.into_inner()).await?;
    let mut made = Made::default();
    let placed = conn
        .transaction::<_, ApiError, _>(async |conn| {
            place(conn, &state, lk, &auth, &d, &mut made).await
        })
        .await;
    let placed = match placed {
        Ok(p) => p,
        Err(e) => {
            made.undo(lk).await;
            let room = made.room.as_deref().unwrap_or_default();
            return Err(failed_call_cleanup(
                &state,
                auth.project.id,
                room,
                &d.phone,
                e,
            ));
        }
    };
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

/// A SIP failure inside the dial transaction (rolled back), reported after.
struct FailedCall {
    err: ApiError,
    reason: String,
}

impl From<FailedCall> for ApiError {
    fn from(f: FailedCall) -> Self {
        match f.err {
            ApiError::Conflict { message, details } => ApiError::Conflict {
                message,
                details: Some(
                    details
                        .unwrap_or_else(|| json!({}))
                        .as_object()
                        .cloned()
                        .map(|mut m| {
                            m.insert("call_failed".into(), json!(f.reason));
                            Value::Object(m)
                        })
                        .unwrap_or_default(),
                ),
            },
            other => other,
        }
    }
}

/// After a failed call (the transaction rolled back): `call.status` failed
/// with the reason, recorded in its own transaction.
fn failed_call_cleanup(
    state: &web::Data<AppState>,
    project_id: i64,
    room: &str,
    phone: &str,
    e: ApiError,
) -> ApiError {
    let reason = match &e {
        ApiError::Conflict {
            details: Some(d), ..
        } => d
            .get("call_failed")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    if let Some(reason) = reason {
        let state = state.clone();
        let (room, phone) = (room.to_owned(), phone.to_owned());
        actix_web::rt::spawn(async move {
            let Ok(mut conn) = state.pool.get().await else {
                return;
            };
            let data = json!({ "room_name": room, "phone_number": phone, "status": "failed", "reason": reason });
            match emit(&mut conn, project_id, "sip.call_status", data).await {
                Ok(_) => state.events_wake.committed(),
                Err(e) => tracing::warn!(error = %e, "could not record a failed call"),
            }
        });
    }
    e
}
