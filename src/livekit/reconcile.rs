//! The LiveKit reconciler: LiveKit keeps its webhooks in memory (a few
//! retries, nothing persisted), so a Voxplane outage or restart can lose
//! them. Every `reconcile_secs` one node (the holder of an advisory lock)
//! compares LiveKit's rooms, participants and egresses with Voxplane's
//! records and repairs what a lost webhook left wrong:
//!
//! | found | repair (kind in `voxplane_reconcile_repairs_total`) |
//! |---|---|
//! | a room open in Voxplane that LiveKit no longer has | `room_finished`: the room is closed and its session ended, at the end of the room's last egress when LiveKit has one, else now (`room_ended`) |
//! | a room of a project in LiveKit that Voxplane does not know | `room_started` (`room_recorded`) |
//! | a participant in LiveKit that Voxplane does not have in the room | `participant_joined` (`participant_joined`) |
//! | a participant Voxplane has in a live room that LiveKit does not | `participant_left` (`participant_left`) |
//! | a running recording whose egress ended | `egress_ended`, settled like the webhook (`recording_settled`) |
//!
//! Reservations of creates that called LiveKit (rooms, recordings, SIP
//! trunks, dials) are not the reconciler's: each is settled by the
//! background job committed with it (`crate::jobs`).
//!
//! Each repair is the missed webhook, made up and applied through the
//! webhook's own path ([`super::webhook::apply_event`]) under the id
//! [`super::webhook::repair_id`]: it emits the events the webhook would
//! have, once, and the real webhook arriving late is a duplicate.
//!
//! Remote calls run with no transaction open (the advisory lock is a
//! session lock on a connection of its own, not a transaction); each
//! repair is its own short transaction. Rooms and recordings younger than
//! [`SETTLE`] are left alone (their webhooks may be on the way).

use super::proto;
use super::webhook::{Outcome, apply_event, repair_id};
use crate::db::schema::{participants, recordings, rooms};
use crate::state::AppState;
use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::RunQueryDsl;
use livekit_api::services::egress::{EgressListFilter, EgressListOptions};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The advisory lock held by the reconciling node ("vxrecon").
const LOCK_KEY: i64 = 0x0076_7872_6563_6f6e;

/// Rows younger than this are not repaired.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Rows looked at per pass, per kind.
const BATCH: i64 = 1000;

/// Repairs made by one pass, by kind.
pub type Repairs = HashMap<&'static str, u64>;

/// Spawns the worker (`None` without LiveKit).
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    state.livekit.as_ref()?;
    Some(tokio::spawn(run(state)))
}

async fn run(state: AppState) {
    let period = Duration::from_secs(state.settings.reconcile_secs);
    // The first pass after one period: a node that just started lets the
    // webhooks in flight arrive first.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.lifecycle.stopping() => return,
        }
        match pass(&state).await {
            Ok(Some(repairs)) if !repairs.is_empty() => {
                tracing::info!(?repairs, "LiveKit reconciler repaired state");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "LiveKit reconciler pass failed"),
        }
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    got: bool,
}

/// One pass when this node gets the lock (`None`: another node is
/// reconciling).
pub async fn pass(state: &AppState) -> anyhow::Result<Option<Repairs>> {
    let mut lock = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let got = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS got")
        .bind::<BigInt, _>(LOCK_KEY)
        .get_result::<Locked>(&mut *lock)
        .await?
        .got;
    if !got {
        return Ok(None);
    }
    let result = repair(state).await;
    diesel::sql_query("SELECT pg_advisory_unlock($1) AS got")
        .bind::<BigInt, _>(LOCK_KEY)
        .get_result::<Locked>(&mut *lock)
        .await?;
    result.map(Some)
}

#[derive(Queryable)]
struct OpenRoom {
    full_name: String,
    sid: Option<String>,
    created_at: DateTime<Utc>,
}

