//! Appending transcript lines, batched across concurrent requests.
//!
//! A line is small and a commit is not: one transaction per line spends most
//! of Postgres's time on commit and WAL bookkeeping. So concurrent appends
//! are written together ([`BatchQueue`]): up to [`MAX_BATCH`] lines in one
//! statement and one commit, each request answered after the commit that
//! holds its line. The writers run on a thread of their own with connections
//! of their own (established there, so their I/O is driven there too): a
//! batch's round trip never waits for an HTTP worker busy with other
//! requests.

use super::sessions::Line;
use crate::db::batch::{BatchQueue, Failed, Home};
use crate::db::prepared::bind;
use crate::events;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;
use std::sync::{Arc, OnceLock};

/// Lines per statement at most.
pub const MAX_BATCH: usize = 256;
/// Batches written at once at most (each on its own connection). Two: one
/// executes while the other waits for its commit to be flushed; more only
/// make smaller batches (every statement has a fixed cost) and more
/// processes competing for the CPU (see docs/PERFORMANCE.md).
pub const MAX_WRITERS: usize = 2;

/// A line to append to the active session of a room.
#[derive(Debug, Clone)]
pub struct NewLine {
    pub project_id: i64,
    /// Full room name.
    pub room_name: String,
    pub speaker: String,
    pub content: String,
    /// `None`: the time since the session started.
    pub timestamp_ms: Option<i64>,
    pub is_final: bool,
}

/// What an append gives back: the session and the stored line, or `None`
/// when the room has no active session.
pub type Appended = Option<(i64, Line)>;

/// The queue of lines waiting to be written; shared behind an `Arc`.
pub struct TranscriptWriter {
    queue: Arc<BatchQueue<NewLine, Appended>>,
    /// The database the writers connect to, and their connection timeout.
    database_url: String,
    timeout: std::time::Duration,
    home: OnceLock<Result<Home, String>>,
}

impl TranscriptWriter {
    /// What the writers have written so far.
    pub fn written(&self) -> crate::db::batch::Written {
        self.queue.written()
    }

    /// A writer for the database at `database_url`; its thread and
    /// connections start with the first append.
    pub fn new(database_url: Option<&str>, timeout: std::time::Duration) -> Self {
        Self {
            database_url: database_url.unwrap_or_default().to_owned(),
            timeout,
            queue: Arc::new(BatchQueue::new(
                "transcript",
                write_lines,
                MAX_WRITERS,
                MAX_BATCH,
            )),
            home: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for TranscriptWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscriptWriter").finish_non_exhaustive()
    }
}

impl TranscriptWriter {
    /// Appends a line (with its `transcript.new` event when final, else
    /// `transcript.interim`) and returns once it is committed.
    pub async fn append(&self, line: NewLine) -> Result<Appended, Failed> {
        let home = self
            .home
            .get_or_init(|| {
                Home::start(
                    "transcripts",
                    &self.database_url,
                    MAX_WRITERS as u32,
                    self.timeout,
                )
            })
            .as_ref()
            .map_err(|e| Failed::Unavailable(e.clone()))?;
        let appended = self.queue.submit(line, &home.handle, &home.pool).await?;
        if appended.is_some() {
            events::note_emitted();
        }
        Ok(appended)
    }
}

fn write_lines<'a>(
    conn: &'a mut AsyncPgConnection,
    lines: &'a [&'a NewLine],
) -> BoxFuture<'a, QueryResult<Vec<Appended>>> {
    Box::pin(insert_batch(conn, lines))
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(sql_type = Integer)]
    ord: i32,
    #[diesel(sql_type = BigInt)]
    session_id: i64,
    #[diesel(embed)]
    line: Line,
}

/// The batch statement: the lines arrive as arrays (position = `ord`); each
/// finds its room's active session; ids are drawn in `ord` order, so lines of
/// one room keep their arrival order; final lines get their `transcript.new`
/// event, interim ones a `transcript.interim` (monitor sockets only: the
/// webhook fan-out skips it).
const INSERT_BATCH: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::int4[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::bool[], $8::text[])
        AS t(ord, project_id, room_name, speaker, content, ts, is_final, event_id)
), m AS MATERIALIZED (
    SELECT nextval('transcripts_id_seq') AS id, q.* FROM (
        SELECT i.ord, s.id AS session_id, s.project_id, s.room_name, i.speaker, i.content, i.is_final, i.event_id,
               coalesce(i.ts, greatest(0, (extract(epoch FROM clock_timestamp() - s.started_at) * 1000)::bigint)) AS ts
        FROM input i
        JOIN sessions s ON s.project_id = i.project_id AND s.room_name = i.room_name AND s.status = 'active'
        ORDER BY i.ord
    ) q
), l AS (
    INSERT INTO transcripts (id, project_id, session_id, speaker, content, timestamp_ms, is_final)
    SELECT id, project_id, session_id, speaker, content, ts, is_final FROM m ORDER BY id
    RETURNING id, created_at
), e AS (
    INSERT INTO events (public_id, project_id, event_type, data)
    SELECT event_id, project_id, CASE WHEN is_final THEN 'transcript.new' ELSE 'transcript.interim' END,
           jsonb_build_object('room_name', room_name, 'session_id', session_id, 'speaker', speaker,
                              'content', content, 'timestamp_ms', ts, 'is_final', is_final)
    FROM m ORDER BY id
)
SELECT m.ord, m.session_id, m.id, m.speaker, m.content, m.ts AS timestamp_ms, m.is_final, l.created_at
FROM m JOIN l ON l.id = m.id";

/// Stores lines in one statement (one transaction); the result has one entry
/// per line, `None` for a line whose room has no active session.
pub async fn insert_batch(
    conn: &mut AsyncPgConnection,
    lines: &[&NewLine],
) -> QueryResult<Vec<Appended>> {
    let n = lines.len();
    let ords: Vec<i32> = (0..n)
        .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
        .collect();
    let project_ids: Vec<i64> = lines.iter().map(|l| l.project_id).collect();
    let rooms: Vec<&str> = lines.iter().map(|l| l.room_name.as_str()).collect();
    let speakers: Vec<&str> = lines.iter().map(|l| l.speaker.as_str()).collect();
    let contents: Vec<&str> = lines.iter().map(|l| l.content.as_str()).collect();
    let timestamps: Vec<Option<i64>> = lines.iter().map(|l| l.timestamp_ms).collect();
    let finals: Vec<bool> = lines.iter().map(|l| l.is_final).collect();
    let event_ids: Vec<String> = (0..n).map(|_| events::new_public_id()).collect();
    // Prepared once per connection: parsing and planning this statement would
    // cost more than running it.
    let stored: Vec<Stored> = crate::prepared!(
        INSERT_BATCH,
        bind::<Array<Integer>, _>(ords),
        bind::<Array<BigInt>, _>(project_ids),
        bind::<Array<Text>, _>(rooms),
        bind::<Array<Text>, _>(speakers),
        bind::<Array<Text>, _>(contents),
        bind::<Array<Nullable<BigInt>>, _>(timestamps),
        bind::<Array<Bool>, _>(finals),
        bind::<Array<Text>, _>(event_ids)
    )
    .load(conn)
    .await?;
    let mut out: Vec<Appended> = vec![None; n];
    for s in stored {
        if let Some(slot) = usize::try_from(s.ord).ok().and_then(|i| out.get_mut(i)) {
            *slot = Some((s.session_id, s.line));
        }
    }
    Ok(out)
}
