//! The event spine. Every change users can observe is written as a row of
//! `events` in the same transaction as the change ([`emit`]). After commit a
//! `NOTIFY` wakes the [`dispatcher`] on every node: one of them fans the
//! event out to `webhook_deliveries` (claimed with `SKIP LOCKED`), which the
//! [`delivery`] workers send, signed and retried; every node also publishes
//! it to its local monitor [`hub`] for `/ws/monitor`.

pub mod delivery;
pub mod dispatcher;
pub mod hub;
pub mod signing;
pub mod ssrf;

use crate::db::schema::events;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

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
    pub dispatched_at: Option<DateTime<Utc>>,
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

/// Writes an event into the outbox. Call it inside the transaction that
/// makes the change, so the event exists exactly when the change does.
pub async fn emit(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    event_type: &str,
    data: Value,
) -> QueryResult<Event> {
    debug_assert!(is_known(event_type), "unknown event type {event_type}");
    let public_id = format!("evt_{}", crate::db::projects::random_alnum(24));
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
