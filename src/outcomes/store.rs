//! SQL of call outcomes: the session's outcome columns and the project's
//! disposition list.

use crate::db::schema::{project_dispositions as pd, sessions as s};
use crate::db::sessions::Session;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The project's dispositions, if it set a list.
pub async fn dispositions(
    conn: &mut AsyncPgConnection,
    project_id: i64,
) -> QueryResult<Option<Vec<String>>> {
    pd::table
        .find(project_id)
        .select(pd::names)
        .first(conn)
        .await
        .optional()
}

/// Replaces the project's dispositions.
pub async fn set_dispositions(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    names: &[String],
) -> QueryResult<()> {
    diesel::insert_into(pd::table)
        .values((pd::project_id.eq(project_id), pd::names.eq(names)))
        .on_conflict(pd::project_id)
        .do_update()
        .set((pd::names.eq(names), pd::updated_at.eq(Utc::now())))
        .execute(conn)
        .await?;
    Ok(())
}

/// A session of the project, locked for the rest of the transaction.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<Option<Session>> {
    s::table
        .filter(s::project_id.eq(project_id).and(s::id.eq(id)))
        .for_update()
        .select(Session::as_select())
        .first(conn)
        .await
        .optional()
}

/// Writes the outcome columns.
pub async fn set_outcome(
    conn: &mut AsyncPgConnection,
    id: i64,
    disposition: Option<&str>,
    tags: &[String],
    notes: Option<&str>,
    rating: Option<i16>,
) -> QueryResult<Session> {
    diesel::update(s::table.find(id))
        .set((
            s::disposition.eq(disposition),
            s::tags.eq(tags),
            s::notes.eq(notes),
            s::rating.eq(rating),
            s::updated_at.eq(Utc::now()),
        ))
        .returning(Session::as_returning())
        .get_result(conn)
        .await
}
