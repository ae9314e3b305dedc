//! Live supervision rules: a supervisor joins a session's room with a token
//! whose grants match its mode, and Voxplane enforces the mode on the
//! LiveKit server:
//!
//! | mode | the supervisor | the others |
//! |---|---|---|
//! | `listen` | hidden, subscribes, cannot publish | see nothing of it, and are unsubscribed from any track it still has (after another mode) |
//! | `whisper` | publishes its microphone | only the target (the room's agents, or `target_identity`) is subscribed to it; everyone else is unsubscribed server-side (`UpdateSubscriptions`) whenever it publishes or someone joins |
//! | `barge` | a normal participant | everyone hears it |
//! | `take_over` | as barge | the target's audio is muted (`MutePublishedTrack`) until release or another mode |
//!
//! The permission is set with `UpdateParticipant` when the supervisor joins
//! (`participant_joined`) and on every mode change, so a token minted for
//! one mode cannot be used for another. For `whisper` the response also
//! names the subscription permission the supervisor's client applies to its
//! track (LiveKit lets only the publisher's client set it); with it, the
//! server refuses the track to anyone else even when their client asks.
//!
//! Remote calls never run inside a transaction: the period is committed
//! first, then LiveKit is told; a supervisor not connected yet gets its mode
//! applied when it joins. `supervisor.joined` is emitted with the first
//! period, `supervisor.left` when the last one ends (release, or the
//! supervisor leaving the room), each once.

use super::store::{self, NewPeriod, SupervisionPeriod};
use crate::db::sessions;
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::livekit::names::RoomName;
use crate::livekit::proto::{self, ParticipantInfo, ParticipantPermission, TrackSource, TrackType};
use crate::state::AppState;
use diesel_async::AsyncConnection;
use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_api::services::room::UpdateParticipantOptions;
use serde_json::json;
use std::time::Duration;

/// How a supervisor takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Hears everyone, heard by no one, seen by no one.
    Listen,
    /// Heard only by the target (the agent or a named participant).
    Whisper,
    /// Heard by everyone.
    Barge,
    /// Heard by everyone; the target's audio is muted.
    TakeOver,
}

/// The accepted mode names.
pub const MODES: [&str; 4] = ["listen", "whisper", "barge", "take_over"];

impl Mode {
    /// Parses a mode name (400 naming the field otherwise).
    pub fn parse(v: &str) -> ApiResult<Mode> {
        Ok(match v {
            "listen" => Self::Listen,
            "whisper" => Self::Whisper,
            "barge" => Self::Barge,
            "take_over" => Self::TakeOver,
            _ => {
                return Err(ApiError::BadRequest {
                    message: "mode must be one of listen, whisper, barge, take_over".into(),
                    details: Some(json!({"field": "mode", "allowed": MODES})),
                });
            }
        })
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        MODES[self as usize]
    }

    /// The token grants of the mode.
    fn grants(self, room: &str) -> VideoGrants {
        let p = self.permission();
        VideoGrants {
            room_join: true,
            room: room.to_owned(),
            can_subscribe: Some(true),
            can_publish: Some(p.can_publish),
            can_publish_data: Some(p.can_publish_data),
            can_publish_sources: if p.can_publish {
                vec!["microphone".to_owned()]
            } else {
                Vec::new()
            },
            hidden: p.hidden,
            ..Default::default()
        }
    }

    /// The participant permission the server enforces for the mode.
    fn permission(self) -> ParticipantPermission {
        let publishes = self != Self::Listen;
        ParticipantPermission {
            can_subscribe: true,
            can_publish: publishes,
            can_publish_data: matches!(self, Self::Barge | Self::TakeOver),
            can_publish_sources: if publishes {
                vec![TrackSource::Microphone as i32]
            } else {
                Vec::new()
            },
            hidden: self == Self::Listen,
            ..Default::default()
        }
    }
}

/// What a supervisor asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub identity: String,
    pub name: Option<String>,
    pub mode: Mode,
    pub target_identity: Option<String>,
}

/// Who may receive the supervisor's track: everyone, or only these.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TrackAudience {
    /// True: anyone in the room may subscribe.
    pub all_participants: bool,
    /// When not everyone: the identities that may.
    pub allowed_identities: Vec<String>,
}

/// A started (or changed) supervision.
#[derive(Debug, Clone)]
pub struct Supervised {
    /// The LiveKit token (only when starting).
    pub token: Option<String>,
    /// The live period.
    pub period: SupervisionPeriod,
    /// What the supervisor's client sets as its track's subscription permission.
    pub audience: TrackAudience,
}

const TOKEN_TTL: Duration = Duration::from_secs(3600);

