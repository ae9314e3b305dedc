//! Plan quotas: what a project may create, counted in Postgres.
//!
//! Usage lives in `quota_counters`, one row per project, resource and period
//! (the UTC month for sessions and recordings), kept exact by triggers on the
//! counted tables in the statement that inserts, deletes or ends a row
//! (migration `2026-12-04-000000_quota_counters`). [`reserve`] is the one
//! check every creating endpoint uses, inside the transaction that inserts
//! the new row: it locks that one counter row and compares it with the plan,
//! so a single remaining slot is taken exactly once and a check costs the
//! same with a million rows as with none. [`recount`](super::recount) repairs
//! counters from the tables.

use crate::auth::ProjectInfo;
use crate::config::Plans;
use crate::error::{ApiError, ApiResult};
use diesel::QueryResult;
use diesel::prelude::OptionalExtension;
use diesel::sql_types::{BigInt, Bool, Int8, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// Resources limited by plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Projects,
    Agents,
    KnowledgeBases,
    SipConfigs,
    WebhookConfigs,
    TeamMembers,
    Rooms,
    Sessions,
    Recordings,
}

impl Resource {
    /// All resources, in the order `GET /quota` lists them.
    pub const ALL: [Resource; 9] = [
        Resource::Projects,
        Resource::Agents,
        Resource::KnowledgeBases,
        Resource::SipConfigs,
        Resource::WebhookConfigs,
        Resource::TeamMembers,
        Resource::Rooms,
        Resource::Sessions,
        Resource::Recordings,
    ];

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Projects => "projects",
            Resource::Agents => "agents",
            Resource::KnowledgeBases => "knowledge_bases",
            Resource::SipConfigs => "sip_configs",
            Resource::WebhookConfigs => "webhook_configs",
            Resource::TeamMembers => "team_members",
            Resource::Rooms => "rooms",
            Resource::Sessions => "sessions",
            Resource::Recordings => "recordings",
        }
    }

    /// The plan's limit for this resource.
    pub fn limit(self, plans: &Plans, project: &ProjectInfo) -> i64 {
        let q = plans.for_plan(project.plan);
        match self {
            Resource::Projects => q.projects,
            Resource::Agents => q.agents,
            Resource::KnowledgeBases => q.knowledge_bases,
            Resource::SipConfigs => q.sip_configs,
            Resource::WebhookConfigs => q.webhook_configs,
            Resource::TeamMembers => q.team_members,
            Resource::Rooms => q.rooms,
            Resource::Sessions => q.sessions,
            Resource::Recordings => q.recordings,
        }
    }

    /// Counted per calendar month (UTC) rather than standing.
    pub fn monthly(self) -> bool {
        matches!(self, Resource::Sessions | Resource::Recordings)
    }
}

/// The counter of SIP calls active now (dial's concurrency limit): kept by
/// the same triggers as the plan resources.
pub const SIP_CALLS: &str = "sip_calls";
/// The counter of a project's SIP sessions, ever (inbound and outbound):
/// outbound dials number their default room from it.
pub const SIP_SESSIONS: &str = "sip_sessions";

