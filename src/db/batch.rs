//! A queue that turns concurrent small writes into batches.
//!
//! Each caller pushes its item (with a way to answer it) and waits; the push
//! tells it whether to start a writer task, which takes everything queued
//! (up to the batch size) and writes it in one statement and one commit,
//! until the queue is empty. At most `max_writers` writers run at once.
//! Nothing waits for a batch to fill: with one caller a batch is one item;
//! under load, the items that arrive while a batch is written form the next.
//! Used for transcript lines (`db::transcripts`) and webhook delivery
//! outcomes (`events::delivery`).

use std::collections::VecDeque;
use std::sync::Mutex;

struct Inner<T> {
    items: VecDeque<T>,
    writers: usize,
}

/// Items waiting to be written.
pub struct BatchQueue<T> {
    inner: Mutex<Inner<T>>,
    max_writers: usize,
    max_batch: usize,
}

impl<T> BatchQueue<T> {
    /// A queue written by at most `max_writers` writers, `max_batch` items
    /// per batch at most.
    pub const fn new(max_writers: usize, max_batch: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                writers: 0,
            }),
            max_writers,
            max_batch,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // The queue's state stays consistent whatever panicked while holding it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item. `true`: the caller must start a writer, which calls
    /// [`take`](Self::take) until it returns `None`.
    pub fn push(&self, item: T) -> bool {
        let mut q = self.lock();
        q.items.push_back(item);
        let start = q.writers < self.max_writers;
        if start {
            q.writers += 1;
        }
        start
    }

    /// A writer's next batch, or `None` (and one writer fewer) when nothing
    /// waits.
    pub fn take(&self) -> Option<Vec<T>> {
        let mut q = self.lock();
        if q.items.is_empty() {
            q.writers = q.writers.saturating_sub(1);
            return None;
        }
        let n = q.items.len().min(self.max_batch);
        Some(q.items.drain(..n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_are_capped_and_take_everything_in_order() {
        let q = BatchQueue::new(2, 3);
        assert!(q.push(1));
        assert!(q.push(2));
        assert!(!q.push(3), "two writers already run");
        for i in 4..=7 {
            assert!(!q.push(i));
        }
        assert_eq!(q.take(), Some(vec![1, 2, 3]));
        assert_eq!(q.take(), Some(vec![4, 5, 6]));
        assert_eq!(q.take(), Some(vec![7]));
        assert_eq!(q.take(), None, "writer one stops");
        assert!(
            q.push(8),
            "one writer left, below the cap: the pusher starts one"
        );
        assert!(!q.push(9), "two writers again");
        assert_eq!(q.take(), Some(vec![8, 9]));
        assert_eq!(q.take(), None, "a writer stops");
        assert_eq!(q.take(), None, "the other stops");
        assert!(q.push(10), "no writer left: the pusher starts one");
        assert_eq!(q.take(), Some(vec![10]));
    }
}
