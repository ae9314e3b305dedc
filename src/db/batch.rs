//! Concurrent small writes turned into batches.
//!
//! Each caller [`submit`](BatchQueue::submit)s its item and waits; when
//! fewer than `max_writers` writer tasks run, the submit starts one, which
//! takes everything queued (up to the batch size), writes it in one
//! statement and one commit, answers every caller of the batch, and goes on
//! until the queue is empty. Nothing waits for a batch to fill: with one
//! caller a batch is one item; under load, the items that arrive while a
//! batch is written form the next. A caller is answered only after the
//! commit that holds its item, so an accepted write is as durable as one
//! written alone.
//!
//! Writers are tasks, not the callers' futures, so a client that disconnects
//! never cuts a batch short. A batch that Postgres refuses is written again
//! item by item, so one bad item fails alone. Used for transcript lines
//! (`db::transcripts`) and webhook delivery outcomes (`events::delivery`).

use super::Pool;
use diesel::QueryResult;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Writes items in one statement (one transaction): one result per item,
/// in order.
pub type WriteFn<T, R> =
    for<'a> fn(&'a mut AsyncPgConnection, &'a [&'a T]) -> BoxFuture<'a, QueryResult<Vec<R>>>;

struct Pending<T, R> {
    item: T,
    reply: oneshot::Sender<Result<R, Failed>>,
}

/// Why an item was not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failed {
    /// Postgres refused the write.
    #[error("database: {0}")]
    Refused(String),
    /// No database connection, a lost one, or no writer.
    #[error("{0}")]
    Unavailable(String),
}

impl From<Failed> for crate::error::ApiError {
    fn from(f: Failed) -> Self {
        match f {
            Failed::Refused(why) => Self::Internal(anyhow::anyhow!(why)),
            Failed::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

struct Inner<T, R> {
    items: VecDeque<Pending<T, R>>,
    writers: usize,
}

/// Items waiting to be written; shared behind an `Arc`.
pub struct BatchQueue<T, R> {
    inner: Mutex<Inner<T, R>>,
    /// What is written, for messages.
    name: &'static str,
    write: WriteFn<T, R>,
    max_writers: usize,
    max_batch: usize,
    /// Batches taken by writers, and the items they held.
    batches: AtomicU64,
    items: AtomicU64,
}

/// What a queue has written since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Batches taken by a writer (one transaction each, unless written
    /// again item by item after a failure).
    pub batches: u64,
    /// Items in them.
    pub items: u64,
}

impl<T, R> BatchQueue<T, R>
where
    T: Send + Sync + 'static,
    R: Send + 'static,
{
    /// A queue written by `write`, by at most `max_writers` writers at once,
    /// `max_batch` items per batch at most.
    pub fn new(
        name: &'static str,
        write: WriteFn<T, R>,
        max_writers: usize,
        max_batch: usize,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                writers: 0,
            }),
            name,
            write,
            max_writers: max_writers.max(1),
            max_batch: max_batch.max(1),
            batches: AtomicU64::new(0),
            items: AtomicU64::new(0),
        }
    }

    /// Batches and items taken by writers so far (`voxplane_batches`,
    /// `voxplane_batched_items`).
    pub fn written(&self) -> Written {
        Written {
            batches: self.batches.load(Ordering::Relaxed),
            items: self.items.load(Ordering::Relaxed),
        }
    }

    /// Queues `item`, starting a writer on `runtime` (with connections of
    /// `pool`) when fewer than the maximum run, and returns its result once
    /// the batch that holds it is committed.
    pub async fn submit(
        self: &Arc<Self>,
        item: T,
        runtime: &tokio::runtime::Handle,
        pool: &Pool,
    ) -> Result<R, Failed> {
        let (reply, answer) = oneshot::channel();
        if self.push(Pending { item, reply }) {
            runtime.spawn(drain(self.clone(), pool.clone()));
        }
        answer
            .await
            .map_err(|_| Failed::Unavailable(format!("the {} writer stopped", self.name)))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T, R>> {
        // The queue's state stays consistent whatever panicked while holding it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item; `true`: the caller must start a writer.
    fn push(&self, p: Pending<T, R>) -> bool {
        let mut q = self.lock();
        q.items.push_back(p);
        let start = q.writers < self.max_writers;
        if start {
            q.writers += 1;
        }
        start
    }

    /// A writer's next batch, or `None` (and one writer fewer) when nothing
    /// waits.
    fn take(&self) -> Option<Vec<Pending<T, R>>> {
        let mut q = self.lock();
        if q.items.is_empty() {
            q.writers = q.writers.saturating_sub(1);
            return None;
        }
        let n = q.items.len().min(self.max_batch);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(n as u64, Ordering::Relaxed);
        Some(q.items.drain(..n).collect())
    }

    /// Writes `items` on a connection of `pool`.
    async fn write_on(&self, pool: &Pool, items: &[&T]) -> Result<Vec<R>, WriteError> {
        let mut conn = pool
            .get()
            .await
            .map_err(|e| WriteError::Pool(format!("database unavailable: {e}")))?;
        let results = (self.write)(&mut conn, items)
            .await
            .map_err(WriteError::Db)?;
        if results.len() != items.len() {
            return Err(WriteError::Count(format!(
                "the {} batch returned {} results for {} items",
                self.name,
                results.len(),
                items.len()
            )));
        }
        Ok(results)
    }
}

/// A thread of writers: its runtime, its connections, and (dropped with its
/// owner) the signal that stops it. Writers running there never wait for an
/// HTTP worker busy with other requests to drive their round trips.
pub struct Home {
    /// The thread's runtime.
    pub handle: tokio::runtime::Handle,
    /// Connections established on that runtime (their I/O is driven there).
    pub pool: Pool,
    _stop: oneshot::Sender<()>,
}

impl Home {
    /// Starts thread `name` with a pool of `connections` to `url`.
    pub fn start(
        name: &str,
        url: &str,
        connections: u32,
        timeout: std::time::Duration,
    ) -> Result<Home, String> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready.send(Ok(rt.handle().clone()));
                // Until the owner is dropped; then its tasks and connections go.
                let _ = rt.block_on(stopped);
            })
            .map_err(|e| format!("cannot start the {name} writer: {e}"))?;
        let handle = started
            .recv()
            .map_err(|_| format!("the {name} writer thread died"))??;
        // Built inside the writers' runtime: the pool's own tasks run there.
        let pool = {
            let _inside = handle.enter();
            crate::db::pool(url, connections, timeout)
        };
        Ok(Home {
            handle,
            pool,
            _stop: stop,
        })
    }
}

