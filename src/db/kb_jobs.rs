//! The `kb_index_jobs` table: documents waiting for background indexing.

use super::schema::kb_index_jobs;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A queued document.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = kb_index_jobs)]
pub struct Job {
    pub id: i64,
    pub project_id: i64,
    pub knowledge_base_id: i64,
    pub source: String,
    pub kind: String,
    pub origin: String,
    pub content: String,
    pub attempts: i32,
    pub run_after: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Values of a new job.
#[derive(Debug, Insertable)]
#[diesel(table_name = kb_index_jobs)]
pub struct NewJob<'a> {
    pub project_id: i64,
    pub knowledge_base_id: i64,
    pub source: &'a str,
    pub kind: &'a str,
    pub origin: &'a str,
    pub content: &'a str,
}

/// Drops the queued jobs of a source that no worker holds (a newer upload
/// supersedes them); returns whether a worker is indexing that source now.
pub async fn supersede(
    conn: &mut AsyncPgConnection,
    kb_id: i64,
    source: &str,
) -> QueryResult<bool> {
    diesel::sql_query(
        "DELETE FROM kb_index_jobs WHERE id IN (SELECT id FROM kb_index_jobs \
         WHERE knowledge_base_id = $1 AND source = $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<BigInt, _>(kb_id)
    .bind::<Text, _>(source)
    .execute(conn)
    .await?;
    diesel::select(diesel::dsl::exists(
        kb_index_jobs::table
            .filter(kb_index_jobs::knowledge_base_id.eq(kb_id))
            .filter(kb_index_jobs::source.eq(source)),
    ))
    .get_result(conn)
    .await
}

/// Queues a document. A job for the same source that no worker holds yet is
/// superseded (the newer upload wins either way: one a worker holds finishes
/// first, this one runs after it).
pub async fn enqueue(conn: &mut AsyncPgConnection, job: &NewJob<'_>) -> QueryResult<i64> {
    supersede(conn, job.knowledge_base_id, job.source).await?;
    diesel::insert_into(kb_index_jobs::table)
        .values(job)
        .returning(kb_index_jobs::id)
        .get_result(conn)
        .await
}

/// Inside a transaction: locks the oldest due job nobody else holds. The lock
/// lasts until the transaction ends (a crash releases it).
pub async fn claim(conn: &mut AsyncPgConnection) -> QueryResult<Option<Job>> {
    diesel::sql_query(
        "SELECT * FROM kb_index_jobs WHERE run_after <= now() \
         ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1",
    )
    .get_result(conn)
    .await
    .optional()
}

/// Removes a job (in the transaction that stored its chunks).
pub async fn finish(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    diesel::delete(kb_index_jobs::table.filter(kb_index_jobs::id.eq(id)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a failed attempt; the job runs again after `retry_secs`.
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    id: i64,
    error: &str,
    retry_secs: i64,
) -> QueryResult<i32> {
    diesel::update(kb_index_jobs::table.filter(kb_index_jobs::id.eq(id)))
        .set((
            kb_index_jobs::attempts.eq(kb_index_jobs::attempts + 1),
            kb_index_jobs::last_error.eq(error),
            kb_index_jobs::run_after.eq(Utc::now() + chrono::Duration::seconds(retry_secs)),
        ))
        .returning(kb_index_jobs::attempts)
        .get_result(conn)
        .await
}

/// Drops a job that failed too often.
pub async fn abandon(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    finish(conn, id).await
}

/// Whether jobs wait for this knowledge base.
pub async fn pending_for(conn: &mut AsyncPgConnection, kb_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        kb_index_jobs::table.filter(kb_index_jobs::knowledge_base_id.eq(kb_id)),
    ))
    .get_result(conn)
    .await
}
