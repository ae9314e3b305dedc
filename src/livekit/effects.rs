//! Where an applied webhook's events and session starts go.
//!
//! Applied alone, a webhook writes each event (and the session an agent's
//! join starts) at once ([`Effects::Now`]). In a batch ([`super::applier`]),
//! the webhooks whose effects are only rows of their own room (rooms
//! starting, participants joining and leaving, tracks) collect them
//! ([`Effects::Later`]) and [`Effects::flush`] writes them all in one
//! statement: the sessions, then the events in the order they were emitted,
//! each `session.started` where its start was. The batch flushes before any
//! other webhook (one that reads sessions or emits through other code), so
//! the events keep the order in which their webhooks were applied.

use crate::db::prepared::bind;
use crate::db::sessions::NewSession;
use crate::events;
use diesel::QueryResult;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

/// An effect kept for the flush.
#[derive(Debug)]
pub(super) enum Later {
    /// An event for the outbox.
    Event {
        project_id: i64,
        event_type: &'static str,
        data: Value,
    },
    /// A session to start (unless its room has an active one), announced
    /// with `session.started`.
    Start {
        project_id: i64,
        session: NewSession,
    },
}

/// Written now, or kept for one statement at the end.
#[derive(Debug)]
pub(super) enum Effects {
    /// Each effect written when it happens.
    Now,
    /// Effects kept in order until [`Effects::flush`].
    Later(Vec<Later>),
}

impl Effects {
    /// Emits an event (see [`events::emit`]).
    pub(super) async fn emit(
        &mut self,
        conn: &mut AsyncPgConnection,
        project_id: i64,
        event_type: &'static str,
        data: Value,
    ) -> QueryResult<()> {
        match self {
            Effects::Now => events::emit(conn, project_id, event_type, data)
                .await
                .map(|_| ()),
            Effects::Later(kept) => {
                debug_assert!(events::is_known(event_type), "unknown event {event_type}");
                kept.push(Later::Event {
                    project_id,
                    event_type,
                    data,
                });
                Ok(())
            }
        }
    }

    /// Starts a session unless the room has an active one (see
    /// [`crate::db::sessions::start`]).
    pub(super) async fn start_session(
        &mut self,
        conn: &mut AsyncPgConnection,
        project_id: i64,
        session: NewSession,
    ) -> QueryResult<()> {
        match self {
            Effects::Now => crate::db::sessions::start(conn, project_id, &session)
                .await
                .map(|_| ()),
            Effects::Later(kept) => {
                kept.push(Later::Start {
                    project_id,
                    session,
                });
                Ok(())
            }
        }
    }

    /// Writes what was kept, in one statement.
    pub(super) async fn flush(&mut self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        let Effects::Later(kept) = self else {
            return Ok(());
        };
        if kept.is_empty() {
            return Ok(());
        }
        let kept = std::mem::take(kept);
        write(conn, &kept).await
    }
}

/// The kept effects (arrays in order; a start has a room name, an event
/// none): the sessions inserted first, then every event and the
/// `session.started` of each session made, in order. A room's first start
/// in the flush announces its session, as [`crate::calls::starts`] does.
const WRITE_KEPT: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::int8[], $7::text[], $8::text[], $9::text[])
        WITH ORDINALITY AS t(project_id, public_id, event_type, data, room_name, agent_config_id, caller_identity, session_type, room_sid, ord)
), ins AS (
    INSERT INTO sessions (project_id, room_name, agent_config_id, caller_identity, session_type, metadata, room_sid)
    SELECT project_id, room_name, agent_config_id, caller_identity, session_type, data, room_sid
    FROM input WHERE room_name IS NOT NULL ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING id, project_id, room_name, agent_config_id, caller_identity, session_type
), started AS (
    SELECT DISTINCT ON (ins.id) i.ord, i.public_id, ins.project_id, 'session.started'::text AS event_type,
           jsonb_build_object('session_id', ins.id, 'room_name', ins.room_name,
                              'agent_config_id', ins.agent_config_id, 'session_type', ins.session_type,
                              'caller_identity', ins.caller_identity) AS data
    FROM ins JOIN input i ON i.project_id = ins.project_id AND i.room_name = ins.room_name
    ORDER BY ins.id, i.ord
)
INSERT INTO events (public_id, project_id, event_type, data)
SELECT public_id, project_id, event_type, data FROM (
    SELECT ord, public_id, project_id, event_type, data FROM input WHERE room_name IS NULL
    UNION ALL
    SELECT ord, public_id, project_id, event_type, data FROM started
) e ORDER BY ord";

async fn write(conn: &mut AsyncPgConnection, kept: &[Later]) -> QueryResult<()> {
    let n = kept.len();
    let mut project_ids = Vec::with_capacity(n);
    let mut public_ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n);
    let mut rooms = Vec::with_capacity(n);
    let mut agents = Vec::with_capacity(n);
    let mut callers = Vec::with_capacity(n);
    let mut session_types = Vec::with_capacity(n);
    let mut sids = Vec::with_capacity(n);
    for k in kept {
        public_ids.push(events::new_public_id());
        match k {
            Later::Event {
                project_id,
                event_type,
                data: d,
            } => {
                project_ids.push(*project_id);
                types.push(*event_type);
                data.push(d);
                rooms.push(None);
                agents.push(None);
                callers.push(None);
                session_types.push(None);
                sids.push(None);
            }
            Later::Start {
                project_id,
                session: s,
            } => {
                project_ids.push(*project_id);
                types.push("session.started");
                data.push(&s.metadata);
                rooms.push(Some(s.room_name.as_str()));
                agents.push(s.agent_config_id);
                callers.push(s.caller_identity.as_deref());
                session_types.push(Some(s.session_type.as_str()));
                sids.push(s.room_sid.as_deref());
            }
        }
    }
    events::note_emitted();
    crate::prepared!(
        WRITE_KEPT,
        bind::<Array<BigInt>, _>(project_ids),
        bind::<Array<Text>, _>(public_ids),
        bind::<Array<Text>, _>(types),
        bind::<Array<Jsonb>, _>(data),
        bind::<Array<Nullable<Text>>, _>(rooms),
        bind::<Array<Nullable<BigInt>>, _>(agents),
        bind::<Array<Nullable<Text>>, _>(callers),
        bind::<Array<Nullable<Text>>, _>(session_types),
        bind::<Array<Nullable<Text>>, _>(sids)
    )
    .execute(conn)
    .await?;
    Ok(())
}
