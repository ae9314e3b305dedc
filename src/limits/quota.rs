//! Plan quotas: what a project may create, counted in Postgres.
//!
//! [`reserve`] is the one check every creating endpoint uses. It must run in
//! the transaction that inserts the new row: it locks the project row first,
//! so concurrent creates of one project are counted one after another and a
//! single remaining slot is taken exactly once.

use crate::auth::ProjectInfo;
use crate::config::Plans;
use crate::db::projects;
use crate::error::{ApiError, ApiResult};
use diesel::sql_types::{BigInt, Int8};
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

    /// SQL counting what a project uses of this resource (`$1` = project id),
    /// or `None` while the resource has no table yet.
    fn usage_sql(self) -> Option<&'static str> {
        match self {
            // The live projects of the project's owner (a project created by
            // the CLI has none and counts itself).
            Resource::Projects => Some(
                "SELECT CASE WHEN p.owner_account_id IS NULL THEN 1::int8 ELSE \
                 (SELECT count(*) FROM projects q WHERE q.owner_account_id = p.owner_account_id \
                 AND q.deleted_at IS NULL) END AS n FROM projects p WHERE p.id = $1",
            ),
            // Members plus open invitations.
            Resource::TeamMembers => Some(
                "SELECT (SELECT count(*) FROM project_members WHERE project_id = $1) + \
                 (SELECT count(*) FROM invitations WHERE project_id = $1 AND accepted_at IS NULL \
                 AND revoked_at IS NULL AND expires_at > now()) AS n",
            ),
            Resource::Agents => Some("SELECT count(*) AS n FROM agents WHERE project_id = $1"),
            Resource::Rooms => {
                Some("SELECT count(*) AS n FROM rooms WHERE project_id = $1 AND status = 'active'")
            }
            Resource::Sessions => Some(
                "SELECT count(*) AS n FROM sessions WHERE project_id = $1 \
                 AND started_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            ),
            Resource::WebhookConfigs => {
                Some("SELECT count(*) AS n FROM webhook_endpoints WHERE project_id = $1")
            }
            Resource::KnowledgeBases => {
                Some("SELECT count(*) AS n FROM knowledge_bases WHERE project_id = $1")
            }
            Resource::SipConfigs => {
                Some("SELECT count(*) AS n FROM sip_configs WHERE project_id = $1")
            }
            Resource::Recordings => Some(
                "SELECT count(*) AS n FROM recordings WHERE project_id = $1 \
                 AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
            ),
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How much of a resource a project uses now.
pub async fn used(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    resource: Resource,
) -> ApiResult<i64> {
    let Some(sql) = resource.usage_sql() else {
        return Ok(0);
    };
    let query = diesel::sql_query(sql);
    let count: Count = if sql.contains("$1") {
        query.bind::<Int8, _>(project_id).get_result(conn).await?
    } else {
        query.get_result(conn).await?
    };
    Ok(count.n)
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
/// Call inside the creating transaction, before the insert.
pub async fn reserve(
    conn: &mut AsyncPgConnection,
    plans: &Plans,
    upgrade_url: &str,
    project: &ProjectInfo,
    resource: Resource,
) -> ApiResult<()> {
    projects::lock(conn, project.id).await?;
    let limit = resource.limit(plans, project);
    let used = used(conn, project.id, resource).await?;
    if used >= limit {
        return Err(ApiError::QuotaExceeded {
            resource: resource.as_str(),
            limit,
            used,
            upgrade_url: upgrade_url.to_owned(),
        });
    }
    Ok(())
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
