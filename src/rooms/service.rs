//! The rules of rooms: creating one (reserve → commit → call LiveKit →
//! confirm), closing one (LiveKit first, then the record and the room's
//! session), and the live room of a project. SQL is in `crate::db::rooms`.

use crate::auth::ProjectInfo;
use crate::db::rooms::{self as store, CreatedRoom, RoomReservation};
use crate::error::{ApiError, ApiResult};
use crate::jobs::{self, Job};
use crate::limits::quota::{self, Resource};
use crate::livekit::names::RoomName;
use crate::livekit::proto;
use crate::livekit::webhook::{apply_event, repair_id};
use crate::state::AppState;
use chrono::{TimeZone, Utc};
use diesel_async::AsyncConnection;
use livekit_api::services::room::CreateRoomOptions;

/// A room to create, as asked.
#[derive(Debug)]
pub struct NewRoom {
    /// Seconds before the room closes when empty (default 300, at most 86400).
    pub empty_timeout: Option<u32>,
    /// Maximum participants, 0 = unlimited (at most 100000).
    pub max_participants: Option<u32>,
    /// Room metadata (at most 64 KB).
    pub metadata: Option<String>,
}

/// The live room of a project, if LiveKit has it.
pub async fn live_room(state: &AppState, room: &RoomName) -> ApiResult<Option<proto::Room>> {
    let lk = state.livekit()?;
    let rooms = lk
        .call(lk.rooms.list_rooms(vec![room.full.clone()]))
        .await?;
    Ok(rooms.into_iter().find(|r| r.name == room.full))
}

/// Creates a room (quota: rooms active at once) and returns LiveKit's.
///
/// Reserve → commit → call → confirm: the name and the quota are taken in
/// a short transaction (the unique index refuses a concurrent create of
/// the name: 409), LiveKit is called with no transaction (nor pooled
/// connection) held, and its answer is recorded in a second one. When
/// LiveKit fails the reservation is dropped, its quota with it. A settle
/// job committed with the reservation ([`settle`]) finishes or drops it
/// when this process dies between the steps; the confirmation or the
/// release cancels it.
pub async fn create(
    state: &AppState,
    project: &ProjectInfo,
    room: &RoomName,
    new: NewRoom,
) -> ApiResult<proto::Room> {
    let lk = state.livekit()?;
    let empty_timeout = new.empty_timeout.unwrap_or(300);
    if empty_timeout > 86_400 {
        return Err(ApiError::invalid_field(
            "empty_timeout",
            "empty_timeout must be at most 86400 seconds",
        ));
    }
    let max_participants = new.max_participants.unwrap_or(0);
    if max_participants > 100_000 {
        return Err(ApiError::invalid_field(
            "max_participants",
            "max_participants must be at most 100000",
        ));
    }
    let metadata = new.metadata.unwrap_or_default();
    if metadata.len() > 64 * 1024 {
        return Err(ApiError::invalid_field(
            "metadata",
            "metadata must be at most 64 KB",
        ));
    }
    let mut conn = state.pool.get().await?;
    let settings = &state.settings;
    let taken = || ApiError::conflict(format!("Room {} already exists", room.short));
    let reservation = RoomReservation {
        project_id: project.id,
        name: &room.short,
        full_name: &room.full,
        empty_timeout: empty_timeout as i32,
        max_participants: max_participants as i32,
        metadata: &metadata,
    };
    let (reserved, job) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            quota::reserve(
                conn,
                &settings.plans,
                &settings.upgrade_url,
                project,
                Resource::Rooms,
            )
            .await?;
            if store::find_active(conn, project.id, &room.short)
                .await?
                .is_some()
            {
                return Err(taken());
            }
            // A concurrent create of the same name meets the unique index.
            let id =
                store::reserve(conn, &reservation)
                    .await
                    .map_err(|e| match ApiError::from(e) {
                        ApiError::Conflict { .. } => taken(),
                        other => other,
                    })?;
            let settle = Job::SettleRoom { room_id: id };
            let job = jobs::enqueue(conn, &settle, settle.grace(settings)).await?;
            Ok((id, job))
        })
        .await?;
    drop(conn);
    let options = CreateRoomOptions {
        empty_timeout,
        max_participants,
        metadata: metadata.clone(),
        ..Default::default()
    };
    let lk_room = match lk.call(lk.rooms.create_room(&room.full, options)).await {
        Ok(r) => r,
        Err(e) => {
            // No room: the reservation goes (and its quota with it).
            release(state, reserved, job).await;
            return Err(e);
        }
    };
    let created_at = Utc
        .timestamp_opt(lk_room.creation_time, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let created = CreatedRoom {
        project_id: project.id,
        name: &room.short,
        full_name: &room.full,
        sid: &lk_room.sid,
        empty_timeout: empty_timeout as i32,
        max_participants: max_participants as i32,
        metadata: &metadata,
        created_at,
    };
    // The confirmation and its settle job's cancellation: one commit.
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        store::confirm(conn, reserved, &created).await?;
        jobs::cancel(conn, job).await?;
        Ok(())
    })
    .await?;
    Ok(lk_room)
}

