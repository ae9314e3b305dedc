//! Inbound LiveKit webhooks: verified with LiveKit's signature, mapped to a
//! project by the room prefix, applied to `rooms` and `participants`
//! idempotently (each event id is processed once, in the same transaction as
//! its effects).

use super::names::{RoomName, prefix_of};
use super::proto;
use crate::db::rooms::{self, ObservedParticipant};
use crate::db::schema::{livekit_webhook_events as lwe, projects};
use crate::error::{ApiError, ApiResult};
use crate::events::emit;
use crate::state::AppState;
use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use livekit_api::access_token::TokenVerifier;
use livekit_api::webhooks::WebhookReceiver;
use serde_json::json;

/// What happened to a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied.
    Processed,
    /// Already processed (LiveKit retried).
    Duplicate,
    /// Not about a room of any project.
    Ignored,
}

/// Verifies and applies one webhook.
pub async fn receive(state: &AppState, body: &str, authorization: &str) -> ApiResult<Outcome> {
    let lk = state.livekit()?;
    let receiver = WebhookReceiver::new(TokenVerifier::with_api_key(lk.api_key(), lk.api_secret()));
    let event = receiver.receive(body, authorization).map_err(|e| {
        tracing::warn!(error = %e, "rejected a LiveKit webhook");
        ApiError::Unauthorized("Invalid LiveKit webhook signature".into())
    })?;
    let Some(room) = event.room.as_ref().filter(|r| !r.name.is_empty()) else {
        return Ok(Outcome::Ignored);
    };
    let Some(project_id) = project_for(state, &room.name).await? else {
        return Ok(Outcome::Ignored);
    };
    let prefix_len = prefix_of(&room.name).map(str::len).unwrap_or(0);
    let Some(name) = RoomName::from_full(&room.name[..prefix_len], &room.name) else {
        return Ok(Outcome::Ignored);
    };
    let mut conn = state.pool.get().await?;
    let outcome = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let fresh = diesel::insert_into(lwe::table)
                .values((
                    lwe::event_id.eq(&event.id),
                    lwe::event.eq(&event.event),
                    lwe::room_name.eq(&room.name),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            if fresh == 0 && !event.id.is_empty() {
                return Ok(Outcome::Duplicate);
            }
            apply(conn, project_id, &name, room, &event).await?;
            Ok(Outcome::Processed)
        })
        .await?;
    tracing::info!(event = %event.event, room = %room.name, id = %event.id, outcome = ?outcome, "LiveKit webhook");
    Ok(outcome)
}

