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
//!
//! No database lock is held across LiveKit's calls: a sync reads the
//! trunks, lists and replaces rules in LiveKit, then points each trunk at
//! its new rule only if no other sync did meanwhile (compare and set).
//! Syncs of a project run one at a time in a process ([`Syncs`], an
//! in-memory mutex, no connection held); against another node's sync,
//! losing the compare and set or LiveKit refusing a second rule on a trunk
//! starts another round from fresh state (at most [`ROUNDS`]).

use super::lines::line_agent;
use super::store;
use crate::auth::ProjectInfo;
use crate::calls::dispatch::agent_metadata;
use crate::db::agents::Agent;
use crate::error::{ApiError, ApiResult};
use crate::livekit::{LiveKit, proto};
use crate::state::AppState;
use livekit_api::services::sip::{CreateSIPDispatchRuleOptions, ListSIPDispatchRuleFilter};
use serde_json::json;

/// Rounds of a sync before it gives up (the next sync repairs).
pub const ROUNDS: usize = 3;

/// The dispatch-rule syncs of this process: one at a time per project.
#[derive(Debug, Default)]
pub struct Syncs(dashmap::DashMap<i64, std::sync::Arc<tokio::sync::Mutex<()>>>);

impl Syncs {
    fn of(&self, project_id: i64) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.0.entry(project_id).or_default().clone()
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
/// the line's agent (see the module documentation).
pub async fn sync_dispatch_rules(
    state: &AppState,
    lk: &LiveKit,
    project: &ProjectInfo,
) -> ApiResult<()> {
    let turn = state.sip_syncs.of(project.id);
    let _turn = turn.lock().await;
    let mut last = Ok(false);
    for _ in 0..ROUNDS {
        last = sync_round(state, lk, project).await;
        match &last {
            Ok(true) => return Ok(()),
            // Raced by another sync, or refused a second rule on a trunk.
            Ok(false) | Err(ApiError::Conflict { .. }) => continue,
            Err(_) => break,
        }
    }
    last.map(|_| ())
}

/// One round of [`sync_dispatch_rules`]; `false` when another sync
/// replaced a rule meanwhile (this round's rule was removed again).
async fn sync_round(state: &AppState, lk: &LiveKit, project: &ProjectInfo) -> ApiResult<bool> {
    // What the rules should be, read in one go (no transaction needed).
    let wanted_rules = {
        let mut conn = state.pool.get().await?;
        let trunks = store::trunks(&mut conn, project.id).await?;
        let mut out = Vec::with_capacity(trunks.len());
        for trunk in trunks {
            if trunk.inbound_trunk_id.is_none() {
                continue;
            }
            let agent = line_agent(&mut conn, project.id, &trunk.phone_number).await?;
            out.push((trunk, agent));
        }
        out
    };
    if wanted_rules.is_empty() {
        return Ok(true);
    }
    let rules = lk
        .call(
            lk.sip
                .list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All),
        )
        .await?;
    let mut settled = true;
    for (trunk, agent) in &wanted_rules {
        let Some(inbound) = trunk.inbound_trunk_id.as_deref() else {
            continue;
        };
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
        let mut conn = state.pool.get().await?;
        let replaced = store::replace_dispatch_rule(
            &mut conn,
            trunk.id,
            inbound,
            trunk.dispatch_rule_id.as_deref(),
            &id,
        )
        .await?;
        drop(conn);
        if !replaced {
            // Another sync (or a change of the trunk) got there first.
            match lk.call(lk.sip.delete_sip_dispatch_rule(&id)).await {
                Ok(_) | Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            settled = false;
            continue;
        }
        tracing::info!(trunk = trunk.id, rule = %id, agent = ?agent.as_ref().map(|a| a.id), "replaced a SIP dispatch rule");
    }
    Ok(settled)
}

/// [`sync_dispatch_rules`] after a change that committed, when LiveKit is
/// configured. A failure is logged, not answered: the change stands, and
/// the next sync repairs the rule (it replaces any rule that does not match).
pub async fn resync(state: &AppState, project: &ProjectInfo) {
    let Some(lk) = state.livekit.as_deref() else {
        return;
    };
    if let Err(e) = sync_dispatch_rules(state, lk, project).await {
        tracing::warn!(project = project.id, error = %e, "could not sync the SIP dispatch rules");
    }
}
