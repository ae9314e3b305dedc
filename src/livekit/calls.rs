//! SIP call progress and the durable `max_call_duration`.
//!
//! LiveKit reports a call through its SIP participant: the participant
//! joins the room while the call is dialing, its `sip.callStatus`
//! attribute moves `dialing` → `ringing` → `active`, and it leaves when the
//! call ends, with a disconnect reason that says why a call that never
//! became active failed (`USER_REJECTED` busy, `USER_UNAVAILABLE` no answer,
//! `SIP_TRUNK_FAILURE`). `participant_joined` and `participant_left`
//! webhooks carry the attributes at that moment, but no webhook reports an
//! attribute change, so the calls worker reads the participant of every
//! call still dialing or ringing (`GetParticipant`) each
//! `calls_poll_ms`.
//!
//! Every call has a row in `sip_calls`; each change of status is a
//! conditional update of that row plus a `sip.call_status` event (monitor
//! `call.status`) in one transaction, so each status is reported once,
//! whichever process (webhook or worker, this node or another) saw it.
//!
//! The row also holds the call's deadline (start + `max_call_duration`).
//! The worker ends overdue calls: the SIP participant is removed, the
//! call ends with reason `max_call_duration`, its session ends. Rows are
//! claimed with `FOR UPDATE SKIP LOCKED`, so any process does it, also one
//! started after the process that placed the call went away.

/// Default `max_call_duration` (seconds) of a line without a config.
pub const DEFAULT_MAX_CALL_SECS: i32 = 1800;

use crate::db::sip_calls::{self as store, SipCall, SipCallStatus};
use crate::error::{ApiError, ApiResult};
use crate::events::emit;
use crate::livekit::proto;
use crate::state::AppState;
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use std::time::Duration;

/// The attribute a dial gives its SIP participant: the id of the dial's
/// session. A SIP participant with it was placed by `POST /sip/dial`, never
/// an inbound call, even before the dial has committed its call.
pub const DIAL_SESSION: &str = "voxplane.session_id";

/// Calls examined per tick.
const BATCH: i64 = 100;

/// A call's status as LiveKit reports it in its SIP participant's
/// `sip.callStatus` attribute (LiveKit's names), when it is one Voxplane
/// follows.
pub fn reported(attribute: &str) -> Option<SipCallStatus> {
    match attribute {
        "dialing" => Some(SipCallStatus::Dialing),
        "ringing" => Some(SipCallStatus::Ringing),
        "active" => Some(SipCallStatus::Active),
        _ => None,
    }
}

/// The order in which a call moves forward (dialing → ringing → active).
fn rank(status: SipCallStatus) -> Option<u8> {
    match status {
        SipCallStatus::Dialing => Some(0),
        SipCallStatus::Ringing => Some(1),
        SipCallStatus::Active => Some(2),
        SipCallStatus::Reserved | SipCallStatus::Ended | SipCallStatus::Failed => None,
    }
}

/// Emits the `sip.call_status` event of a call's current status.
pub async fn report(conn: &mut AsyncPgConnection, call: &SipCall) -> ApiResult<()> {
    let data = json!({
        "room_name": call.room_name, "phone_number": call.phone_number,
        "status": call.status, "reason": call.reason,
        "identity": call.participant_identity, "session_id": call.session_id,
        "direction": call.direction,
    });
    emit(conn, call.project_id, "sip.call_status", data).await?;
    Ok(())
}

/// Moves a call to `to` and reports it; nothing when another process did.
pub async fn move_to(
    conn: &mut AsyncPgConnection,
    call: &SipCall,
    to: SipCallStatus,
    reason: Option<&str>,
) -> ApiResult<Option<SipCall>> {
    let Some(moved) = store::transition(conn, call.id, call.status, to, reason).await? else {
        return Ok(None);
    };
    report(conn, &moved).await?;
    Ok(Some(moved))
}

/// Applies a `sip.callStatus` LiveKit reported; it only moves forward
/// (dialing → ringing → active).
pub async fn progress(
    conn: &mut AsyncPgConnection,
    call: &SipCall,
    reported: SipCallStatus,
) -> ApiResult<()> {
    if let (Some(now), Some(new)) = (rank(call.status), rank(reported))
        && new > now
    {
        move_to(conn, call, reported, None).await?;
    }
    Ok(())
}

