//! The `sessions` and `transcripts` tables, and the session lifecycle every
//! path shares (API, token dispatch, LiveKit webhooks): one active session per
//! room (a partial unique index), events in the same transaction.

use super::schema::{agents, sessions, transcripts};
use crate::events;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

crate::db::text_enum::text_enum! {
    /// The status of a session (`sessions.status`).
    #[derive(utoipa::ToSchema)]
    #[schema(example = "active")]
    pub enum SessionStatus in ("sessions", "status") {
        /// The call is running.
        Active = "active",
        /// The call ended.
        Completed = "completed",
    }
}

/// A row of `sessions`.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: i64,
    pub project_id: i64,
    pub room_name: String,
    pub agent_config_id: Option<i64>,
    pub caller_identity: Option<String>,
    pub session_type: String,
    pub status: SessionStatus,
    pub metadata: Value,
    pub summary: Option<String>,
    pub duration_seconds: Option<i32>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The LiveKit room (sid) it runs in, when known.
    pub room_sid: Option<String>,
    /// Call outcome: one of the project's dispositions.
    pub disposition: Option<String>,
    /// Call outcome: free tags.
    pub tags: Vec<String>,
    /// Call outcome: notes.
    pub notes: Option<String>,
    /// Call outcome: 1 to 5.
    pub rating: Option<i16>,
}

impl Session {
    /// Duration: stored when ended, else running time so far.
    pub fn duration(&self) -> i64 {
        match self.duration_seconds {
            Some(d) => i64::from(d),
            None => (self.ended_at.unwrap_or_else(Utc::now) - self.started_at)
                .num_seconds()
                .max(0),
        }
    }
}

/// What a new session records.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub room_name: String,
    pub agent_config_id: Option<i64>,
    pub caller_identity: Option<String>,
    pub session_type: String,
    pub metadata: Value,
    /// The LiveKit room (sid), when known.
    pub room_sid: Option<String>,
}

/// Starts a session unless the room already has an active one; returns the
/// new session (None when one was active). Emits `session.started`.
pub async fn start(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    s: &NewSession,
) -> QueryResult<Option<Session>> {
    let created = insert(conn, project_id, s).await?;
    if let Some(session) = &created {
        announce(conn, session).await?;
    }
    Ok(created)
}

/// Inserts an active session unless the room already has one (None), with
/// no event: a reservation ([`start`] announces it at once, a dial once
/// LiveKit placed the call).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    s: &NewSession,
) -> QueryResult<Option<Session>> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::project_id.eq(project_id),
            sessions::room_name.eq(&s.room_name),
            sessions::agent_config_id.eq(s.agent_config_id),
            sessions::caller_identity.eq(&s.caller_identity),
            sessions::session_type.eq(&s.session_type),
            sessions::metadata.eq(&s.metadata),
            sessions::room_sid.eq(&s.room_sid),
        ))
        .on_conflict_do_nothing()
        .returning(Session::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Emits `session.started` for a session.
pub async fn announce(conn: &mut AsyncPgConnection, session: &Session) -> QueryResult<()> {
    events::emit(
        conn,
        session.project_id,
        "session.started",
        json!({
            "session_id": session.id,
            "room_name": session.room_name,
            "agent_config_id": session.agent_config_id,
            "session_type": session.session_type,
            "caller_identity": session.caller_identity,
        }),
    )
    .await?;
    Ok(())
}

/// The active session of a room.
pub async fn active(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
) -> QueryResult<Option<Session>> {
    sessions::table
        .filter(
            sessions::project_id
                .eq(project_id)
                .and(sessions::room_name.eq(room_name))
                .and(sessions::status.eq(SessionStatus::Active)),
        )
        .select(Session::as_select())
        .first(conn)
        .await
        .optional()
}

/// A session of a project if it is still active, locked for the rest of
/// the transaction (no one else ends or changes it meanwhile).
pub async fn lock_active(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<Option<Session>> {
    sessions::table
        .filter(
            sessions::project_id
                .eq(project_id)
                .and(sessions::id.eq(id))
                .and(sessions::status.eq(SessionStatus::Active)),
        )
        .for_update()
        .select(Session::as_select())
        .first(conn)
        .await
        .optional()
}

/// Records the LiveKit room (sid) a session runs in.
pub async fn set_room_sid(conn: &mut AsyncPgConnection, id: i64, sid: &str) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::room_sid.eq(sid))
        .execute(conn)
        .await?;
    Ok(())
}

/// The end of a LiveKit room (`room_finished` of room `sid`, when known, at
/// `at`, whole seconds): ends the room name's active session if it ran in
/// that room, that is if its room sid is `sid` or, unknown, if it started
/// by then. The session of a later room of the same name (a late webhook)
/// is left alone.
pub async fn end_for_finished_room(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
    sid: Option<&str>,
    at: DateTime<Utc>,
) -> QueryResult<Option<Session>> {
    let Some(current) = active(conn, project_id, room_name).await? else {
        return Ok(None);
    };
    let Some(current) = lock_active(conn, project_id, current.id).await? else {
        return Ok(None);
    };
    let started_by_then = current.started_at < at + chrono::Duration::seconds(1);
    let ran_there = match (current.room_sid.as_deref(), sid) {
        (Some(own), Some(sid)) => own == sid,
        _ => started_by_then,
    };
    if !ran_there {
        return Ok(None);
    }
    end(conn, project_id, room_name, None, None, at).await
}

