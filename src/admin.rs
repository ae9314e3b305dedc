//! `voxplane admin …`: provisioning from the command line.

use crate::db::{api_keys, projects};
use crate::limits::plans::Plan;
use anyhow::{Context, Result};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Serialize;

/// What `create-project` and `create-key` print.
#[derive(Debug, Serialize)]
pub struct Created {
    /// Project id.
    pub project_id: i64,
    /// Project name.
    pub name: String,
    /// Plan.
    pub plan: Plan,
    /// Room prefix.
    pub room_prefix: String,
    /// Key id.
    pub key_id: i64,
    /// The key; shown only now.
    pub api_key: String,
}

/// Creates a project and its first key.
pub async fn create_project(url: &str, name: &str, plan: Plan) -> Result<Created> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 200,
        "--name must be 1 to 200 characters"
    );
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to DATABASE_URL")?;
    let (project, key, secret) = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            let project = projects::create(conn, name, plan).await?;
            let (key, secret) = api_keys::create(conn, project.id, "default", None).await?;
            Ok((project, key, secret))
        })
        .await?;
    Ok(Created {
        project_id: project.id,
        plan: project.plan(),
        name: project.name,
        room_prefix: project.room_prefix,
        key_id: key.id,
        api_key: secret,
    })
}

/// Recomputes quota counters (one project's or every live project's) and
/// repairs those that drifted; returns the repaired ones.
pub async fn recount_quotas(
    url: &str,
    project: Option<i64>,
) -> Result<Vec<crate::limits::recount::Drift>> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to DATABASE_URL")?;
    if let Some(id) = project {
        projects::find(&mut conn, id)
            .await
            .map_err(|_| anyhow::anyhow!("project {id} does not exist"))?;
    }
    Ok(crate::limits::recount::recount(&mut conn, project).await?)
}

/// Creates another key for an existing project.
pub async fn create_key(url: &str, project_id: i64, name: &str) -> Result<Created> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to DATABASE_URL")?;
    let project = projects::find(&mut conn, project_id)
        .await
        .map_err(|_| anyhow::anyhow!("project {project_id} does not exist"))?;
    let (key, secret) = api_keys::create(&mut conn, project.id, name, None).await?;
    Ok(Created {
        project_id: project.id,
        plan: project.plan(),
        name: project.name,
        room_prefix: project.room_prefix,
        key_id: key.id,
        api_key: secret,
    })
}

/// Sets or clears a project's rate-limit override (takes effect within the
/// key-cache TTL on running nodes).
pub async fn set_rate_limit(url: &str, project_id: i64, per_minute: Option<u32>) -> Result<()> {
    let per_minute = per_minute
        .map(|n| i32::try_from(n).ok().filter(|n| *n > 0))
        .map(|n| n.ok_or_else(|| anyhow::anyhow!("--per-minute must be between 1 and 2147483647")))
        .transpose()?;
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to DATABASE_URL")?;
    let n = projects::set_rate_limit(&mut conn, project_id, per_minute).await?;
    anyhow::ensure!(n == 1, "project {project_id} does not exist");
    Ok(())
}

/// The background jobs (only the failed ones with `failed`), one line
/// each: id, type, state, attempts, due time, data, last error.
pub async fn list_jobs(url: &str, failed: bool, limit: i64) -> Result<Vec<String>> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to DATABASE_URL")?;
    let now = chrono::Utc::now();
    let rows = crate::jobs::store::list(&mut conn, failed, limit.clamp(1, 10_000)).await?;
    Ok(rows
        .into_iter()
        .map(|j| {
            let state = match (&j.failed_at, j.locked_until) {
                (Some(_), _) => "failed".to_owned(),
                (None, Some(until)) if until > now => {
                    format!("running({})", j.locked_by.as_deref().unwrap_or("?"))
                }
                _ => "queued".to_owned(),
            };
            format!(
                "{}\t{}\t{state}\tattempts={}\trun_at={}\t{}\t{}",
                j.id,
                j.job_type,
                j.attempts,
                j.run_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                j.data,
                j.last_error.unwrap_or_default()
            )
        })
        .collect())
}

/// Puts a failed job back in the queue, due now.
pub async fn retry_job(url: &str, id: i64) -> Result<()> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("connecting to DATABASE_URL")?;
    let requeued = crate::jobs::store::requeue(&mut conn, id).await?;
    anyhow::ensure!(requeued, "job {id} is not a failed job");
    Ok(())
}

/// Prints the result as JSON or as lines.
pub fn print(c: &Created, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(c)?);
    } else {
        println!("project_id:  {}", c.project_id);
        println!("name:        {}", c.name);
        println!("plan:        {}", c.plan);
        println!("room_prefix: {}", c.room_prefix);
        println!("api_key:     {}   (shown once; store it now)", c.api_key);
    }
    Ok(())
}
