//! The `agents` table.

use super::schema::agents;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A row of `agents`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = agents)]
pub struct Agent {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub agent_type: String,
    pub dispatch_name: String,
    pub llm_provider: Option<String>,
    pub llm_model: Option<String>,
    pub stt_provider: Option<String>,
    pub stt_model: Option<String>,
    pub tts_provider: Option<String>,
    pub tts_model: Option<String>,
    pub tts_voice: Option<String>,
    pub instructions: Option<String>,
    pub greeting: Option<String>,
    pub tools: serde_json::Value,
    pub knowledge_base_ids: Vec<i64>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Values of a new agent.
#[derive(Debug, Insertable)]
#[diesel(table_name = agents)]
pub struct NewAgent {
    pub project_id: i64,
    pub name: String,
    pub agent_type: String,
    pub dispatch_name: String,
    pub llm_provider: Option<String>,
    pub llm_model: Option<String>,
    pub stt_provider: Option<String>,
    pub stt_model: Option<String>,
    pub tts_provider: Option<String>,
    pub tts_model: Option<String>,
    pub tts_voice: Option<String>,
    pub instructions: Option<String>,
    pub greeting: Option<String>,
    pub tools: serde_json::Value,
    pub knowledge_base_ids: Vec<i64>,
    pub is_active: bool,
}

/// A partial update; `None` leaves a column alone, `Some(None)` clears it.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = agents)]
pub struct AgentChanges {
    pub name: Option<String>,
    pub agent_type: Option<String>,
    pub dispatch_name: Option<String>,
    pub llm_provider: Option<Option<String>>,
    pub llm_model: Option<Option<String>>,
    pub stt_provider: Option<Option<String>>,
    pub stt_model: Option<Option<String>>,
    pub tts_provider: Option<Option<String>>,
    pub tts_model: Option<Option<String>>,
    pub tts_voice: Option<Option<String>>,
    pub instructions: Option<Option<String>>,
    pub greeting: Option<Option<String>>,
    pub tools: Option<serde_json::Value>,
    pub knowledge_base_ids: Option<Vec<i64>>,
    pub is_active: Option<bool>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Inserts an agent.
pub async fn insert(conn: &mut AsyncPgConnection, new: &NewAgent) -> QueryResult<Agent> {
    diesel::insert_into(agents::table)
        .values(new)
        .returning(Agent::as_returning())
        .get_result(conn)
        .await
}

/// The agents of a project, oldest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    active: Option<bool>,
) -> QueryResult<Vec<Agent>> {
    let mut q = agents::table
        .filter(agents::project_id.eq(project_id))
        .into_boxed();
    if let Some(active) = active {
        q = q.filter(agents::is_active.eq(active));
    }
    q.order(agents::id.asc())
        .select(Agent::as_select())
        .load(conn)
        .await
}

/// One agent of a project.
pub async fn find(conn: &mut AsyncPgConnection, project_id: i64, id: i64) -> QueryResult<Agent> {
    agents::table
        .filter(agents::project_id.eq(project_id).and(agents::id.eq(id)))
        .select(Agent::as_select())
        .first(conn)
        .await
}

/// Applies changes to an agent of a project.
pub async fn update(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
    changes: &AgentChanges,
) -> QueryResult<Agent> {
    diesel::update(agents::table.filter(agents::project_id.eq(project_id).and(agents::id.eq(id))))
        .set(changes)
        .returning(Agent::as_returning())
        .get_result(conn)
        .await
}

/// The statement taking the agents lock of the projects `$1` (in project
/// order) with the advisory-lock function named; the key is the one the
/// `agents_start_lock` trigger takes.
macro_rules! agents_lock {
    ($lock:literal) => {
        concat!(
            "SELECT count(",
            $lock,
            "(hashtext('voxplane.agents'), (p % 2147483647)::int4)) AS n ",
            "FROM (SELECT DISTINCT p FROM unnest($1::int8[]) AS p ORDER BY p) t"
        )
    };
}

/// Takes the agents lock of the projects, shared, until the transaction
/// ends: what a start reads of their agents stays true until it commits.
/// Sessions keep no foreign key to their agent; an agent is deleted only
/// under this lock taken exclusively (by [`delete`] and, for every other
/// path, by a trigger on `agents`, migration `agent_start_lock`), so a
/// delete waits for the starts in flight and starts after it see the agent
/// gone. A lock in memory rather than a row lock (`FOR KEY SHARE`): every
/// batch of starts takes it for each of its projects, and a row lock writes
/// the row. Taken in project order, as every batch takes them.
pub async fn lock_for_starts(conn: &mut AsyncPgConnection, project_ids: &[i64]) -> QueryResult<()> {
    use diesel::sql_types::{Array, BigInt};
    crate::prepared!(
        agents_lock!("pg_advisory_xact_lock_shared"),
        crate::db::prepared::bind::<Array<BigInt>, _>(project_ids)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What [`delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The agent is gone (its sessions keep no reference to it).
    Yes,
    /// No such agent in the project.
    NotFound,
    /// The agent has this many active sessions: kept.
    Busy(i64),
}

/// Deletes an agent of a project unless it is on a call: under the project's
/// agents lock taken exclusively, so a start in flight is counted (it
/// commits first) and a later one sees the agent gone.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    id: i64,
) -> QueryResult<Deleted> {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        diesel::sql_query(agents_lock!("pg_advisory_xact_lock"))
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(vec![project_id])
            .execute(conn)
            .await?;
        use super::schema::sessions as s;
        let active: i64 = s::table
            .filter(
                s::project_id
                    .eq(project_id)
                    .and(s::agent_config_id.eq(id))
                    .and(s::status.eq(super::sessions::SessionStatus::Active)),
            )
            .count()
            .get_result(conn)
            .await?;
        if active > 0 {
            return Ok(Deleted::Busy(active));
        }
        let n = diesel::delete(
            agents::table.filter(agents::project_id.eq(project_id).and(agents::id.eq(id))),
        )
        .execute(conn)
        .await?;
        Ok(if n == 1 {
            Deleted::Yes
        } else {
            Deleted::NotFound
        })
    })
    .await
}