/// Makes an active session (locked by the caller) the session of an
/// inbound SIP call: type sip, the caller, the line's agent and the room
/// sid unless it has them, the call's metadata added to what it had.
pub async fn make_sip(
    conn: &mut AsyncPgConnection,
    current: &Session,
    caller_identity: &str,
    agent_config_id: Option<i64>,
    call_metadata: &Value,
    room_sid: Option<&str>,
) -> QueryResult<Session> {
    let mut metadata = current.metadata.clone();
    if let (Some(m), Some(add)) = (metadata.as_object_mut(), call_metadata.as_object()) {
        m.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    diesel::update(sessions::table.find(current.id))
        .set((
            sessions::session_type.eq("sip"),
            sessions::caller_identity.eq(caller_identity),
            sessions::agent_config_id.eq(current.agent_config_id.or(agent_config_id)),
            sessions::metadata.eq(metadata),
            sessions::room_sid.eq(current.room_sid.as_deref().or(room_sid)),
            sessions::updated_at.eq(Utc::now()),
        ))
        .returning(Session::as_returning())
        .get_result(conn)
        .await
}

/// Whether the room ever had a session.
pub async fn any_for_room(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        sessions::table.filter(
            sessions::project_id
                .eq(project_id)
                .and(sessions::room_name.eq(room_name)),
        ),
    ))
    .get_result(conn)
    .await
}

/// Ends the room's active session (duration computed unless given); emits
/// `session.ended`. Returns the ended session, or None when none was active.
pub async fn end(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
    summary: Option<&str>,
    duration: Option<i32>,
    at: DateTime<Utc>,
) -> QueryResult<Option<Session>> {
    let Some(current) = active(conn, project_id, room_name).await? else {
        return Ok(None);
    };
    let computed = (at - current.started_at)
        .num_seconds()
        .clamp(0, i64::from(i32::MAX)) as i32;
    let ended: Option<Session> = diesel::update(
        sessions::table
            .find(current.id)
            .filter(sessions::status.eq(SessionStatus::Active)),
    )
    .set((
        sessions::status.eq(SessionStatus::Completed),
        sessions::ended_at.eq(at),
        sessions::duration_seconds.eq(duration.unwrap_or(computed)),
        sessions::summary.eq(summary.map(str::to_owned).or(current.summary.clone())),
        sessions::updated_at.eq(Utc::now()),
    ))
    .returning(Session::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    // A concurrent transaction ended it first (and reported it).
    let Some(ended) = ended else {
        return Ok(None);
    };
    events::emit(
        conn,
        project_id,
        "session.ended",
        json!({
            "session_id": ended.id,
            "room_name": ended.room_name,
            "agent_config_id": ended.agent_config_id,
            "duration": ended.duration_seconds,
            "summary": ended.summary,
        }),
    )
    .await?;
    Ok(Some(ended))
}

/// One session of a project, with its agent's name and models.
pub async fn find(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<Option<(Session, Option<(String, Option<String>, Option<String>)>)>> {
    sessions::table
        .left_join(agents::table)
        .filter(sessions::project_id.eq(project_id).and(sessions::id.eq(id)))
        .select((
            Session::as_select(),
            (agents::name, agents::llm_provider, agents::llm_model).nullable(),
        ))
        .first(conn)
        .await
        .optional()
}

/// A transcript line.
#[derive(
    Debug, Clone, Queryable, QueryableByName, Selectable, serde::Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = transcripts)]
pub struct Line {
    #[serde(skip)]
    pub id: i64,
    #[schema(example = "user")]
    pub speaker: String,
    #[schema(example = "Hello")]
    pub content: String,
    #[schema(example = 0)]
    pub timestamp_ms: i64,
    pub is_final: bool,
    pub created_at: DateTime<Utc>,
}

/// A session's lines in order: timestamp, then insertion.
pub async fn lines(conn: &mut AsyncPgConnection, session_id: i64) -> QueryResult<Vec<Line>> {
    transcripts::table
        .filter(transcripts::session_id.eq(session_id))
        .order((transcripts::timestamp_ms.asc(), transcripts::id.asc()))
        .select(Line::as_select())
        .load(conn)
        .await
}

/// The lines of the text export: an interim line is dropped when a final
/// line of the same speaker follows before anyone else speaks.
pub fn superseded_removed(lines: &[Line]) -> Vec<&Line> {
    let mut out: Vec<&Line> = Vec::with_capacity(lines.len());
    for line in lines {
        if line.is_final {
            while out
                .last()
                .is_some_and(|l| !l.is_final && l.speaker == line.speaker)
            {
                out.pop();
            }
        }
        out.push(line);
    }
    out
}

/// `[mm:ss]`, or `[h:mm:ss]` past an hour.
pub fn stamp(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("[{h}:{m:02}:{s:02}]")
    } else {
        format!("[{m:02}:{s:02}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: i64, speaker: &str, content: &str, is_final: bool) -> Line {
        Line {
            id,
            speaker: speaker.into(),
            content: content.into(),
            timestamp_ms: id * 100,
            is_final,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn stamps() {
        assert_eq!(stamp(0), "[00:00]");
        assert_eq!(stamp(65_400), "[01:05]");
        assert_eq!(stamp(3_600_000), "[1:00:00]");
        assert_eq!(stamp(3_725_000), "[1:02:05]");
    }

    #[test]
    fn interim_lines_are_superseded_by_their_final_line() {
        let lines = vec![
            line(1, "user", "Hel", false),
            line(2, "user", "Hello th", false),
            line(3, "user", "Hello there", true),
            line(4, "agent", "Hi", true),
            line(5, "user", "I ne", false),
        ];
        let kept: Vec<&str> = superseded_removed(&lines)
            .iter()
            .map(|l| l.content.as_str())
            .collect();
        assert_eq!(kept, ["Hello there", "Hi", "I ne"]);
    }
}
