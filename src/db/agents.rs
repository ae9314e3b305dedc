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

/// Deletes an agent of a project; returns whether it existed.
pub async fn delete(conn: &mut AsyncPgConnection, project_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::delete(
        agents::table.filter(agents::project_id.eq(project_id).and(agents::id.eq(id))),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}
