//! `recordings`: one row per LiveKit egress started by Voxplane.

use crate::db::schema::recordings;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

crate::db::text_enum::text_enum! {
    /// The status of a recording (`recordings.status`).
    pub enum RecordingStatus in ("recordings", "status") {
        /// Reserved; LiveKit has not answered the start yet (never shown).
        Starting = "starting",
        /// The egress runs.
        Recording = "recording",
        /// The egress ended with a file.
        Completed = "completed",
        /// The egress failed.
        Error = "error",
    }
}

impl RecordingStatus {
    /// A status by name; `starting` is not one the API lists.
    pub fn listed(name: &str) -> Option<Self> {
        Self::parse(name).filter(|s| *s != Self::Starting)
    }
}

/// A row of `recordings`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = recordings)]
pub struct Recording {
    pub id: i64,
    pub project_id: i64,
    pub room_name: String,
    pub egress_id: String,
    pub format: String,
    pub status: RecordingStatus,
    pub file_path: String,
    pub size_bytes: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a start reserves before asking LiveKit for the egress.
pub struct NewRecording<'a> {
    pub project_id: i64,
    pub room_name: &'a str,
    /// A placeholder (`starting:<key>`) until LiveKit names the egress.
    pub egress_id: &'a str,
    pub format: &'a str,
    pub file_path: &'a str,
}

/// Reserves a recording (status `starting`, counted by the quota).
pub async fn reserve(conn: &mut AsyncPgConnection, r: &NewRecording<'_>) -> QueryResult<i64> {
    diesel::insert_into(recordings::table)
        .values((
            recordings::project_id.eq(r.project_id),
            recordings::room_name.eq(r.room_name),
            recordings::egress_id.eq(r.egress_id),
            recordings::format.eq(r.format),
            recordings::file_path.eq(r.file_path),
            recordings::status.eq(RecordingStatus::Starting),
        ))
        .returning(recordings::id)
        .get_result(conn)
        .await
}

/// Records the egress LiveKit started for a reservation (status
/// `recording`); `None` when the reservation is gone.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    id: i64,
    egress_id: &str,
) -> QueryResult<Option<Recording>> {
    diesel::update(
        recordings::table
            .find(id)
            .filter(recordings::status.eq(RecordingStatus::Starting)),
    )
    .set((
        recordings::egress_id.eq(egress_id),
        recordings::status.eq(RecordingStatus::Recording),
        recordings::started_at.eq(Utc::now()),
        recordings::updated_at.eq(Utc::now()),
    ))
    .returning(Recording::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Drops a reservation whose egress did not start.
pub async fn release(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(
        recordings::table
            .find(id)
            .filter(recordings::status.eq(RecordingStatus::Starting)),
    )
    .execute(conn)
    .await
    .map(|n| n > 0)
}

/// A reservation (`starting`) by id, if it is still one.
pub async fn reservation(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Recording>> {
    recordings::table
        .find(id)
        .filter(recordings::status.eq(RecordingStatus::Starting))
        .select(Recording::as_select())
        .first(conn)
        .await
        .optional()
}

/// A recording by id, whatever its project (the caller checks ownership).
pub async fn find_any(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Recording>> {
    recordings::table
        .find(id)
        .filter(recordings::status.ne(RecordingStatus::Starting))
        .select(Recording::as_select())
        .first(conn)
        .await
        .optional()
}

/// A project's recording by egress id.
pub async fn by_egress(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    egress_id: &str,
) -> QueryResult<Option<Recording>> {
    recordings::table
        .filter(recordings::project_id.eq(project_id))
        .filter(recordings::egress_id.eq(egress_id))
        .select(Recording::as_select())
        .first(conn)
        .await
        .optional()
}

/// The recordings of a room still running.
pub async fn active_in_room(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
) -> QueryResult<Vec<Recording>> {
    recordings::table
        .filter(recordings::project_id.eq(project_id))
        .filter(recordings::room_name.eq(room_name))
        .filter(recordings::status.eq(RecordingStatus::Recording))
        .order(recordings::id.asc())
        .select(Recording::as_select())
        .load(conn)
        .await
}

/// Filters of the list.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub room_name: Option<&'a str>,
    pub status: Option<RecordingStatus>,
}

/// A page of a project's recordings, newest first, with the total.
pub async fn page(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    filter: &Filter<'_>,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<Recording>, i64)> {
    let base = || {
        let mut q = recordings::table
            .filter(recordings::project_id.eq(project_id))
            .filter(recordings::status.ne(RecordingStatus::Starting))
            .into_boxed();
        if let Some(room) = filter.room_name {
            q = q.filter(recordings::room_name.eq(room.to_owned()));
        }
        if let Some(status) = filter.status {
            q = q.filter(recordings::status.eq(status));
        }
        q
    };
    let total: i64 = base().count().get_result(conn).await?;
    let rows = base()
        .order((recordings::created_at.desc(), recordings::id.desc()))
        .offset((page - 1) * per_page)
        .limit(per_page)
        .select(Recording::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// The end of an egress, as reported by `egress_ended`.
#[derive(Debug)]
pub struct Ended<'a> {
    pub status: RecordingStatus,
    pub size_bytes: Option<i64>,
    pub duration_seconds: Option<f64>,
    pub error: Option<&'a str>,
    pub ended_at: DateTime<Utc>,
    /// Where the file now lies (renamed to its egress id), when it moved.
    pub file_path: Option<&'a str>,
}

/// Marks a running recording ended; `None` when it was not running.
pub async fn end(
    conn: &mut AsyncPgConnection,
    id: i64,
    ended: &Ended<'_>,
) -> QueryResult<Option<Recording>> {
    diesel::update(
        recordings::table
            .find(id)
            .filter(recordings::status.eq(RecordingStatus::Recording)),
    )
    .set((
        recordings::status.eq(ended.status),
        recordings::size_bytes.eq(ended.size_bytes),
        recordings::duration_seconds.eq(ended.duration_seconds),
        recordings::error.eq(ended.error),
        recordings::ended_at.eq(ended.ended_at),
        ended
            .file_path
            .map(|p| recordings::file_path.eq(p.to_owned())),
        recordings::updated_at.eq(Utc::now()),
    ))
    .returning(Recording::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Deletes a recording row.
pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(recordings::table.find(id))
        .execute(conn)
        .await
        .map(|n| n > 0)
}