async fn repair(state: &AppState) -> anyhow::Result<Repairs> {
    let lk = state.livekit().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut repairs = Repairs::new();
    let listed_at = Utc::now();
    let settle = chrono::Duration::from_std(SETTLE).unwrap_or_default();
    let live = lk
        .call(lk.rooms.list_rooms(Vec::new()))
        .await
        .map_err(|e| anyhow::anyhow!("ListRooms: {e}"))?;
    let live_sids: HashSet<&str> = live.iter().map(|r| r.sid.as_str()).collect();
    let live_names: HashSet<&str> = live.iter().map(|r| r.name.as_str()).collect();
    let open: Vec<OpenRoom> = {
        let mut conn = state.pool.get().await?;
        rooms::table
            .filter(rooms::status.eq(crate::db::rooms::RoomStatus::Active))
            .filter(rooms::created_at.lt(listed_at - settle))
            .order(rooms::id.asc())
            .limit(BATCH)
            .select((rooms::full_name, rooms::sid, rooms::created_at))
            .load(&mut conn)
            .await?
    };
    // Rooms Voxplane has open and LiveKit does not: they ended.
    for room in &open {
        let gone = match room.sid.as_deref() {
            Some(sid) if !sid.starts_with("unknown:") => !live_sids.contains(sid),
            _ => !live_names.contains(room.full_name.as_str()),
        };
        if !gone {
            continue;
        }
        let ended_at = last_egress_end(state, &room.full_name).await;
        let event = proto::WebhookEvent {
            event: "room_finished".into(),
            room: Some(proto::Room {
                name: room.full_name.clone(),
                sid: room.sid.clone().unwrap_or_default(),
                creation_time: room.created_at.timestamp(),
                ..Default::default()
            }),
            created_at: ended_at.unwrap_or_else(Utc::now).timestamp(),
            ..Default::default()
        };
        apply(state, event, "room_ended", &mut repairs).await;
    }
    // Rooms and participants LiveKit has and Voxplane does not.
    let known = known_sids(state, &live).await?;
    for room in &live {
        if room.sid.is_empty() || seconds(room.creation_time) > Some(listed_at - settle) {
            continue;
        }
        if !known.contains(&room.sid) {
            let event = proto::WebhookEvent {
                event: "room_started".into(),
                room: Some(room.clone()),
                created_at: room.creation_time,
                ..Default::default()
            };
            if apply(state, event, "room_recorded", &mut repairs).await != Some(Outcome::Processed)
            {
                // Not a room of any project: its participants neither.
                continue;
            }
        }
        participants_of(state, room, &mut repairs).await?;
    }
    // Recordings whose egress ended.
    let running: Vec<(String, DateTime<Utc>)> = {
        let mut conn = state.pool.get().await?;
        recordings::table
            .filter(recordings::status.eq(crate::recordings::RecordingStatus::Recording))
            .filter(recordings::started_at.lt(listed_at - settle))
            .order(recordings::id.asc())
            .limit(BATCH)
            .select((recordings::egress_id, recordings::started_at))
            .load(&mut conn)
            .await?
    };
    for (egress_id, _) in running {
        let options = EgressListOptions {
            filter: EgressListFilter::Egress(egress_id.clone()),
            ..Default::default()
        };
        let found = match lk.call(lk.egress.list_egress(options)).await {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(egress = %egress_id, error = %e, "reconciler: ListEgress failed");
                continue;
            }
        };
        let Some(info) = found.into_iter().find(|e| e.egress_id == egress_id) else {
            continue;
        };
        if !ended(info.status) {
            continue;
        }
        let event = proto::WebhookEvent {
            event: "egress_ended".into(),
            created_at: nanos(info.ended_at).unwrap_or_else(Utc::now).timestamp(),
            egress_info: Some(info),
            ..Default::default()
        };
        apply(state, event, "recording_settled", &mut repairs).await;
    }
    Ok(repairs)
}

/// Applies a made-up webhook under its repair id; counts it when it did
/// something.
async fn apply(
    state: &AppState,
    mut event: proto::WebhookEvent,
    kind: &'static str,
    repairs: &mut Repairs,
) -> Option<Outcome> {
    event.id = repair_id(&event)?;
    match apply_event(state, &event).await {
        Ok(outcome) => {
            if outcome == Outcome::Processed {
                *repairs.entry(kind).or_default() += 1;
                state.metrics.reconcile_repair(kind);
            }
            Some(outcome)
        }
        Err(e) => {
            tracing::warn!(event = %event.event, id = %event.id, error = %e, "reconciler: repair failed");
            None
        }
    }
}