/// Drops the reservation of a room LiveKit did not create. A failure is
/// logged: its settle job drops it.
async fn release(state: &AppState, id: i64, job: i64) {
    let released = match state.pool.get().await {
        Ok(mut conn) => {
            conn.transaction::<_, ApiError, _>(async |conn| {
                store::release(conn, id).await?;
                jobs::cancel(conn, job).await?;
                Ok(())
            })
            .await
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = released {
        tracing::warn!(room = id, error = %e, "could not release a room reservation");
    }
}

/// The settle job of a room reservation ([`Job::SettleRoom`]): when the
/// reservation is still one, the room LiveKit has is recorded as its
/// `room_started` webhook would have recorded it (`room_recorded`: the
/// webhook's path claims the reservation, under the reconciler's repair
/// id, so the event is emitted once), else the reservation is dropped
/// (`room_released`), its quota with it.
pub async fn settle(state: &AppState, id: i64) -> anyhow::Result<Option<&'static str>> {
    let full_name = {
        let mut conn = state.pool.get().await?;
        store::reservation(&mut conn, id).await?
    };
    let Some(full_name) = full_name else {
        return Ok(None);
    };
    let lk = state.livekit().map_err(|e| anyhow::anyhow!("{e}"))?;
    let live = lk
        .call(lk.rooms.list_rooms(vec![full_name.clone()]))
        .await
        .map_err(|e| anyhow::anyhow!("ListRooms: {e}"))?
        .into_iter()
        .find(|r| r.name == full_name);
    if let Some(room) = live {
        let mut event = proto::WebhookEvent {
            event: "room_started".into(),
            created_at: room.creation_time,
            room: Some(room),
            ..Default::default()
        };
        event.id = repair_id(&event).unwrap_or_default();
        apply_event(state, &event)
            .await
            .map_err(|e| anyhow::anyhow!("room_started: {e}"))?;
        state.events_wake.committed();
        return Ok(Some("room_recorded"));
    }
    let mut conn = state.pool.get().await?;
    Ok(store::release(&mut conn, id)
        .await?
        .then_some("room_released"))
}

/// Closes a room: LiveKit disconnects everyone (no transaction open), then
/// the record is closed and the room's session ended in one transaction.
/// 404 when neither LiveKit nor the records had it active.
pub async fn close(state: &AppState, project_id: i64, room: &RoomName) -> ApiResult<()> {
    let lk = state.livekit()?;
    let in_livekit = match lk.call(lk.rooms.delete_room(&room.full)).await {
        Ok(()) => true,
        Err(ApiError::NotFound(_)) => false,
        Err(e) => return Err(e),
    };
    let mut conn = state.pool.get().await?;
    let recorded = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let now = Utc::now();
            let closed = store::close_active(conn, project_id, &room.short, now).await?;
            crate::db::sessions::end(conn, project_id, &room.full, None, None, now).await?;
            Ok(closed)
        })
        .await?;
    if !in_livekit && !recorded {
        return Err(ApiError::not_found("Room"));
    }
    Ok(())
}
