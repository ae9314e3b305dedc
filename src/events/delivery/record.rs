//! Recording the outcome of a delivery try: its `webhook_attempts` row and
//! the delivery's new state, written in batches (`db::batch`) while the
//! try's claim still holds; and the endpoint's failing streak or its
//! disabling.

use super::{Claimed, DeliveryStatus, Outcome};
use crate::db::batch::BatchQueue;
use crate::db::prepared::bind;
use crate::db::schema::webhook_endpoints as we;
use crate::events::Spine;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// Outcomes recorded per statement at most.
const RECORD_BATCH: usize = 256;
/// Batches of outcomes recorded at once at most.
const RECORD_WRITERS: usize = 2;

/// A try's outcome to record: its attempt row (when it was tried) and the
/// delivery's new state.
pub(super) struct Record {
    id: i64,
    /// The claim's token.
    attempt: i32,
    tried: bool,
    /// The try's status code, also the delivery's last one.
    code: Option<i32>,
    latency_ms: i32,
    body: Option<String>,
    attempt_error: Option<String>,
    status: DeliveryStatus,
    last_error: Option<String>,
    next: Option<DateTime<Utc>>,
}

/// Outcomes waiting to be recorded. Like transcript lines, they are written
/// in batches (one statement and one commit for all the tries that finished
/// meanwhile); each try waits for the commit that holds its outcome, and
/// learns whether its claim still held.
pub(super) type Recorder = BatchQueue<Record, bool>;

pub(super) fn recorder() -> Arc<Recorder> {
    Arc::new(BatchQueue::new(
        "webhook outcome",
        write_records,
        RECORD_WRITERS,
        RECORD_BATCH,
    ))
}

fn write_records<'a>(
    conn: &'a mut diesel_async::AsyncPgConnection,
    batch: &'a [&'a Record],
) -> BoxFuture<'a, QueryResult<Vec<bool>>> {
    Box::pin(record_batch(conn, batch))
}

/// The batch statement: the outcomes arrive as arrays; attempt rows are
/// logged for the tries; a delivery takes its new state only while it still
/// carries the claim's token with its lease (the pairs returned).
const RECORD_OUTCOMES: &str = "\
WITH f AS (
    SELECT * FROM unnest($1::int8[], $2::int4[], $3::bool[], $4::int4[], $5::int4[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::timestamptz[])
        AS t(id, attempt, tried, code, latency_ms, body, attempt_error, status, last_error, next_at)
), a AS (
    INSERT INTO webhook_attempts (delivery_id, attempt, status_code, latency_ms, response_body, error)
    SELECT id, attempt, code, latency_ms, body, attempt_error FROM f WHERE tried
)
UPDATE webhook_deliveries d
SET status = f.status, last_status_code = f.code, last_error = f.last_error, locked_until = NULL,
    next_attempt_at = coalesce(f.next_at, now()),
    delivered_at = CASE WHEN f.status = 'delivered' THEN now() END, updated_at = now()
FROM f
WHERE d.id = f.id AND d.attempts = f.attempt AND d.locked_until IS NOT NULL
RETURNING d.id, f.attempt";

#[derive(QueryableByName)]
struct Held {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Integer)]
    attempt: i32,
}

