//! The rules of an outbound call (`POST /sip/dial`, [`super::dial`]), as
//! reserve → commit → call LiveKit → confirm (issue 19: no remote call
//! while a transaction or a lock is held):
//!
//! 1. **reserve**, one short transaction serialised with the project's
//!    other dials by a transaction advisory lock (never the project row):
//!    the quota (concurrent calls, the `sip_calls` counter: active sip
//!    sessions, up to the plan's `sip_configs` limit), the room
//!    (`room_name`, or the first `outbound-call-<n>` on which no session or
//!    room is active; the sessions' partial unique index refuses a second
//!    active session of a room), the session of type sip (no event yet)
//!    and the call as `reserved`; committed;
//! 2. **call** LiveKit with no transaction, lock or connection held: the
//!    room (created unless it exists), the agent's dispatch and
//!    CreateSIPParticipant, whose participant carries the session id
//!    ([`DIAL_SESSION`]) so that the webhook of its joining is never taken
//!    for an inbound call;
//! 3. **confirm**, a second short transaction: the call `dialing` with its
//!    deadline (the line's `max_call_duration`, also passed to LiveKit),
//!    `session.started`, `sip.call_initiated` and `sip.call_status` —
//!    the events a dial always emitted, in the same order.
//!
//! When a step fails, what the dial made in LiveKit is undone (the room
//! when this dial created it, its dispatch and participant going with it;
//! else its dispatch and SIP participant; a room that existed before is
//! never deleted) and the reservation is deleted with its session, which
//! frees the quota and the room name; a call LiveKit refused is reported
//! as `sip.call_status` failed, once, in that transaction. So a failed
//! dial leaves nothing behind, and a dial retried after a 5xx (the
//! idempotency middleware forgets the key then) never leaves two calls.
//! A reservation left by a process that died is settled by its settle
//! job, committed with it ([`settle`], `crate::jobs`); the confirmation
//! or the release cancels the job.

