//! The SQL of chats, members and messages. Functions take a connection so
//! the caller decides about the transaction.
//!
//! Ordering: every message updates its chat's row (`last_seq + 1`) before it
//! is inserted, so the messages of a chat take their `seq` and their id,
//! and commit, one after the other: within a chat, id order is commit
//! order, and a reader paging by id never sees a later id before an
//! earlier one. Membership changes take the same row lock, so the
//! recipients of a message are the members when it was stored.

use super::types::{ChatCallOut, ChatMemberOut, ChatMessageOut};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// What a member may do in a chat: the chat's project and kind, the role.
#[derive(Debug, Clone, QueryableByName)]
pub struct Access {
    #[diesel(sql_type = BigInt)]
    pub chat_id: i64,
    #[diesel(sql_type = BigInt)]
    pub project_id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub role: String,
    /// The project's room prefix (calls).
    #[diesel(sql_type = Text)]
    pub room_prefix: String,
}

/// The chat `chat_id` if `account_id` is a member (of a live project, and
/// of `project_id` when given).
pub async fn access(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    account_id: i64,
    project_id: Option<i64>,
) -> QueryResult<Option<Access>> {
    diesel::sql_query(
        "SELECT c.id AS chat_id, c.project_id, c.kind, m.role, p.room_prefix
         FROM chat_chats c
         JOIN chat_members m ON m.chat_id = c.id AND m.account_id = $2
         JOIN projects p ON p.id = c.project_id AND p.deleted_at IS NULL
         WHERE c.id = $1 AND ($3::bigint IS NULL OR c.project_id = $3)",
    )
    .bind::<BigInt, _>(chat_id)
    .bind::<BigInt, _>(account_id)
    .bind::<Nullable<BigInt>, _>(project_id)
    .get_result(conn)
    .await
    .optional()
}

/// A chat and the caller's view of it.
#[derive(Debug, Clone, QueryableByName)]
pub struct ChatRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub project_id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub name: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub unread_count: i64,
    #[diesel(sql_type = Bool)]
    pub archived: bool,
}

const CHAT_COLUMNS: &str = "c.id, c.project_id, c.kind, c.name, c.created_at,
    GREATEST(c.last_seq - m.read_seq, 0) AS unread_count, m.archived";

