//! The SQL of calls in chats (`chat_calls`, `chat_call_participants`).
//! Status changes are conditional updates of the locked call row, so a
//! change seen twice (a webhook and `end-call`) is applied once.

use super::store::duration;
use super::types::{ChatCallOut, ChatCallParticipantOut};
use crate::db::schema::{chat_call_participants as cp, chat_calls as cc};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

crate::db::text_enum::text_enum! {
    /// The status of a call in a chat (`chat_calls.status`).
    #[derive(utoipa::ToSchema)]
    #[schema(example = "active")]
    pub enum ChatCallStatus in ("chat_calls", "status") {
        /// Reserved; its LiveKit room is being created.
        Pending = "pending",
        /// Nobody but the caller joined yet.
        Ringing = "ringing",
        /// Someone answered.
        Active = "active",
        /// Over.
        Ended = "ended",
        /// Its room could not be created.
        Failed = "failed",
    }
}

/// The statuses of a call that has not ended.
pub const LIVE: [ChatCallStatus; 3] = [
    ChatCallStatus::Pending,
    ChatCallStatus::Ringing,
    ChatCallStatus::Active,
];

/// A row of `chat_calls`.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = cc)]
pub struct CallRow {
    pub id: i64,
    pub chat_id: i64,
    pub project_id: i64,
    pub room_name: String,
    pub started_by: Option<i64>,
    pub status: ChatCallStatus,
    pub end_reason: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A row of `chat_call_participants`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cp)]
pub struct ParticipantRow {
    pub call_id: i64,
    pub identity: String,
    pub account_id: Option<i64>,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

impl CallRow {
    /// The JSON shape with these participants.
    pub fn out(&self, participants: Vec<ParticipantRow>) -> ChatCallOut {
        ChatCallOut {
            id: self.id,
            chat_id: self.chat_id,
            room: self.room_name.clone(),
            started_by: self.started_by,
            status: self.status,
            end_reason: self.end_reason.clone(),
            version: self.version,
            started_at: self.created_at,
            answered_at: self.answered_at,
            ended_at: self.ended_at,
            duration_seconds: duration(self.answered_at, self.ended_at),
            participants: participants
                .into_iter()
                .map(|p| ChatCallParticipantOut {
                    identity: p.identity,
                    account_id: p.account_id,
                    joined_at: p.joined_at,
                    left_at: p.left_at,
                })
                .collect(),
        }
    }
}

/// Reserves a call (`pending`) for a chat, its room named
/// `<prefix>_chatcall-<id>`; `None` when the chat has a live call already.
pub async fn reserve(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    project_id: i64,
    room_prefix: &str,
    started_by: i64,
) -> QueryResult<Option<CallRow>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let id: Option<Id> = diesel::sql_query(
        "WITH n AS (SELECT nextval(pg_get_serial_sequence('chat_calls', 'id')) AS id)
         INSERT INTO chat_calls (id, chat_id, project_id, room_name, started_by)
         SELECT n.id, $1, $2, $3 || '_chatcall-' || n.id, $4 FROM n
         ON CONFLICT (chat_id) WHERE status IN ('pending', 'ringing', 'active') DO NOTHING
         RETURNING id",
    )
    .bind::<BigInt, _>(chat_id)
    .bind::<BigInt, _>(project_id)
    .bind::<Text, _>(room_prefix)
    .bind::<BigInt, _>(started_by)
    .get_result(conn)
    .await
    .optional()?;
    match id {
        Some(Id { id }) => get(conn, id).await,
        None => Ok(None),
    }
}

