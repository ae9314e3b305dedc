//! Session starts, batched across concurrent requests.
//!
//! Every call that dispatches an agent starts a session, and the plan counts
//! sessions per month. Started one transaction at a time, each start paid a
//! commit, and (before the quota counters) a project lock and a count of the
//! month's sessions. Here concurrent starts are written together
//! ([`BatchQueue`]): one transaction per batch reads the agents the batch
//! names, locks the `sessions` counter of each project once and grants what
//! fits under the plan, inserts the sessions in one statement (the trigger
//! adds them to the counter) and their `session.started` events in another,
//! and commits. Each request is answered after the commit that holds its
//! session, so an answered start is as durable as one written alone.
//!
//! The writers run on a thread of their own ([`Home`]), like the transcript
//! writers.

use super::dispatch::{self, NotDispatchable};
use crate::db::agents::Agent;
use crate::db::batch::{BatchQueue, Failed, Home};
use crate::db::schema::sessions;
use crate::db::sessions::{NewSession, Session};
use crate::error::ApiError;
use crate::events;
use crate::limits::quota::{self, Resource};
use crate::state::AppState;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Starts per transaction at most.
pub const MAX_BATCH: usize = 256;
/// Batches written at once at most (each on its own connection).
pub const MAX_WRITERS: usize = 2;

/// Which agents a start dispatches.
#[derive(Debug, Clone)]
pub enum Agents {
    /// A token's dispatch: the named agents (existing and active), or the
    /// project's first active agent when none is named. No agent: no session.
    Dispatch(Vec<i64>),
    /// `POST /sessions`: a session for this agent (which must exist), or for none.
    Named(Option<i64>),
}

/// A session to start.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Project.
    pub project_id: i64,
    /// The plan's monthly `sessions` limit of the project.
    pub limit: i64,
    /// The agents.
    pub agents: Agents,
    /// The session. For [`Agents::Dispatch`], `agent_config_id` and the
    /// `agents_dispatched` metadata are filled in from the chosen agents.
    pub session: NewSession,
}

/// A start done.
#[derive(Debug, Clone)]
pub struct Started {
    /// The agents dispatched (in id order).
    pub agents: Vec<Agent>,
    /// The new session; `None` when the room already had an active one (or,
    /// for a dispatch, when no agent was dispatched).
    pub session: Option<Session>,
}

/// Why a start was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The dispatch names agents it cannot use.
    Agents(NotDispatchable),
    /// `Agents::Named` names no agent of the project.
    UnknownAgent(i64),
    /// The month's sessions are used up.
    Quota {
        /// The plan's limit.
        limit: i64,
        /// Sessions this month.
        used: i64,
    },
}

impl Refused {
    /// The API error answering a refused start.
    pub fn into_error(self, upgrade_url: &str) -> ApiError {
        match self {
            Refused::Agents(e) => e.into(),
            Refused::UnknownAgent(id) => {
                ApiError::invalid_field("agent_config_id", format!("Unknown agent_config_id {id}"))
            }
            Refused::Quota { limit, used } => ApiError::QuotaExceeded {
                resource: Resource::Sessions.as_str(),
                limit,
                used,
                upgrade_url: upgrade_url.to_owned(),
            },
        }
    }
}

/// What one start gives back.
pub type Outcome = Result<Started, Refused>;

/// The queue of starts waiting to be written; shared behind an `Arc`.
pub struct SessionStarter {
    queue: Arc<BatchQueue<StartRequest, Outcome>>,
    home: OnceLock<Result<Home, String>>,
}

impl Default for SessionStarter {
    fn default() -> Self {
        Self {
            queue: Arc::new(BatchQueue::new(
                "session start",
                write_starts,
                MAX_WRITERS,
                MAX_BATCH,
            )),
            home: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for SessionStarter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStarter").finish_non_exhaustive()
    }
}

impl SessionStarter {
    /// Starts a session (or refuses it) and returns once it is committed.
    pub async fn start(&self, state: &AppState, request: StartRequest) -> Result<Outcome, Failed> {
        let home = self
            .home
            .get_or_init(|| {
                let url = state.settings.database_url.as_deref().unwrap_or_default();
                let timeout = std::time::Duration::from_millis(state.settings.database_timeout_ms);
                Home::start("session-starts", url, MAX_WRITERS as u32, timeout)
            })
            .as_ref()
            .map_err(|e| Failed::Unavailable(e.clone()))?;
        let outcome = self.queue.submit(request, &home.handle, &home.pool).await?;
        if matches!(
            &outcome,
            Ok(Started {
                session: Some(_),
                ..
            })
        ) {
            events::note_emitted();
        }
        Ok(outcome)
    }
}

fn write_starts<'a>(
    conn: &'a mut AsyncPgConnection,
    batch: &'a [&'a StartRequest],
) -> BoxFuture<'a, QueryResult<Vec<Outcome>>> {
    Box::pin(async move {
        conn.transaction::<_, diesel::result::Error, _>(async |conn| write(conn, batch).await)
            .await
    })
}