/// The caller's chats of a project, archived or not, most recently active
/// first: one index scan of the caller's memberships.
pub async fn list(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    account_id: i64,
    archived: bool,
    limit: i64,
) -> QueryResult<Vec<ChatRow>> {
    diesel::sql_query(format!(
        "SELECT {CHAT_COLUMNS} FROM chat_members m JOIN chat_chats c ON c.id = m.chat_id
         WHERE m.account_id = $1 AND c.project_id = $2 AND m.archived = $3
         ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC LIMIT $4"
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(project_id)
    .bind::<Bool, _>(archived)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// One chat as `account_id` sees it.
pub async fn one(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    account_id: i64,
) -> QueryResult<Option<ChatRow>> {
    diesel::sql_query(format!(
        "SELECT {CHAT_COLUMNS} FROM chat_members m JOIN chat_chats c ON c.id = m.chat_id
         WHERE m.chat_id = $1 AND m.account_id = $2"
    ))
    .bind::<BigInt, _>(chat_id)
    .bind::<BigInt, _>(account_id)
    .get_result(conn)
    .await
    .optional()
}

/// A member of a chat with the account's name and presence.
#[derive(Debug, Clone, QueryableByName)]
pub struct MemberRow {
    #[diesel(sql_type = BigInt)]
    pub chat_id: i64,
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub role: String,
    #[diesel(sql_type = Bool)]
    pub online: bool,
}

impl From<MemberRow> for ChatMemberOut {
    fn from(m: MemberRow) -> Self {
        Self {
            account_id: m.account_id,
            name: m.name,
            email: m.email,
            role: m.role,
            online: m.online,
        }
    }
}

/// The members of chats, in the order they joined.
pub async fn members(
    conn: &mut AsyncPgConnection,
    chat_ids: &[i64],
) -> QueryResult<Vec<MemberRow>> {
    diesel::sql_query(
        "SELECT m.chat_id, m.account_id, a.name, a.email, m.role,
                EXISTS (SELECT 1 FROM chat_presence p WHERE p.account_id = m.account_id) AS online
         FROM chat_members m JOIN accounts a ON a.id = m.account_id
         WHERE m.chat_id = ANY($1)
         ORDER BY m.chat_id, m.created_at, m.account_id",
    )
    .bind::<Array<BigInt>, _>(chat_ids)
    .load(conn)
    .await
}

/// A member's view for an event: (account, unread count, archived).
#[derive(Debug, Clone, QueryableByName)]
pub struct MemberView {
    #[diesel(sql_type = BigInt)]
    pub account_id: i64,
    #[diesel(sql_type = BigInt)]
    pub unread_count: i64,
    #[diesel(sql_type = Bool)]
    pub archived: bool,
}

/// Every member's view of a chat.
pub async fn views(conn: &mut AsyncPgConnection, chat_id: i64) -> QueryResult<Vec<MemberView>> {
    diesel::sql_query(
        "SELECT m.account_id, GREATEST(c.last_seq - m.read_seq, 0) AS unread_count, m.archived
         FROM chat_members m JOIN chat_chats c ON c.id = m.chat_id WHERE m.chat_id = $1",
    )
    .bind::<BigInt, _>(chat_id)
    .load(conn)
    .await
}

/// The account ids of a chat's members.
pub async fn member_ids(conn: &mut AsyncPgConnection, chat_id: i64) -> QueryResult<Vec<i64>> {
    use crate::db::schema::chat_members as m;
    m::table
        .filter(m::chat_id.eq(chat_id))
        .select(m::account_id)
        .load(conn)
        .await
}

/// Which of `account_ids` are members of the project.
pub async fn project_members(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    account_ids: &[i64],
) -> QueryResult<Vec<i64>> {
    use crate::db::schema::project_members as pm;
    pm::table
        .filter(pm::project_id.eq(project_id))
        .filter(pm::account_id.eq_any(account_ids))
        .select(pm::account_id)
        .load(conn)
        .await
}

/// A message with its call, if it is a call message.
#[derive(Debug, Clone, QueryableByName)]
pub struct MessageRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub chat_id: i64,
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sender_account_id: Option<i64>,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub content: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub client_id: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub session_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub call_id: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub call_room: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub call_started_by: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub call_status: Option<super::calls_store::ChatCallStatus>,
    #[diesel(sql_type = Nullable<Text>)]
    pub call_end_reason: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub call_version: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub call_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub call_answered_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub call_ended_at: Option<DateTime<Utc>>,
}

/// The columns of a [`MessageRow`], from `chat_messages msg LEFT JOIN chat_calls cc`.
const MESSAGE_COLUMNS: &str = "msg.id, msg.chat_id, msg.seq, msg.sender_account_id, msg.kind,
    msg.content, msg.client_id, msg.session_id, msg.call_id, msg.created_at,
    cc.room_name AS call_room, cc.started_by AS call_started_by, cc.status AS call_status,
    cc.end_reason AS call_end_reason, cc.version AS call_version, cc.created_at AS call_created_at,
    cc.answered_at AS call_answered_at, cc.ended_at AS call_ended_at";

/// Seconds from the answer to the end: 0 for a call nobody answered,
/// `None` while it runs.
pub fn duration(answered: Option<DateTime<Utc>>, ended: Option<DateTime<Utc>>) -> Option<i64> {
    let ended = ended?;
    Some(answered.map_or(0, |a| (ended - a).num_seconds().max(0)))
}

impl From<MessageRow> for ChatMessageOut {
    fn from(m: MessageRow) -> Self {
        let call = match (m.call_id, m.call_status, m.call_created_at) {
            (Some(id), Some(status), Some(started_at)) => Some(ChatCallOut {
                id,
                chat_id: m.chat_id,
                room: m.call_room.unwrap_or_default(),
                started_by: m.call_started_by,
                status,
                end_reason: m.call_end_reason,
                version: m.call_version.unwrap_or_default(),
                started_at,
                answered_at: m.call_answered_at,
                ended_at: m.call_ended_at,
                duration_seconds: duration(m.call_answered_at, m.call_ended_at),
                participants: Vec::new(),
            }),
            _ => None,
        };
        Self {
            id: m.id,
            chat_id: m.chat_id,
            seq: m.seq,
            sender_account_id: m.sender_account_id,
            kind: m.kind,
            content: m.content,
            client_id: m.client_id,
            session_id: m.session_id,
            call,
            created_at: m.created_at,
        }
    }
}

/// The newest message of each chat (one index probe per chat).
pub async fn last_messages(
    conn: &mut AsyncPgConnection,
    chat_ids: &[i64],
) -> QueryResult<Vec<MessageRow>> {
    diesel::sql_query(format!(
        "SELECT {MESSAGE_COLUMNS}
         FROM unnest($1::bigint[]) AS c(id)
         CROSS JOIN LATERAL (SELECT * FROM chat_messages WHERE chat_id = c.id
                             ORDER BY id DESC LIMIT 1) msg
         LEFT JOIN chat_calls cc ON cc.id = msg.call_id"
    ))
    .bind::<Array<BigInt>, _>(chat_ids)
    .load(conn)
    .await
}

/// Up to `limit` messages of a chat next to the cursors: right above
/// `after` (oldest first) when it is given, else right below `before` (or
/// the newest; newest first). Uses the `(chat_id, id)` index.
pub async fn page(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    before: Option<i64>,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    let order = if after.is_some() { "ASC" } else { "DESC" };
    diesel::sql_query(format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages msg LEFT JOIN chat_calls cc ON cc.id = msg.call_id
         WHERE msg.chat_id = $1 AND ($2::bigint IS NULL OR msg.id < $2)
           AND ($3::bigint IS NULL OR msg.id > $3)
         ORDER BY msg.id {order} LIMIT $4"
    ))
    .bind::<BigInt, _>(chat_id)
    .bind::<Nullable<BigInt>, _>(before)
    .bind::<Nullable<BigInt>, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// One message of a chat.
pub async fn message(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    id: i64,
) -> QueryResult<Option<MessageRow>> {
    diesel::sql_query(format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages msg LEFT JOIN chat_calls cc ON cc.id = msg.call_id
         WHERE msg.chat_id = $1 AND msg.id = $2"
    ))
    .bind::<BigInt, _>(chat_id)
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .await
    .optional()
}

/// Full-text search over the chats of a project `account_id` is in.
pub async fn search(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    account_id: i64,
    chat_id: Option<i64>,
    query: &str,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    diesel::sql_query(format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages msg LEFT JOIN chat_calls cc ON cc.id = msg.call_id
         WHERE msg.chat_id IN (SELECT m.chat_id FROM chat_members m JOIN chat_chats c ON c.id = m.chat_id
                               WHERE m.account_id = $1 AND c.project_id = $2)
           AND ($3::bigint IS NULL OR msg.chat_id = $3)
           AND msg.search @@ websearch_to_tsquery('simple', $4)
         ORDER BY msg.id DESC LIMIT $5"
    ))
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(project_id)
    .bind::<Nullable<BigInt>, _>(chat_id)
    .bind::<Text, _>(query)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// Inside a transaction: takes the chat's row lock (serialising messages
/// and membership changes of the chat) and counts one more message when
/// `message` is set: the chat's `(last_seq, project_id)`, or `None` when
/// there is no such chat (of `project_id`, when given) in a live project.
pub async fn lock_chat(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    project_id: Option<i64>,
    message: bool,
) -> QueryResult<Option<(i64, i64)>> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = BigInt)]
        last_seq: i64,
        #[diesel(sql_type = BigInt)]
        project_id: i64,
    }
    let set = if message {
        "last_seq = last_seq + 1, last_message_at = now()"
    } else {
        "updated_at = now()"
    };
    diesel::sql_query(format!(
        "UPDATE chat_chats c SET {set}
         WHERE c.id = $1 AND ($2::bigint IS NULL OR c.project_id = $2)
           AND EXISTS (SELECT 1 FROM projects p WHERE p.id = c.project_id AND p.deleted_at IS NULL)
         RETURNING c.last_seq, c.project_id"
    ))
    .bind::<BigInt, _>(chat_id)
    .bind::<Nullable<BigInt>, _>(project_id)
    .get_result::<Locked>(conn)
    .await
    .optional()
    .map(|l| l.map(|l| (l.last_seq, l.project_id)))
}