use crate::auth::ProjectInfo;
use crate::calls::dispatch::agent_metadata;
use crate::db::agents::Agent;
use crate::db::schema::sessions as sessions_table;
use crate::db::sessions::{self, NewSession, Session};
use crate::db::sip_calls::{self, NewCall, SipCall};
use crate::error::{ApiError, ApiResult};
use crate::events::emit;
use crate::jobs::{self, Job};
use crate::limits::quota::{self, Resource};
use crate::livekit::calls::DIAL_SESSION;
use crate::livekit::names::{RoomName, prefix_of};
use crate::livekit::{LiveKit, proto};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use livekit_api::services::room::CreateRoomOptions;
use livekit_api::services::sip::CreateSIPParticipantOptions;
use livekit_api::services::{ServiceError, SipCallError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// How long CreateSIPParticipant may take (it waits for the call to be
/// placed).
pub const PLACE_TIMEOUT: Duration = Duration::from_secs(35);

/// A validated dial: everything known before the reservation.
#[derive(Debug)]
pub struct Dial {
    /// The number called (E.164).
    pub phone: String,
    /// The caller id shown (E.164).
    pub caller_id: String,
    /// The LiveKit outbound trunk.
    pub outbound_id: String,
    /// The line's max call duration (seconds).
    pub max_secs: i32,
    /// The agent dispatched into the call's room.
    pub agent: Option<Agent>,
    /// The room asked for; `None`: the next free `outbound-call-<n>`.
    pub room: Option<RoomName>,
    /// The SIP participant's identity.
    pub identity: String,
    /// The caller's metadata for the call.
    pub metadata: Value,
}

/// A reserved dial: its room, its session (no event yet) and its call
/// (`reserved`).
#[derive(Debug)]
pub struct Reservation {
    /// The call's room.
    pub room: RoomName,
    /// The session holding the quota and the room.
    pub session: Session,
    /// The call, `reserved`.
    pub call: SipCall,
    /// Its settle job (none when the job itself settles it).
    pub job: Option<i64>,
}

/// A placed call.
#[derive(Debug)]
pub struct Placed {
    /// The call's room.
    pub room: RoomName,
    /// Its session.
    pub session_id: i64,
    /// LiveKit's id of the SIP participant.
    pub participant_id: String,
}

/// What a dial made in LiveKit so far: undone when the dial fails.
#[derive(Debug, Default)]
struct Made {
    /// The call's room.
    room: String,
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
        let room = self.room.as_str();
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

/// Places a call: see the module documentation.
pub async fn place(
    state: &AppState,
    lk: &LiveKit,
    project: &ProjectInfo,
    d: &Dial,
) -> ApiResult<Placed> {
    let reserved = reserve(state, project, d).await?;
    let mut made = Made {
        room: reserved.room.full.clone(),
        ..Default::default()
    };
    let placed = match call(lk, d, &reserved, &mut made).await {
        Ok((sid, participant_id)) => confirm(state, &reserved, Some(&sid), &participant_id).await,
        Err(e) => Err(e),
    };
    match placed {
        Ok(placed) => Ok(placed),
        Err(e) => {
            made.undo(lk).await;
            release(state, &reserved, failed_reason(&e)).await;
            Err(e)
        }
    }
}

/// The first `outbound-call-<n>` from `n` on which no session and no room
/// is active, and that `n`.
async fn free_room(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    prefix: &str,
    mut n: i64,
) -> ApiResult<(RoomName, i64)> {
    loop {
        let room = RoomName::parse(prefix, &format!("outbound-call-{n}"))?;
        let busy = sessions::active(conn, project_id, &room.full)
            .await?
            .is_some()
            || crate::db::rooms::find_active(conn, project_id, &room.short)
                .await?
                .is_some();
        if !busy {
            return Ok((room, n));
        }
        n += 1;
    }
}

/// The reservation's transaction (step 1).
async fn reserve(state: &AppState, project: &ProjectInfo, d: &Dial) -> ApiResult<Reservation> {
    let settings = &state.settings;
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        sip_calls::lock_dials(conn, project.id).await?;
        let used = quota::counter(conn, project.id, quota::SIP_CALLS, false).await?;
        let limit = Resource::SipConfigs.limit(&settings.plans, project);
        if used >= limit {
            return Err(ApiError::QuotaExceeded {
                resource: Resource::SipConfigs.as_str(),
                limit,
                used,
                upgrade_url: settings.upgrade_url.clone(),
            });
        }
        let new = |room: &RoomName| NewSession {
            room_name: room.full.clone(),
            agent_config_id: d.agent.as_ref().map(|a| a.id),
            caller_identity: Some(d.identity.clone()),
            session_type: "sip".into(),
            metadata: json!({
                "direction": "outbound", "phone_number": d.phone, "caller_id": d.caller_id,
                "trunk_id": d.outbound_id, "call_metadata": d.metadata,
            }),
            room_sid: None,
        };
        let (room, session) = match &d.room {
            Some(room) => {
                let session = sessions::insert(conn, project.id, &new(room))
                    .await?
                    .ok_or_else(|| {
                        ApiError::conflict(format!(
                            "Room {} already has an active session",
                            room.short
                        ))
                    })?;
                (room.clone(), session)
            }
            None => {
                // n from the project's sip sessions; a room taken meanwhile
                // (the unique index refuses the session) moves on.
                let mut n = quota::counter(conn, project.id, quota::SIP_SESSIONS, false).await? + 1;
                loop {
                    let (room, at) = free_room(conn, project.id, &project.room_prefix, n).await?;
                    if let Some(session) = sessions::insert(conn, project.id, &new(&room)).await? {
                        break (room, session);
                    }
                    n = at + 1;
                }
            }
        };
        let call = sip_calls::insert(
            conn,
            &NewCall {
                project_id: project.id,
                session_id: Some(session.id),
                room_name: &room.full,
                participant_identity: &d.identity,
                phone_number: &d.phone,
                direction: "outbound",
                status: sip_calls::RESERVED,
                max_call_duration: d.max_secs,
                deadline: deadline(d.max_secs),
            },
        )
        .await?;
        let settle = Job::SettleDial { call_id: call.id };
        let job = jobs::enqueue(conn, &settle, settle.grace(settings)).await?;
        Ok(Reservation {
            room,
            session,
            call,
            job: Some(job),
        })
    })
    .await
}

fn deadline(max_secs: i32) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(i64::from(max_secs))
}

/// LiveKit's part (step 2), no transaction open: the room's sid and the
/// SIP participant's id. `made` records each resource as it is made.
async fn call(
    lk: &LiveKit,
    d: &Dial,
    r: &Reservation,
    made: &mut Made,
) -> ApiResult<(String, String)> {
    let room = &r.room;
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
            r.session.id.to_string(),
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
        PLACE_TIMEOUT,
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
    match placed {
        Ok(p) => Ok((lk_room.sid, p.participant_id)),
        Err(e) => {
            let Some(failed) = call_failed(&e) else {
                return Err(lk
                    .call(async { Err::<(), _>(e) })
                    .await
                    .err()
                    .unwrap_or_else(|| ApiError::Unavailable("LiveKit unavailable".into())));
            };
            // Refused: no participant joined.
            made.participant = None;
            Err(failed)
        }
    }
}

/// A call failure as an API error: 409 with LiveKit's SIP status, and the
/// reason reported (`details.call_failed`).
fn call_failed(e: &ServiceError) -> Option<ApiError> {
    let sip = SipCallError::from_error(e)?;
    let reason = format!(
        "{} {}",
        sip.sip_status_code().unwrap_or_default(),
        sip.sip_status().unwrap_or_default()
    )
    .trim()
    .to_owned();
    Some(ApiError::Conflict {
        message: format!("The call failed: {reason}"),
        details: Some(json!({
            "sip_status_code": sip.sip_status_code(),
            "sip_status": sip.sip_status(),
            "call_failed": reason,
        })),
    })
}

