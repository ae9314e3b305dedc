//! The `rooms` and `participants` tables: what LiveKit reported, kept after
//! rooms close. Webhook-driven writes are keyed on LiveKit's ids (room and
//! participant `sid`) so duplicates and reordering leave the right state: a
//! closed room is never reopened, a participant who left never rejoins.

use super::schema::rooms;
use crate::db::prepared::bind;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

crate::db::text_enum::text_enum! {
    /// The status of a room (`rooms.status`).
    #[derive(utoipa::ToSchema)]
    #[schema(example = "active")]
    pub enum RoomStatus in ("rooms", "status") {
        /// Open (or reserved: created here, LiveKit not yet answered).
        Active = "active",
        /// LiveKit reported its end, or it was deleted.
        Closed = "closed",
    }
}

/// A row of `rooms`.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = rooms)]
pub struct Room {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub full_name: String,
    pub sid: Option<String>,
    pub status: RoomStatus,
    pub empty_timeout: i32,
    pub max_participants: i32,
    pub metadata: String,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The active room of a project with this short name.
pub async fn find_active(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &str,
) -> QueryResult<Option<Room>> {
    rooms::table
        .filter(
            rooms::project_id
                .eq(project_id)
                .and(rooms::name.eq(name))
                .and(rooms::status.eq(RoomStatus::Active)),
        )
        .select(Room::as_select())
        .first(conn)
        .await
        .optional()
}

/// The most recent room of a project with this short name, active or not.
pub async fn latest(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &str,
) -> QueryResult<Option<Room>> {
    rooms::table
        .filter(rooms::project_id.eq(project_id).and(rooms::name.eq(name)))
        .order(rooms::id.desc())
        .select(Room::as_select())
        .first(conn)
        .await
        .optional()
}

/// What `POST /rooms` records after LiveKit created the room.
pub struct CreatedRoom<'a> {
    pub project_id: i64,
    pub name: &'a str,
    pub full_name: &'a str,
    pub sid: &'a str,
    pub empty_timeout: i32,
    pub max_participants: i32,
    pub metadata: &'a str,
    pub created_at: DateTime<Utc>,
}

/// Records a room created through the API (the `room_started` webhook may
/// have recorded it already: same sid, one row).
pub async fn record_created(
    conn: &mut AsyncPgConnection,
    r: &CreatedRoom<'_>,
) -> QueryResult<Room> {
    diesel::sql_query(
        "INSERT INTO rooms (project_id, name, full_name, sid, empty_timeout, max_participants, metadata, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (sid) DO UPDATE SET empty_timeout = excluded.empty_timeout,
             max_participants = excluded.max_participants, metadata = excluded.metadata, updated_at = now()
         RETURNING *",
    )
    .bind::<BigInt, _>(r.project_id)
    .bind::<Text, _>(r.name)
    .bind::<Text, _>(r.full_name)
    .bind::<Text, _>(r.sid)
    .bind::<Int4, _>(r.empty_timeout)
    .bind::<Int4, _>(r.max_participants)
    .bind::<Text, _>(r.metadata)
    .bind::<Timestamptz, _>(r.created_at)
    .get_result(conn)
    .await
}

/// What `POST /rooms` reserves before asking LiveKit for the room.
pub struct RoomReservation<'a> {
    pub project_id: i64,
    pub name: &'a str,
    pub full_name: &'a str,
    pub empty_timeout: i32,
    pub max_participants: i32,
    pub metadata: &'a str,
}

/// Reserves the name of a room about to be created: an active row with no
/// sid yet (it counts against the rooms quota and holds the name: a
/// concurrent create of the same name meets the unique index). Returns its
/// id. [`confirm`] gives it LiveKit's sid, [`release`] drops it.
pub async fn reserve(conn: &mut AsyncPgConnection, r: &RoomReservation<'_>) -> QueryResult<i64> {
    diesel::insert_into(rooms::table)
        .values((
            rooms::project_id.eq(r.project_id),
            rooms::name.eq(r.name),
            rooms::full_name.eq(r.full_name),
            rooms::empty_timeout.eq(r.empty_timeout),
            rooms::max_participants.eq(r.max_participants),
            rooms::metadata.eq(r.metadata),
        ))
        .returning(rooms::id)
        .get_result(conn)
        .await
}

