//! Wakes when this node commits events ([`super::Wake`]), on `NOTIFY
//! voxplane_events` from other nodes, on a poll tick and at start-up, then
//! fans new events out to webhook deliveries — claimed with `FOR UPDATE SKIP
//! LOCKED`, so each event is fanned out once however many nodes run — and
//! publishes them to this node's monitor hub (every node does, so a socket on
//! any node sees events committed by any other).

use super::{Event, hub};
use crate::db::schema::events;
use crate::state::AppState;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{FutureExt, StreamExt};
use std::time::Duration;

/// Runs until the task is aborted.
pub async fn run(state: AppState) {
    let poll = Duration::from_millis(state.settings.events_poll_ms);
    let mut cursor = match start_cursor(&state).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "dispatcher: cannot read the event cursor yet");
            0
        }
    };
    let url = state.settings.database_url.clone().unwrap_or_default();
    let mut local = state.events_wake.subscribe();
    let coalesce = Duration::from_millis(state.settings.events_coalesce_ms);
    let mut last_round = tokio::time::Instant::now() - coalesce;
    loop {
        let mut listener = match listen(&url).await {
            Ok(conn) => Some(conn),
            Err(e) => {
                tracing::warn!(error = %e, "dispatcher: LISTEN failed; polling until it works");
                None
            }
        };
        loop {
            // A busy stream is taken in batches: at most one round per
            // `events_coalesce_ms`.
            tokio::time::sleep_until(last_round + coalesce).await;
            last_round = tokio::time::Instant::now();
            work(&state, &mut cursor).await;
            let Some(conn) = listener.as_mut() else {
                tokio::select! {
                    _ = local.changed() => continue,
                    _ = tokio::time::sleep(poll) => break,
                }
            };
            let mut notes = std::pin::pin!(conn.notifications_stream());
            tokio::select! {
                n = notes.next() => match n {
                    Some(Ok(_)) => {
                        // Coalesce a burst into one round of work.
                        while let Some(Some(Ok(_))) = notes.next().now_or_never() {}
                    }
                    _ => {
                        tracing::warn!("dispatcher: LISTEN connection lost; reconnecting");
                        break;
                    }
                },
                _ = local.changed() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

async fn listen(url: &str) -> anyhow::Result<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    diesel::sql_query("LISTEN voxplane_events")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

async fn start_cursor(state: &AppState) -> anyhow::Result<i64> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let max: Option<i64> = events::table
        .select(diesel::dsl::max(events::id))
        .first(&mut conn)
        .await?;
    Ok(max.unwrap_or(0))
}

async fn work(state: &AppState, cursor: &mut i64) {
    match fan_out(state).await {
        Ok(n) if n > 0 => state.delivery_wake.notify_one(),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "dispatcher: fan-out failed"),
    }
    if let Err(e) = publish_new(state, cursor).await {
        tracing::warn!(error = %e, "dispatcher: monitor publish failed");
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Creates deliveries for undispatched events; returns how many events were fanned out.
pub async fn fan_out(state: &AppState) -> anyhow::Result<i64> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut total = 0;
    loop {
        let done: Count = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                diesel::sql_query(
                    "WITH claimed AS (
                         SELECT id FROM events WHERE dispatched_at IS NULL
                         ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED
                     ), fanned AS (
                         INSERT INTO webhook_deliveries (project_id, endpoint_id, event_id)
                         SELECT e.project_id, w.id, e.id
                         FROM events e
                         JOIN claimed c ON c.id = e.id
                         JOIN webhook_endpoints w ON w.project_id = e.project_id AND w.is_active
                              AND (cardinality(w.event_types) = 0 OR e.event_type = ANY (w.event_types))
                         ON CONFLICT DO NOTHING
                         RETURNING 1
                     ), marked AS (
                         UPDATE events SET dispatched_at = now() WHERE id IN (SELECT id FROM claimed) RETURNING 1
                     )
                     SELECT (SELECT count(*) FROM marked) + 0 * (SELECT count(*) FROM fanned) AS n",
                )
                .get_result(conn)
                .await
            })
            .await?;
        total += done.n;
        if done.n < 500 {
            return Ok(total);
        }
    }
}

async fn publish_new(state: &AppState, cursor: &mut i64) -> anyhow::Result<()> {
    if state.hub.connections() == 0 {
        // Nobody listens here: just move the cursor along.
        *cursor = start_cursor(state).await?.max(*cursor);
        return Ok(());
    }
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    loop {
        let batch: Vec<Event> = events::table
            .filter(events::id.gt(*cursor))
            .order(events::id.asc())
            .limit(500)
            .select(Event::as_select())
            .load(&mut conn)
            .await?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        *cursor = last.id;
        for e in &batch {
            if let Some(m) = hub::monitor_message(e) {
                state.hub.publish(&m);
            }
        }
        if batch.len() < 500 {
            return Ok(());
        }
    }
}
