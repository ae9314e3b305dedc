//! Voice calls in a chat, through LiveKit.
//!
//! `start-call` reserves the call (`pending`, one live call per chat) and
//! commits, creates the LiveKit room `<prefix>_chatcall-<id>` with no
//! transaction open, then records the outcome: `ringing` with a `call`
//! message in the chat and `incoming_call` to the members, or `failed`.
//! Members get LiveKit tokens for that room only (`start-call`,
//! `join-call`) and connect to LiveKit directly. LiveKit's webhooks report
//! who joins and leaves ([`on_participant`], called by the webhook handler
//! in its transaction): the first member other than the caller to join
//! answers the call (`active`); when the last one leaves it ends
//! (`everyone_left`, or `cancelled` if nobody had answered). `end-call`
//! ends it for everyone and deletes the room; calls nobody answers end
//! after `call_ring_timeout_secs` (`missed`, [`expire`]). The call's
//! message shows the call as it is now, with its duration (answer to end).

use super::calls_store::{self as store, CallRow, ChatCallStatus};
use super::events as ev;
use super::service::{Member, no_chat};
use super::types::{ChatCallOut, ChatCallTokenOut, ChatMessageOut};
use crate::error::{ApiError, ApiResult};
use crate::livekit::{grants, proto};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use livekit_api::services::room::CreateRoomOptions;
use std::time::Duration;

/// The LiveKit identity of an account in calls.
pub fn identity(account_id: i64) -> String {
    format!("account-{account_id}")
}

/// The account of an identity minted by [`identity`].
pub fn account_of(identity: &str) -> Option<i64> {
    identity.strip_prefix("account-")?.parse().ok()
}

/// Whether a full room name is a chat call's (`<prefix>_chatcall-<id>`).
pub fn is_call_room(full: &str) -> bool {
    full.split_once('_')
        .is_some_and(|(_, short)| short.starts_with("chatcall-"))
}

/// The call as JSON, with its participants.
pub async fn call_out(conn: &mut AsyncPgConnection, call: &CallRow) -> QueryResult<ChatCallOut> {
    let participants = store::participants(conn, call.id).await?;
    Ok(call.out(participants))
}

/// Emits `chat.call` for a change of a (locked) call, to the chat's
/// members, with the call's next version; the call as announced.
async fn announce(
    conn: &mut AsyncPgConnection,
    call: &CallRow,
    change: &str,
    account_id: Option<i64>,
) -> QueryResult<CallRow> {
    let call = store::bump(conn, call.id).await?;
    let out = call_out(conn, &call).await?;
    let recipients = super::store::member_ids(conn, call.chat_id).await?;
    ev::call(conn, call.project_id, &out, change, account_id, &recipients).await?;
    Ok(call)
}

/// A member's token for a call's room.
async fn token_for(
    state: &AppState,
    conn: &mut AsyncPgConnection,
    account_id: i64,
    call: ChatCallOut,
) -> ApiResult<ChatCallTokenOut> {
    use crate::db::schema::accounts as a;
    let lk = state.livekit()?;
    let name: String = a::table
        .find(account_id)
        .select(a::name)
        .first(conn)
        .await?;
    let who = identity(account_id);
    let ttl = Duration::from_secs(state.settings.chat.call_token_ttl_secs);
    let token = grants::sign(
        lk.api_key(),
        lk.api_secret(),
        &who,
        &name,
        ttl,
        grants::voice_call_grants(&call.room),
    )?;
    Ok(ChatCallTokenOut {
        room: call.room.clone(),
        call,
        token,
        identity: who,
        ws_url: lk.ws_url().to_owned(),
    })
}

