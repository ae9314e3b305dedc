//! Inbound LiveKit webhooks: verified with LiveKit's signature, mapped to a
//! project by the room prefix, applied to `rooms` and `participants`
//! idempotently (each event id is processed once, in the same transaction as
//! its effects; concurrent webhooks share transactions, see
//! [`super::applier`]). The reconciler (`super::reconcile`) applies the events it
//! finds missing through [`apply_event`], the same path.
//!
//! A repair is recorded under a made-up event id ([`repair_id`]); the real
//! webhook of the same change arriving late finds it and counts as a
//! duplicate, so each change emits its events once. File work (naming a
//! recording by its egress id, removing an orphan) runs outside the
//! transaction.

use super::applier::PendingEvent;
use super::effects::Effects;
use super::names::{RoomName, prefix_of};
use super::proto;
use crate::db::rooms::{self, ObservedParticipant};
use crate::db::schema::projects;
use crate::error::{ApiError, ApiResult};
use crate::events::emit;
use crate::state::AppState;
use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
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
    // Postgres cannot store a NUL in text: refused, not failed in a query.
    crate::middleware::json_input::refuse_nul(body)?;
    apply_event(state, &event).await
}

/// The id under which the reconciler records its repair of the change an
/// event reports: `reconciled:<event>:<room sid>[:<participant sid>]`, or
/// `reconciled:egress_ended:<egress id>`. `None` for other events.
pub fn repair_id(event: &proto::WebhookEvent) -> Option<String> {
    let room_sid = event.room.as_ref().map(|r| r.sid.as_str()).unwrap_or("");
    match event.event.as_str() {
        "room_started" | "room_finished" if !room_sid.is_empty() => {
            Some(format!("reconciled:{}:{room_sid}", event.event))
        }
        "participant_joined" | "participant_left" if !room_sid.is_empty() => {
            let p = event.participant.as_ref()?;
            Some(format!("reconciled:{}:{room_sid}:{}", event.event, p.sid))
        }
        "egress_ended" => {
            let e = event.egress_info.as_ref()?;
            Some(format!("reconciled:egress_ended:{}", e.egress_id))
        }
        _ => None,
    }
}

/// Applies one LiveKit event: a verified webhook, or one the reconciler
/// made for a webhook that was lost (its id marks it as such).
pub async fn apply_event(state: &AppState, event: &proto::WebhookEvent) -> ApiResult<Outcome> {
    // Egress events carry only `egressInfo`: its room names the project.
    let egress_room = event.egress_info.as_ref().map(|e| proto::Room {
        name: e.room_name.clone(),
        sid: e.room_id.clone(),
        ..Default::default()
    });
    let Some(room) = event
        .room
        .as_ref()
        .or(egress_room.as_ref())
        .filter(|r| !r.name.is_empty())
    else {
        return Ok(Outcome::Ignored);
    };
    let Some(project_id) = project_for(state, &room.name).await? else {
        return Ok(Outcome::Ignored);
    };
    let prefix_len = prefix_of(&room.name).map(str::len).unwrap_or(0);
    let Some(name) = RoomName::from_full(&room.name[..prefix_len], &room.name) else {
        return Ok(Outcome::Ignored);
    };
    // An ended egress: its recording (if any) and, when complete and still
    // running, its file named by the egress id — before the transaction,
    // with no connection held during the rename.
    let mut ended_egress = None;
    if event.event == "egress_ended"
        && let Some(info) = event.egress_info.as_ref()
    {
        let row = {
            let mut conn = state.pool.get().await?;
            crate::recordings::store::by_egress(&mut conn, project_id, &info.egress_id).await?
        };
        let complete = info.status == proto::EgressStatus::EgressComplete as i32;
        let settled = match &row {
            Some(r) if complete && crate::recordings::service::is_running(r) => {
                crate::recordings::settle_file(&state.settings, r).await
            }
            _ => None,
        };
        ended_egress = Some((row.is_none(), settled));
    }
    let outcome = state
        .webhooks_in
        .apply(
            state,
            PendingEvent {
                project_id,
                name: name.clone(),
                room: room.clone(),
                event: event.clone(),
                settled: ended_egress.as_ref().and_then(|(_, s)| s.clone()),
            },
        )
        .await?;
    if outcome == Outcome::Processed
        && let (Some((true, _)), Some(info)) = (&ended_egress, event.egress_info.as_ref())
    {
        // A recording deleted while it ran: its file was finished after
        // the row went. Removed when it lies in the project's directory.
        remove_orphan(&state.settings, project_id, info).await;
    }
    tracing::info!(event = %event.event, room = %room.name, id = %event.id, outcome = ?outcome, "LiveKit webhook");
    if outcome == Outcome::Processed
        && let Err(e) =
            crate::supervisor::service::after_livekit_event(state, project_id, &room.name, event)
                .await
    {
        // The event is recorded; LiveKit's retry would be a duplicate.
        tracing::warn!(error = %e, room = %room.name, "supervision: could not apply a LiveKit event");
    }
    Ok(outcome)
}

