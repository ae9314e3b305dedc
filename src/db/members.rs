//! The `project_members` and `invitations` tables.

use super::schema::{accounts as a, invitations as i, project_members as pm};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A member as listed: the account and its role.
#[derive(Debug, Clone, Queryable)]
pub struct MemberRow {
    pub account_id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// A row of `invitations` (never holds the token).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = i)]
pub struct Invitation {
    pub id: i64,
    pub project_id: i64,
    pub email: String,
    pub role: String,
    pub invited_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The role of an account in a project, if it is a member.
pub async fn role_of(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    account_id: i64,
) -> QueryResult<Option<String>> {
    pm::table
        .filter(
            pm::project_id
                .eq(project_id)
                .and(pm::account_id.eq(account_id)),
        )
        .select(pm::role)
        .first(conn)
        .await
        .optional()
}

/// Adds a member; false when the account already is one (its role stays).
pub async fn add(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    account_id: i64,
    role: &str,
) -> QueryResult<bool> {
    diesel::insert_into(pm::table)
        .values((
            pm::project_id.eq(project_id),
            pm::account_id.eq(account_id),
            pm::role.eq(role),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// Members of a project, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, project_id: i64) -> QueryResult<Vec<MemberRow>> {
    pm::table
        .inner_join(a::table)
        .filter(pm::project_id.eq(project_id))
        .order((pm::created_at.asc(), pm::account_id.asc()))
        .select((pm::account_id, a::email, a::name, pm::role, pm::created_at))
        .load(conn)
        .await
}

/// Changes a member's role; 0 when not a member.
pub async fn set_role(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    account_id: i64,
    role: &str,
) -> QueryResult<usize> {
    diesel::update(pm::table.find((project_id, account_id)))
        .set((pm::role.eq(role), pm::updated_at.eq(Utc::now())))
        .execute(conn)
        .await
}

/// Removes a member; 0 when not a member.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    account_id: i64,
) -> QueryResult<usize> {
    diesel::delete(pm::table.find((project_id, account_id)))
        .execute(conn)
        .await
}

/// How many owners a project has.
pub async fn owners(conn: &mut AsyncPgConnection, project_id: i64) -> QueryResult<i64> {
    pm::table
        .filter(pm::project_id.eq(project_id).and(pm::role.eq("owner")))
        .count()
        .get_result(conn)
        .await
}

/// Replaces the open invitation of an address (if any) with a new one.
pub async fn invite(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    email: &str,
    role: &str,
    hash: &[u8; 32],
    invited_by: i64,
    expires_at: DateTime<Utc>,
) -> QueryResult<Invitation> {
    revoke_open(conn, project_id, email).await?;
    diesel::insert_into(i::table)
        .values((
            i::project_id.eq(project_id),
            i::email.eq(email),
            i::role.eq(role),
            i::token_hash.eq(hash.as_slice()),
            i::invited_by.eq(invited_by),
            i::expires_at.eq(expires_at),
        ))
        .returning(Invitation::as_returning())
        .get_result(conn)
        .await
}

/// Revokes the open invitation of an address, if any.
pub async fn revoke_open(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    email: &str,
) -> QueryResult<usize> {
    diesel::update(
        i::table
            .filter(i::project_id.eq(project_id).and(i::email.eq(email)))
            .filter(i::accepted_at.is_null().and(i::revoked_at.is_null())),
    )
    .set(i::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}

/// Open (not accepted, revoked or expired) invitations of a project.
pub async fn list_open(
    conn: &mut AsyncPgConnection,
    project_id: i64,
) -> QueryResult<Vec<Invitation>> {
    i::table
        .filter(i::project_id.eq(project_id))
        .filter(i::accepted_at.is_null().and(i::revoked_at.is_null()))
        .filter(i::expires_at.gt(Utc::now()))
        .order(i::id.asc())
        .select(Invitation::as_select())
        .load(conn)
        .await
}

/// Revokes one open invitation of a project; 0 when there is none.
pub async fn revoke(conn: &mut AsyncPgConnection, project_id: i64, id: i64) -> QueryResult<usize> {
    diesel::update(
        i::table
            .filter(i::project_id.eq(project_id).and(i::id.eq(id)))
            .filter(i::accepted_at.is_null().and(i::revoked_at.is_null())),
    )
    .set(i::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}

/// The invitation with a token hash, locked for the transaction.
pub async fn find_by_hash(
    conn: &mut AsyncPgConnection,
    hash: &[u8; 32],
) -> QueryResult<Option<Invitation>> {
    i::table
        .filter(i::token_hash.eq(hash.as_slice()))
        .select(Invitation::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Marks an invitation accepted.
pub async fn accept(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(i::table.find(id))
        .set(i::accepted_at.eq(Utc::now()))
        .execute(conn)
        .await
}