/// Whether a session belongs to a project.
pub async fn session_in_project(
    conn: &mut AsyncPgConnection,
    session_id: i64,
    project_id: i64,
) -> QueryResult<bool> {
    use crate::db::schema::sessions as s;
    diesel::select(diesel::dsl::exists(
        s::table.filter(s::id.eq(session_id).and(s::project_id.eq(project_id))),
    ))
    .get_result(conn)
    .await
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub chat_id: i64,
    pub sender_account_id: Option<i64>,
    pub kind: &'a str,
    pub content: &'a str,
    pub client_id: Option<&'a str>,
    pub session_id: Option<i64>,
    pub call_id: Option<i64>,
}

/// A stored message and the chat's members then.
#[derive(Debug, Clone, QueryableByName)]
pub struct Inserted {
    #[diesel(embed)]
    pub message: MessageRow,
    #[diesel(sql_type = Array<BigInt>)]
    pub recipients: Vec<i64>,
}

/// Inside a transaction, after [`lock_chat`] counted it: inserts the
/// message as number `seq`, if its sender (when it has one) is a member and
/// has not sent a message with its `client_id` yet. The sender's read
/// pointer moves to it. `None`: not inserted (not a member, or a duplicate).
pub async fn insert_message(
    conn: &mut AsyncPgConnection,
    m: &NewMessage<'_>,
    seq: i64,
) -> QueryResult<Option<Inserted>> {
    diesel::sql_query(format!(
        "WITH msg AS (
             INSERT INTO chat_messages (chat_id, seq, sender_account_id, kind, content, client_id, session_id, call_id)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8
             WHERE ($3::bigint IS NULL OR EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $1 AND account_id = $3))
               AND ($6::text IS NULL OR NOT EXISTS (SELECT 1 FROM chat_messages
                    WHERE chat_id = $1 AND sender_account_id = $3 AND client_id = $6))
             RETURNING *
         ), read AS (
             UPDATE chat_members SET read_seq = $2 WHERE chat_id = $1 AND account_id = $3
               AND EXISTS (SELECT 1 FROM msg)
         )
         SELECT {MESSAGE_COLUMNS},
                ARRAY(SELECT account_id FROM chat_members WHERE chat_id = $1 ORDER BY account_id) AS recipients
         FROM msg LEFT JOIN chat_calls cc ON cc.id = msg.call_id"
    ))
    .bind::<BigInt, _>(m.chat_id)
    .bind::<BigInt, _>(seq)
    .bind::<Nullable<BigInt>, _>(m.sender_account_id)
    .bind::<Text, _>(m.kind)
    .bind::<Text, _>(m.content)
    .bind::<Nullable<Text>, _>(m.client_id)
    .bind::<Nullable<BigInt>, _>(m.session_id)
    .bind::<Nullable<BigInt>, _>(m.call_id)
    .get_result(conn)
    .await
    .optional()
}

