//! LiveKit webhooks applied in batches.
//!
//! Every call produces a handful of webhooks (room started, agent and caller
//! joined, tracks published, …), each applied in a transaction with its
//! idempotency record. Concurrent webhooks are written together
//! ([`BatchQueue`], as session starts and transcript lines are): one
//! transaction per batch applies the events in their order of arrival, so a
//! commit is paid per batch, not per event — including the session an
//! agent's join starts. Each webhook is answered after the commit that holds
//! its effects, so an answered webhook is as durable as one applied alone.
//!
//! A batch that fails (a deadlock with another writer, one event's error)
//! is rolled back and its events applied again one transaction each, so one
//! bad event fails alone and the others are not lost.
//!
//! The writers run on a thread of their own ([`Home`]), like the other
//! batch writers.

use super::names::RoomName;
use super::proto;
use super::webhook::{Outcome, apply_one};
use crate::db::batch::{BatchQueue, Failed, Home};
use crate::error::ApiError;
use crate::state::AppState;
use diesel::QueryResult;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::future::BoxFuture;
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
                .transaction::<_, ApiError, _>(async |conn| {
                    let mut out = Vec::with_capacity(batch.len());
                    for p in batch {
                        out.push(Ok(apply_one(conn, p).await?));
                    }
                    Ok(out)
                })
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
            let one = conn
                .transaction::<_, ApiError, _>(async |conn| apply_one(conn, p).await)
                .await;
            out.push(one);
        }
        Ok(out)
    })
}
