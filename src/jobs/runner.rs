//! The job runner, in every process (supervised as `jobs`): every
//! `jobs_poll_ms` it claims due jobs with a lease, runs them with no
//! transaction open, and records each outcome in one short statement.

use super::Job;
use super::kinds::Unreadable;
use super::store::{self, JobRow};
use crate::state::AppState;
use chrono::Utc;
use std::time::{Duration, Instant};

/// The longest wait before a job is retried.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Jobs claimed at once by one runner.
const BATCH: i64 = 16;

/// How often the `voxplane_jobs{state}` gauges are refreshed (and after
/// every pass that ran a job).
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Spawns the runner.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state))
}

/// The longest a job may run (it is then counted as a failed attempt).
pub fn run_limit(settings: &crate::config::Settings) -> Duration {
    Duration::from_millis(settings.livekit_timeout_ms) * 4 + Duration::from_secs(30)
}

/// How long a claim keeps other runners away: twice the longest run, so
/// only a runner that died (or stalled) loses its jobs.
pub fn lease(settings: &crate::config::Settings) -> Duration {
    run_limit(settings) * 2
}

/// The delay before the next attempt after `attempts` failed ones:
/// `jobs_poll_ms` doubling, at most [`MAX_BACKOFF`].
pub fn backoff(settings: &crate::config::Settings, attempts: i32) -> Duration {
    let shift = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    Duration::from_millis(settings.jobs_poll_ms)
        .saturating_mul(1 << shift)
        .min(MAX_BACKOFF)
}

/// A name for this runner, unique among processes (the lease's owner).
fn owner() -> String {
    use rand::Rng;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "node".into());
    let tag: u32 = rand::rng().random();
    format!("{host}:{}:{tag:08x}", std::process::id())
}

async fn run(state: AppState) {
    let owner = owner();
    let mut tick = tokio::time::interval(Duration::from_millis(state.settings.jobs_poll_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut counted: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.lifecycle.stopping() => return,
        }
        // A full batch: more may be due at once.
        let mut ran = false;
        loop {
            match run_due(&state, &owner).await {
                Ok(n) if n as i64 == BATCH => ran = true,
                Ok(n) => {
                    ran |= n > 0;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "job runner: claim failed");
                    break;
                }
            }
        }
        if ran || counted.is_none_or(|at| at.elapsed() >= COUNT_EVERY) {
            counted = Some(Instant::now());
            if let Ok(mut conn) = state.pool.get().await
                && let Ok(c) = store::counts(&mut conn).await
            {
                state.metrics.jobs_counted(c.queued, c.running, c.failed);
            }
        }
    }
}

/// Claims the due jobs (up to a batch) for `owner` and runs them side by
/// side; returns how many were claimed.
pub async fn run_due(state: &AppState, owner: &str) -> anyhow::Result<usize> {
    let claimed = {
        let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        store::claim(&mut conn, owner, lease(&state.settings), BATCH).await?
    };
    let runs = claimed.iter().map(|row| run_one(state, owner, row));
    futures_util::future::join_all(runs).await;
    Ok(claimed.len())
}

/// Runs one claimed job and records its outcome.
async fn run_one(state: &AppState, owner: &str, row: &JobRow) {
    let settings = &state.settings;
    let job = match Job::parse(&row.job_type, &row.data) {
        Ok(job) => job,
        Err(Unreadable::UnknownType) => {
            // A newer version's job: kept, put off, its attempt not counted.
            tracing::warn!(job.id = row.id, job.type = %row.job_type, "job of an unknown type left in the queue");
            let later = Utc::now() + chrono::Duration::from_std(MAX_BACKOFF).unwrap_or_default();
            let error = format!("unknown job type {:?}", row.job_type);
            record(state, "unknown", row, async |conn| {
                store::retry(conn, row, owner, &error, later, true).await
            })
            .await;
            return;
        }
        Err(Unreadable::BadData(e)) => {
            tracing::error!(job.id = row.id, job.type = %row.job_type, error = %e, "job with unreadable data kept as failed");
            let error = format!("unreadable data: {e}");
            record(state, "failed", row, async |conn| {
                store::fail(conn, row, owner, &error).await
            })
            .await;
            return;
        }
    };
    let limit = run_limit(settings);
    let result = tokio::time::timeout(limit, job.run(state))
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {limit:?}")));
    let job_type = job.job_type();
    match result {
        Ok(repair) => {
            if let Some(kind) = repair {
                tracing::info!(job.id = row.id, job.type = job_type, repair = kind, "job settled a reservation");
            }
            let outcome = repair.unwrap_or("done");
            record(state, outcome, row, async |conn| {
                store::finish(conn, row.id, row.attempts, owner).await
            })
            .await;
        }
        Err(e) if row.attempts >= i32::try_from(settings.jobs_max_attempts).unwrap_or(i32::MAX) => {
            let error = format!("{e:#}");
            tracing::error!(job.id = row.id, job.type = job_type, attempts = row.attempts, error, "job failed too often; kept as failed");
            record(state, "failed", row, async |conn| {
                store::fail(conn, row, owner, &error).await
            })
            .await;
        }
        Err(e) => {
            let error = format!("{e:#}");
            let delay = backoff(settings, row.attempts);
            tracing::warn!(job.id = row.id, job.type = job_type, attempts = row.attempts, retry_in_ms = delay.as_millis() as u64, error, "job failed; will retry");
            let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            record(state, "retried", row, async |conn| {
                store::retry(conn, row, owner, &error, at, false).await
            })
            .await;
        }
    }
}

/// Writes an outcome (a lost claim is logged: its successor owns the job)
/// and counts it.
async fn record<F>(state: &AppState, outcome: &str, row: &JobRow, write: F)
where
    F: AsyncFnOnce(&mut diesel_async::AsyncPgConnection) -> diesel::QueryResult<bool>,
{
    state.metrics.job_ran(&row.job_type, outcome);
    let written = match state.pool.get().await {
        Ok(mut conn) => write(&mut conn).await.map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    match written {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(job.id = row.id, "job cancelled or taken over meanwhile")
        }
        Err(e) => {
            // The lease runs out and the job runs again.
            tracing::warn!(
                job.id = row.id,
                error = format!("{e:#}"),
                "could not record a job's outcome"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_the_job_period_doubling_to_ten_minutes() {
        let settings = crate::config::Settings {
            jobs_poll_ms: 1000,
            ..Default::default()
        };
        let secs = |attempts| backoff(&settings, attempts).as_secs();
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [1, 2, 4, 8]);
        assert_eq!(secs(10), 512);
        assert_eq!(secs(11), 600);
        assert_eq!(secs(1000), 600);
        assert!(lease(&settings) > run_limit(&settings));
    }
}
