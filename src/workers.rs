//! Periodic housekeeping run by every API process.

use crate::db::schema::idempotency_keys as ik;
use crate::state::AppState;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::time::Duration;

/// Background tasks of a process; aborted when dropped.
pub struct Workers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Spawns every background task: the event dispatcher, the webhook delivery
/// workers, housekeeping, the SIP calls worker (progress, max duration),
/// the e-mail outbox and the chat's presence worker.
pub fn spawn_all(state: &AppState) -> Workers {
    let mut handles = vec![
        tokio::spawn(crate::events::dispatcher::run(state.clone())),
        tokio::spawn(crate::events::notifier(state.clone())),
        tokio::spawn(crate::events::delivery::run(state.clone())),
        spawn_housekeeping(state.clone()),
        tokio::spawn(check_monitor_keys(state.clone())),
        crate::livekit::calls::spawn(state.clone()),
        crate::mail::outbox::spawn_worker(state.mailer.clone(), state.pool.clone()),
    ];
    handles.extend(crate::rag::indexer::spawn(state.clone()));
    handles.extend(crate::knowledge::sources::crawler::spawn(state.clone()));
    handles.extend(crate::chat::presence::spawn(state));
    Workers(handles)
}

/// Spawns the housekeeping loop: expired idempotency records and old interim
/// transcript events are deleted and idle anonymous rate-limit state is
/// dropped.
pub fn spawn_housekeeping(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(300));
        loop {
            tick.tick().await;
            state.governor.sweep_anonymous();
            if let Err(e) = purge_idempotency(&state).await {
                tracing::warn!(error = %e, "could not purge expired idempotency keys");
            }
            if let Err(e) = crate::transcripts::service::purge_interim_events(&state).await {
                tracing::warn!(error = %e, "could not purge interim transcript events");
            }
        }
    })
}

async fn purge_idempotency(state: &AppState) -> anyhow::Result<()> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = diesel::delete(ik::table.filter(ik::expires_at.lt(Utc::now())))
        .execute(&mut conn)
        .await?;
    if n > 0 {
        tracing::info!(deleted = n, "purged expired idempotency keys");
    }
    Ok(())
}

/// Closes the sockets of this process whose API key stopped working (revoked
/// or expired on any node, or its project deleted): every half
/// `key_cache_ttl_ms`, one query for all the keys in use.
pub async fn check_monitor_keys(state: AppState) {
    let period = Duration::from_millis((state.settings.key_cache_ttl_ms / 2).max(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let checked = state.hub.key_ids();
        if checked.is_empty() {
            continue;
        }
        let valid = match state.pool.get().await {
            Ok(mut conn) => crate::db::api_keys::still_valid(&mut conn, &checked).await,
            Err(e) => {
                tracing::debug!(error = %e, "monitor key check skipped");
                continue;
            }
        };
        match valid {
            Ok(mut valid) => {
                valid.sort_unstable();
                state.hub.revoke(crate::events::hub::Revoke::AllBut {
                    checked: &checked,
                    valid: &valid,
                });
            }
            Err(e) => tracing::warn!(error = %e, "could not check the monitor sockets' keys"),
        }
    }
}
