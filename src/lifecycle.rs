//! The health of a process's workers and its shutdown signal, shared by
//! the workers (`crate::workers`, the event spine) and `/ready` — a leaf
//! module, so that the spine does not depend on the process state.

use dashmap::DashMap;

/// Failures in a row after which a worker counts as down for `/ready`.
pub const FAILING_AFTER: u32 = 3;

/// Health of the workers and the shutdown signal of a process.
pub struct Lifecycle {
    /// Failures in a row, by worker (the supervisor in `crate::workers` keeps them).
    pub(crate) failures: DashMap<&'static str, u32>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            failures: DashMap::new(),
            shutdown: tokio::sync::watch::channel(false).0,
        }
    }
}

impl Lifecycle {
    /// Workers that keep failing (none: all well).
    pub fn failing(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self
            .failures
            .iter()
            .filter(|e| *e.value() >= FAILING_AFTER)
            .map(|e| *e.key())
            .collect();
        names.sort_unstable();
        names
    }

    /// Tells every worker that the process is stopping.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Whether the process is stopping.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves once the process is stopping.
    pub async fn stopping(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}