/// The end of a call whose SIP participant left: `ended` once it was
/// active, else `failed` with why; its session ends with it. A participant
/// replaced by a new connection of the same identity (`DUPLICATE_IDENTITY`)
/// has not left the call.
pub async fn left(
    conn: &mut AsyncPgConnection,
    call: &SipCall,
    p: &proto::ParticipantInfo,
) -> ApiResult<()> {
    use proto::DisconnectReason as R;
    let why = R::try_from(p.disconnect_reason).unwrap_or(R::UnknownReason);
    // Replaced by a new connection of the same identity: the call goes on.
    if why == R::DuplicateIdentity {
        return Ok(());
    }
    let (status, reason) = if call.status == SipCallStatus::Active {
        let reason = match why {
            R::ClientInitiated => "hangup",
            R::ParticipantRemoved => "removed",
            R::RoomDeleted | R::RoomClosed => "room_closed",
            _ => "disconnected",
        };
        (SipCallStatus::Ended, reason)
    } else {
        let reason = match why {
            R::UserRejected => "busy",
            R::UserUnavailable => "no_answer",
            R::SipTrunkFailure => "sip_trunk_failure",
            R::MediaFailure => "media_failure",
            R::ClientInitiated | R::ParticipantRemoved => "cancelled",
            R::RoomDeleted | R::RoomClosed => "room_closed",
            _ => "unknown",
        };
        (SipCallStatus::Failed, reason)
    };
    if move_to(conn, call, status, Some(reason)).await?.is_some() {
        // The call is over, so is its session (and the dial quota it
        // holds), whether or not the room stays open a while.
        end_session(conn, call).await?;
    }
    Ok(())
}

/// Ends the session of a call that ended, if that session is still the
/// room's active one (a session started later in the room is left alone).
async fn end_session(conn: &mut AsyncPgConnection, call: &SipCall) -> ApiResult<()> {
    use crate::db::sessions;
    let Some(id) = call.session_id else {
        return Ok(());
    };
    // Locked: while it is active it is the room's one active session.
    if let Some(session) = sessions::lock_active(conn, call.project_id, id).await? {
        sessions::end(
            conn,
            call.project_id,
            &session.room_name,
            None,
            None,
            Utc::now(),
        )
        .await?;
    }
    Ok(())
}

/// Spawns the calls worker: call progress and overdue calls, every
/// `calls_poll_ms`.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(state.settings.calls_poll_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if state.livekit.is_none() {
                continue;
            }
            crate::events::rings_after(&state.events_wake, async {
                if let Err(e) = poll_progress(&state).await {
                    tracing::warn!(error = %e, "could not read SIP call progress");
                }
                if let Err(e) = end_overdue(&state).await {
                    tracing::warn!(error = %e, "could not end overdue SIP calls");
                }
            })
            .await;
        }
    })
}

/// Reads `sip.callStatus` of each call still dialing or ringing.
async fn poll_progress(state: &AppState) -> ApiResult<()> {
    let lk = state.livekit()?;
    let mut conn = state.pool.get().await?;
    for call in store::progressing(&mut conn, BATCH).await? {
        let found = lk
            .call(
                lk.rooms
                    .get_participant(&call.room_name, &call.participant_identity),
            )
            .await;
        // Gone: its participant_left reports the end.
        let Ok(p) = found else { continue };
        if let Some(status) = p.attributes.get("sip.callStatus").and_then(|s| reported(s)) {
            progress(&mut conn, &call, status).await?;
        }
    }
    Ok(())
}

/// Ends the calls past their deadline: removes the SIP participant (no
/// transaction open), then ends the call (`max_call_duration`) and its
/// session in one short transaction per call, taken with `SKIP LOCKED` (a
/// call another process is ending is left to it). A LiveKit failure leaves
/// the call for the next tick.
pub async fn end_overdue(state: &AppState) -> ApiResult<usize> {
    let lk = state.livekit()?;
    let calls = {
        let mut conn = state.pool.get().await?;
        store::overdue(&mut conn, BATCH).await?
    };
    let mut ended = 0;
    for call in &calls {
        match lk
            .call(
                lk.rooms
                    .remove_participant(&call.room_name, &call.participant_identity),
            )
            .await
        {
            // Already gone is fine: the call is over either way.
            Ok(()) | Err(ApiError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(call = call.id, error = %e, "could not end an overdue call; retried next tick");
                continue;
            }
        }
        let mut conn = state.pool.get().await?;
        let done = conn
            .transaction::<_, ApiError, _>(async |conn| {
                let Some(call) = store::lock_overdue(conn, call.id).await? else {
                    return Ok(false);
                };
                if move_to(conn, &call, SipCallStatus::Ended, Some("max_call_duration"))
                    .await?
                    .is_some()
                {
                    end_session(conn, &call).await?;
                }
                Ok(true)
            })
            .await?;
        if done {
            ended += 1;
            tracing::info!(call = call.id, room = %call.room_name, "ended a call at its max_call_duration");
        }
    }
    Ok(ended)
}