/// The message a sender stored with a client id, if any.
pub async fn by_client_id(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    sender: i64,
    client_id: &str,
) -> QueryResult<Option<MessageRow>> {
    diesel::sql_query(format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat_messages msg LEFT JOIN chat_calls cc ON cc.id = msg.call_id
         WHERE msg.chat_id = $1 AND msg.sender_account_id = $2 AND msg.client_id = $3"
    ))
    .bind::<BigInt, _>(chat_id)
    .bind::<BigInt, _>(sender)
    .bind::<Text, _>(client_id)
    .get_result(conn)
    .await
    .optional()
}

/// Moves a member's read pointer up to a message of the chat (never back).
/// `(read_seq, unread_count)`, or `None` when the message is not the chat's.
pub async fn mark_read(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    account_id: i64,
    message_id: i64,
) -> QueryResult<Option<(i64, i64)>> {
    #[derive(QueryableByName)]
    struct Read {
        #[diesel(sql_type = BigInt)]
        read_seq: i64,
        #[diesel(sql_type = BigInt)]
        unread_count: i64,
    }
    diesel::sql_query(
        "UPDATE chat_members m SET read_seq = GREATEST(m.read_seq, msg.seq)
         FROM chat_messages msg, chat_chats c
         WHERE msg.id = $3 AND msg.chat_id = $1 AND c.id = $1
           AND m.chat_id = $1 AND m.account_id = $2
         RETURNING m.read_seq, GREATEST(c.last_seq - m.read_seq, 0) AS unread_count",
    )
    .bind::<BigInt, _>(chat_id)
    .bind::<BigInt, _>(account_id)
    .bind::<BigInt, _>(message_id)
    .get_result::<Read>(conn)
    .await
    .optional()
    .map(|r| r.map(|r| (r.read_seq, r.unread_count)))
}

/// Sets a member's archive flag.
pub async fn set_archived(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    account_id: i64,
    archived: bool,
) -> QueryResult<usize> {
    use crate::db::schema::chat_members as m;
    diesel::update(m::table.find((chat_id, account_id)))
        .set(m::archived.eq(archived))
        .execute(conn)
        .await
}