async fn record_batch(
    conn: &mut diesel_async::AsyncPgConnection,
    batch: &[&Record],
) -> QueryResult<Vec<bool>> {
    let held: Vec<Held> = crate::prepared!(
        RECORD_OUTCOMES,
        bind::<Array<BigInt>, _>(batch.iter().map(|r| r.id).collect::<Vec<_>>()),
        bind::<Array<Integer>, _>(batch.iter().map(|r| r.attempt).collect::<Vec<_>>()),
        bind::<Array<Bool>, _>(batch.iter().map(|r| r.tried).collect::<Vec<_>>()),
        bind::<Array<Nullable<Integer>>, _>(batch.iter().map(|r| r.code).collect::<Vec<_>>()),
        bind::<Array<Integer>, _>(batch.iter().map(|r| r.latency_ms).collect::<Vec<_>>()),
        bind::<Array<Nullable<Text>>, _>(
            batch.iter().map(|r| r.body.as_deref()).collect::<Vec<_>>()
        ),
        bind::<Array<Nullable<Text>>, _>(
            batch
                .iter()
                .map(|r| r.attempt_error.as_deref())
                .collect::<Vec<_>>()
        ),
        bind::<Array<Text>, _>(batch.iter().map(|r| r.status).collect::<Vec<_>>()),
        bind::<Array<Nullable<Text>>, _>(
            batch
                .iter()
                .map(|r| r.last_error.as_deref())
                .collect::<Vec<_>>()
        ),
        bind::<Array<Nullable<Timestamptz>>, _>(batch.iter().map(|r| r.next).collect::<Vec<_>>())
    )
    .load(conn)
    .await?;
    Ok(batch
        .iter()
        .map(|r| held.iter().any(|h| h.id == r.id && h.attempt == r.attempt))
        .collect())
}

/// Logs the attempt (when one was made) and updates the delivery, in one
/// transaction — the update only while this worker still holds the claim
/// (`attempts` is still its token and the lease was not cleared). Returns
/// whether it did: a worker that overran its lease, so that the delivery was
/// claimed again or re-enqueued meanwhile, records its attempt and changes
/// nothing else.
///
/// `true` while the claim still held (the delivery took its new state),
/// `false` when it had passed to another claim.
pub(super) async fn finish(
    state: &Spine,
    recorder: &Arc<Recorder>,
    c: &Claimed,
    attempt: Option<&Outcome>,
    status: DeliveryStatus,
    error: Option<String>,
    next: Option<DateTime<Utc>>,
) -> anyhow::Result<bool> {
    let record = Record {
        id: c.id,
        attempt: c.attempts,
        tried: attempt.is_some(),
        code: attempt.and_then(|o| o.status.map(i32::from)),
        latency_ms: attempt.map_or(0, |o| o.latency_ms),
        body: attempt.and_then(|o| o.body.clone()),
        attempt_error: attempt.and_then(|o| o.error.clone()),
        status,
        last_error: error,
        next,
    };
    let held = recorder
        .submit(record, &tokio::runtime::Handle::current(), &state.pool)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    if !held {
        tracing::warn!(
            delivery_id = c.id,
            attempt = c.attempts,
            "webhook delivery: the claim ran out before attempt {} of delivery {} was recorded; \
             the attempt is logged, the delivery is left to its new owner",
            c.attempts,
            c.id
        );
    }
    Ok(held)
}

/// Marks the endpoint failing since `since` (kept if already failing) or
/// healthy again (`None`). Called only when the state changes, so healthy
/// deliveries never write the endpoint's row.
pub(super) async fn set_failing(
    state: &Spine,
    endpoint_id: i64,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    match since {
        Some(since) => {
            diesel::update(
                we::table
                    .find(endpoint_id)
                    .filter(we::failing_since.is_null()),
            )
            .set(we::failing_since.eq(since))
            .execute(&mut conn)
            .await?
        }
        None => {
            diesel::update(we::table.find(endpoint_id))
                .set(we::failing_since.eq(None::<DateTime<Utc>>))
                .execute(&mut conn)
                .await?
        }
    };
    Ok(())
}

/// Disables an endpoint and says so with a `webhook.disabled` event.
pub(super) async fn disable(
    state: &Spine,
    endpoint_id: i64,
    project_id: i64,
    reason: &str,
) -> anyhow::Result<()> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        let n = diesel::update(we::table.find(endpoint_id).filter(we::is_active.eq(true)))
            .set((
                we::is_active.eq(false),
                we::disabled_reason.eq(reason),
                we::updated_at.eq(Utc::now()),
            ))
            .execute(conn)
            .await?;
        if n == 1 {
            crate::events::emit(
                conn,
                project_id,
                "webhook.disabled",
                serde_json::json!({ "webhook_id": endpoint_id, "reason": reason }),
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    state.events_wake.committed();
    tracing::warn!(endpoint_id, reason, "webhook endpoint disabled");
    Ok(())
}
