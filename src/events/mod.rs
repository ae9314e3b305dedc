//! The event spine. Every change users can observe is written as a row of
//! `events` in the same transaction as the change ([`emit`]). After commit the
//! [`Wake`] rings: this node's [`dispatcher`] wakes at once, and a `NOTIFY`
//! (sent by [`notifier`], outside the writer's transaction, one for a burst of
//! commits) wakes the dispatchers of the other nodes. One of them fans the
//! event out to `webhook_deliveries` (claimed with `SKIP LOCKED`), which the
//! [`delivery`] workers send, signed and retried; every node also publishes
//! it to its local monitor [`hub`] for `/ws/monitor`. A poll every
//! `events_poll_ms` is the safety net.
//!
//! Why not `NOTIFY` inside the writing transaction (a trigger): Postgres
//! serialises the commits of every transaction that notified — the queue lock
//! is held through the WAL flush — so all event-writing requests would commit
//! one at a time. Requests are tracked instead ([`track`], used by the
//! outermost middleware): a request whose code called [`emit`] rings the bell
//! after its response is ready, i.e. after its transactions committed.
//! Background tasks that emit run their rounds in [`rings_after`] (or call
//! [`Wake::committed`] after their commit).

pub mod delivery;
pub mod dispatcher;
mod drain;
pub mod hub;
pub mod retry;
pub mod signing;
mod spine;
pub mod ssrf;

pub use spine::{Listener, Spine};

use crate::db::schema::events;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use std::cell::Cell;
use std::sync::Arc;
use tokio::sync::watch;

tokio::task_local! {
    /// Set by [`emit`] while a tracked request runs.
    static EMITTED: Cell<bool>;
}

/// Runs a request, returning its output and whether it emitted events.
pub async fn track<F: Future>(fut: F) -> (F::Output, bool) {
    EMITTED
        .scope(Cell::new(false), async {
            let out = fut.await;
            (out, EMITTED.with(Cell::get))
        })
        .await
}

/// Runs background work that may emit events (committing its own
/// transactions) and rings `wake` afterwards if it did.
pub async fn rings_after<F: Future>(wake: &Wake, fut: F) -> F::Output {
    let (out, emitted) = track(fut).await;
    if emitted {
        wake.committed();
    }
    out
}

/// The bell rung after a commit that wrote events.
#[derive(Clone)]
pub struct Wake(Arc<watch::Sender<u64>>);

impl Default for Wake {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl Wake {
    /// Call after committing a transaction that emitted events.
    pub fn committed(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` resolves after the next ring (or at once
    /// when it rang since the last look).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// Sends `NOTIFY voxplane_events` after commits, so the other nodes'
/// dispatchers wake; rings during a NOTIFY in flight are folded into the next.
pub async fn notifier(state: Spine) {
    let mut rang = state.events_wake.subscribe();
    let coalesce = std::time::Duration::from_millis(state.settings.events_coalesce_ms);
    while rang.changed().await.is_ok() {
        // Commits during this pause are covered by the NOTIFY that follows.
        tokio::time::sleep(coalesce).await;
        rang.mark_unchanged();
        let sent = match state.pool.get().await {
            Ok(mut conn) => diesel::sql_query("NOTIFY voxplane_events")
                .execute(&mut *conn)
                .await
                .map(drop)
                .map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        if let Err(e) = sent {
            // Other nodes fall back to their poll; this node woke already.
            tracing::warn!(error = %e, "events: NOTIFY failed");
        }
    }
}

/// Every event type webhook endpoints can subscribe to (the contract's table,
/// plus `webhook.disabled`).
pub const EVENT_TYPES: &[&str] = &[
    "room.started",
    "room.finished",
    "participant.joined",
    "participant.left",
    "track.published",
    "track.unpublished",
    "session.started",
    "session.ended",
    "session.updated",
    "supervisor.joined",
    "supervisor.left",
    "transcript.new",
    "recording.started",
    "recording.stopped",
    "sip.call_initiated",
    "sip.inbound_call",
    "sip.call_status",
    "knowledge.document_uploaded",
    "knowledge.reindexed",
    "egress.started",
    "egress.ended",
    "webhook.disabled",
    "test",
];

/// Whether an event type is in the catalogue.
pub fn is_known(event_type: &str) -> bool {
    EVENT_TYPES.contains(&event_type)
}

/// Prefix of the team chat's event types (`chat.message`, `chat.typing`,
/// …): they travel the spine to the chat sockets of every node but are no
/// webhook event types (the fan-out trigger skips them) and are deleted
/// after `chat.event_retention_secs` (see `chat::presence`).
pub const CHAT_PREFIX: &str = "chat.";

/// A row of `events`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct Event {
    pub id: i64,
    pub public_id: String,
    pub project_id: i64,
    pub event_type: String,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

impl Event {
    /// The webhook body: `{event_type, project_id, timestamp, data}`.
    pub fn payload(&self) -> Value {
        serde_json::json!({
            "event_type": self.event_type,
            "project_id": self.project_id,
            "timestamp": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": self.data,
        })
    }
}

/// A new event id: `evt_`, 9 characters of the creation time (Unix ms in
/// base 62, whose ASCII order is time order) and 15 random ones. Ids sort by
/// creation time, and new ones land at the end of the unique index instead
/// of on a random page of it.
pub fn new_public_id() -> String {
    public_id_at(Utc::now().timestamp_millis())
}

fn public_id_at(unix_ms: i64) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut t = u64::try_from(unix_ms).unwrap_or(0);
    let mut time = [b'0'; 9];
    for c in time.iter_mut().rev() {
        *c = BASE62[(t % 62) as usize];
        t /= 62;
    }
    let time: String = time.iter().map(|&b| b as char).collect();
    format!("evt_{time}{}", crate::db::projects::random_alnum(15))
}

/// For code that writes `events` rows in its own SQL instead of [`emit`]: the
/// request being tracked wakes the dispatchers when it is done.
pub fn note_emitted() {
    let _ = EMITTED.try_with(|e| e.set(true));
}

/// Writes an event into the outbox. Call it inside the transaction that
/// makes the change, so the event exists exactly when the change does.
pub async fn emit(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    event_type: &str,
    data: Value,
) -> QueryResult<Event> {
    debug_assert!(
        is_known(event_type) || event_type.starts_with(CHAT_PREFIX),
        "unknown event type {event_type}"
    );
    note_emitted();
    let public_id = new_public_id();
    diesel::insert_into(events::table)
        .values((
            events::public_id.eq(public_id),
            events::project_id.eq(project_id),
            events::event_type.eq(event_type),
            events::data.eq(data),
        ))
        .returning(Event::as_returning())
        .get_result(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_sort_by_time_and_keep_their_length() {
        let a = public_id_at(1_700_000_000_000);
        let b = public_id_at(1_700_000_000_001);
        let c = public_id_at(4_102_444_800_000); // 2100
        assert_eq!(a.len(), 28);
        assert!(a[..13] < b[..13] && b[..13] < c[..13], "{a} {b} {c}");
        assert!(new_public_id().starts_with("evt_"));
    }
}
