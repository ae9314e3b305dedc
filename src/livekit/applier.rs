//! LiveKit webhooks applied in batches.
//!
//! Every call produces a handful of webhooks (room started, agent and caller
//! joined, tracks published, …), each applied in a transaction with its
//! idempotency record. Concurrent webhooks are written together
//! ([`BatchQueue`], as session starts and transcript lines are): one
//! transaction per batch applies the events in their order of arrival, so a
//! commit is paid per batch, not per event. Statements are shared too: the
//! batch records its event ids in one statement, and the sessions that
//! agents' joins start and the events of the webhooks that keep to their
//! room are written together ([`Effects`]), in order, before any other
//! webhook of the batch and at its end. What a batch leaves is what its
//! webhooks applied one by one would leave. Each webhook is answered after
//! the commit that holds its effects, so an answered webhook is as durable
//! as one applied alone.
//!
//! A batch that fails (a deadlock with another writer, one event's error)
//! is rolled back and its events applied again one transaction each (an
//! event that fails alone is tried up to three times: a deadlock is
//! transient), so one bad event fails alone and the others are not lost.
//!
//! The writers run on a thread of their own ([`Home`]), like the other
//! batch writers.

use super::effects::Effects;
use super::names::RoomName;
use super::proto;
use super::webhook::{Outcome, apply_recorded, keeps_to_its_room, repair_id};
use crate::db::batch::{BatchQueue, Failed, Home};
use crate::db::prepared::bind;
use crate::error::ApiError;
use crate::state::AppState;
use diesel::QueryResult;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::{Array, BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

/// Events per transaction at most.
pub const MAX_BATCH: usize = 128;
/// Batches written at once at most (each on its own connection).
pub const MAX_WRITERS: usize = 2;

/// A verified event of a project room, with what was settled before its
/// transaction (an egress file named by its egress id).
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// The project whose room it is.
    pub project_id: i64,
    /// The room's name.
    pub name: RoomName,
    /// The room as the event reports it.
    pub room: proto::Room,
    /// The event.
    pub event: proto::WebhookEvent,
    /// The recording's file path, when it was renamed before.
    pub settled: Option<String>,
}

/// What applying one event gave.
type Applied = Result<Outcome, ApiError>;

/// The queue of webhooks waiting to be applied; shared behind an `Arc`.
pub struct WebhookApplier {
    queue: Arc<BatchQueue<PendingEvent, Applied>>,
    home: OnceLock<Result<Home, String>>,
}

impl Default for WebhookApplier {
    fn default() -> Self {
        Self {
            queue: Arc::new(BatchQueue::new(
                "LiveKit webhook",
                write_events,
                MAX_WRITERS,
                MAX_BATCH,
            )),
            home: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for WebhookApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookApplier").finish_non_exhaustive()
    }
}

impl WebhookApplier {
    /// What the writers have written so far.
    pub fn written(&self) -> crate::db::batch::Written {
        self.queue.written()
    }

    /// Applies `event` and returns once its effects are committed.
    pub async fn apply(&self, state: &AppState, event: PendingEvent) -> Result<Outcome, ApiError> {
        let home = self
            .home
            .get_or_init(|| {
                let url = state.settings.database_url.as_deref().unwrap_or_default();
                let timeout = std::time::Duration::from_millis(state.settings.database_timeout_ms);
                Home::start("livekit-webhooks", url, MAX_WRITERS as u32, timeout)
            })
            .as_ref()
            .map_err(|e| Failed::Unavailable(e.clone()))?;
        let outcome = self.queue.submit(event, &home.handle, &home.pool).await??;
        if outcome == Outcome::Processed {
            // Its events were written on the writers' thread.
            crate::events::note_emitted();
        }
        Ok(outcome)
    }
}

fn write_events<'a>(
    conn: &'a mut AsyncPgConnection,
    batch: &'a [&'a PendingEvent],
) -> BoxFuture<'a, QueryResult<Vec<Applied>>> {
    Box::pin(async move {
        if batch.len() > 1 {
            let together = conn
                .transaction::<_, ApiError, _>(async |conn| apply_batch(conn, batch).await)
                .await;
            match together {
                Ok(out) => return Ok(out),
                Err(ApiError::Unavailable(why)) => {
                    // The connection was lost, and the commit may have
                    // happened: not applied again.
                    return Err(Error::DatabaseError(
                        DatabaseErrorKind::ClosedConnection,
                        Box::new(why),
                    ));
                }
                Err(e) => {
                    tracing::debug!(error = %e, events = batch.len(), "LiveKit webhook batch failed; applying its events one by one");
                }
            }
        }
        let mut out = Vec::with_capacity(batch.len());
        for p in batch {
            // A deadlock with the other writer (batches take the rows of
            // their rooms and counters in their events' order) fails one
            // of them: its events, alone, are tried again.
            let mut attempt = 1;
            let one = loop {
                let one = conn
                    .transaction::<_, ApiError, _>(async |conn| apply_batch(conn, &[*p]).await)
                    .await;
                match one {
                    Err(ApiError::Internal(e)) if attempt < ALONE_ATTEMPTS => {
                        tracing::debug!(error = %e, attempt, event = %p.event.id, "LiveKit webhook failed; trying it again");
                        tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                        attempt += 1;
                    }
                    other => break other,
                }
            };
            out.push(one.and_then(|mut o| o.pop().unwrap_or(Ok(Outcome::Ignored))));
        }
        Ok(out)
    })
}

