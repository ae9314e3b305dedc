//! The dispatch rule of each trunk: it puts each inbound call of the
//! trunk's number in its own project room (`<prefix>_call-…`) with the
//! line's agent dispatched, the agent of the number's config, else the
//! project's first active agent ([`line_agent`]).
//!
//! That agent changes with the configs and the agents, so every change that
//! can move it (config create/update/delete, agent create/update/delete)
//! calls [`resync`] once it committed. A rule whose agent (dispatch name and
//! metadata) differs from the line's is replaced: deleted, then created
//! (LiveKit refuses two rules on one trunk, and UpdateSIPDispatchRule is not
//! among the RPCs Voxplane uses), and the trunk row gets the new id. A rule
//! that already matches is left alone.

use crate::auth::ProjectInfo;
use crate::db::agents::Agent;
use crate::db::sip as store;
use crate::error::{ApiError, ApiResult};
use crate::livekit::{LiveKit, proto};
use crate::routes::token::{agent_metadata, agents_to_dispatch};
use crate::state::AppState;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use livekit_api::services::sip::{CreateSIPDispatchRuleOptions, ListSIPDispatchRuleFilter};
use serde_json::json;

/// The agent of a line: its config's, else the project's first active one
/// (also when the config's agent is inactive).
pub async fn line_agent(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    phone_number: &str,
) -> ApiResult<Option<Agent>> {
    let config = store::config_for_line(conn, project_id, phone_number, None).await?;
    let ids: Vec<i64> = config.and_then(|c| c.agent_config_id).into_iter().collect();
    let found = agents_to_dispatch(conn, project_id, &ids, true).await;
    match found {
        Ok(mut agents) => Ok(agents.pop()),
        // An inactive configured agent: fall back to the first active one.
        Err(ApiError::BadRequest { .. }) => {
            Ok(agents_to_dispatch(conn, project_id, &[], true).await?.pop())
        }
        Err(e) => Err(e),
    }
}

/// The agents a rule dispatches: (dispatch name, metadata).
fn wanted(agent: Option<&Agent>) -> Vec<(String, String)> {
    agent
        .map(|a| (a.dispatch_name.clone(), agent_metadata(a, "")))
        .into_iter()
        .collect()
}

fn dispatched(rule: &proto::SipDispatchRuleInfo) -> Vec<(String, String)> {
    rule.room_config
        .iter()
        .flat_map(|c| &c.agents)
        .map(|a| (a.agent_name.clone(), a.metadata.clone()))
        .collect()
}

/// Creates the dispatch rule of an inbound trunk, dispatching `agent`;
/// returns its id.
pub async fn create_rule(
    lk: &LiveKit,
    project: &ProjectInfo,
    name: &str,
    inbound_trunk_id: &str,
    agent: Option<&Agent>,
) -> ApiResult<String> {
    let room_config = agent.map(|_| proto::RoomConfiguration {
        agents: wanted(agent)
            .into_iter()
            .map(|(agent_name, metadata)| proto::RoomAgentDispatch {
                agent_name,
                metadata,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    let rule = lk
        .call(lk.sip.create_sip_dispatch_rule(
            proto::sip_dispatch_rule::Rule::DispatchRuleIndividual(
                proto::SipDispatchRuleIndividual {
                    room_prefix: format!("{}_call-", project.room_prefix),
                    ..Default::default()
                },
            ),
            CreateSIPDispatchRuleOptions {
                name: name.to_owned(),
                metadata: json!({ "project_id": project.id }).to_string(),
                trunk_ids: vec![inbound_trunk_id.to_owned()],
                room_config,
                ..Default::default()
            },
        ))
        .await?;
    Ok(rule.sip_dispatch_rule_id)
}

/// Brings the dispatch rule of each of the project's trunks in line with
/// the line's agent (see the module documentation). Syncs of one project
/// run one after another.
pub async fn sync_dispatch_rules(
    conn: &mut AsyncPgConnection,
    lk: &LiveKit,
    project: &ProjectInfo,
) -> ApiResult<()> {
    conn.transaction::<_, ApiError, _>(async |conn| {
        store::lock_rules(conn, project.id).await?;
        let trunks = store::trunks(conn, project.id).await?;
        if trunks.iter().all(|t| t.inbound_trunk_id.is_none()) {
            return Ok(());
        }
        let rules = lk
            .call(lk.sip.list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All))
            .await?;
        for trunk in &trunks {
            let Some(inbound) = trunk.inbound_trunk_id.as_deref() else {
                continue;
            };
            let agent = line_agent(conn, project.id, &trunk.phone_number).await?;
            // Every rule on the trunk is this trunk's.
            let on_trunk: Vec<&proto::SipDispatchRuleInfo> = rules
                .iter()
                .filter(|r| r.trunk_ids.iter().any(|t| t == inbound))
                .collect();
            let current = match on_trunk.as_slice() {
                [only] => Some(*only),
                _ => None,
            };
            if current.is_some_and(|r| {
                trunk.dispatch_rule_id.as_deref() == Some(r.sip_dispatch_rule_id.as_str())
                    && dispatched(r) == wanted(agent.as_ref())
            }) {
                continue;
            }
            for old in &on_trunk {
                match lk
                    .call(lk.sip.delete_sip_dispatch_rule(&old.sip_dispatch_rule_id))
                    .await
                {
                    Ok(_) | Err(ApiError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let id = create_rule(lk, project, &trunk.name, inbound, agent.as_ref()).await?;
            store::set_dispatch_rule(conn, trunk.id, &id).await?;
            tracing::info!(trunk = trunk.id, rule = %id, agent = ?agent.as_ref().map(|a| a.id), "replaced a SIP dispatch rule");
        }
        Ok(())
    })
    .await
}

/// [`sync_dispatch_rules`] after a change that committed, when LiveKit is
/// configured. A failure is logged, not answered: the change stands, and
/// the next sync repairs the rule (it replaces any rule that does not match).
pub async fn resync(state: &AppState, conn: &mut AsyncPgConnection, project: &ProjectInfo) {
    let Some(lk) = state.livekit.as_deref() else {
        return;
    };
    if let Err(e) = sync_dispatch_rules(conn, lk, project).await {
        tracing::warn!(project = project.id, error = %e, "could not sync the SIP dispatch rules");
    }
}