/// A start on its way through [`write`]: its agents, then its place in the
/// insert.
struct Plan {
    agents: Vec<Agent>,
    session: Option<NewSession>,
}

/// One batch, in the caller's transaction.
async fn write(conn: &mut AsyncPgConnection, batch: &[&StartRequest]) -> QueryResult<Vec<Outcome>> {
    // 1. The agents every start names (and the active ones, for defaults).
    let mut projects: Vec<i64> = batch.iter().map(|r| r.project_id).collect();
    projects.sort_unstable();
    projects.dedup();
    let named: Vec<i64> = batch
        .iter()
        .flat_map(|r| match &r.agents {
            Agents::Dispatch(ids) => ids.clone(),
            Agents::Named(id) => id.iter().copied().collect(),
        })
        .collect();
    let known = dispatch::candidates(conn, &projects, &named).await?;
    let mut plans: Vec<Result<Plan, Refused>> = batch.iter().map(|r| plan(r, &known)).collect();

    // 2. The quota: each project's counter locked once, starts granted in
    // arrival order while the month has room.
    let mut wanted: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (r, p) in batch.iter().zip(&plans) {
        if let Ok(Plan {
            session: Some(_), ..
        }) = p
        {
            let w = wanted.entry(r.project_id).or_insert((0, r.limit));
            w.0 += 1;
        }
    }
    let mut room: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (&project, &(_, limit)) in &wanted {
        let used = quota::lock_counter(conn, project, Resource::Sessions.as_str(), true).await?;
        room.insert(project, ((limit - used).max(0), used));
    }
    for (r, p) in batch.iter().zip(plans.iter_mut()) {
        if let Ok(Plan {
            session: Some(_), ..
        }) = p
            && let Some((left, used)) = room.get_mut(&r.project_id)
        {
            if *left > 0 {
                *left -= 1;
                *used += 1;
            } else {
                *p = Err(Refused::Quota {
                    limit: r.limit,
                    used: *used,
                });
            }
        }
    }

    // 3. The sessions, one statement; a room with an active session keeps it.
    let rows: Vec<_> = batch
        .iter()
        .zip(&plans)
        .filter_map(|(r, p)| match p {
            Ok(Plan {
                session: Some(s), ..
            }) => Some((
                sessions::project_id.eq(r.project_id),
                sessions::room_name.eq(s.room_name.as_str()),
                sessions::agent_config_id.eq(s.agent_config_id),
                sessions::caller_identity.eq(s.caller_identity.as_deref()),
                sessions::session_type.eq(s.session_type.as_str()),
                sessions::metadata.eq(&s.metadata),
                sessions::room_sid.eq(s.room_sid.as_deref()),
            )),
            _ => None,
        })
        .collect();
    let mut created: Vec<Session> = if rows.is_empty() {
        Vec::new()
    } else {
        diesel::insert_into(sessions::table)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(Session::as_returning())
            .get_results(conn)
            .await?
    };

    // 4. Their events, one statement.
    if !created.is_empty() {
        let new: Vec<(i64, &str, Value)> = created
            .iter()
            .map(|s| {
                (
                    s.project_id,
                    "session.started",
                    json!({
                        "session_id": s.id,
                        "room_name": s.room_name,
                        "agent_config_id": s.agent_config_id,
                        "session_type": s.session_type,
                        "caller_identity": s.caller_identity,
                    }),
                )
            })
            .collect();
        events::emit_many(conn, &new).await?;
    }

    // Each session to the first start of its room in the batch.
    Ok(batch
        .iter()
        .zip(plans)
        .map(|(r, p)| {
            let p = p?;
            let session = p.session.and_then(|s| {
                let i = created
                    .iter()
                    .position(|c| c.project_id == r.project_id && c.room_name == s.room_name)?;
                Some(created.swap_remove(i))
            });
            Ok(Started {
                agents: p.agents,
                session,
            })
        })
        .collect())
}

/// The agents of one start and the session it asks for.
fn plan(r: &StartRequest, known: &[Agent]) -> Result<Plan, Refused> {
    let of_project: Vec<&Agent> = known
        .iter()
        .filter(|a| a.project_id == r.project_id)
        .collect();
    match &r.agents {
        Agents::Dispatch(ids) => {
            let agents = dispatch::choose(&of_project, ids, true).map_err(Refused::Agents)?;
            let session = <[Agent]>::first(&agents).map(|first| NewSession {
                agent_config_id: Some(first.id),
                metadata: json!({ "agents_dispatched": agents.iter().map(|a| a.id).collect::<Vec<_>>() }),
                ..r.session.clone()
            });
            Ok(Plan { agents, session })
        }
        Agents::Named(id) => {
            if let Some(id) = *id
                && !of_project.iter().any(|a| a.id == id)
            {
                return Err(Refused::UnknownAgent(id));
            }
            Ok(Plan {
                agents: Vec::new(),
                session: Some(NewSession {
                    agent_config_id: *id,
                    ..r.session.clone()
                }),
            })
        }
    }
}
