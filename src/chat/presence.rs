//! Presence shared by the nodes, and the chat's housekeeping.
//!
//! An account is online while it has a chat socket on some node: each node
//! keeps one `chat_presence` row per account it has sockets for and proves
//! it is alive with a heartbeat (`chat_nodes`). A node brings an account's
//! row up to date ([`sync`]) when its first socket there opens and
//! `presence_grace_ms` after its last one closed (so a reconnect in
//! between changes nothing); `chat.presence` (online/offline) is emitted
//! when the union over the nodes changes. Syncs of one account are
//! serialised by a transaction advisory lock, so two nodes never report
//! contradicting states. A node whose heartbeat stopped for
//! `node_timeout_ms` (it died) is removed by any other node, and its
//! accounts not connected elsewhere go offline ([`sweep_dead_nodes`]).
//!
//! The worker also deletes chat events past `event_retention_secs`, ends
//! calls nobody answered ([`super::calls::expire`]) and forgets idle rate
//! state.

use super::events as ev;
use super::membership;
use crate::state::AppState;
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Presence syncs run at once at most: a burst (a thousand clients
/// reconnecting, or leaving) is background work that must not take every
/// pooled connection from the requests.
const CONCURRENT_SYNCS: usize = 2;

/// Spawns the presence worker and the heartbeat of this node.
pub fn spawn(state: &AppState) -> Vec<JoinHandle<()>> {
    let mut handles = vec![tokio::spawn(heartbeat(state.clone()))];
    {
        let requests = state.chat.presence_requests();
        let state = state.clone();
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT_SYNCS));
        handles.push(tokio::spawn(async move {
            let mut requests = requests.lock().await;
            while let Some((account, delay)) = requests.recv().await {
                let (state, slots) = (state.clone(), slots.clone());
                tokio::spawn(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let Ok(_slot) = slots.acquire().await else {
                        return;
                    };
                    if let Err(e) = sync(&state, account).await {
                        tracing::warn!(error = %e, account, "chat presence: sync failed");
                    }
                });
            }
        }));
    }
    handles
}

fn lock_sql() -> &'static str {
    "SELECT pg_advisory_xact_lock(hashtextextended('voxplane.chat.presence', $1))"
}

async fn lock_account(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<()> {
    diesel::sql_query(lock_sql())
        .bind::<BigInt, _>(account_id)
        .execute(conn)
        .await
        .map(drop)
}

async fn online(conn: &mut AsyncPgConnection, account_id: i64) -> QueryResult<bool> {
    use crate::db::schema::chat_presence as p;
    diesel::select(diesel::dsl::exists(
        p::table.filter(p::account_id.eq(account_id)),
    ))
    .get_result(conn)
    .await
}

/// Emits `chat.presence` to the account's contacts, one event per project.
async fn report(conn: &mut AsyncPgConnection, account_id: i64, is_online: bool) -> QueryResult<()> {
    for (project_id, recipients) in membership::contacts_by_project(conn, account_id).await? {
        ev::presence(conn, project_id, account_id, is_online, &recipients).await?;
    }
    Ok(())
}

/// Brings this node's presence row of an account in line with its sockets
/// here (read under the account's lock) and reports a change of the union.
pub async fn sync(state: &AppState, account_id: i64) -> anyhow::Result<()> {
    let node = state.chat.node_id.clone();
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let changed = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            lock_account(conn, account_id).await?;
            let was = online(conn, account_id).await?;
            if state.chat.local_sockets(account_id) > 0 {
                diesel::sql_query(
                    "INSERT INTO chat_nodes (node_id) VALUES ($1) ON CONFLICT DO NOTHING",
                )
                .bind::<Text, _>(&node)
                .execute(conn)
                .await?;
                diesel::sql_query(
                    "INSERT INTO chat_presence (node_id, account_id) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                )
                .bind::<Text, _>(&node)
                .bind::<BigInt, _>(account_id)
                .execute(conn)
                .await?;
            } else {
                diesel::sql_query(
                    "DELETE FROM chat_presence WHERE node_id = $1 AND account_id = $2",
                )
                .bind::<Text, _>(&node)
                .bind::<BigInt, _>(account_id)
                .execute(conn)
                .await?;
            }
            let now = online(conn, account_id).await?;
            if was != now {
                report(conn, account_id, now).await?;
            }
            Ok(was != now)
        })
        .await?;
    if changed {
        state.events_wake.committed();
    }
    Ok(())
}

/// Records that this node is alive; true when its row was missing (first
/// beat, or another node took it for dead), so its accounts must be synced.
async fn beat(state: &AppState) -> anyhow::Result<bool> {
    #[derive(QueryableByName)]
    struct Beat {
        #[diesel(sql_type = Bool)]
        inserted: bool,
    }
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let b: Beat = diesel::sql_query(
        "INSERT INTO chat_nodes (node_id, heartbeat_at) VALUES ($1, now())
         ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now()
         RETURNING (xmax = 0) AS inserted",
    )
    .bind::<Text, _>(&state.chat.node_id)
    .get_result(&mut conn)
    .await?;
    Ok(b.inserted)
}

