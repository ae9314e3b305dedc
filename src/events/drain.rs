//! The end of a delivery worker on shutdown (see `delivery::run`).

use super::Spine;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::RunQueryDsl;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// On shutdown: no new claims; the tries under way may finish within
/// `shutdown_grace_secs`; the claims of those that do not are released
/// (their lease cleared, so another node sends them at once; this process
/// exits without recording them, and a stale record is refused by the
/// claim's token).
pub(super) async fn drain(
    state: &Spine,
    permits: &Arc<Semaphore>,
    inflight: &dashmap::DashMap<i64, i32>,
) {
    let all = state.settings.webhook_concurrency.max(1) as u32;
    let grace = Duration::from_secs(state.settings.shutdown_grace_secs);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_ok()
    {
        tracing::info!("webhook delivery stopped: every try under way finished");
        return;
    }
    let held: Vec<(i64, i32)> = inflight.iter().map(|e| (*e.key(), *e.value())).collect();
    let released = async {
        let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut n = 0;
        for (id, token) in &held {
            n += diesel::sql_query(
                "UPDATE webhook_deliveries SET locked_until = NULL, updated_at = now()
                 WHERE id = $1 AND attempts = $2 AND locked_until IS NOT NULL",
            )
            .bind::<BigInt, _>(id)
            .bind::<Integer, _>(token)
            .execute(&mut conn)
            .await?;
        }
        anyhow::Ok(n)
    }
    .await;
    match released {
        Ok(n) => tracing::warn!(
            released = n,
            "webhook delivery stopped: claims of unfinished tries released"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "webhook delivery stopped: could not release claims (their leases run out)")
        }
    }
}
