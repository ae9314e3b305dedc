//! Background workers of an API process, supervised: a worker that ends or
//! panics is restarted with backoff (1 s doubling to 60 s), counted in
//! `voxplane_worker_restarts_total{name}`, and `/ready` answers 503 while
//! one keeps failing ([`FAILING_AFTER`] failures in a row; a run of
//! [`STABLE_AFTER`] clears them). Also the shutdown signal they share.

use crate::db::schema::idempotency_keys as ik;
pub use crate::lifecycle::{FAILING_AFTER, Lifecycle};
use crate::metrics::Metrics;
use crate::state::AppState;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A run this long clears a worker's failures.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Background tasks of a process; aborted when dropped.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
    /// Those that finish their work on shutdown (webhook delivery).
    draining: Vec<JoinHandle<()>>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        for h in self.handles.iter().chain(&self.draining) {
            h.abort();
        }
    }
}

impl Workers {
    /// After [`Lifecycle::begin_shutdown`]: waits (at most `grace`) for
    /// the workers that drain, then stops every worker.
    pub async fn shutdown(mut self, grace: Duration) {
        let draining = std::mem::take(&mut self.draining);
        let all = futures_util::future::join_all(draining);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("workers still busy after the grace period; stopping them");
        }
    }
}

/// Runs the tasks `start` spawns, again whenever one of them ends or panics
/// (the others are stopped first), until the process stops. `start`
/// returning no task means the worker does not apply (e.g. no model).
pub fn supervise<F>(
    lifecycle: Arc<Lifecycle>,
    metrics: Arc<Metrics>,
    name: &'static str,
    start: F,
) -> JoinHandle<()>
where
    F: Fn() -> Vec<JoinHandle<()>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            let started = Instant::now();
            let tasks = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&start));
            let why = match tasks {
                Ok(tasks) if tasks.is_empty() => return,
                Ok(tasks) => {
                    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
                    let (ended, _, _) = futures_util::future::select_all(tasks).await;
                    for a in aborts {
                        a.abort();
                    }
                    match ended {
                        Ok(()) => "ended".to_owned(),
                        Err(e) if e.is_panic() => panic_text(e.into_panic()),
                        Err(e) => e.to_string(),
                    }
                }
                Err(panic) => panic_text(panic),
            };
            if lifecycle.shutting_down() {
                return;
            }
            if started.elapsed() >= STABLE_AFTER {
                backoff = Duration::from_secs(1);
                lifecycle.failures.insert(name, 0);
            }
            let failures = {
                let mut f = lifecycle.failures.entry(name).or_insert(0);
                *f += 1;
                *f
            };
            metrics.worker_restart(name);
            tracing::error!(worker = name, failures, reason = %why, backoff_ms = backoff.as_millis() as u64, "worker stopped; restarting");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = lifecycle.stopping() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| format!("panicked: {s}"))
        .or_else(|| {
            panic
                .downcast_ref::<String>()
                .map(|s| format!("panicked: {s}"))
        })
        .unwrap_or_else(|| "panicked".into())
}

/// Spawns every background task, supervised: the event dispatcher, the
/// webhook delivery workers, housekeeping, the monitor key check, the SIP
/// calls worker (progress, max duration), the LiveKit reconciler, the
/// e-mail outbox, the knowledge indexer and crawler; and the chat's
/// presence worker (not restartable: it owns its request channel).
pub fn spawn_all(state: &AppState) -> Workers {
    let sup = |name: &'static str, start: Box<dyn Fn(AppState) -> Vec<JoinHandle<()>> + Send>| {
        let s = state.clone();
        supervise(
            state.lifecycle.clone(),
            state.metrics.clone(),
            name,
            move || start(s.clone()),
        )
    };
    let handles = vec![
        sup(
            "dispatcher",
            Box::new(|s| vec![tokio::spawn(crate::events::dispatcher::run(s.spine()))]),
        ),
        sup(
            "notifier",
            Box::new(|s| vec![tokio::spawn(crate::events::notifier(s.spine()))]),
        ),
        sup("housekeeping", Box::new(|s| vec![spawn_housekeeping(s)])),
        sup("quota-recount", Box::new(|s| vec![spawn_quota_recount(s)])),
        sup(
            "chat-presence",
            Box::new(|s| crate::chat::presence::spawn(&s)),
        ),
        sup(
            "monitor_keys",
            Box::new(|s| vec![tokio::spawn(check_monitor_keys(s))]),
        ),
        sup(
            "sip_calls",
            Box::new(|s| vec![crate::livekit::calls::spawn(s)]),
        ),
        sup(
            "reconciler",
            Box::new(|s| crate::livekit::reconcile::spawn(s).into_iter().collect()),
        ),
        sup("jobs", Box::new(|s| vec![crate::jobs::runner::spawn(s)])),
        sup(
            "mail_outbox",
            Box::new(|s| {
                vec![crate::mail::outbox::spawn_worker(
                    s.mailer.clone(),
                    s.pool.clone(),
                )]
            }),
        ),
        sup(
            "indexer",
            Box::new(|s| crate::rag::indexer::spawn(s).into_iter().collect()),
        ),
        sup(
            "crawler",
            Box::new(crate::knowledge::sources::crawler::spawn),
        ),
    ];
    let draining = vec![sup(
        "delivery",
        Box::new(|s| vec![tokio::spawn(crate::events::delivery::run(s.spine()))]),
    )];
    Workers { handles, draining }
}