/// Removes nodes whose heartbeat is older than `node_timeout_ms` with their
/// presence rows; their accounts connected nowhere else go offline.
pub async fn sweep_dead_nodes(state: &AppState) -> anyhow::Result<usize> {
    #[derive(QueryableByName)]
    struct Node {
        #[diesel(sql_type = Text)]
        node_id: String,
    }
    #[derive(QueryableByName)]
    struct Account {
        #[diesel(sql_type = BigInt)]
        account_id: i64,
    }
    let timeout_ms = i64::try_from(state.settings.chat.node_timeout_ms).unwrap_or(i64::MAX);
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let (nodes, offline) = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            let dead: Vec<String> = diesel::sql_query(
                "SELECT node_id FROM chat_nodes
                 WHERE heartbeat_at < now() - make_interval(secs => $1::bigint / 1000.0)
                   AND node_id <> $2
                 ORDER BY node_id FOR UPDATE SKIP LOCKED LIMIT 16",
            )
            .bind::<BigInt, _>(timeout_ms)
            .bind::<Text, _>(&state.chat.node_id)
            .load::<Node>(conn)
            .await?
            .into_iter()
            .map(|n| n.node_id)
            .collect();
            if dead.is_empty() {
                return Ok((0, 0));
            }
            let mut accounts: Vec<i64> = diesel::sql_query(
                "DELETE FROM chat_presence WHERE node_id = ANY($1) RETURNING account_id",
            )
            .bind::<Array<Text>, _>(&dead)
            .load::<Account>(conn)
            .await?
            .into_iter()
            .map(|a| a.account_id)
            .collect();
            diesel::sql_query("DELETE FROM chat_nodes WHERE node_id = ANY($1)")
                .bind::<Array<Text>, _>(&dead)
                .execute(conn)
                .await?;
            accounts.sort_unstable();
            accounts.dedup();
            let mut offline = 0;
            for account in accounts {
                lock_account(conn, account).await?;
                if !online(conn, account).await? {
                    report(conn, account, false).await?;
                    offline += 1;
                }
            }
            Ok((dead.len(), offline))
        })
        .await?;
    if offline > 0 {
        state.events_wake.committed();
    }
    if nodes > 0 {
        tracing::info!(nodes, offline, "chat presence: removed silent nodes");
    }
    Ok(nodes)
}

/// Chat events deleted per statement.
const PURGE_BATCH: usize = 10_000;
/// Statements per purge at most (the rest waits for the next one).
const PURGE_BATCHES: usize = 100;

/// Deletes chat events older than `event_retention_secs`, in batches.
pub async fn purge_events(state: &AppState) -> anyhow::Result<usize> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = i64::try_from(state.settings.chat.event_retention_secs).unwrap_or(i64::MAX);
    let mut deleted = 0;
    for _ in 0..PURGE_BATCHES {
        let n = diesel::sql_query(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events WHERE event_type LIKE 'chat.%'
                   AND created_at < now() - make_interval(secs => $1::bigint)
                 LIMIT $2)",
        )
        .bind::<BigInt, _>(secs)
        .bind::<BigInt, _>(PURGE_BATCH as i64)
        .execute(&mut conn)
        .await?;
        deleted += n;
        if n < PURGE_BATCH {
            break;
        }
    }
    Ok(deleted)
}

/// The heartbeat loop: beat, take silent nodes out, end unanswered calls;
/// about once a minute purge old chat events and idle rate state.
async fn heartbeat(state: AppState) {
    let every = Duration::from_millis(state.settings.chat.node_heartbeat_ms);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let housekeeping_every = (60_000 / state.settings.chat.node_heartbeat_ms.max(1)).max(1);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        match beat(&state).await {
            Ok(true) => {
                for account in state.chat.local_accounts() {
                    if let Err(e) = sync(&state, account).await {
                        tracing::warn!(error = %e, account, "chat presence: resync failed");
                    }
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "chat presence: heartbeat failed"),
        }
        if let Err(e) = sweep_dead_nodes(&state).await {
            tracing::warn!(error = %e, "chat presence: sweeping silent nodes failed");
        }
        if let Err(e) = super::calls::expire(&state).await {
            tracing::warn!(error = %e, "chat calls: ending unanswered calls failed");
        }
        if (n - 1).is_multiple_of(housekeeping_every) {
            state.chat.sweep_limiters();
            match purge_events(&state).await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "chat: purged old chat events"),
                Err(e) => tracing::warn!(error = %e, "chat: purging old chat events failed"),
            }
        }
    }
}
