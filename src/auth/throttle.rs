//! Fixed-window counters that slow brute force: failed logins per account
//! and per client address, verification e-mails per address. In-process,
//! like the request rate limiter.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What is being counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// Failed logins for an e-mail address (lower-cased), known or not.
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

/// The counters of a process.
#[derive(Default)]
pub struct Throttle {
    windows: DashMap<ThrottleKey, (u32, Instant)>,
}

impl Throttle {
    /// `Err(retry_after_secs)` when `key` already counted `max` in its window.
    pub fn check(&self, key: &ThrottleKey, max: u32, window: Duration) -> Result<(), u64> {
        match self.windows.get(key).map(|w| *w) {
            Some((count, start)) if count >= max && start.elapsed() < window => {
                Err((window - start.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts one event for `key`.
    pub fn record(&self, key: ThrottleKey, window: Duration) {
        if self.windows.len() >= SWEEP_AT {
            self.windows
                .retain(|_, (_, start)| start.elapsed() < window);
        }
        let mut w = self.windows.entry(key).or_insert((0, Instant::now()));
        if w.1.elapsed() >= window {
            *w = (0, Instant::now());
        }
        w.0 += 1;
    }

    /// Forgets `key` (after a successful login).
    pub fn reset(&self, key: &ThrottleKey) {
        self.windows.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_within_the_window() {
        let t = Throttle::default();
        let k = ThrottleKey::Login("a@b.c".into());
        let w = Duration::from_secs(60);
        for _ in 0..3 {
            assert!(t.check(&k, 3, w).is_ok());
            t.record(k.clone(), w);
        }
        assert!(matches!(t.check(&k, 3, w), Err(s) if s <= 60));
        t.reset(&k);
        assert!(t.check(&k, 3, w).is_ok());
    }
}