async fn audience(state: &AppState, p: &SupervisionPeriod) -> TrackAudience {
    if p.mode != "whisper" {
        return TrackAudience {
            all_participants: true,
            allowed_identities: Vec::new(),
        };
    }
    let allowed_identities = match &p.target_identity {
        Some(t) => vec![t.clone()],
        None => match state.livekit() {
            Ok(lk) => lk
                .call(lk.rooms.list_participants(&p.room_name))
                .await
                .map(|people| {
                    people
                        .iter()
                        .filter(|x| x.kind == proto::participant_info::Kind::Agent as i32)
                        .map(|x| x.identity.clone())
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        },
    };
    TrackAudience {
        all_participants: false,
        allowed_identities,
    }
}

/// Starts supervising the active session of `room`: records the period,
/// emits `supervisor.joined`, returns a token for the mode.
pub async fn start(
    state: &AppState,
    project_id: i64,
    room: &RoomName,
    req: &Request,
) -> ApiResult<Supervised> {
    let lk = state.livekit()?;
    let mut conn = state.pool.get().await?;
    let period = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let session = sessions::active(conn, project_id, &room.full)
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("No active session in room {}", room.full))
                })?;
            let period = store::insert(
                conn,
                &NewPeriod {
                    project_id,
                    session_id: session.id,
                    room_name: &room.full,
                    identity: &req.identity,
                    mode: req.mode.as_str(),
                    target_identity: req.target_identity.as_deref(),
                },
            )
            .await?
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "{} already supervises room {}; change its mode with PATCH",
                    req.identity, room.full
                ))
            })?;
            events::emit(
                conn,
                project_id,
                "supervisor.joined",
                json!({
                    "room_name": room.full,
                    "session_id": session.id,
                    "identity": period.identity,
                    "mode": period.mode,
                    "target_identity": period.target_identity,
                }),
            )
            .await?;
            Ok(period)
        })
        .await?;
    let token = AccessToken::with_api_key(lk.api_key(), lk.api_secret())
        .with_identity(&req.identity)
        .with_name(req.name.as_deref().unwrap_or(&req.identity))
        .with_ttl(TOKEN_TTL)
        .with_grants(req.mode.grants(&room.full))
        .with_attributes([("voxplane.role", "supervisor")])
        .to_jwt()
        .map_err(ApiError::internal)?;
    Ok(Supervised {
        token: Some(token),
        audience: audience(state, &period).await,
        period,
    })
}

/// Changes a live supervisor's mode (and target) without rejoining: a new
/// period is committed, then the mode is applied on LiveKit.
pub async fn change(
    state: &AppState,
    project_id: i64,
    room: &RoomName,
    identity: &str,
    mode: Mode,
    target: Option<Option<String>>,
) -> ApiResult<Supervised> {
    state.livekit()?;
    let mut conn = state.pool.get().await?;
    let (before, period) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let before = store::end(conn, project_id, &room.full, identity)
                .await?
                .ok_or_else(|| not_supervising(identity, room))?;
            let target = match &target {
                Some(t) => t.clone(),
                None => before.target_identity.clone(),
            };
            let period = store::insert(
                conn,
                &NewPeriod {
                    project_id,
                    session_id: before.session_id,
                    room_name: &room.full,
                    identity,
                    mode: mode.as_str(),
                    target_identity: target.as_deref(),
                },
            )
            .await?
            .ok_or_else(|| ApiError::conflict("The supervision changed meanwhile; retry"))?;
            Ok((before, period))
        })
        .await?;
    let previous = Mode::parse(&before.mode).ok();
    apply(state, project_id, &period, previous).await?;
    Ok(Supervised {
        token: None,
        audience: audience(state, &period).await,
        period,
    })
}

fn not_supervising(identity: &str, room: &RoomName) -> ApiError {
    ApiError::NotFound(format!("{identity} does not supervise room {}", room.full))
}

/// Ends a supervision: `supervisor.left`, the target unmuted after a
/// take-over, the supervisor removed from the room.
pub async fn release(
    state: &AppState,
    project_id: i64,
    room: &RoomName,
    identity: &str,
) -> ApiResult<SupervisionPeriod> {
    let lk = state.livekit()?;
    let ended = end_and_report(state, project_id, &room.full, identity, "released")
        .await?
        .ok_or_else(|| not_supervising(identity, room))?;
    if ended.mode == "take_over" {
        set_target_muted(state, &ended, false).await?;
    }
    match lk
        .call(lk.rooms.remove_participant(&room.full, identity))
        .await
    {
        Ok(()) | Err(ApiError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    Ok(ended)
}

/// Ends the live period in a short transaction with its `supervisor.left`.
async fn end_and_report(
    state: &AppState,
    project_id: i64,
    room: &str,
    identity: &str,
    reason: &str,
) -> ApiResult<Option<SupervisionPeriod>> {
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let Some(ended) = store::end(conn, project_id, room, identity).await? else {
            return Ok(None);
        };
        events::emit(
            conn,
            project_id,
            "supervisor.left",
            json!({
                "room_name": ended.room_name,
                "session_id": ended.session_id,
                "identity": ended.identity,
                "mode": ended.mode,
                "reason": reason,
            }),
        )
        .await?;
        Ok(Some(ended))
    })
    .await
}

