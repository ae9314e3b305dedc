//! SQL of `background_jobs`.

use super::Job;
use crate::db::schema::background_jobs as bj;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use std::time::Duration;

/// A stored job.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = bj)]
pub struct JobRow {
    /// Its id.
    pub id: i64,
    /// Its kind ([`Job::job_type`]).
    pub job_type: String,
    /// Its data ([`Job::data`]).
    pub data: Value,
    /// Higher runs first among due jobs.
    pub priority: i16,
    /// When it is due.
    pub run_at: DateTime<Utc>,
    /// Claims so far (the current claim's token).
    pub attempts: i32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// The lease of the runner that holds it.
    pub locked_until: Option<DateTime<Utc>>,
    /// That runner.
    pub locked_by: Option<String>,
    /// Set when it failed too often (it is no longer run).
    pub failed_at: Option<DateTime<Utc>>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
}

/// Queues `job` to run after `delay`; call inside the transaction of the
/// change that needs it. Returns its id.
pub async fn enqueue(conn: &mut AsyncPgConnection, job: &Job, delay: Duration) -> QueryResult<i64> {
    let run_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
    diesel::insert_into(bj::table)
        .values((
            bj::job_type.eq(job.job_type()),
            bj::data.eq(job.data()),
            bj::run_at.eq(run_at),
        ))
        .returning(bj::id)
        .get_result(conn)
        .await
}

/// Removes a job that is no longer needed (the step it guards finished);
/// whether it was there. A runner holding it meanwhile finds its work
/// done and its row gone.
pub async fn cancel(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::delete(bj::table.find(id))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Claims up to `limit` due jobs for `owner` for `lease`: one statement,
/// no lock held after it. A job whose lease ran out is due again.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    owner: &str,
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<JobRow>> {
    diesel::sql_query(
        "UPDATE background_jobs
            SET locked_until = now() + make_interval(secs => $2),
                locked_by = $1, attempts = attempts + 1
          WHERE id IN (SELECT id FROM background_jobs
                        WHERE failed_at IS NULL AND run_at <= now()
                          AND (locked_until IS NULL OR locked_until < now())
                        ORDER BY priority DESC, run_at, id
                        FOR UPDATE SKIP LOCKED
                        LIMIT $3)
         RETURNING *",
    )
    .bind::<Text, _>(owner)
    .bind::<Double, _>(lease.as_secs_f64())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// The row of a claim, while it still holds it (same attempt and owner).
macro_rules! claimed {
    ($id:expr, $attempts:expr, $owner:expr) => {
        bj::table
            .find($id)
            .filter(bj::attempts.eq($attempts))
            .filter(bj::locked_by.eq($owner))
    };
}

/// Deletes a job that ran; false when the claim was lost (cancelled, or
/// taken over after its lease).
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: i64,
    attempts: i32,
    owner: &str,
) -> QueryResult<bool> {
    diesel::delete(claimed!(id, attempts, owner))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Reschedules a failed attempt at `run_at` with its error, releasing the
/// lease; `uncount` takes the attempt back (a job this build cannot run).
pub async fn retry(
    conn: &mut AsyncPgConnection,
    row: &JobRow,
    owner: &str,
    error: &str,
    run_at: DateTime<Utc>,
    uncount: bool,
) -> QueryResult<bool> {
    let attempts = if uncount {
        row.attempts - 1
    } else {
        row.attempts
    };
    diesel::update(claimed!(row.id, row.attempts, owner))
        .set((
            bj::run_at.eq(run_at),
            bj::attempts.eq(attempts),
            bj::last_error.eq(error),
            bj::locked_until.eq(None::<DateTime<Utc>>),
            bj::locked_by.eq(None::<String>),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Keeps a job that failed too often as failed, with its error.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    row: &JobRow,
    owner: &str,
    error: &str,
) -> QueryResult<bool> {
    diesel::update(claimed!(row.id, row.attempts, owner))
        .set((
            bj::failed_at.eq(Utc::now()),
            bj::last_error.eq(error),
            bj::locked_until.eq(None::<DateTime<Utc>>),
            bj::locked_by.eq(None::<String>),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Jobs by state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Waiting to run (due or not).
    pub queued: i64,
    /// Held by a runner (lease not run out).
    pub running: i64,
    /// Failed too often.
    pub failed: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    queued: i64,
    #[diesel(sql_type = BigInt)]
    running: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
}

/// The jobs by state.
pub async fn counts(conn: &mut AsyncPgConnection) -> QueryResult<Counts> {
    let r: CountRow = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE failed_at IS NULL
                                   AND (locked_until IS NULL OR locked_until < now())) AS queued,
                count(*) FILTER (WHERE failed_at IS NULL AND locked_until >= now()) AS running,
                count(*) FILTER (WHERE failed_at IS NOT NULL) AS failed
           FROM background_jobs",
    )
    .get_result(conn)
    .await?;
    Ok(Counts {
        queued: r.queued,
        running: r.running,
        failed: r.failed,
    })
}

/// Up to `limit` jobs, oldest first; only the failed ones with `failed`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    failed: bool,
    limit: i64,
) -> QueryResult<Vec<JobRow>> {
    let mut q = bj::table
        .order(bj::id.asc())
        .limit(limit)
        .select(JobRow::as_select())
        .into_boxed();
    if failed {
        q = q.filter(bj::failed_at.is_not_null());
    }
    q.load(conn).await
}

/// Puts a failed job back in the queue, due now, its attempts counted
/// afresh; whether it was failed.
pub async fn requeue(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::update(bj::table.find(id).filter(bj::failed_at.is_not_null()))
        .set((
            bj::failed_at.eq(None::<DateTime<Utc>>),
            bj::attempts.eq(0),
            bj::run_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
}