/// `start-call`: see the module documentation.
pub async fn start(state: &AppState, m: &Member, chat_id: i64) -> ApiResult<ChatCallTokenOut> {
    let lk = state.livekit()?;
    let mut conn = state.pool.get().await?;
    // Reserve (and commit) before LiveKit is called.
    let call = conn
        .transaction::<_, ApiError, _>(async |conn| {
            super::service::access(conn, m, chat_id).await?;
            match store::reserve(conn, chat_id, m.project_id, &m.room_prefix, m.account_id).await? {
                Some(call) => Ok(call),
                None => {
                    let live = store::live_of_chat(conn, chat_id).await?;
                    Err(ApiError::Conflict {
                        message: "A call is already running in this chat; join it".into(),
                        details: Some(serde_json::json!({ "call_id": live.map(|c| c.id) })),
                    })
                }
            }
        })
        .await?;
    let options = CreateRoomOptions {
        empty_timeout: u32::try_from(state.settings.chat.call_ring_timeout_secs)
            .unwrap_or(u32::MAX),
        max_participants: u32::try_from(state.settings.chat.max_group_members).unwrap_or(0),
        ..Default::default()
    };
    let created = lk
        .call(lk.rooms.create_room(&call.room_name, options))
        .await;
    let outcome = conn
        .transaction::<_, ApiError, _>(async |conn| {
            if let Err(e) = created {
                if let Some(failed) =
                    store::end(conn, call.id, ChatCallStatus::Failed, "livekit_unavailable").await?
                {
                    announce(conn, &failed, "ended", None).await?;
                }
                return Ok(Err(e));
            }
            let Some(ringing) = store::ringing(conn, call.id).await? else {
                // Ended meanwhile (end-call, or taken for abandoned).
                return Ok(Err(ApiError::conflict("The call ended before it rang")));
            };
            post_call_message(conn, &ringing).await?;
            let ringing = announce(conn, &ringing, "ringing", Some(m.account_id)).await?;
            Ok(Ok(call_out(conn, &ringing).await?))
        })
        .await?;
    state.events_wake.committed();
    let call = outcome?;
    token_for(state, &mut conn, m.account_id, call).await
}

/// The `call` message of a call in its chat (and its `chat.message`).
async fn post_call_message(conn: &mut AsyncPgConnection, call: &CallRow) -> ApiResult<()> {
    let (seq, project_id) = super::store::lock_chat(conn, call.chat_id, None, true)
        .await?
        .ok_or_else(no_chat)?;
    let new = super::store::NewMessage {
        chat_id: call.chat_id,
        sender_account_id: call.started_by,
        kind: "call",
        content: "Voice call",
        client_id: None,
        session_id: None,
        call_id: Some(call.id),
    };
    let inserted = super::store::insert_message(conn, &new, seq)
        .await?
        .ok_or_else(no_chat)?;
    let message = ChatMessageOut::from(inserted.message);
    ev::message(conn, project_id, &message, &inserted.recipients, None).await?;
    Ok(())
}

/// The call a body names (`call_id`, else the chat's live call), checked
/// to be in a chat of the caller.
async fn named_call(
    conn: &mut AsyncPgConnection,
    m: &Member,
    chat_id: Option<i64>,
    call_id: Option<i64>,
) -> ApiResult<CallRow> {
    let no_call = || ApiError::not_found("Call");
    let call = match (call_id, chat_id) {
        (Some(id), _) => store::get(conn, id).await?.ok_or_else(no_call)?,
        (None, Some(chat)) => {
            super::service::access(conn, m, chat).await?;
            store::live_of_chat(conn, chat)
                .await?
                .ok_or_else(|| ApiError::NotFound("No call is running in this chat".into()))?
        }
        (None, None) => {
            return Err(ApiError::invalid_field(
                "chat_id",
                "name the chat (chat_id) or the call (call_id)",
            ));
        }
    };
    if chat_id.is_some_and(|c| c != call.chat_id) {
        return Err(no_call());
    }
    super::service::access(conn, m, call.chat_id)
        .await
        .map_err(|_| no_call())?;
    Ok(call)
}

/// `join-call`: a member's token for a live call.
pub async fn join(
    state: &AppState,
    m: &Member,
    chat_id: Option<i64>,
    call_id: Option<i64>,
) -> ApiResult<ChatCallTokenOut> {
    state.livekit()?;
    let mut conn = state.pool.get().await?;
    let call = named_call(&mut conn, m, chat_id, call_id).await?;
    if !store::LIVE.contains(&call.status) {
        return Err(ApiError::conflict("The call has ended"));
    }
    let out = call_out(&mut conn, &call).await?;
    token_for(state, &mut conn, m.account_id, out).await
}

