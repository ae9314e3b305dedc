//! The agents a call dispatches and what each is told.

use crate::db::agents::Agent;
use crate::error::{ApiError, ApiResult};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::json;

/// The JSON an agent receives as dispatch metadata: its configuration.
pub fn agent_metadata(agent: &Agent, room: &str) -> String {
    json!({
        "agent_config_id": agent.id,
        "project_id": agent.project_id,
        "room": room,
        "name": agent.name,
        "agent_type": agent.agent_type,
        "llm_provider": agent.llm_provider,
        "llm_model": agent.llm_model,
        "stt_provider": agent.stt_provider,
        "stt_model": agent.stt_model,
        "tts_provider": agent.tts_provider,
        "tts_model": agent.tts_model,
        "tts_voice": agent.tts_voice,
        "instructions": agent.instructions,
        "greeting": agent.greeting,
        "tools": agent.tools,
        "knowledge_base_ids": agent.knowledge_base_ids,
    })
    .to_string()
}

/// Why the agents a request names cannot be dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDispatchable {
    /// Ids that are not agents of the project.
    Unknown(Vec<i64>),
    /// An agent that exists but is inactive.
    Inactive(i64),
}

impl From<NotDispatchable> for ApiError {
    fn from(e: NotDispatchable) -> Self {
        match e {
            NotDispatchable::Unknown(missing) => ApiError::BadRequest {
                message: format!("Unknown agent_config_id(s) for this project: {missing:?}"),
                details: Some(json!({ "field": "agent_config_ids", "unknown": missing })),
            },
            NotDispatchable::Inactive(id) => {
                ApiError::invalid_field("agent_config_ids", format!("Agent {id} is inactive"))
            }
        }
    }
}

/// The agents `ids` name, in id order, from `known` (agents of the project:
/// at least its active ones and those named), or — none named and
/// `default_first_active` — the project's first active agent.
pub fn choose(
    known: &[&Agent],
    ids: &[i64],
    default_first_active: bool,
) -> Result<Vec<Agent>, NotDispatchable> {
    if ids.is_empty() {
        if !default_first_active {
            return Ok(Vec::new());
        }
        let first = known.iter().filter(|a| a.is_active).min_by_key(|a| a.id);
        return Ok(first.map(|a| (*a).clone()).into_iter().collect());
    }
    let mut unique = ids.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let found: Vec<&Agent> = unique
        .iter()
        .filter_map(|id| known.iter().find(|a| a.id == *id).copied())
        .collect();
    let missing: Vec<i64> = unique
        .iter()
        .copied()
        .filter(|id| !found.iter().any(|a| a.id == *id))
        .collect();
    if !missing.is_empty() {
        return Err(NotDispatchable::Unknown(missing));
    }
    if let Some(inactive) = found.iter().find(|a| !a.is_active) {
        return Err(NotDispatchable::Inactive(inactive.id));
    }
    Ok(found.into_iter().cloned().collect())
}

/// Agents of the given projects that [`choose`] may pick: the active ones
/// and the ones named, in id order, read under the projects' agents lock
/// ([`lock_for_starts`](crate::db::agents::lock_for_starts)), so they stay
/// until the transaction ends.
pub async fn candidates(
    conn: &mut AsyncPgConnection,
    project_ids: &[i64],
    named: &[i64],
) -> QueryResult<Vec<Agent>> {
    use crate::db::schema::agents as a;
    crate::db::agents::lock_for_starts(conn, project_ids).await?;
    a::table
        .filter(a::project_id.eq_any(project_ids))
        .filter(a::is_active.eq(true).or(a::id.eq_any(named)))
        .order(a::id.asc())
        .select(Agent::as_select())
        .load(conn)
        .await
}

/// The agents a request names (or the project's first active one), checked.
pub async fn agents_to_dispatch(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    ids: &[i64],
    default_first_active: bool,
) -> ApiResult<Vec<Agent>> {
    let known = candidates(conn, &[project_id], ids).await?;
    let known: Vec<&Agent> = known.iter().collect();
    Ok(choose(&known, ids, default_first_active)?)
}