/// `period` of a counter row: this UTC month for monthly resources (read
/// from the database clock, as the triggers do), 1970-01-01 for standing.
const PERIOD_SQL: &str = "CASE WHEN $3 THEN voxplane_month(now()) ELSE DATE '1970-01-01' END";

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The live projects of an owner (a project created by the CLI has none and
/// counts itself). Bounded by the plan's `projects` limit, so counting is
/// cheap; the owner's account row serialises creates.
const OWNED_PROJECTS_SQL: &str = "SELECT CASE WHEN p.owner_account_id IS NULL THEN 1::int8 ELSE \
     (SELECT count(*) FROM projects q WHERE q.owner_account_id = p.owner_account_id \
     AND q.deleted_at IS NULL) END AS n FROM projects p WHERE p.id = $1";

/// Open invitations past their expiry, which the `team_members` counter
/// still holds (time passing changes no row).
const EXPIRED_INVITATIONS_SQL: &str = "SELECT count(*) AS n FROM invitations WHERE project_id = $1 \
     AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= now()";

/// How much of a resource a project uses now: one counter row (this
/// month's for monthly resources).
pub async fn used(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    resource: Resource,
) -> ApiResult<i64> {
    if resource == Resource::Projects {
        let c: Count = diesel::sql_query(OWNED_PROJECTS_SQL)
            .bind::<Int8, _>(project_id)
            .get_result(conn)
            .await?;
        return Ok(c.n);
    }
    let counted = counter(conn, project_id, resource.as_str(), resource.monthly()).await?;
    if resource == Resource::TeamMembers {
        let expired: Count = diesel::sql_query(EXPIRED_INVITATIONS_SQL)
            .bind::<Int8, _>(project_id)
            .get_result(conn)
            .await?;
        return Ok((counted - expired.n).max(0));
    }
    Ok(counted)
}

/// A counter's value, without locking it (0 when it has no row).
pub async fn counter(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    key: &str,
    monthly: bool,
) -> QueryResult<i64> {
    let c: Option<Count> = diesel::sql_query(format!(
        "SELECT used AS n FROM quota_counters WHERE project_id = $1 AND resource = $2 \
         AND period = {PERIOD_SQL}"
    ))
    .bind::<Int8, _>(project_id)
    .bind::<Text, _>(key)
    .bind::<Bool, _>(monthly)
    .get_result(conn)
    .await
    .optional()?;
    Ok(c.map_or(0, |c| c.n))
}

/// Locks a counter row for the rest of the transaction (creating it at 0)
/// and returns its value: concurrent creates of the resource wait here for
/// the transaction that counted before them.
pub async fn lock_counter(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    key: &str,
    monthly: bool,
) -> QueryResult<i64> {
    let c: Count = diesel::sql_query(format!(
        "INSERT INTO quota_counters (project_id, resource, period, used) \
         VALUES ($1, $2, {PERIOD_SQL}, 0) \
         ON CONFLICT (project_id, resource, period) DO UPDATE SET used = quota_counters.used \
         RETURNING used AS n"
    ))
    .bind::<Int8, _>(project_id)
    .bind::<Text, _>(key)
    .bind::<Bool, _>(monthly)
    .get_result(conn)
    .await?;
    Ok(c.n)
}

/// One line of `GET /quota`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuotaLine {
    /// The plan's limit.
    pub limit: i64,
    /// Used now (this month for sessions and recordings; active for rooms).
    pub used: i64,
    /// `limit - used`, never below zero.
    pub remaining: i64,
}

/// Takes one unit of a resource or answers 429 `QUOTA_EXCEEDED`.
///
/// Call inside the creating transaction, before the insert: it locks the
/// resource's counter row (never the project row), and the insert's trigger
/// adds the new row to it before the lock is released at commit. Keep that
/// transaction short: no remote call until it has committed.
pub async fn reserve(
    conn: &mut AsyncPgConnection,
    plans: &Plans,
    upgrade_url: &str,
    project: &ProjectInfo,
    resource: Resource,
) -> ApiResult<()> {
    let limit = resource.limit(plans, project);
    let granted = reserve_up_to(
        conn,
        project.id,
        resource.as_str(),
        resource.monthly(),
        1,
        limit,
    )
    .await?;
    if granted == 0 {
        return Err(ApiError::QuotaExceeded {
            resource: resource.as_str(),
            limit,
            used: used(conn, project.id, resource).await?,
            upgrade_url: upgrade_url.to_owned(),
        });
    }
    Ok(())
}

/// Locks the counter `key` and answers how many of `wanted` new rows fit
/// under `limit` (the caller inserts at most that many in this transaction).
/// For `team_members`, open invitations past their expiry lapse first.
pub async fn reserve_up_to(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    key: &str,
    monthly: bool,
    wanted: i64,
    limit: i64,
) -> QueryResult<i64> {
    let mut used = lock_counter(conn, project_id, key, monthly).await?;
    if used + wanted > limit && key == Resource::TeamMembers.as_str() {
        // Lapsing moves the counter (trigger) on the row we hold.
        let lapsed = diesel::sql_query(
            "UPDATE invitations SET revoked_at = now() WHERE project_id = $1 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= now()",
        )
        .bind::<Int8, _>(project_id)
        .execute(conn)
        .await?;
        if lapsed > 0 {
            used = lock_counter(conn, project_id, key, monthly).await?;
        }
    }
    Ok((limit - used).clamp(0, wanted.max(0)))
}

/// Takes one unit of the `projects` quota of an account (the owner of the
/// project about to be created) or answers 429 `QUOTA_EXCEEDED`.
///
/// Call inside the creating transaction: it locks the account row, so
/// concurrent creates by one owner are counted one after another.
pub async fn reserve_owned_project(
    conn: &mut AsyncPgConnection,
    plans: &Plans,
    upgrade_url: &str,
    account_id: i64,
    plan: crate::limits::plans::Plan,
) -> ApiResult<()> {
    crate::db::accounts::lock(conn, account_id).await?;
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM projects WHERE owner_account_id = $1 AND deleted_at IS NULL",
    )
    .bind::<Int8, _>(account_id)
    .get_result(conn)
    .await?;
    let limit = plans.for_plan(plan).projects;
    if count.n >= limit {
        return Err(ApiError::QuotaExceeded {
            resource: Resource::Projects.as_str(),
            limit,
            used: count.n,
            upgrade_url: upgrade_url.to_owned(),
        });
    }
    Ok(())
}