/// The sids among LiveKit's rooms that Voxplane has recorded.
async fn known_sids(state: &AppState, live: &[proto::Room]) -> anyhow::Result<HashSet<String>> {
    let sids: Vec<&str> = live.iter().map(|r| r.sid.as_str()).collect();
    let mut conn = state.pool.get().await?;
    let found: Vec<Option<String>> = rooms::table
        .filter(rooms::sid.eq_any(&sids))
        .select(rooms::sid)
        .load(&mut conn)
        .await?;
    Ok(found.into_iter().flatten().collect())
}

#[derive(Queryable)]
struct KnownParticipant {
    sid: String,
    identity: String,
    left_at: Option<DateTime<Utc>>,
}

/// Participants of a live, known room: those LiveKit has and Voxplane
/// does not joined; those Voxplane has present and LiveKit does not left.
async fn participants_of(
    state: &AppState,
    room: &proto::Room,
    repairs: &mut Repairs,
) -> anyhow::Result<()> {
    let lk = state.livekit().map_err(|e| anyhow::anyhow!("{e}"))?;
    let checked_at = Utc::now();
    let Ok(live) = lk.call(lk.rooms.list_participants(&room.name)).await else {
        return Ok(());
    };
    let recorded: Vec<KnownParticipant> = {
        let mut conn = state.pool.get().await?;
        participants::table
            .inner_join(rooms::table)
            .filter(rooms::sid.eq(&room.sid))
            .select((
                participants::sid,
                participants::identity,
                participants::left_at,
            ))
            .load(&mut conn)
            .await?
    };
    let recorded_sids: HashSet<&str> = recorded.iter().map(|p| p.sid.as_str()).collect();
    let settle = chrono::Duration::from_std(SETTLE).unwrap_or_default();
    for p in &live {
        let young = seconds(p.joined_at).is_some_and(|t| t > checked_at - settle);
        if recorded_sids.contains(p.sid.as_str()) || young {
            continue;
        }
        let event = proto::WebhookEvent {
            event: "participant_joined".into(),
            room: Some(room.clone()),
            participant: Some(p.clone()),
            created_at: p.joined_at,
            ..Default::default()
        };
        apply(state, event, "participant_joined", repairs).await;
    }
    let live_sids: HashSet<&str> = live.iter().map(|p| p.sid.as_str()).collect();
    for p in recorded.iter().filter(|p| p.left_at.is_none()) {
        if live_sids.contains(p.sid.as_str()) {
            continue;
        }
        let event = proto::WebhookEvent {
            event: "participant_left".into(),
            room: Some(room.clone()),
            participant: Some(proto::ParticipantInfo {
                sid: p.sid.clone(),
                identity: p.identity.clone(),
                ..Default::default()
            }),
            created_at: checked_at.timestamp(),
            ..Default::default()
        };
        apply(state, event, "participant_left", repairs).await;
    }
    Ok(())
}

/// When the last egress of a room ended, if LiveKit still knows one.
async fn last_egress_end(state: &AppState, room: &str) -> Option<DateTime<Utc>> {
    let lk = state.livekit.as_deref()?;
    let options = EgressListOptions {
        filter: EgressListFilter::Room(room.to_owned()),
        ..Default::default()
    };
    let found = lk.call(lk.egress.list_egress(options)).await.ok()?;
    found
        .iter()
        .filter(|e| ended(e.status))
        .filter_map(|e| nanos(e.ended_at))
        .max()
}

/// Whether an egress status is final.
fn ended(status: i32) -> bool {
    use proto::EgressStatus as S;
    [
        S::EgressComplete,
        S::EgressFailed,
        S::EgressAborted,
        S::EgressLimitReached,
    ]
    .iter()
    .any(|s| *s as i32 == status)
}

fn nanos(ns: i64) -> Option<DateTime<Utc>> {
    (ns > 0).then(|| Utc.timestamp_nanos(ns))
}

fn seconds(s: i64) -> Option<DateTime<Utc>> {
    (s > 0).then(|| Utc.timestamp_opt(s, 0).single()).flatten()
}