/// Transactions an event applied alone gets before its error is its answer.
const ALONE_ATTEMPTS: u64 = 3;

/// Locks the projects `$1` as [`crate::db::projects::share`] does.
const SHARE_PROJECTS: &str =
    "SELECT id FROM projects WHERE id = ANY($1::int8[]) ORDER BY id FOR KEY SHARE";

/// Repair ids recorded already, of those in `$1`.
const RECORDED: &str =
    "SELECT event_id FROM livekit_webhook_events WHERE event_id = ANY($1::text[])";

/// Records the event ids of a batch (arrays in order); returns those that
/// were new.
const RECORD: &str = "\
INSERT INTO livekit_webhook_events (event_id, event, room_name)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT DO NOTHING
RETURNING event_id";

#[derive(diesel::QueryableByName)]
struct EventId {
    #[diesel(sql_type = Text)]
    event_id: String,
}

/// A batch in the caller's transaction, as its events applied one by one
/// in order would be: every id recorded (and the repairs looked up) in one
/// statement each, and the effects of the events that keep to their room
/// written together ([`Effects::flush`]) before any other event and at the
/// end.
async fn apply_batch(
    conn: &mut AsyncPgConnection,
    batch: &[&PendingEvent],
) -> Result<Vec<Applied>, ApiError> {
    let repairs: Vec<String> = batch
        .iter()
        .filter_map(|p| repair_id(&p.event).filter(|r| *r != p.event.id))
        .collect();
    // What an event applied alone would find: the repairs recorded before
    // the batch, and the ids of the events before it in the batch.
    let mut recorded: HashSet<String> = if repairs.is_empty() {
        HashSet::new()
    } else {
        crate::prepared!(RECORDED, bind::<Array<Text>, _>(&repairs))
            .load::<EventId>(conn)
            .await?
            .into_iter()
            .map(|r| r.event_id)
            .collect()
    };
    let mut fresh: HashSet<String> = crate::prepared!(
        RECORD,
        bind::<Array<Text>, _>(
            batch
                .iter()
                .map(|p| p.event.id.as_str())
                .collect::<Vec<_>>()
        ),
        bind::<Array<Text>, _>(
            batch
                .iter()
                .map(|p| p.event.event.as_str())
                .collect::<Vec<_>>()
        ),
        bind::<Array<Text>, _>(
            batch
                .iter()
                .map(|p| p.room.name.as_str())
                .collect::<Vec<_>>()
        )
    )
    .load::<EventId>(conn)
    .await?
    .into_iter()
    .map(|r| r.event_id)
    .collect();
    // The batch's projects, locked once for the rows referencing them
    // (see `db::projects::share`), in one order.
    let mut projects: Vec<i64> = batch.iter().map(|p| p.project_id).collect();
    projects.sort_unstable();
    projects.dedup();
    crate::prepared!(SHARE_PROJECTS, bind::<Array<BigInt>, _>(projects))
        .execute(conn)
        .await?;
    let mut kept = Effects::Later(Vec::new());
    let mut out = Vec::with_capacity(batch.len());
    for p in batch {
        let id = &p.event.id;
        // The first event of an id recorded it; any other is a duplicate
        // (an event without an id is always applied, as alone).
        if fresh.remove(id) {
            recorded.insert(id.clone());
        } else if !id.is_empty() {
            out.push(Ok(Outcome::Duplicate));
            continue;
        }
        if let Some(repair) = repair_id(&p.event).filter(|r| r != id)
            && recorded.contains(&repair)
        {
            out.push(Ok(Outcome::Duplicate));
            continue;
        }
        if keeps_to_its_room(p) {
            apply_recorded(conn, p, &mut kept).await?;
        } else {
            kept.flush(conn).await?;
            apply_recorded(conn, p, &mut Effects::Now).await?;
        }
        out.push(Ok(Outcome::Processed));
    }
    kept.flush(conn).await?;
    Ok(out)
}
