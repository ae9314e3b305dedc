//! The SQL of creating chats and changing their members (inside the
//! caller's transaction; membership changes run after
//! [`super::store::lock_chat`]).

use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct AccountId {
    #[diesel(sql_type = BigInt)]
    account_id: i64,
}

/// The key of the direct chat of two accounts.
pub fn direct_key(a: i64, b: i64) -> String {
    format!("{}:{}", a.min(b), a.max(b))
}

/// The direct chat of two accounts in a project, created with both as
/// members when missing: `(id, created)`. A concurrent creation of the same
/// chat waits for the other and finds its chat.
pub async fn create_direct(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    me: i64,
    other: i64,
) -> QueryResult<(i64, bool)> {
    let key = direct_key(me, other);
    let created: Option<Id> = diesel::sql_query(
        "INSERT INTO chat_chats (project_id, kind, direct_key, created_by)
         VALUES ($1, 'direct', $2, $3)
         ON CONFLICT (project_id, direct_key) WHERE direct_key IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind::<BigInt, _>(project_id)
    .bind::<Text, _>(&key)
    .bind::<BigInt, _>(me)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(Id { id }) = created {
        add(conn, id, &[me, other], "member", 0).await?;
        return Ok((id, true));
    }
    let existing: Id =
        diesel::sql_query("SELECT id FROM chat_chats WHERE project_id = $1 AND direct_key = $2")
            .bind::<BigInt, _>(project_id)
            .bind::<Text, _>(&key)
            .get_result(conn)
            .await?;
    Ok((existing.id, false))
}

/// A new group with the caller as its admin and the others as members.
pub async fn create_group(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    me: i64,
    name: &str,
    others: &[i64],
) -> QueryResult<i64> {
    let Id { id } = diesel::sql_query(
        "INSERT INTO chat_chats (project_id, kind, name, created_by)
         VALUES ($1, 'group', $2, $3) RETURNING id",
    )
    .bind::<BigInt, _>(project_id)
    .bind::<Text, _>(name)
    .bind::<BigInt, _>(me)
    .get_result(conn)
    .await?;
    add(conn, id, &[me], "admin", 0).await?;
    add(conn, id, others, "member", 0).await?;
    Ok(id)
}

/// Adds members (who are not yet) with a role, having read up to
/// `read_seq`; returns the ones added.
pub async fn add(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    account_ids: &[i64],
    role: &str,
    read_seq: i64,
) -> QueryResult<Vec<i64>> {
    let rows: Vec<AccountId> = diesel::sql_query(
        "INSERT INTO chat_members (chat_id, account_id, role, read_seq)
         SELECT $1, a, $3, $4 FROM unnest($2::bigint[]) AS a
         ON CONFLICT (chat_id, account_id) DO NOTHING
         RETURNING account_id",
    )
    .bind::<BigInt, _>(chat_id)
    .bind::<Array<BigInt>, _>(account_ids)
    .bind::<Text, _>(role)
    .bind::<BigInt, _>(read_seq)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.account_id).collect())
}

/// Removes members; returns the ones removed. A group left without an
/// admin gets its longest-standing member as admin.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    account_ids: &[i64],
) -> QueryResult<Vec<i64>> {
    let rows: Vec<AccountId> = diesel::sql_query(
        "DELETE FROM chat_members WHERE chat_id = $1 AND account_id = ANY($2) RETURNING account_id",
    )
    .bind::<BigInt, _>(chat_id)
    .bind::<Array<BigInt>, _>(account_ids)
    .load(conn)
    .await?;
    diesel::sql_query(
        "UPDATE chat_members SET role = 'admin'
         WHERE chat_id = $1
           AND NOT EXISTS (SELECT 1 FROM chat_members WHERE chat_id = $1 AND role = 'admin')
           AND account_id = (SELECT account_id FROM chat_members WHERE chat_id = $1
                             ORDER BY created_at, account_id LIMIT 1)",
    )
    .bind::<BigInt, _>(chat_id)
    .execute(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.account_id).collect())
}

/// Renames a group.
pub async fn rename(conn: &mut AsyncPgConnection, chat_id: i64, name: &str) -> QueryResult<usize> {
    diesel::sql_query("UPDATE chat_chats SET name = $2, updated_at = now() WHERE id = $1")
        .bind::<BigInt, _>(chat_id)
        .bind::<Text, _>(name)
        .execute(conn)
        .await
}

/// The projects in which `account_id` shares a chat with others, with
/// those others: `(project_id, account_ids)` (presence goes to them).
pub async fn contacts_by_project(
    conn: &mut AsyncPgConnection,
    account_id: i64,
) -> QueryResult<Vec<(i64, Vec<i64>)>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        project_id: i64,
        #[diesel(sql_type = Array<BigInt>)]
        accounts: Vec<i64>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT c.project_id, array_agg(DISTINCT m2.account_id ORDER BY m2.account_id) AS accounts
         FROM chat_members m1
         JOIN chat_chats c ON c.id = m1.chat_id
         JOIN chat_members m2 ON m2.chat_id = m1.chat_id AND m2.account_id <> m1.account_id
         WHERE m1.account_id = $1
         GROUP BY c.project_id",
    )
    .bind::<BigInt, _>(account_id)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.project_id, r.accounts))
        .collect())
}

/// The accounts sharing a chat with `account_id` that are online now.
pub async fn online_contacts(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    project_id: Option<i64>,
) -> QueryResult<Vec<i64>> {
    let rows: Vec<AccountId> = diesel::sql_query(
        "SELECT DISTINCT m2.account_id
         FROM chat_members m1
         JOIN chat_chats c ON c.id = m1.chat_id AND ($2::bigint IS NULL OR c.project_id = $2)
         JOIN chat_members m2 ON m2.chat_id = m1.chat_id AND m2.account_id <> m1.account_id
         WHERE m1.account_id = $1
           AND EXISTS (SELECT 1 FROM chat_presence p WHERE p.account_id = m2.account_id)
         ORDER BY m2.account_id",
    )
    .bind::<BigInt, _>(account_id)
    .bind::<Nullable<BigInt>, _>(project_id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.account_id).collect())
}