/// Applies the effects of an event whose id is recorded, writing them
/// through `out`.
pub(super) async fn apply_recorded(
    conn: &mut AsyncPgConnection,
    p: &PendingEvent,
    out: &mut Effects,
) -> ApiResult<()> {
    let settled = p.settled.as_deref();
    apply(conn, p.project_id, &p.name, &p.room, &p.event, settled, out).await
}

/// Whether an event's effects are only rows of its own room and events,
/// with no read of sessions: they may be kept for a batch's flush
/// ([`Effects::Later`]). SIP participants, call rooms, finished rooms and
/// egress go through other code and read sessions: applied at once.
pub(super) fn keeps_to_its_room(p: &PendingEvent) -> bool {
    match p.event.event.as_str() {
        "room_started" | "track_published" | "track_unpublished" => true,
        "participant_joined" | "participant_left" | "participant_connection_aborted" => {
            p.event
                .participant
                .as_ref()
                .is_some_and(|x| x.kind != proto::participant_info::Kind::Sip as i32)
                && !crate::chat::calls::is_call_room(&p.name.full)
        }
        _ => false,
    }
}

async fn apply(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &RoomName,
    room: &proto::Room,
    event: &proto::WebhookEvent,
    settled: Option<&str>,
    out: &mut Effects,
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
    // A batch keeping effects for later has locked its projects first.
    let locked = matches!(out, Effects::Later(_));
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match event.event.as_str() {
        "room_started" => {
            rooms::observe_started(
                conn,
                project_id,
                &name.short,
                &name.full,
                &sid,
                created,
                locked,
            )
            .await?;
            let data = with(json!({ "created_at": rfc(created) }));
            out.emit(conn, project_id, "room.started", data).await?;
        }
        "room_finished" => {
            rooms::observe_finished(conn, project_id, &name.short, &name.full, &sid, created, at)
                .await?;
            out.emit(
                conn,
                project_id,
                "room.finished",
                with(json!({ "closed_at": rfc(at) })),
            )
            .await?;
            if crate::chat::calls::is_call_room(&name.full) {
                crate::chat::calls::on_room_finished(conn, &name.full).await?;
            }
            // Only the session that ran in this room: a late room_finished
            // of an earlier room of the name leaves the current one alone.
            let sid = (!room.sid.is_empty()).then_some(room.sid.as_str());
            crate::db::sessions::end_for_finished_room(conn, project_id, &name.full, sid, at)
                .await?;
        }
        "participant_joined" | "participant_left" | "participant_connection_aborted" => {
            let Some(p) = event.participant.as_ref() else {
                return Ok(());
            };
            let observed = rooms::observe_started(
                conn,
                project_id,
                &name.short,
                &name.full,
                &sid,
                created,
                locked,
            )
            .await?;
            let room_id = observed.id;
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
            if crate::chat::calls::is_call_room(&name.full) {
                crate::chat::calls::on_participant(conn, &name.full, p, joined, at).await?;
            }
            let who = json!({ "identity": p.identity, "name": p.name, "kind": kind_name(p.kind), "participant_sid": p.sid });
            // A join reported after its room's room_finished (webhooks out
            // of order) starts nothing that would never end.
            let open = observed.open;
            if joined && open && p.kind == proto::participant_info::Kind::Agent as i32 {
                // An agent joining starts the room's session, unless one runs.
                let new = crate::db::sessions::NewSession {
                    room_name: name.full.clone(),
                    session_type: "voice".into(),
                    metadata: json!({ "agent_identity": p.identity }),
                    room_sid: (!room.sid.is_empty()).then(|| room.sid.clone()),
                    ..Default::default()
                };
                out.start_session(conn, project_id, new).await?;
            }
            if p.kind == proto::participant_info::Kind::Sip as i32 {
                sip_participant(conn, project_id, name, room, p, joined, open).await?;
            }
            if joined {
                let joined_at = seconds(p.joined_at).unwrap_or(at);
                out.emit(
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
                out.emit(
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
            out.emit(conn, project_id, kind, with(track)).await?;
        }
        "egress_started" | "egress_updated" | "egress_ended" => {
            if let Some(info) = event.egress_info.as_ref() {
                egress(conn, project_id, name, info, &event.event, settled).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A SIP participant joined or left a project room (see `super::calls`).
///
/// Joining with a live call reports its `sip.callStatus`. A participant
/// placed by `POST /sip/dial` (it carries [`super::calls::DIAL_SESSION`])
/// is the dial's to record. Any other is an inbound call, recorded with
/// direction inbound ([`inbound_call`]), unless its room has finished
/// already (`open` false: the webhooks came out of order). Leaving ends
/// the call (`ended`, or `failed` with the reason when it was never
/// answered) and its session.
async fn sip_participant(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &RoomName,
    room: &proto::Room,
    p: &proto::ParticipantInfo,
    joined: bool,
    open: bool,
) -> ApiResult<()> {
    use crate::db::sip_calls as calls;
    let call = calls::live(conn, project_id, &name.full, &p.identity).await?;
    if !joined {
        if let Some(call) = call {
            super::calls::left(conn, &call, p).await?;
        }
        return Ok(());
    }
    use calls::SipCallStatus as S;
    let reported = p.attributes.get("sip.callStatus");
    let status = match reported.and_then(|s| super::calls::reported(s)) {
        Some(s @ (S::Dialing | S::Ringing)) => s,
        _ => S::Active,
    };
    if let Some(call) = call {
        return super::calls::progress(conn, &call, status).await;
    }
    if p.attributes.contains_key(super::calls::DIAL_SESSION) {
        // Placed by a dial that has not committed its call yet: the dial
        // records it (or, failing, removes the participant).
        return Ok(());
    }
    if !open {
        // Reported after the room's end: that call is over.
        return Ok(());
    }
    inbound_call(conn, project_id, name, room, p, status).await
}

/// An inbound call: its session is the room's, `sip.inbound_call` is
/// emitted once for it, and the call is recorded (direction inbound, the
/// line's max duration).
///
/// - No active session: a sip session starts (caller number from
///   `sip.phoneNumber`, agent of the line as its dispatch rule has it).
/// - An active session that is no call's (the dispatched agent's join was
///   handled first and started a voice session): it becomes the sip
///   session of this call, keeping what it had.
/// - The session of another call: this call joins it.
async fn inbound_call(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &RoomName,
    room: &proto::Room,
    p: &proto::ParticipantInfo,
    status: crate::db::sip_calls::SipCallStatus,
) -> ApiResult<()> {
    use crate::db::{sessions, sip_calls as calls};
    let attr = |k: &str| p.attributes.get(k).cloned().unwrap_or_default();
    let phone = attr("sip.phoneNumber");
    let line = attr("sip.trunkPhoneNumber");
    let config = crate::sip::store::config_for_line(conn, project_id, &line, None).await?;
    // The agent the line's dispatch rule dispatched into the room.
    let agent = crate::sip::lines::line_agent(conn, project_id, &line).await?;
    let caller = if phone.is_empty() {
        p.identity.clone()
    } else {
        phone.clone()
    };
    let metadata = json!({
        "direction": "inbound", "phone_number": phone, "trunk_phone_number": line,
        "sip_call_id": attr("sip.callID"), "participant_identity": p.identity,
    });
    let new = sessions::NewSession {
        room_name: name.full.clone(),
        agent_config_id: agent.as_ref().map(|a| a.id),
        caller_identity: Some(caller.clone()),
        session_type: "sip".into(),
        metadata: metadata.clone(),
        room_sid: (!room.sid.is_empty()).then(|| room.sid.clone()),
    };
    // The session: a new one, or the room's active one (locked, so that
    // two calls joining at once are taken one after the other). The
    // insert waits for a concurrent one and then sees it; a session ending
    // meanwhile means trying again.
    let mut attempts = 0;
    let (session, received) = loop {
        attempts += 1;
        if let Some(session) = sessions::start(conn, project_id, &new).await? {
            break (session, true);
        }
        if let Some(active) = sessions::active(conn, project_id, &name.full).await?
            && let Some(locked) = sessions::lock_active(conn, project_id, active.id).await?
        {
            if calls::any_for_session(conn, locked.id).await? {
                break (locked, false);
            }
            let converted = sessions::make_sip(
                conn,
                &locked,
                &caller,
                new.agent_config_id,
                &metadata,
                new.room_sid.as_deref(),
            )
            .await?;
            break (converted, true);
        }
        if attempts >= 3 {
            tracing::warn!(room = %name.full, identity = %p.identity, "no session for an inbound SIP call");
            return Ok(());
        }
    };
    if received {
        emit(
            conn,
            project_id,
            "sip.inbound_call",
            json!({
                "room_name": name.full, "room": name.short, "session_id": session.id,
                "phone_number": phone, "trunk_phone_number": line,
                "agent_config_id": session.agent_config_id, "identity": p.identity,
            }),
        )
        .await?;
    }
    let max = config
        .as_ref()
        .map_or(super::calls::DEFAULT_MAX_CALL_SECS, |c| c.max_call_duration);
    let call = calls::insert(
        conn,
        &calls::NewCall {
            project_id,
            session_id: Some(session.id),
            room_name: &name.full,
            participant_identity: &p.identity,
            phone_number: &phone,
            direction: "inbound",
            status,
            max_call_duration: max,
            deadline: Utc::now() + chrono::Duration::seconds(i64::from(max)),
        },
    )
    .await?;
    super::calls::report(conn, &call).await
}

/// Unix nanoseconds (egress timestamps) as a time.
fn nanos(ns: i64) -> Option<DateTime<Utc>> {
    (ns > 0).then(|| Utc.timestamp_nanos(ns))
}

/// An egress event: `egress.started` / `egress.ended` for any egress of the
/// project's rooms; for Voxplane's recordings, the end sets the status
/// (`completed` with size and duration, or `error` with the reason) and
/// emits `recording.stopped`.
async fn egress(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &RoomName,
    info: &proto::EgressInfo,
    kind: &str,
    settled: Option<&str>,
) -> ApiResult<()> {
    use crate::recordings::store::{self, RecordingStatus};
    let status = proto::EgressStatus::try_from(info.status)
        .map(|s| s.as_str_name())
        .unwrap_or("EGRESS_STARTING");
    let row = store::by_egress(conn, project_id, &info.egress_id).await?;
    let base = json!({
        "room_name": name.full, "room": name.short, "egress_id": info.egress_id,
        "egress_status": status, "recording_id": row.as_ref().map(|r| r.id),
    });
    match kind {
        "egress_started" => {
            emit(conn, project_id, "egress.started", base).await?;
        }
        "egress_ended" => {
            let failed = info.status != proto::EgressStatus::EgressComplete as i32;
            let error = failed.then(|| {
                if info.error.is_empty() {
                    status.to_owned()
                } else {
                    info.error.clone()
                }
            });
            emit(
                conn,
                project_id,
                "egress.ended",
                base.merge(json!({ "error": error })),
            )
            .await?;
            let Some(row) = row else {
                // A recording deleted while it ran: its file is removed
                // after the commit (`apply_event`).
                return Ok(());
            };
            let file = <[proto::FileInfo]>::first(&info.file_results);
            let ended_at = nanos(info.ended_at).unwrap_or_else(Utc::now);
            // A complete file was named by its egress id (`apply_event`).
            let settled = if failed { None } else { settled };
            #[allow(clippy::cast_precision_loss)] // nanoseconds of a recording fit in f64
            let ended = store::Ended {
                status: if failed {
                    RecordingStatus::Error
                } else {
                    RecordingStatus::Completed
                },
                size_bytes: file.map(|f| f.size).filter(|_| !failed),
                duration_seconds: file.map(|f| f.duration as f64 / 1e9).filter(|_| !failed),
                error: error.as_deref(),
                ended_at,
                file_path: settled,
            };
            if let Some(done) = store::end(conn, row.id, &ended).await? {
                emit(
                    conn,
                    project_id,
                    "recording.stopped",
                    json!({
                        "room_name": name.full, "room": name.short, "recording_id": done.id,
                        "egress_id": done.egress_id, "status": done.status,
                        "size_bytes": done.size_bytes, "duration_seconds": done.duration_seconds,
                        "error": done.error,
                    }),
                )
                .await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Removes the file of an ended egress that has no recording row, when it
/// lies under `<recordings_dir>/<project id>/`.
async fn remove_orphan(
    settings: &crate::config::Settings,
    project_id: i64,
    info: &proto::EgressInfo,
) {
    let Ok(dir) = std::path::absolute(&settings.recordings_dir) else {
        return;
    };
    let dir = dir.join(project_id.to_string());
    for f in &info.file_results {
        let path = std::path::Path::new(&f.location);
        let inside = path.is_absolute()
            && path.starts_with(&dir)
            && !path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir));
        if inside && tokio::fs::remove_file(path).await.is_ok() {
            tracing::info!(egress = %info.egress_id, "removed the file of a deleted recording");
        }
    }
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
