//! Session starts, batched across concurrent requests.
//!
//! Every call that dispatches an agent starts a session, and the plan counts
//! sessions per month. Concurrent starts are written together
//! ([`BatchQueue`]) so that a commit is paid per batch, not per start: one
//! transaction per batch reads the agents the batch names (under a shared
//! lock per project, see [`dispatch::candidates`]), locks the `sessions`
//! counter of each project once and grants what fits under the plan, inserts
//! the sessions and their `session.started` events in one statement (the
//! sessions' trigger adds them to the counters), and commits: four
//! statements and a commit per batch, whatever its size and however many
//! projects it holds. Each request is answered after the commit that holds
//! its session, so an answered start is as durable as one written alone.
//!
//! The writers run on a thread of their own ([`Home`]), like the transcript
//! writers.

use super::dispatch::{self, NotDispatchable};
use crate::db::agents::Agent;
use crate::db::batch::{BatchQueue, Failed, Home};
use crate::db::prepared::bind;
use crate::db::sessions::{NewSession, Session};
use crate::error::ApiError;
use crate::events;
use crate::limits::quota::Resource;
use crate::state::AppState;
use diesel::QueryResult;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use serde_json::json;
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
    /// What the writers have written so far.
    pub fn written(&self) -> crate::db::batch::Written {
        self.queue.written()
    }

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

/// Locks the `sessions` counters of this month of the projects `$1`, in
/// project order. A lock, not a no-op update: the sessions' trigger updates
/// the rows once more in the same transaction, and each update is a new row
/// version, once per project in every batch.
const LOCK_COUNTERS: &str = "\
SELECT project_id, used FROM quota_counters
WHERE project_id = ANY($1::int8[]) AND resource = 'sessions' AND period = voxplane_month(now())
ORDER BY project_id
FOR UPDATE";

/// Creates the missing `sessions` counters of this month of the projects `$1`
/// at 0 (the first start of a project in a month).
const CREATE_COUNTERS: &str = "\
INSERT INTO quota_counters (project_id, resource, period, used)
SELECT p, 'sessions', voxplane_month(now()), 0 FROM unnest($1::int8[]) AS p ORDER BY p
ON CONFLICT (project_id, resource, period) DO NOTHING";

/// Inserts the sessions (arrays in arrival order) and, for each one made,
/// its `session.started` event (the first start of the room gives the id);
/// the sessions' trigger adds them to the counters locked above.
const INSERT_STARTS: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $8::text[])
        WITH ORDINALITY AS t(project_id, room_name, agent_config_id, caller_identity, session_type, metadata, room_sid, event_id, ord)
), ins AS (
    INSERT INTO sessions (project_id, room_name, agent_config_id, caller_identity, session_type, metadata, room_sid)
    SELECT project_id, room_name, agent_config_id, caller_identity, session_type, metadata, room_sid
    FROM input ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING *
), ev AS (
    INSERT INTO events (public_id, project_id, event_type, data)
    SELECT DISTINCT ON (ins.id) i.event_id, ins.project_id, 'session.started',
           jsonb_build_object('session_id', ins.id, 'room_name', ins.room_name,
                              'agent_config_id', ins.agent_config_id, 'session_type', ins.session_type,
                              'caller_identity', ins.caller_identity)
    FROM ins JOIN input i ON i.project_id = ins.project_id AND i.room_name = ins.room_name
    ORDER BY ins.id, i.ord
)
SELECT * FROM ins";

#[derive(diesel::QueryableByName)]
struct Counter {
    #[diesel(sql_type = BigInt)]
    project_id: i64,
    #[diesel(sql_type = BigInt)]
    used: i64,
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

    // 2. The quota: the projects' counters locked in one statement (in
    // project order, as every batch does), starts granted in arrival order
    // while the month has room.
    let mut limits: BTreeMap<i64, i64> = BTreeMap::new();
    for (r, p) in batch.iter().zip(&plans) {
        if let Ok(Plan {
            session: Some(_), ..
        }) = p
        {
            limits.entry(r.project_id).or_insert(r.limit);
        }
    }
    let mut room: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    if !limits.is_empty() {
        let projects: Vec<i64> = limits.keys().copied().collect();
        let mut locked: Vec<Counter> =
            crate::prepared!(LOCK_COUNTERS, bind::<Array<BigInt>, _>(&projects))
                .load(conn)
                .await?;
        if locked.len() < projects.len() {
            let missing: Vec<i64> = projects
                .iter()
                .copied()
                .filter(|p| !locked.iter().any(|c| c.project_id == *p))
                .collect();
            crate::prepared!(CREATE_COUNTERS, bind::<Array<BigInt>, _>(missing))
                .execute(conn)
                .await?;
            locked = crate::prepared!(LOCK_COUNTERS, bind::<Array<BigInt>, _>(&projects))
                .load(conn)
                .await?;
        }
        for c in locked {
            let limit = limits.get(&c.project_id).copied().unwrap_or(0);
            room.insert(c.project_id, ((limit - c.used).max(0), c.used));
        }
    }
    for (r, p) in batch.iter().zip(plans.iter_mut()) {
        if let Ok(Plan {
            session: Some(_), ..
        }) = p
        {
            let (left, used) = room.entry(r.project_id).or_insert((0, r.limit));
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

    // 3. The sessions and their events, one statement; a room with an
    // active session keeps it.
    let starts: Vec<(i64, &NewSession)> = batch
        .iter()
        .zip(&plans)
        .filter_map(|(r, p)| match p {
            Ok(Plan {
                session: Some(s), ..
            }) => Some((r.project_id, s)),
            _ => None,
        })
        .collect();
    let mut created: Vec<Session> = if starts.is_empty() {
        Vec::new()
    } else {
        crate::prepared!(
            INSERT_STARTS,
            bind::<Array<BigInt>, _>(starts.iter().map(|s| s.0).collect::<Vec<_>>()),
            bind::<Array<Text>, _>(
                starts
                    .iter()
                    .map(|s| s.1.room_name.as_str())
                    .collect::<Vec<_>>()
            ),
            bind::<Array<Nullable<BigInt>>, _>(
                starts
                    .iter()
                    .map(|s| s.1.agent_config_id)
                    .collect::<Vec<_>>()
            ),
            bind::<Array<Nullable<Text>>, _>(
                starts
                    .iter()
                    .map(|s| s.1.caller_identity.as_deref())
                    .collect::<Vec<_>>()
            ),
            bind::<Array<Text>, _>(
                starts
                    .iter()
                    .map(|s| s.1.session_type.as_str())
                    .collect::<Vec<_>>()
            ),
            bind::<Array<Jsonb>, _>(starts.iter().map(|s| &s.1.metadata).collect::<Vec<_>>()),
            bind::<Array<Nullable<Text>>, _>(
                starts
                    .iter()
                    .map(|s| s.1.room_sid.as_deref())
                    .collect::<Vec<_>>()
            ),
            bind::<Array<Text>, _>(
                starts
                    .iter()
                    .map(|_| events::new_public_id())
                    .collect::<Vec<_>>()
            )
        )
        .load(conn)
        .await?
    };

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