/// Gives a reservation the room LiveKit created. The `room_started`
/// webhook may have claimed it already (same sid); when the reservation is
/// gone or was taken by another incarnation, the room is recorded as
/// [`record_created`] does.
pub async fn confirm(
    conn: &mut AsyncPgConnection,
    id: i64,
    r: &CreatedRoom<'_>,
) -> QueryResult<Room> {
    let confirmed: Option<Room> = diesel::sql_query(
        "UPDATE rooms SET sid = $2, empty_timeout = $3, max_participants = $4, metadata = $5,
             created_at = $6, updated_at = now()
         WHERE id = $1 AND status = 'active' AND (sid IS NULL OR sid = $2)
         RETURNING *",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(r.sid)
    .bind::<Int4, _>(r.empty_timeout)
    .bind::<Int4, _>(r.max_participants)
    .bind::<Text, _>(r.metadata)
    .bind::<Timestamptz, _>(r.created_at)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(room) = confirmed {
        return Ok(room);
    }
    release(conn, id).await?;
    record_created(conn, r).await
}

/// Drops a reservation that never got its LiveKit room (a row that has a
/// sid is a room LiveKit reported, and stays).
pub async fn release(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(rooms::table.find(id).filter(rooms::sid.is_null()))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// The full name of a reservation that never got its room (no sid yet),
/// if it is still one.
pub async fn reservation(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<String>> {
    rooms::table
        .find(id)
        .filter(rooms::sid.is_null())
        .filter(rooms::status.eq(RoomStatus::Active))
        .select(rooms::full_name)
        .first(conn)
        .await
        .optional()
}

/// Marks the project's active room of this name closed; returns whether one was.
pub async fn close_active(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &str,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    let n = diesel::update(
        rooms::table.filter(
            rooms::project_id
                .eq(project_id)
                .and(rooms::name.eq(name))
                .and(rooms::status.eq(RoomStatus::Active)),
        ),
    )
    .set((
        rooms::status.eq(RoomStatus::Closed),
        rooms::closed_at.eq(at),
        rooms::updated_at.eq(Utc::now()),
    ))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// A room LiveKit reports as started (or first seen through a participant):
/// older active rooms of the same name are closed (their `room_finished` was
/// lost), then this incarnation is recorded unless already known. A room
/// already closed stays closed. Returns the row and whether it is open.
///
/// A reservation of the name (a room being created through the API, no sid
/// yet: [`reserve`]) is this room and gets its sid.
///
/// Inside a transaction. The project is locked first (see
/// [`super::projects::share`]), as every row referencing it does, unless
/// the caller has locked it in this transaction (`project_locked`).
pub async fn observe_started(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &str,
    full_name: &str,
    sid: &str,
    created_at: DateTime<Utc>,
    project_locked: bool,
) -> QueryResult<ObservedRoom> {
    if !project_locked {
        super::projects::share(conn, project_id).await?;
    }
    if let Some(found) = by_sid(conn, sid).await? {
        return Ok(found);
    }
    // A room being created through the API: its reservation is this room.
    // (Every call's webhooks come here: prepared once per connection.)
    let claimed: Option<IdRow> = crate::prepared!(
        "UPDATE rooms SET sid = $1, updated_at = now()
         WHERE project_id = $2 AND name = $3 AND status = 'active' AND sid IS NULL
         RETURNING id",
        bind::<Text, _>(sid),
        bind::<BigInt, _>(project_id),
        bind::<Text, _>(name)
    )
    .get_result(conn)
    .await
    .optional()?;
    if let Some(row) = claimed {
        return Ok(ObservedRoom {
            id: row.id,
            open: true,
        });
    }
    crate::prepared!(
        "UPDATE rooms SET status = 'closed', closed_at = coalesce(closed_at, now()), updated_at = now()
         WHERE project_id = $1 AND name = $2 AND status = 'active' AND sid IS DISTINCT FROM $3",
        bind::<BigInt, _>(project_id),
        bind::<Text, _>(name),
        bind::<Text, _>(sid)
    )
    .execute(conn)
    .await?;
    crate::prepared!(
        "INSERT INTO rooms (project_id, name, full_name, sid, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sid) DO UPDATE SET updated_at = now() RETURNING id, status = 'active' AS open",
        bind::<BigInt, _>(project_id),
        bind::<Text, _>(name),
        bind::<Text, _>(full_name),
        bind::<Text, _>(sid),
        bind::<Timestamptz, _>(created_at)
    )
    .get_result(conn)
    .await
}

/// A room a webhook reports, as recorded.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct ObservedRoom {
    /// The row.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Still open: LiveKit has not reported its end.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub open: bool,
}

/// A room LiveKit reports as finished: closed, whether or not it was seen
/// starting (a later `room_started` for the same sid will not reopen it).
pub async fn observe_finished(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &str,
    full_name: &str,
    sid: &str,
    created_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> QueryResult<i64> {
    let row: IdRow = diesel::sql_query(
        "INSERT INTO rooms (project_id, name, full_name, sid, status, created_at, closed_at)
         VALUES ($1, $2, $3, $4, 'closed', $5, $6)
         ON CONFLICT (sid) DO UPDATE SET status = 'closed',
             closed_at = coalesce(rooms.closed_at, excluded.closed_at), updated_at = now()
         RETURNING id",
    )
    .bind::<BigInt, _>(project_id)
    .bind::<Text, _>(name)
    .bind::<Text, _>(full_name)
    .bind::<Text, _>(sid)
    .bind::<Timestamptz, _>(created_at)
    .bind::<Timestamptz, _>(at)
    .get_result(conn)
    .await?;
    Ok(row.id)
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

async fn by_sid(conn: &mut AsyncPgConnection, sid: &str) -> QueryResult<Option<ObservedRoom>> {
    rooms::table
        .filter(rooms::sid.eq(sid))
        .select((rooms::id, rooms::status))
        .first::<(i64, RoomStatus)>(conn)
        .await
        .optional()
        .map(|row| {
            row.map(|(id, status)| ObservedRoom {
                id,
                open: status == RoomStatus::Active,
            })
        })
}

/// A participant as a webhook reports it.
pub struct ObservedParticipant<'a> {
    pub project_id: i64,
    pub room_id: i64,
    pub sid: &'a str,
    pub identity: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub metadata: &'a str,
    pub attributes: serde_json::Value,
    pub joined_at: Option<DateTime<Utc>>,
    pub left_at: Option<DateTime<Utc>>,
}

/// Records a participant joining or leaving; the first `joined_at` and the
/// first `left_at` win, so duplicates and reordering do not undo a leave.
pub async fn observe_participant(
    conn: &mut AsyncPgConnection,
    p: &ObservedParticipant<'_>,
) -> QueryResult<()> {
    crate::prepared!(
        "INSERT INTO participants (project_id, room_id, sid, identity, name, kind, metadata, attributes, joined_at, left_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (sid) DO UPDATE SET
             name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE participants.name END,
             joined_at = coalesce(participants.joined_at, excluded.joined_at),
             left_at = coalesce(participants.left_at, excluded.left_at),
             updated_at = now()",
        bind::<BigInt, _>(p.project_id),
        bind::<BigInt, _>(p.room_id),
        bind::<Text, _>(p.sid),
        bind::<Text, _>(p.identity),
        bind::<Text, _>(p.name),
        bind::<Text, _>(p.kind),
        bind::<Text, _>(p.metadata),
        bind::<Jsonb, _>(&p.attributes),
        bind::<Nullable<Timestamptz>, _>(p.joined_at),
        bind::<Nullable<Timestamptz>, _>(p.left_at)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A participant row, for the room detail of closed rooms.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::participants)]
pub struct Participant {
    pub identity: String,
    pub name: String,
    pub kind: String,
    pub joined_at: Option<DateTime<Utc>>,
    pub left_at: Option<DateTime<Utc>>,
}

/// The participants recorded for a room, in joining order.
pub async fn participants_of(
    conn: &mut AsyncPgConnection,
    room_id: i64,
) -> QueryResult<Vec<Participant>> {
    use super::schema::participants as p;
    p::table
        .filter(p::room_id.eq(room_id))
        .order((p::joined_at.asc(), p::id.asc()))
        .select(Participant::as_select())
        .load(conn)
        .await
}
