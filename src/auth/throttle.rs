//! Fixed-window counters that slow brute force: login attempts per account
//! and failures per client address, e-mails per address. In the shared
//! store when `redis_url` is set (every node counts the same attempts; see
//! `limits::shared`), else in-process — and in-process too while Redis does
//! not answer.
//!
//! An attempt is counted *before* the work it guards ([`Throttle::acquire`]
//! checks and counts in one step under the key's lock), so parallel requests
//! cannot all pass a check that none of them has counted yet.

use crate::limits::shared::SharedStore;
use dashmap::DashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What is being counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// Login attempts for an e-mail address (lower-cased), known or not.
    Login(String),
    /// Failed logins from a client address.
    LoginIp(IpAddr),
    /// Verification e-mails requested for an address (lower-cased).
    Resend(String),
    /// Password reset e-mails requested for an address (lower-cased).
    Reset(String),
}

/// Most windows kept before expired ones are swept.
const SWEEP_AT: usize = 50_000;

/// Stripes of the per-address queue that slows a client over its limit.
const STRIPES: usize = 64;

impl ThrottleKey {
    /// The key in the shared store.
    fn shared(&self) -> String {
        match self {
            Self::Login(a) => format!("th:login:{a}"),
            Self::LoginIp(ip) => format!("th:login-ip:{ip}"),
            Self::Resend(a) => format!("th:resend:{a}"),
            Self::Reset(a) => format!("th:reset:{a}"),
        }
    }
}

/// Whole seconds (at least 1) of a shared counter's ms left.
fn secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// The counters: shared when a store is configured, in-process otherwise
/// (and while the store does not answer).
pub struct Throttle {
    shared: Option<Arc<SharedStore>>,
    windows: DashMap<ThrottleKey, (u32, Instant)>,
    stripes: Vec<Arc<tokio::sync::Mutex<()>>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Throttle {
    /// Counters in `shared` when given.
    pub fn new(shared: Option<Arc<SharedStore>>) -> Self {
        Self {
            shared,
            windows: DashMap::new(),
            stripes: (0..STRIPES).map(|_| Arc::default()).collect(),
        }
    }

    /// Counts one attempt for `key`, unless it already counted `max` in its
    /// window: then `Err(retry_after_secs)` and nothing is counted. Atomic
    /// (one script in the shared store).
    pub async fn acquire(&self, key: &ThrottleKey, max: u32, window: Duration) -> Result<(), u64> {
        if let Some(store) = &self.shared
            && let Some(r) = store.acquire(&key.shared(), max, window).await
        {
            return r.map_err(secs);
        }
        self.acquire_local(key, max, window)
    }

    fn acquire_local(&self, key: &ThrottleKey, max: u32, window: Duration) -> Result<(), u64> {
        self.sweep(window);
        let mut w = self
            .windows
            .entry(key.clone())
            .or_insert((0, Instant::now()));
        if w.1.elapsed() >= window {
            *w = (0, Instant::now());
        }
        if w.0 >= max {
            return Err((window.saturating_sub(w.1.elapsed())).as_secs().max(1));
        }
        w.0 += 1;
        Ok(())
    }

    /// `Some(retry_after_secs)` when `key` has counted `max` in its window
    /// (nothing is counted).
    pub async fn exceeded(&self, key: &ThrottleKey, max: u32, window: Duration) -> Option<u64> {
        if let Some(store) = &self.shared
            && let Some(r) = store.exceeded(&key.shared(), max).await
        {
            return r.map(secs);
        }
        self.windows
            .get(key)
            .filter(|w| w.0 >= max && w.1.elapsed() < window)
            .map(|w| window.saturating_sub(w.1.elapsed()).as_secs().max(1))
    }

    /// Counts one event for `key` without a limit.
    pub async fn record(&self, key: ThrottleKey, window: Duration) {
        if let Some(store) = &self.shared
            && store
                .acquire(&key.shared(), u32::MAX, window)
                .await
                .is_some()
        {
            return;
        }
        self.sweep(window);
        let mut w = self.windows.entry(key).or_insert((0, Instant::now()));
        if w.1.elapsed() >= window {
            *w = (0, Instant::now());
        }
        w.0 = w.0.saturating_add(1);
    }

    /// Forgets `key` (after a successful login).
    pub async fn reset(&self, key: &ThrottleKey) {
        if let Some(store) = &self.shared {
            store.reset(&key.shared()).await;
        }
        self.windows.remove(key);
    }

    /// A queue shared by the requests of one client address (and the few
    /// that hash alike): a client over its failure limit has its password
    /// checks run one at a time, so it cannot take every hashing thread.
    pub fn queue(&self, ip: IpAddr) -> Arc<tokio::sync::Mutex<()>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ip.hash(&mut h);
        self.stripes[(h.finish() as usize) % STRIPES].clone()
    }

    fn sweep(&self, window: Duration) {
        if self.windows.len() >= SWEEP_AT {
            self.windows
                .retain(|_, (_, start)| start.elapsed() < window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_counts_up_to_max_within_the_window() {
        let t = Throttle::default();
        let k = ThrottleKey::Login("a@b.c".into());
        let w = Duration::from_secs(60);
        for _ in 0..3 {
            assert!(t.acquire_local(&k, 3, w).is_ok());
        }
        assert!(t.windows.get(&k).is_some_and(|w| w.0 == 3));
        assert!(matches!(t.acquire_local(&k, 3, w), Err(s) if s <= 60));
        t.windows.remove(&k);
        assert!(t.acquire_local(&k, 3, w).is_ok());
    }

    #[test]
    fn parallel_acquires_never_pass_the_limit() {
        let t = Arc::new(Throttle::default());
        let k = ThrottleKey::Login("race@b.c".into());
        let w = Duration::from_secs(60);
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (t, k) = (t.clone(), k.clone());
                    s.spawn(move || {
                        (0..50)
                            .filter(|_| t.acquire_local(&k, 5, w).is_ok())
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(passed, 5);
    }
}