/// Spawns the housekeeping loop: expired idempotency records, spent
/// connection-token ids and old interim transcript events are deleted and
/// idle anonymous rate-limit state is dropped.
pub fn spawn_housekeeping(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        // The first round after one period: sweeping the anonymous limiter
        // state at start would race the first requests (and drop their counts).
        let period = Duration::from_secs(300);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
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

/// Spawns the quota check: every `quota_recount_secs`, counters that do not
/// match their rows are logged and repaired (`limits::recount`).
pub fn spawn_quota_recount(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_secs(state.settings.quota_recount_secs);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            let repaired = match state.pool.get().await {
                Ok(mut conn) => crate::limits::recount::recount(&mut conn, None).await,
                Err(e) => {
                    tracing::warn!(error = %e, "quota recount: no database connection");
                    continue;
                }
            };
            match repaired {
                Ok(drift) => {
                    for d in drift {
                        tracing::warn!(
                            project_id = d.project_id,
                            resource = %d.resource,
                            counted = d.counted,
                            actual = d.actual,
                            "quota counter drifted; repaired"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "quota recount failed"),
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
    use crate::db::schema::connection_token_uses as ctu;
    diesel::delete(ctu::table.filter(ctu::expires_at.lt(Utc::now())))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Closes the sockets of this process whose API key stopped working (revoked
/// or expired on any node, or its project deleted), and the dashboard's
/// sockets whose session ended (signed out, signed out everywhere, password
/// changed or reset, on any node): every half `key_cache_ttl_ms`, one query
/// for all the keys in use and one for all the sessions.
pub async fn check_monitor_keys(state: AppState) {
    let period = Duration::from_millis((state.settings.key_cache_ttl_ms / 2).max(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let keys = state.hub.key_ids();
        let sessions = state.hub.session_ids();
        if keys.is_empty() && sessions.is_empty() {
            continue;
        }
        let mut conn = match state.pool.get().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(error = %e, "monitor key check skipped");
                continue;
            }
        };
        if !keys.is_empty() {
            match crate::db::api_keys::still_valid(&mut conn, &keys).await {
                Ok(valid) => revoke_all_but(&state, keys, valid),
                Err(e) => tracing::warn!(error = %e, "could not check the monitor sockets' keys"),
            }
        }
        if !sessions.is_empty() {
            match crate::db::accounts::open_sessions(&mut conn, &sessions).await {
                // Dashboard sockets carry `-session_id` as their key.
                Ok(open) => revoke_all_but(
                    &state,
                    sessions.iter().map(|id| -id).collect(),
                    open.iter().map(|id| -id).collect(),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not check the monitor sockets' sessions")
                }
            }
        }
    }
}

/// Closes the sockets whose key is in `checked` but not in `valid`.
fn revoke_all_but(state: &AppState, mut checked: Vec<i64>, mut valid: Vec<i64>) {
    checked.sort_unstable();
    valid.sort_unstable();
    state.hub.revoke(crate::events::hub::Revoke::AllBut {
        checked: &checked,
        valid: &valid,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_panicking_worker_is_restarted_with_backoff_and_reported_failing() {
        let lifecycle = Arc::new(Lifecycle::default());
        let metrics = Arc::new(Metrics::default());
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let handle = supervise(lifecycle.clone(), metrics.clone(), "flaky", move || {
            counted.fetch_add(1, Ordering::SeqCst);
            vec![tokio::spawn(async { panic!("deliberate worker panic") })]
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            AtomicU32::load(&runs, Ordering::SeqCst),
            1,
            "backoff before the restart"
        );
        assert!(lifecycle.failing().is_empty());
        // Restarts after 1 s and 2 s: the third failure marks it down.
        tokio::time::sleep(Duration::from_millis(3000)).await;
        assert_eq!(AtomicU32::load(&runs, Ordering::SeqCst), 3);
        assert_eq!(lifecycle.failing(), ["flaky"]);
        assert!(
            metrics
                .render()
                .contains("voxplane_worker_restarts_total{name=\"flaky\"} 3")
        );
        lifecycle.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(1), handle)
            .await
            .expect("the supervisor stops on shutdown")
            .expect("no panic escapes");
    }

    #[tokio::test]
    async fn a_worker_that_does_not_apply_is_not_restarted() {
        let lifecycle = Arc::new(Lifecycle::default());
        let handle = supervise(lifecycle.clone(), Arc::default(), "none", Vec::new);
        tokio::time::timeout(Duration::from_secs(1), handle)
            .await
            .expect("returns at once")
            .expect("no panic");
        assert!(lifecycle.failing().is_empty());
    }
}