/// A call by id.
pub async fn get(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<CallRow>> {
    cc::table
        .find(id)
        .select(CallRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// A call by id, locked for a status change.
pub async fn lock(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<CallRow>> {
    cc::table
        .find(id)
        .select(CallRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// The live call of a chat, if any.
pub async fn live_of_chat(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
) -> QueryResult<Option<CallRow>> {
    cc::table
        .filter(cc::chat_id.eq(chat_id).and(cc::status.eq_any(LIVE)))
        .select(CallRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// The live call in a LiveKit room, locked.
pub async fn lock_live_by_room(
    conn: &mut AsyncPgConnection,
    room_name: &str,
) -> QueryResult<Option<CallRow>> {
    cc::table
        .filter(cc::room_name.eq(room_name).and(cc::status.eq_any(LIVE)))
        .select(CallRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Counts a change of a (locked) call: its row with the new version.
pub async fn bump(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<CallRow> {
    diesel::update(cc::table.find(id))
        .set(cc::version.eq(cc::version + 1))
        .returning(CallRow::as_returning())
        .get_result(conn)
        .await
}

/// Who is or was in a call, in the order they joined.
pub async fn participants(
    conn: &mut AsyncPgConnection,
    call_id: i64,
) -> QueryResult<Vec<ParticipantRow>> {
    cp::table
        .filter(cp::call_id.eq(call_id))
        .order((cp::joined_at.asc(), cp::identity.asc()))
        .select(ParticipantRow::as_select())
        .load(conn)
        .await
}

/// Moves a call to `ringing` (from `pending`).
pub async fn ringing(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<CallRow>> {
    diesel::update(
        cc::table
            .find(id)
            .filter(cc::status.eq(ChatCallStatus::Pending)),
    )
    .set(cc::status.eq(ChatCallStatus::Ringing))
    .returning(CallRow::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Moves a ringing call to `active` (answered at `at`).
pub async fn answered(
    conn: &mut AsyncPgConnection,
    id: i64,
    at: DateTime<Utc>,
) -> QueryResult<Option<CallRow>> {
    diesel::update(
        cc::table
            .find(id)
            .filter(cc::status.eq(ChatCallStatus::Ringing)),
    )
    .set((
        cc::status.eq(ChatCallStatus::Active),
        cc::answered_at.eq(at),
    ))
    .returning(CallRow::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Ends a live call (`ended`, or `failed`) with a reason; `None` when it
/// had ended already. Everyone still in it is marked as gone.
pub async fn end(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: ChatCallStatus,
    reason: &str,
) -> QueryResult<Option<CallRow>> {
    let ended = diesel::update(cc::table.find(id).filter(cc::status.eq_any(LIVE)))
        .set((
            cc::status.eq(status),
            cc::end_reason.eq(reason),
            cc::ended_at.eq(diesel::dsl::now),
        ))
        .returning(CallRow::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    if ended.is_some() {
        diesel::update(cp::table.filter(cp::call_id.eq(id).and(cp::left_at.is_null())))
            .set(cp::left_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
    }
    Ok(ended)
}

/// Records a participant joining (again).
pub async fn joined(
    conn: &mut AsyncPgConnection,
    call_id: i64,
    identity: &str,
    account_id: Option<i64>,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(cp::table)
        .values((
            cp::call_id.eq(call_id),
            cp::identity.eq(identity),
            cp::account_id.eq(account_id),
            cp::joined_at.eq(at),
        ))
        .on_conflict((cp::call_id, cp::identity))
        .do_update()
        .set((cp::joined_at.eq(at), cp::left_at.eq(None::<DateTime<Utc>>)))
        .execute(conn)
        .await
        .map(drop)
}

/// Records a participant leaving; false when it was not in the call.
pub async fn left(
    conn: &mut AsyncPgConnection,
    call_id: i64,
    identity: &str,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::update(
        cp::table.filter(
            cp::call_id
                .eq(call_id)
                .and(cp::identity.eq(identity))
                .and(cp::left_at.is_null()),
        ),
    )
    .set(cp::left_at.eq(at))
    .execute(conn)
    .await
    .map(|n| n > 0)
}

/// Participants still in a call.
pub async fn present(conn: &mut AsyncPgConnection, call_id: i64) -> QueryResult<i64> {
    cp::table
        .filter(cp::call_id.eq(call_id).and(cp::left_at.is_null()))
        .count()
        .get_result(conn)
        .await
}

/// Calls to end because nobody answered in time (ringing longer than
/// `ring_secs`) or their start never finished (pending longer than a
/// minute), locked; at most 100.
pub async fn lock_overdue(
    conn: &mut AsyncPgConnection,
    ring_secs: i64,
) -> QueryResult<Vec<CallRow>> {
    diesel::sql_query(
        "SELECT id, chat_id, project_id, room_name, started_by, status, end_reason, version,
                created_at, answered_at, ended_at
         FROM chat_calls
         WHERE status IN ('pending', 'ringing')
           AND created_at < now() - make_interval(secs => CASE status WHEN 'pending' THEN 60 ELSE $1 END)
         ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 100",
    )
    .bind::<BigInt, _>(ring_secs)
    .load(conn)
    .await
}