enum WriteError {
    Db(Error),
    Pool(String),
    Count(String),
}

impl WriteError {
    fn failed(&self) -> Failed {
        match self {
            WriteError::Db(e @ Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => {
                Failed::Unavailable(format!("database connection lost: {e}"))
            }
            WriteError::Db(e) => Failed::Refused(e.to_string()),
            WriteError::Pool(why) => Failed::Unavailable(why.clone()),
            WriteError::Count(why) => Failed::Refused(why.clone()),
        }
    }
}

/// A writer task: writes batches until the queue is empty.
async fn drain<T, R>(queue: Arc<BatchQueue<T, R>>, pool: Pool)
where
    T: Send + Sync + 'static,
    R: Send + 'static,
{
    while let Some(batch) = queue.take() {
        let items: Vec<&T> = batch.iter().map(|p| &p.item).collect();
        match queue.write_on(&pool, &items).await {
            Ok(results) => {
                for (p, r) in batch.into_iter().zip(results) {
                    let _ = p.reply.send(Ok(r));
                }
            }
            // Postgres refused the statement (so nothing of it was stored):
            // that may be one item's fault, so each goes on its own and only
            // the culprit gets the error. (A lost connection is not retried:
            // its commit may have happened.)
            Err(WriteError::Db(Error::DatabaseError(kind, _)))
                if batch.len() > 1 && !matches!(kind, DatabaseErrorKind::ClosedConnection) =>
            {
                for p in batch {
                    let one = match queue.write_on(&pool, &[&p.item]).await {
                        // write_on checked there is one result.
                        Ok(mut r) => r.pop().ok_or_else(|| {
                            Failed::Refused(format!("the {} write returned nothing", queue.name))
                        }),
                        Err(e) => Err(e.failed()),
                    };
                    let _ = p.reply.send(one);
                }
            }
            Err(e) => {
                let failed = e.failed();
                tracing::warn!(error = %failed, items = batch.len(), "{} batch failed", queue.name);
                for p in batch {
                    let _ = p.reply.send(Err(failed.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never<'a>(
        _: &'a mut AsyncPgConnection,
        _: &'a [&'a u32],
    ) -> BoxFuture<'a, QueryResult<Vec<u32>>> {
        Box::pin(async { Err(Error::NotFound) })
    }

    fn item(i: u32) -> Pending<u32, u32> {
        Pending {
            item: i,
            reply: oneshot::channel().0,
        }
    }

    fn items(batch: Option<Vec<Pending<u32, u32>>>) -> Option<Vec<u32>> {
        batch.map(|b| b.into_iter().map(|p| p.item).collect())
    }

    #[test]
    fn writers_are_capped_and_take_everything_in_order() {
        let q = BatchQueue::new("test", never, 2, 3);
        assert!(q.push(item(1)));
        assert!(q.push(item(2)));
        assert!(!q.push(item(3)), "two writers already run");
        for i in 4..=7 {
            assert!(!q.push(item(i)));
        }
        assert_eq!(items(q.take()), Some(vec![1, 2, 3]));
        assert_eq!(items(q.take()), Some(vec![4, 5, 6]));
        assert_eq!(items(q.take()), Some(vec![7]));
        assert_eq!(items(q.take()), None, "writer one stops");
        assert!(
            q.push(item(8)),
            "one writer left, below the cap: the pusher starts one"
        );
        assert!(!q.push(item(9)), "two writers again");
        assert_eq!(items(q.take()), Some(vec![8, 9]));
        assert_eq!(items(q.take()), None, "a writer stops");
        assert_eq!(items(q.take()), None, "the other stops");
        assert!(q.push(item(10)), "no writer left: the pusher starts one");
        assert_eq!(items(q.take()), Some(vec![10]));
    }
}
