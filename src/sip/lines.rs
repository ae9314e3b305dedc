//! The agent of a phone line, shared by provisioning, the dispatch rules
//! and the LiveKit webhook (an inbound call's session gets it).

use super::store;
use crate::db::agents::Agent;
use crate::db::schema::agents as a;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The agent of a line: its config's, else the project's first active one
/// (also when the config's agent is inactive or gone).
pub async fn line_agent(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    phone_number: &str,
) -> QueryResult<Option<Agent>> {
    let config = store::config_for_line(conn, project_id, phone_number, None).await?;
    if let Some(id) = config.and_then(|c| c.agent_config_id) {
        let configured = a::table
            .filter(a::project_id.eq(project_id))
            .filter(a::id.eq(id))
            .filter(a::is_active.eq(true))
            .select(Agent::as_select())
            .first(conn)
            .await
            .optional()?;
        if configured.is_some() {
            return Ok(configured);
        }
    }
    a::table
        .filter(a::project_id.eq(project_id).and(a::is_active.eq(true)))
        .order(a::id.asc())
        .select(Agent::as_select())
        .first(conn)
        .await
        .optional()
}