/// Reacts to a LiveKit webhook once it is committed (never inside its
/// transaction): a supervisor joining or publishing gets its mode applied,
/// anyone joining a room with a whisper is kept off the whisper, a
/// supervisor leaving ends its supervision.
pub async fn after_livekit_event(
    state: &AppState,
    project_id: i64,
    room: &str,
    event: &proto::WebhookEvent,
) -> ApiResult<()> {
    let Some(p) = event.participant.as_ref() else {
        return Ok(());
    };
    let live = {
        let mut conn = state.pool.get().await?;
        store::live_in_room(&mut conn, project_id, room).await?
    };
    if live.is_empty() {
        return Ok(());
    }
    let own = live.iter().find(|s| s.identity == p.identity);
    match (event.event.as_str(), own) {
        ("participant_left" | "participant_connection_aborted", Some(_)) => {
            if let Some(ended) =
                end_and_report(state, project_id, room, &p.identity, "left").await?
                && ended.mode == "take_over"
            {
                set_target_muted(state, &ended, false).await?;
            }
        }
        ("participant_joined" | "track_published", Some(period)) => {
            apply(state, project_id, period, None).await?;
        }
        ("participant_joined", None) => {
            for period in live.iter().filter(|s| s.mode == "whisper") {
                apply(state, project_id, period, None).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn audio_sids(p: &ParticipantInfo) -> Vec<String> {
    p.tracks
        .iter()
        .filter(|t| t.r#type == TrackType::Audio as i32)
        .map(|t| t.sid.clone())
        .collect()
}

fn targets<'a>(
    period: &SupervisionPeriod,
    people: &'a [ParticipantInfo],
) -> Vec<&'a ParticipantInfo> {
    people
        .iter()
        .filter(|x| match &period.target_identity {
            Some(t) => &x.identity == t,
            None => x.kind == proto::participant_info::Kind::Agent as i32,
        })
        .collect()
}

/// Applies a period's mode on LiveKit: the supervisor's permission, who is
/// subscribed to its audio, whether the target is muted. `previous` is the
/// mode it had, when it changed.
async fn apply(
    state: &AppState,
    project_id: i64,
    period: &SupervisionPeriod,
    previous: Option<Mode>,
) -> ApiResult<()> {
    let lk = state.livekit()?;
    let mode = Mode::parse(&period.mode)?;
    let room = &period.room_name;
    let people = lk.call(lk.rooms.list_participants(room)).await?;
    let Some(me) = people.iter().find(|p| p.identity == period.identity) else {
        // Applied when it joins.
        return Ok(());
    };
    lk.call(lk.rooms.update_participant(
        room,
        &period.identity,
        UpdateParticipantOptions {
            permission: Some(mode.permission()),
            ..Default::default()
        },
    ))
    .await?;
    let supervisors: Vec<String> = {
        let mut conn = state.pool.get().await?;
        store::live_in_room(&mut conn, project_id, room)
            .await?
            .into_iter()
            .map(|s| s.identity)
            .collect()
    };
    let targets = targets(period, &people);
    let mine = audio_sids(me);
    if !mine.is_empty() {
        for p in people.iter().filter(|p| !supervisors.contains(&p.identity)) {
            let is_target = targets.iter().any(|t| t.identity == p.identity);
            // Who must not hear it is unsubscribed; who must again is
            // subscribed (after listen or whisper; while the supervisor's
            // client still restricts its track, that subscription waits).
            let subscribe = match mode {
                Mode::Listen => Some(false),
                Mode::Whisper if !is_target => Some(false),
                Mode::Whisper => previous.is_some().then_some(true),
                Mode::Barge | Mode::TakeOver => {
                    matches!(previous, Some(Mode::Whisper | Mode::Listen)).then_some(true)
                }
            };
            let Some(subscribe) = subscribe else {
                continue;
            };
            let done = lk
                .call(
                    lk.rooms
                        .update_subscriptions(room, &p.identity, mine.clone(), subscribe),
                )
                .await;
            match done {
                Ok(()) => {}
                // One that may not subscribe at all stays as it is.
                Err(e) if subscribe => {
                    tracing::info!(error = %e, identity = %p.identity, "supervision: resubscribe failed");
                }
                Err(e) => return Err(e),
            }
        }
    }
    if mode == Mode::TakeOver || previous == Some(Mode::TakeOver) {
        mute(state, room, &targets, mode == Mode::TakeOver).await?;
    }
    Ok(())
}

async fn mute(
    state: &AppState,
    room: &str,
    targets: &[&ParticipantInfo],
    muted: bool,
) -> ApiResult<()> {
    let lk = state.livekit()?;
    for t in targets {
        for track in t
            .tracks
            .iter()
            .filter(|x| x.r#type == TrackType::Audio as i32 && x.muted != muted)
        {
            lk.call(
                lk.rooms
                    .mute_published_track(room, &t.identity, &track.sid, muted),
            )
            .await?;
        }
    }
    Ok(())
}

async fn set_target_muted(
    state: &AppState,
    period: &SupervisionPeriod,
    muted: bool,
) -> ApiResult<()> {
    let lk = state.livekit()?;
    let people = lk
        .call(lk.rooms.list_participants(&period.room_name))
        .await?;
    let targets = targets(period, &people);
    mute(state, &period.room_name, &targets, muted).await
}