/// The reason of a call LiveKit refused (see [`call_failed`]).
fn failed_reason(e: &ApiError) -> Option<String> {
    match e {
        ApiError::Conflict {
            details: Some(d), ..
        } => d
            .get("call_failed")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

/// The confirmation's transaction (step 3), also the settle job's when it
/// adopts a call a dead process placed.
async fn confirm(
    state: &AppState,
    r: &Reservation,
    room_sid: Option<&str>,
    participant_id: &str,
) -> ApiResult<Placed> {
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let call = sip_calls::confirm(conn, r.call.id, deadline(r.call.max_call_duration))
            .await?
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("a dial reservation went missing"))
            })?;
        if let Some(sid) = room_sid {
            sessions::set_room_sid(conn, r.session.id, sid).await?;
        }
        if let Some(job) = r.job {
            jobs::cancel(conn, job).await?;
        }
        sessions::announce(conn, &r.session).await?;
        let meta = &r.session.metadata;
        emit(
            conn,
            call.project_id,
            "sip.call_initiated",
            json!({
                "room_name": r.room.full, "room": r.room.short, "phone_number": call.phone_number,
                "caller_id": meta["caller_id"], "trunk_id": meta["trunk_id"],
                "session_id": r.session.id, "sip_participant_id": participant_id,
                "agent_config_id": r.session.agent_config_id,
            }),
        )
        .await?;
        // The calls worker ends it at its deadline (`crate::livekit::calls`),
        // whichever process is running then.
        crate::livekit::calls::report(conn, &call).await
    })
    .await?;
    state.events_wake.committed();
    Ok(Placed {
        room: r.room.clone(),
        session_id: r.session.id,
        participant_id: participant_id.to_owned(),
    })
}

/// Deletes a reservation whose call was not placed, with its session (the
/// quota and the room name with it); a call LiveKit refused is reported
/// `failed` with `reason`, in the same transaction. Logged when it cannot
/// be done: its settle job settles it.
async fn release(state: &AppState, r: &Reservation, reason: Option<String>) {
    let released = async {
        let mut conn = state.pool.get().await?;
        conn.transaction::<_, ApiError, _>(async |conn| {
            sip_calls::release(conn, r.call.id).await?;
            if let Some(job) = r.job {
                jobs::cancel(conn, job).await?;
            }
            if let Some(reason) = reason {
                let data = json!({
                    "room_name": r.room.full, "phone_number": r.call.phone_number,
                    "status": sip_calls::SipCallStatus::Failed, "reason": reason,
                });
                emit(conn, r.call.project_id, "sip.call_status", data).await?;
            }
            Ok(())
        })
        .await
    };
    match released.await {
        Ok(()) => state.events_wake.committed(),
        Err(e) => {
            tracing::warn!(call = r.call.id, error = %e, "could not release a dial reservation")
        }
    }
}

/// The settle job of a dial reservation ([`Job::SettleDial`]; the dial
/// that made it died between its transactions), when the call is still
/// `reserved`: a call LiveKit has placed (its SIP participant is in the
/// room) is adopted as the dial would have confirmed it (`dial_adopted`),
/// else the reservation is dropped with its session (`dial_released`; a
/// room or dispatch the dead dial may have made is left to LiveKit's
/// empty-room timeout and the room repairs). LiveKit unreachable: an
/// error, retried.
pub async fn settle(state: &AppState, call_id: i64) -> anyhow::Result<Option<&'static str>> {
    let lk = state.livekit().map_err(|e| anyhow::anyhow!("{e}"))?;
    let call = {
        let mut conn = state.pool.get().await?;
        sip_calls::reservation(&mut conn, call_id).await?
    };
    let Some(call) = call else {
        return Ok(None);
    };
    let present = match lk.call(lk.rooms.list_participants(&call.room_name)).await {
        Ok(present) => present,
        // No such room: nothing was placed there.
        Err(ApiError::NotFound(_)) => Vec::new(),
        Err(e) => anyhow::bail!("ListParticipants: {e}"),
    };
    let placed = present
        .iter()
        .find(|p| p.identity == call.participant_identity);
    let session = match call.session_id {
        Some(id) => {
            let mut conn = state.pool.get().await?;
            sessions_table::table
                .find(id)
                .select(Session::as_select())
                .first(&mut conn)
                .await
                .optional()?
        }
        None => None,
    };
    let room =
        prefix_of(&call.room_name).and_then(|prefix| RoomName::from_full(prefix, &call.room_name));
    match (placed, session, room) {
        (Some(p), Some(session), Some(room)) => {
            let sid = p.sid.clone();
            let r = Reservation {
                room,
                session,
                call,
                job: None,
            };
            confirm(state, &r, None, &sid)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(Some("dial_adopted"))
        }
        _ => {
            let mut conn = state.pool.get().await?;
            Ok(sip_calls::release(&mut conn, call.id)
                .await?
                .then_some("dial_released"))
        }
    }
}
