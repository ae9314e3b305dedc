//! Quota counters recomputed from the tables they count: `voxplane admin
//! recount-quotas [--project ID]` and a periodic check of every API process
//! (`quota_recount_secs`). Counters are kept by triggers, so drift means a
//! row changed behind them (a manual fix in SQL, a restored backup); each one
//! found is logged and repaired.
//!
//! Finding drift reads without locks. Repairing a counter locks its row (as
//! a create does) and counts again: a create that committed before is in the
//! count, one still open waits for the lock and adds its row after, so the
//! repaired value is exact whatever runs meanwhile.

use super::quota::{SIP_CALLS, SIP_SESSIONS, lock_counter};
use diesel::QueryResult;
use diesel::sql_types::{BigInt, Int8, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// Every counter: its key, whether it is monthly, and the SQL counting its
/// rows of project `$1` (this UTC month for monthly ones).
const COUNTERS: [(&str, bool, &str); 10] = [
    (
        "agents",
        false,
        "SELECT count(*) AS n FROM agents WHERE project_id = $1",
    ),
    (
        "knowledge_bases",
        false,
        "SELECT count(*) AS n FROM knowledge_bases WHERE project_id = $1",
    ),
    (
        "sip_configs",
        false,
        "SELECT count(*) AS n FROM sip_configs WHERE project_id = $1",
    ),
    (
        "webhook_configs",
        false,
        "SELECT count(*) AS n FROM webhook_endpoints WHERE project_id = $1",
    ),
    (
        "team_members",
        false,
        "SELECT (SELECT count(*) FROM project_members WHERE project_id = $1) + \
         (SELECT count(*) FROM invitations WHERE project_id = $1 \
         AND accepted_at IS NULL AND revoked_at IS NULL) AS n",
    ),
    (
        "rooms",
        false,
        "SELECT count(*) AS n FROM rooms WHERE project_id = $1 AND status = 'active'",
    ),
    (
        "sessions",
        true,
        "SELECT count(*) AS n FROM sessions WHERE project_id = $1 \
         AND started_at >= (voxplane_month(now())::timestamp AT TIME ZONE 'UTC')",
    ),
    (
        "recordings",
        true,
        "SELECT count(*) AS n FROM recordings WHERE project_id = $1 \
         AND created_at >= (voxplane_month(now())::timestamp AT TIME ZONE 'UTC')",
    ),
    (
        SIP_CALLS,
        false,
        "SELECT count(*) AS n FROM sessions WHERE project_id = $1 \
         AND session_type = 'sip' AND status = 'active'",
    ),
    (
        SIP_SESSIONS,
        false,
        "SELECT count(*) AS n FROM sessions WHERE project_id = $1 AND session_type = 'sip'",
    ),
];

/// A counter that did not match its rows (and was repaired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// Project.
    pub project_id: i64,
    /// Counter key (a `GET /quota` resource, `sip_calls` or `sip_sessions`).
    pub resource: String,
    /// What the counter said.
    pub counted: i64,
    /// What the rows say (the counter's value now).
    pub actual: i64,
}

#[derive(diesel::QueryableByName)]
struct Found {
    #[diesel(sql_type = Int8)]
    project_id: i64,
    #[diesel(sql_type = Text)]
    resource: String,
    #[diesel(sql_type = BigInt)]
    counted: i64,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Checks the counters of one project (or of every live project) against
/// their tables and repairs those that differ; returns what was repaired.
pub async fn recount(
    conn: &mut AsyncPgConnection,
    project: Option<i64>,
) -> QueryResult<Vec<Drift>> {
    let mut repaired = Vec::new();
    for found in find_drift(conn, project).await? {
        let Some((key, monthly, sql)) = COUNTERS.iter().find(|c| c.0 == found.resource) else {
            continue;
        };
        let actual = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                lock_counter(conn, found.project_id, key, *monthly).await?;
                let c: Count = diesel::sql_query(*sql)
                    .bind::<Int8, _>(found.project_id)
                    .get_result(conn)
                    .await?;
                diesel::sql_query(
                    "UPDATE quota_counters SET used = $3 WHERE project_id = $1 AND resource = $2 \
                     AND period = CASE WHEN $4 THEN voxplane_month(now()) ELSE DATE '1970-01-01' END",
                )
                .bind::<Int8, _>(found.project_id)
                .bind::<Text, _>(*key)
                .bind::<Int8, _>(c.n)
                .bind::<diesel::sql_types::Bool, _>(*monthly)
                .execute(conn)
                .await?;
                Ok(c.n)
            })
            .await?;
        if actual != found.counted {
            repaired.push(Drift {
                project_id: found.project_id,
                resource: found.resource,
                counted: found.counted,
                actual,
            });
        }
    }
    Ok(repaired)
}

/// Counters whose value differs from a count of their rows now (read
/// without locks: a create in flight can show up as a difference, which the
/// locked recount then finds exact).
async fn find_drift(conn: &mut AsyncPgConnection, project: Option<i64>) -> QueryResult<Vec<Found>> {
    let counts: Vec<String> = COUNTERS
        .iter()
        .map(|(key, monthly, sql)| {
            format!(
                "SELECT p.id AS project_id, '{key}'::text AS resource, \
                 COALESCE((SELECT c.used FROM quota_counters c WHERE c.project_id = p.id \
                 AND c.resource = '{key}' AND c.period = CASE WHEN {monthly} \
                 THEN voxplane_month(now()) ELSE DATE '1970-01-01' END), 0) AS counted, \
                 ({}) AS actual FROM projects p \
                 WHERE p.deleted_at IS NULL AND ($1::int8 IS NULL OR p.id = $1)",
                sql.replace("$1", "p.id").replacen("AS n", "", 1)
            )
        })
        .collect();
    diesel::sql_query(format!(
        "SELECT * FROM ({}) t WHERE counted <> actual ORDER BY project_id, resource",
        counts.join(" UNION ALL ")
    ))
    .bind::<Nullable<Int8>, _>(project)
    .load(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::quota::Resource;

    /// Every resource `GET /quota` reads from a counter is recounted here.
    #[test]
    fn every_counted_resource_has_a_recount() {
        for r in Resource::ALL {
            if r != Resource::Projects {
                assert!(
                    COUNTERS
                        .iter()
                        .any(|c| c.0 == r.as_str() && c.1 == r.monthly()),
                    "{r:?}"
                );
            }
        }
    }
}