async fn apply(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &RoomName,
    room: &proto::Room,
    event: &proto::WebhookEvent,
) -> ApiResult<()> {
    let at = seconds(event.created_at).unwrap_or_else(Utc::now);
    let created = seconds(room.creation_time).unwrap_or(at);
    let sid = if room.sid.is_empty() {
        format!("unknown:{}", room.name)
    } else {
        room.sid.clone()
    };
    let base = json!({ "room_name": name.full, "room": name.short, "room_sid": room.sid });
    let with = |extra: serde_json::Value| base.clone().merge(extra);
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match event.event.as_str() {
        "room_started" => {
            rooms::observe_started(conn, project_id, &name.short, &name.full, &sid, created)
                .await?;
            let data = with(json!({ "created_at": rfc(created) }));
            emit(conn, project_id, "room.started", data).await?;
        }
        "room_finished" => {
            rooms::observe_finished(conn, project_id, &name.short, &name.full, &sid, created, at)
                .await?;
            emit(
                conn,
                project_id,
                "room.finished",
                with(json!({ "closed_at": rfc(at) })),
            )
            .await?;
            crate::db::sessions::end(conn, project_id, &name.full, None, None, at).await?;
        }
        "participant_joined" | "participant_left" | "participant_connection_aborted" => {
            let Some(p) = event.participant.as_ref() else {
                return Ok(());
            };
            let room_id =
                rooms::observe_started(conn, project_id, &name.short, &name.full, &sid, created)
                    .await?;
            let joined = event.event == "participant_joined";
            let attributes = serde_json::to_value(&p.attributes).unwrap_or_default();
            rooms::observe_participant(
                conn,
                &ObservedParticipant {
                    project_id,
                    room_id,
                    sid: &p.sid,
                    identity: &p.identity,
                    name: &p.name,
                    kind: kind_name(p.kind),
                    metadata: &p.metadata,
                    attributes,
                    joined_at: seconds(p.joined_at).or(joined.then_some(at)),
                    left_at: (!joined).then_some(at),
                },
            )
            .await?;
            let who = json!({ "identity": p.identity, "name": p.name, "kind": kind_name(p.kind), "participant_sid": p.sid });
            if joined && p.kind == proto::participant_info::Kind::Agent as i32 {
                // An agent joining starts the room's session, unless one runs.
                let new = crate::db::sessions::NewSession {
                    room_name: name.full.clone(),
                    session_type: "voice".into(),
                    metadata: json!({ "agent_identity": p.identity }),
                    ..Default::default()
                };
                crate::db::sessions::start(conn, project_id, &new).await?;
            }
            if joined {
                let joined_at = seconds(p.joined_at).unwrap_or(at);
                emit(
                    conn,
                    project_id,
                    "participant.joined",
                    with(json!({ "joined_at": rfc(joined_at) })).merge(who),
                )
                .await?;
            } else {
                let reason = proto::DisconnectReason::try_from(p.disconnect_reason)
                    .map(|r| r.as_str_name())
                    .unwrap_or("UNKNOWN_REASON");
                emit(
                    conn,
                    project_id,
                    "participant.left",
                    with(json!({ "reason": reason })).merge(who),
                )
                .await?;
            }
        }
        "track_published" | "track_unpublished" => {
            let (Some(p), Some(t)) = (event.participant.as_ref(), event.track.as_ref()) else {
                return Ok(());
            };
            let kind = if event.event == "track_published" {
                "track.published"
            } else {
                "track.unpublished"
            };
            let track = json!({
                "identity": p.identity,
                "track_sid": t.sid,
                "track_type": proto::TrackType::try_from(t.r#type).map(|k| k.as_str_name()).unwrap_or("UNKNOWN"),
                "source": proto::TrackSource::try_from(t.source).map(|k| k.as_str_name()).unwrap_or("UNKNOWN"),
            });
            emit(conn, project_id, kind, with(track)).await?;
        }
        // egress_* arrive with the recordings resource.
        _ => {}
    }
    Ok(())
}

/// LiveKit's participant kind as stored (`ParticipantInfo.Kind`).
pub fn kind_name(kind: i32) -> &'static str {
    match proto::participant_info::Kind::try_from(kind) {
        Ok(proto::participant_info::Kind::Ingress) => "ingress",
        Ok(proto::participant_info::Kind::Egress) => "egress",
        Ok(proto::participant_info::Kind::Sip) => "sip",
        Ok(proto::participant_info::Kind::Agent) => "agent",
        _ => "standard",
    }
}

fn seconds(s: i64) -> Option<DateTime<Utc>> {
    (s > 0).then(|| Utc.timestamp_opt(s, 0).single()).flatten()
}

/// The project owning a full room name, cached by prefix.
async fn project_for(state: &AppState, full: &str) -> ApiResult<Option<i64>> {
    let Some(prefix) = prefix_of(full) else {
        return Ok(None);
    };
    if let Some(hit) = state.prefixes.get(prefix) {
        return Ok(*hit);
    }
    let mut conn = state.pool.get().await?;
    let id = projects::table
        .filter(
            projects::room_prefix
                .eq(prefix)
                .and(projects::deleted_at.is_null()),
        )
        .select(projects::id)
        .first::<i64>(&mut conn)
        .await
        .optional()?;
    if id.is_some() || state.prefixes.len() < 100_000 {
        state.prefixes.insert(prefix.to_owned(), id);
    }
    Ok(id)
}

/// `a.merge(b)`: the fields of both objects (b wins).
trait Merge {
    fn merge(self, other: serde_json::Value) -> serde_json::Value;
}

impl Merge for serde_json::Value {
    fn merge(mut self, other: serde_json::Value) -> serde_json::Value {
        if let (Some(a), serde_json::Value::Object(b)) = (self.as_object_mut(), other) {
            a.extend(b);
        }
        self
    }
}
