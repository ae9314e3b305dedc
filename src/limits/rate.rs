//! Request rate limiting behind a small trait, with an in-process backend on
//! `governor` (GCRA: a burst of the whole per-minute allowance, refilled
//! evenly over the minute). Exact under concurrency: each decision is one
//! compare-and-swap on the key's state.

use dashmap::DashMap;
use futures_util::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    /// A project API key, by id.
    ApiKey(i64),
    /// A signed-in account (dashboard), by id.
    Account(i64),
    /// A client address without a valid key.
    Ip(IpAddr),
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy)]
pub struct RateDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests per minute.
    pub limit: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// Time until the allowance is whole again.
    pub reset_after: Duration,
    /// When refused: time until one request is allowed.
    pub retry_after: Duration,
}

/// A rate-limit backend. The in-process one is [`GovernorLimiter`]; a shared
/// store (e.g. Redis) can implement this for clusters.
pub trait RateLimiter: Send + Sync {
    /// Counts one request against `key` with `per_minute` allowed.
    fn check(&self, key: RateKey, per_minute: u32) -> BoxFuture<'_, RateDecision>;
}

type Direct = Gcra<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// In-process limiter: one GCRA state per key, rebuilt if the key's limit changes.
pub struct GovernorLimiter {
    limiters: DashMap<RateKey, Arc<(u32, Direct)>>,
    clock: DefaultClock,
}

impl Default for GovernorLimiter {
    fn default() -> Self {
        Self {
            limiters: DashMap::new(),
            clock: DefaultClock::default(),
        }
    }
}

impl GovernorLimiter {
    fn limiter(&self, key: RateKey, per_minute: u32) -> Arc<(u32, Direct)> {
        if let Some(l) = self.limiters.get(&key)
            && l.0 == per_minute
        {
            return l.clone();
        }
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let fresh = Arc::new((
            per_minute,
            Gcra::direct_with_clock(Quota::per_minute(n), self.clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
        ));
        let mut slot = self.limiters.entry(key).or_insert_with(|| fresh.clone());
        if slot.0 != per_minute {
            *slot = fresh;
        }
        slot.clone()
    }

    /// Drops the state of anonymous clients (called periodically; a dropped
    /// state simply starts full again, as it would have after a minute idle).
    pub fn sweep_anonymous(&self) {
        self.limiters.retain(|k, _| matches!(k, RateKey::ApiKey(_)));
    }

    /// Decides synchronously (the backend never waits).
    pub fn check_now(&self, key: RateKey, per_minute: u32) -> RateDecision {
        let entry = self.limiter(key, per_minute);
        let (limit, limiter) = (&entry.0, &entry.1);
        let per_request = Duration::from_secs(60) / (*limit).max(1);
        match limiter.check() {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                RateDecision {
                    allowed: true,
                    limit: *limit,
                    remaining,
                    reset_after: per_request * (limit - remaining.min(*limit)),
                    retry_after: Duration::ZERO,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                RateDecision {
                    allowed: false,
                    limit: *limit,
                    remaining: 0,
                    reset_after: per_request * *limit,
                    retry_after: wait,
                }
            }
        }
    }
}

impl RateLimiter for GovernorLimiter {
    fn check(&self, key: RateKey, per_minute: u32) -> BoxFuture<'_, RateDecision> {
        let decision = self.check_now(key, per_minute);
        Box::pin(std::future::ready(decision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_exactly_the_limit_in_a_burst() {
        let l = GovernorLimiter::default();
        let key = RateKey::ApiKey(1);
        let allowed = (0..61).filter(|_| l.check_now(key, 60).allowed).count();
        assert_eq!(allowed, 60);
        let refused = l.check_now(key, 60);
        assert!(!refused.allowed);
        assert!(
            refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(1)
        );
    }

    #[test]
    fn remaining_counts_down() {
        let l = GovernorLimiter::default();
        let key = RateKey::ApiKey(2);
        assert_eq!(l.check_now(key, 5).remaining, 4);
        assert_eq!(l.check_now(key, 5).remaining, 3);
        // A new limit starts a new allowance.
        assert_eq!(l.check_now(key, 10).remaining, 9);
    }
}