/// `end-call`: ends a live call for everyone (any member may), then
/// deletes its room. Ending an ended call answers it as it is.
pub async fn end(
    state: &AppState,
    m: &Member,
    chat_id: Option<i64>,
    call_id: Option<i64>,
) -> ApiResult<ChatCallOut> {
    let mut conn = state.pool.get().await?;
    let call = named_call(&mut conn, m, chat_id, call_id).await?;
    let ended = conn
        .transaction::<_, ApiError, _>(async |conn| {
            match store::end(conn, call.id, ChatCallStatus::Ended, "ended").await? {
                Some(ended) => Ok(Some(
                    announce(conn, &ended, "ended", Some(m.account_id)).await?,
                )),
                None => Ok(None),
            }
        })
        .await?;
    state.events_wake.committed();
    let row = match ended {
        Some(ended) => {
            delete_room(state, &ended.room_name).await;
            ended
        }
        None => store::get(&mut conn, call.id).await?.unwrap_or(call),
    };
    Ok(call_out(&mut conn, &row).await?)
}

/// Deletes a call's LiveKit room (already gone is fine; failures are
/// logged: LiveKit closes the empty room itself).
async fn delete_room(state: &AppState, room: &str) {
    let Some(lk) = state.livekit.as_deref() else {
        return;
    };
    match lk.call(lk.rooms.delete_room(room)).await {
        Ok(()) | Err(ApiError::NotFound(_)) => {}
        Err(e) => tracing::warn!(room, error = ?e, "chat call: could not delete the room"),
    }
}

/// From the LiveKit webhook, in its transaction: a participant joined or
/// left the room of a chat call.
pub async fn on_participant(
    conn: &mut AsyncPgConnection,
    room_full: &str,
    p: &proto::ParticipantInfo,
    joined: bool,
    at: DateTime<Utc>,
) -> ApiResult<()> {
    let Some(call) = store::lock_live_by_room(conn, room_full).await? else {
        return Ok(());
    };
    let account = account_of(&p.identity);
    if joined {
        store::joined(conn, call.id, &p.identity, account, at).await?;
        let caller = account.is_some() && account == call.started_by;
        let call = if call.status == ChatCallStatus::Ringing && !caller {
            store::answered(conn, call.id, at).await?.unwrap_or(call)
        } else {
            call
        };
        announce(conn, &call, "participant_joined", account).await?;
        return Ok(());
    }
    if !store::left(conn, call.id, &p.identity, at).await? {
        return Ok(());
    }
    if store::present(conn, call.id).await? > 0 {
        announce(conn, &call, "participant_left", account).await?;
        return Ok(());
    }
    let reason = if call.status == ChatCallStatus::Active {
        "everyone_left"
    } else {
        "cancelled"
    };
    let call = announce(conn, &call, "participant_left", account).await?;
    if let Some(ended) = store::end(conn, call.id, ChatCallStatus::Ended, reason).await? {
        announce(conn, &ended, "ended", None).await?;
    }
    Ok(())
}

/// From the LiveKit webhook: a call's room closed (LiveKit's empty
/// timeout, or deleted): a call still live ends.
pub async fn on_room_finished(conn: &mut AsyncPgConnection, room_full: &str) -> ApiResult<()> {
    let Some(call) = store::lock_live_by_room(conn, room_full).await? else {
        return Ok(());
    };
    let reason = if call.status == ChatCallStatus::Active {
        "everyone_left"
    } else {
        "missed"
    };
    if let Some(ended) = store::end(conn, call.id, ChatCallStatus::Ended, reason).await? {
        announce(conn, &ended, "ended", None).await?;
    }
    Ok(())
}

/// Ends calls nobody answered in time (`missed`) and reservations whose
/// start never finished (`failed`), then deletes their rooms.
pub async fn expire(state: &AppState) -> anyhow::Result<()> {
    let ring = i64::try_from(state.settings.chat.call_ring_timeout_secs).unwrap_or(i64::MAX);
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let ended = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let mut ended = Vec::new();
            for call in store::lock_overdue(conn, ring).await? {
                let (status, reason) = if call.status == ChatCallStatus::Pending {
                    (ChatCallStatus::Failed, "livekit_unavailable")
                } else {
                    (ChatCallStatus::Ended, "missed")
                };
                if let Some(done) = store::end(conn, call.id, status, reason).await? {
                    announce(conn, &done, "ended", None).await?;
                    ended.push(done);
                }
            }
            Ok(ended)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    if !ended.is_empty() {
        state.events_wake.committed();
        tracing::info!(calls = ended.len(), "chat calls: ended unanswered calls");
    }
    for call in ended {
        delete_room(state, &call.room_name).await;
    }
    Ok(())
}
