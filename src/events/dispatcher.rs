//! Wakes when this node commits events ([`super::Wake`]), on `NOTIFY
//! voxplane_events` from other nodes, on a poll tick and at start-up, then
//! wakes this node's delivery workers (the webhook deliveries of an event are
//! created with it, by a trigger on `events`, and claimed with `FOR UPDATE
//! SKIP LOCKED`, so each is sent by one node at a time) and publishes new
//! events to this node's monitor hub and chat hub (every node does, so a
//! socket on any node sees events committed by any other).
//!
//! Event ids come from a sequence, taken when a row is inserted, not when its
//! transaction commits: id 10 may become visible after id 11. The monitor
//! publisher therefore follows a [`Cursor`] that remembers the ids it skipped
//! (gaps) and looks for them again on later rounds, until they appear or are
//! old enough to be ids of rolled-back transactions.

use super::Spine;
use super::{Event, hub};
use crate::db::schema::events;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{FutureExt, StreamExt};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Runs until the task is aborted.
pub async fn run(state: Spine) {
    let poll = Duration::from_millis(state.settings.events_poll_ms);
    let mut cursor = match start_cursor(&state).await {
        Ok(c) => Cursor::at(c),
        Err(e) => {
            tracing::warn!(error = %e, "dispatcher: cannot read the event cursor yet");
            Cursor::at(0)
        }
    };
    let url = state.settings.database_url.clone().unwrap_or_default();
    let mut local = state.events_wake.subscribe();
    let coalesce = Duration::from_millis(state.settings.events_coalesce_ms);
    let mut last_round = tokio::time::Instant::now() - coalesce;
    loop {
        let mut listener = match listen(&url).await {
            Ok(conn) => Some(conn),
            Err(e) => {
                tracing::warn!(error = %e, "dispatcher: LISTEN failed; polling until it works");
                None
            }
        };
        loop {
            // A busy stream is taken in batches: at most one round per
            // `events_coalesce_ms`, or longer with many monitor sockets.
            let window = coalesce.max(fanout_window(state.hub.connections()));
            tokio::time::sleep_until(last_round + window).await;
            last_round = tokio::time::Instant::now();
            work(&state, &mut cursor).await;
            let Some(conn) = listener.as_mut() else {
                tokio::select! {
                    _ = local.changed() => continue,
                    _ = tokio::time::sleep(poll) => break,
                }
            };
            let mut notes = std::pin::pin!(conn.notifications_stream());
            tokio::select! {
                n = notes.next() => match n {
                    Some(Ok(_)) => {
                        // Coalesce a burst into one round of work.
                        while let Some(Some(Ok(_))) = notes.next().now_or_never() {}
                    }
                    _ => {
                        tracing::warn!("dispatcher: LISTEN connection lost; reconnecting");
                        break;
                    }
                },
                _ = local.changed() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Socket writes a second the monitor fan-out is held to: each round writes
/// once to every socket that wants one of its events, so with many sockets
/// the rounds are spaced out (several events per write) instead of paying a
/// `send` per socket per event: at 1,000 sockets, rounds spaced by 10–20 ms
/// gave a lower p99 than 5 ms rounds.
const FANOUT_WRITES_PER_SEC: u64 = 50_000;
/// The longest round spacing the fan-out may ask for.
const MAX_FANOUT_WINDOW: Duration = Duration::from_millis(20);

/// The least time between two rounds for `sockets` monitor sockets on this
/// node: none below 250 sockets (`events_coalesce_ms` then rules alone),
/// 20 ms from 1,000 on. A stream slower than one event per window is not
/// delayed at all: a round starts at once when the last one is older.
fn fanout_window(sockets: usize) -> Duration {
    Duration::from_micros(sockets as u64 * 1_000_000 / FANOUT_WRITES_PER_SEC).min(MAX_FANOUT_WINDOW)
}

async fn listen(url: &str) -> anyhow::Result<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    diesel::sql_query("LISTEN voxplane_events")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

async fn start_cursor(state: &Spine) -> anyhow::Result<i64> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let max: Option<i64> = events::table
        .select(diesel::dsl::max(events::id))
        .first(&mut conn)
        .await?;
    Ok(max.unwrap_or(0))
}

async fn work(state: &Spine, cursor: &mut Cursor) {
    // Deliveries were created with the events (a trigger on `events`); the
    // workers claim whatever is due.
    state.delivery_wake.notify_one();
    if let Err(e) = publish_new(state, cursor).await {
        tracing::warn!(error = %e, "dispatcher: monitor publish failed");
    }
}

/// How long a skipped id is looked for: longer than any transaction that
/// writes events runs (a SIP dial holds its transaction across LiveKit calls
/// for up to ~35 s); an id still missing then belonged to a rollback.
const GAP_TTL: Duration = Duration::from_secs(300);
/// Skipped ids remembered at most (the oldest are forgotten first).
const MAX_GAPS: usize = 10_000;
/// Events read per query.
const BATCH: i64 = 500;
/// How often the cursor moves along while no socket is connected.
const IDLE_PASS: Duration = Duration::from_secs(1);
/// Gaps younger than this are looked for on every round; older ones (most
/// likely rollbacks) only once per this period.
const GAP_RECHECK: Duration = Duration::from_secs(5);

/// Where the monitor publisher is in the event stream: every id up to `high`
/// has been published, except the `gaps` (ids not yet visible when a higher
/// one was, with the time they were first missed).
#[derive(Debug, Default)]
pub struct Cursor {
    high: i64,
    gaps: BTreeMap<i64, Instant>,
    old_checked: Option<Instant>,
    /// The last pass made while no socket was connected.
    idle_pass: Option<Instant>,
}

impl Cursor {
    /// A cursor after `high`, with no gaps.
    pub fn at(high: i64) -> Self {
        Self {
            high,
            gaps: BTreeMap::new(),
            old_checked: None,
            idle_pass: None,
        }
    }

    /// Records that `id` was seen: remembers the ids skipped below it.
    fn advance(&mut self, id: i64, now: Instant) {
        if id > self.high {
            let from = (self.high + 1).max(id - MAX_GAPS as i64);
            for missing in from..id {
                self.gaps.insert(missing, now);
            }
            self.high = id;
        } else {
            self.gaps.remove(&id);
        }
    }

    /// Forgets gaps past their time and beyond the cap.
    fn expire(&mut self, now: Instant) {
        self.gaps
            .retain(|_, seen| now.duration_since(*seen) < GAP_TTL);
        while self.gaps.len() > MAX_GAPS {
            self.gaps.pop_first();
        }
    }

    /// The ids to look for this round: the young gaps, and the old ones
    /// once per [`GAP_RECHECK`].
    fn missing(&mut self, now: Instant) -> Vec<i64> {
        let all = self
            .old_checked
            .is_none_or(|t| now.duration_since(t) >= GAP_RECHECK);
        if all {
            self.old_checked = Some(now);
        }
        self.gaps
            .iter()
            .filter(|(_, seen)| all || now.duration_since(**seen) < GAP_RECHECK)
            .map(|(id, _)| *id)
            .collect()
    }
}

async fn publish_new(state: &Spine, cursor: &mut Cursor) -> anyhow::Result<()> {
    let now = Instant::now();
    // With nobody connected here only the ids are read, to keep the cursor
    // and its gaps current for a socket that connects later — and only once
    // per IDLE_PASS, not for every round of a busy stream.
    let listening = state.hub.connections() > 0 || state.chat.connections() > 0;
    if listening {
        cursor.idle_pass = None;
    } else if cursor
        .idle_pass
        .is_some_and(|t| now.duration_since(t) < IDLE_PASS)
    {
        return Ok(());
    } else {
        cursor.idle_pass = Some(now);
    }
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    cursor.expire(now);
    let missing = cursor.missing(now);
    if !missing.is_empty() {
        let q = events::table
            .filter(events::id.eq_any(missing))
            .order(events::id.asc());
        if listening {
            let late: Vec<Event> = q.select(Event::as_select()).load(&mut conn).await?;
            for e in &late {
                cursor.advance(e.id, now);
            }
            publish(state, &late);
        } else {
            let late: Vec<i64> = q.select(events::id).load(&mut conn).await?;
            for id in late {
                cursor.advance(id, now);
            }
        }
    }
    loop {
        let q = events::table
            .filter(events::id.gt(cursor.high))
            .order(events::id.asc())
            .limit(BATCH);
        let n = if listening {
            let batch: Vec<Event> = q.select(Event::as_select()).load(&mut conn).await?;
            for e in &batch {
                cursor.advance(e.id, now);
            }
            publish(state, &batch);
            batch.len()
        } else {
            let ids: Vec<i64> = q.select(events::id).load(&mut conn).await?;
            for id in &ids {
                cursor.advance(*id, now);
            }
            ids.len()
        };
        if n < BATCH as usize {
            return Ok(());
        }
    }
}

/// Publishes a round's events to the hubs at once (one push per socket):
/// the monitor's, and the chat's (`chat.*` events).
fn publish(state: &Spine, events: &[Event]) {
    let messages: Vec<hub::MonitorMessage> =
        events.iter().filter_map(hub::monitor_message).collect();
    state.hub.publish(&messages);
    state.chat.publish(events);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_id_is_a_gap_until_it_is_seen() {
        let now = Instant::now();
        let mut c = Cursor::at(10);
        c.advance(11, now);
        c.advance(14, now);
        assert_eq!(c.missing(now), vec![12, 13]);
        c.advance(13, now);
        assert_eq!(c.missing(now), vec![12]);
        assert_eq!(c.high, 14);
        // Past the recheck period a gap is looked for once per period.
        let later = now + GAP_RECHECK;
        assert_eq!(c.missing(later), vec![12]);
        assert!(c.missing(later).is_empty());
        c.expire(now + GAP_TTL);
        assert!(c.missing(now + GAP_TTL + GAP_RECHECK).is_empty());
    }

    #[test]
    fn many_sockets_space_the_rounds_out() {
        assert_eq!(fanout_window(0), Duration::ZERO);
        assert_eq!(fanout_window(10), Duration::from_micros(200));
        assert_eq!(fanout_window(250), Duration::from_millis(5));
        assert_eq!(fanout_window(500), Duration::from_millis(10));
        assert_eq!(fanout_window(1_000), MAX_FANOUT_WINDOW);
        assert_eq!(fanout_window(100_000), MAX_FANOUT_WINDOW);
    }

    #[test]
    fn a_huge_jump_remembers_at_most_the_cap() {
        let now = Instant::now();
        let mut c = Cursor::at(0);
        c.advance(1_000_000, now);
        assert_eq!(c.gaps.len(), MAX_GAPS);
        assert_eq!(c.missing(now)[0], 1_000_000 - MAX_GAPS as i64);
    }
}
