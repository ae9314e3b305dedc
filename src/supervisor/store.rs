//! SQL of supervision periods (`supervisions`): one row per supervisor and
//! mode, the live one with no `ended_at`.

use crate::db::schema::supervisions as sv;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A row of `supervisions`.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize, utoipa::ToSchema)]
#[diesel(table_name = sv)]
pub struct SupervisionPeriod {
    /// Row id.
    pub id: i64,
    #[serde(skip)]
    pub project_id: i64,
    /// The supervised session.
    pub session_id: i64,
    /// Full room name.
    pub room_name: String,
    /// The supervisor's LiveKit identity.
    pub identity: String,
    /// listen, whisper, barge or take_over.
    pub mode: String,
    /// Whom a whisper reaches and a take-over mutes (none: the agents).
    pub target_identity: Option<String>,
    /// Start of this period.
    pub started_at: DateTime<Utc>,
    /// End of this period (none: live).
    pub ended_at: Option<DateTime<Utc>>,
}

/// What a new period records.
#[derive(Debug, Clone)]
pub struct NewPeriod<'a> {
    pub project_id: i64,
    pub session_id: i64,
    pub room_name: &'a str,
    pub identity: &'a str,
    pub mode: &'a str,
    pub target_identity: Option<&'a str>,
}

/// Inserts a live period; `None` when the identity already supervises the
/// room (the partial unique index).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    p: &NewPeriod<'_>,
) -> QueryResult<Option<SupervisionPeriod>> {
    diesel::insert_into(sv::table)
        .values((
            sv::project_id.eq(p.project_id),
            sv::session_id.eq(p.session_id),
            sv::room_name.eq(p.room_name),
            sv::identity.eq(p.identity),
            sv::mode.eq(p.mode),
            sv::target_identity.eq(p.target_identity),
        ))
        .on_conflict_do_nothing()
        .returning(SupervisionPeriod::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// The live period of a supervisor in a room.
pub async fn live(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
    identity: &str,
) -> QueryResult<Option<SupervisionPeriod>> {
    sv::table
        .filter(sv::project_id.eq(project_id))
        .filter(sv::room_name.eq(room_name))
        .filter(sv::identity.eq(identity))
        .filter(sv::ended_at.is_null())
        .select(SupervisionPeriod::as_select())
        .first(conn)
        .await
        .optional()
}

/// The live periods of a room.
pub async fn live_in_room(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
) -> QueryResult<Vec<SupervisionPeriod>> {
    sv::table
        .filter(sv::project_id.eq(project_id))
        .filter(sv::room_name.eq(room_name))
        .filter(sv::ended_at.is_null())
        .order(sv::id.asc())
        .select(SupervisionPeriod::as_select())
        .load(conn)
        .await
}

/// Ends the live period of a supervisor; `None` when there was none (ended
/// already, by a release or by its leaving).
pub async fn end(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    room_name: &str,
    identity: &str,
) -> QueryResult<Option<SupervisionPeriod>> {
    diesel::update(
        sv::table
            .filter(sv::project_id.eq(project_id))
            .filter(sv::room_name.eq(room_name))
            .filter(sv::identity.eq(identity))
            .filter(sv::ended_at.is_null()),
    )
    .set(sv::ended_at.eq(Utc::now()))
    .returning(SupervisionPeriod::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Every period of a session, oldest first.
pub async fn for_session(
    conn: &mut AsyncPgConnection,
    session_id: i64,
) -> QueryResult<Vec<SupervisionPeriod>> {
    sv::table
        .filter(sv::session_id.eq(session_id))
        .order((sv::started_at.asc(), sv::id.asc()))
        .select(SupervisionPeriod::as_select())
        .load(conn)
        .await
}
