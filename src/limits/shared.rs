//! The store shared by the nodes of a cluster (Redis, when `redis_url` is
//! set): request rate limits ([`RedisLimiter`]) and the login throttles
//! (`auth::throttle`) decide there, one atomic Lua script per decision on
//! Redis's own clock, so two nodes allow what one would.
//!
//! Redis down or slow: each decision waits at most `redis_timeout_ms`, then
//! the in-process state decides instead (as without Redis), the fallback is
//! counted in `voxplane_redis_fallbacks_total{store}`, a warning is logged at
//! most once a minute, and `/ready` reports `rate_limits: degraded` without
//! failing. After a failure Redis is skipped for [`BREAKER`], so a dead Redis
//! costs one timeout per second, not one per request.

use super::rate::{GovernorLimiter, RateDecision, RateKey, RateLimiter};
use crate::metrics::Metrics;
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long Redis is skipped after a failed decision.
pub const BREAKER: Duration = Duration::from_secs(1);

/// How long after the last failure `/ready` still says degraded.
const DEGRADED_FOR_MS: u64 = 10_000;

/// Least time between two warnings about Redis.
const LOG_EVERY_MS: u64 = 60_000;

/// Prefix of every key Voxplane writes.
const PREFIX: &str = "voxplane:";

/// GCRA as the in-process limiter has it: a burst of the whole allowance
/// (`ARGV[1]` per `ARGV[2]` µs), refilled evenly. The key holds the
/// theoretical arrival time (µs, Redis's clock) and expires when the
/// allowance is whole again. Returns `{allowed, remaining, reset_after_us,
/// retry_after_us}`.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at > now then
  return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
local remaining = math.floor((now + period - new_tat) / interval + 0.000001)
return {1, remaining, math.ceil(new_tat - now), 0}
",
    )
});

/// A fixed-window counter: counts one unless `ARGV[1]` were counted in the
/// window (`ARGV[2]` ms from the first). Returns 0 when counted, else the
/// ms left in the window.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return ttl + 1
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// Whether a fixed-window counter reached `ARGV[1]`: the ms left in its
/// window, or 0. Counts nothing.
static EXCEEDED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then return 1 end
  return ttl + 1
end
return 0
",
    )
});

/// The shared store: a Redis connection (reconnecting by itself) and the
/// bookkeeping of its failures.
pub struct SharedStore {
    conn: ConnectionManager,
    timeout: Duration,
    metrics: Arc<Metrics>,
    skip_until_ms: AtomicU64,
    last_failure_ms: AtomicU64,
    last_log_ms: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl SharedStore {
    /// A store on `url`; connects lazily (a Redis down at start is a
    /// fallback like any other, not a failure to start).
    pub fn connect(url: &str, timeout: Duration, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("invalid setting `redis_url`: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("Redis at `redis_url`: {e}"))?;
        Ok(Self {
            conn,
            timeout,
            metrics,
            skip_until_ms: AtomicU64::new(0),
            last_failure_ms: AtomicU64::new(0),
            last_log_ms: AtomicU64::new(0),
        })
    }

    /// `ok`, or `degraded` while decisions fall back to the in-process state.
    pub fn status(&self) -> &'static str {
        let last = self.last_failure_ms.load(Ordering::Relaxed);
        if last > 0 && now_ms().saturating_sub(last) < DEGRADED_FOR_MS {
            "degraded"
        } else {
            "ok"
        }
    }

    /// Runs a script; `None` (counted as a fallback of `store`) when Redis
    /// failed, timed out or is being skipped after a failure.
    async fn eval<T: FromRedisValue>(
        &self,
        store: &'static str,
        script: &Script,
        key: &str,
        args: &[u64],
    ) -> Option<T> {
        let now = now_ms();
        if now < self.skip_until_ms.load(Ordering::Relaxed) {
            self.fell_back(store, None);
            return None;
        }
        let mut invocation = script.key(format!("{PREFIX}{key}"));
        for a in args {
            invocation.arg(*a);
        }
        let mut conn = self.conn.clone();
        let result = tokio::time::timeout(self.timeout, invocation.invoke_async::<T>(&mut conn))
            .await
            .map_err(|_| format!("no answer within {} ms", self.timeout.as_millis()))
            .and_then(|r| r.map_err(|e| e.to_string()));
        match result {
            Ok(v) => Some(v),
            Err(why) => {
                self.skip_until_ms
                    .store(now + BREAKER.as_millis() as u64, Ordering::Relaxed);
                self.fell_back(store, Some(why));
                None
            }
        }
    }

    /// Deletes a key; failures fall back like any other decision.
    async fn delete(&self, store: &'static str, key: &str) -> bool {
        if now_ms() < self.skip_until_ms.load(Ordering::Relaxed) {
            self.fell_back(store, None);
            return false;
        }
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("DEL").arg(format!("{PREFIX}{key}")).clone();
        match tokio::time::timeout(self.timeout, cmd.query_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                self.fell_back(store, Some(e.to_string()));
                false
            }
            Err(_) => {
                self.fell_back(store, Some("timeout".into()));
                false
            }
        }
    }

    fn fell_back(&self, store: &'static str, why: Option<String>) {
        let now = now_ms();
        self.last_failure_ms.store(now, Ordering::Relaxed);
        self.metrics.redis_fallback(store);
        let Some(why) = why else { return };
        let last = self.last_log_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOG_EVERY_MS
            && self
                .last_log_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = %why,
                store,
                "Redis unavailable: rate limits and throttles decide in this process \
                 (logged at most once a minute; see voxplane_redis_fallbacks_total)"
            );
        }
    }

    /// Counts one attempt for `key` unless `max` were counted in its
    /// window: `Some(Err(ms_left))`. `None`: Redis did not answer.
    pub async fn acquire(&self, key: &str, max: u32, window: Duration) -> Option<Result<(), u64>> {
        let ms = window.as_millis().max(1) as u64;
        let left: i64 = self
            .eval("throttle", &ACQUIRE, key, &[u64::from(max), ms])
            .await?;
        Some(if left > 0 { Err(left as u64) } else { Ok(()) })
    }

    /// `Some(Some(ms_left))` when `key` reached `max` in its window.
    pub async fn exceeded(&self, key: &str, max: u32) -> Option<Option<u64>> {
        let left: i64 = self
            .eval("throttle", &EXCEEDED, key, &[u64::from(max), 0])
            .await?;
        Some((left > 0).then_some(left as u64))
    }

    /// Forgets `key`; false when Redis did not answer.
    pub async fn reset(&self, key: &str) -> bool {
        self.delete("throttle", key).await
    }
}

/// The key of a rate-limited caller in Redis.
fn rate_key(key: RateKey) -> String {
    match key {
        RateKey::ApiKey(id) => format!("rl:key:{id}"),
        RateKey::Account(id) => format!("rl:account:{id}"),
        RateKey::Ip(ip) => format!("rl:ip:{ip}"),
    }
}

/// Rate limits decided in the shared store, by the in-process limiter when
/// it does not answer.
pub struct RedisLimiter {
    store: Arc<SharedStore>,
    local: Arc<GovernorLimiter>,
}

impl RedisLimiter {
    /// A limiter on `store`, falling back to `local`.
    pub fn new(store: Arc<SharedStore>, local: Arc<GovernorLimiter>) -> Self {
        Self { store, local }
    }
}

impl RateLimiter for RedisLimiter {
    fn check(&self, key: RateKey, per_minute: u32) -> BoxFuture<'_, RateDecision> {
        Box::pin(async move {
            let limit = per_minute.max(1);
            // The limit is part of the key: a new limit starts a new
            // allowance, as in the in-process limiter.
            let k = format!("{}:{limit}", rate_key(key));
            let period_us = 60_000_000u64;
            let answer: Option<Vec<i64>> = self
                .store
                .eval("rate_limit", &GCRA, &k, &[u64::from(limit), period_us])
                .await;
            match answer.as_deref() {
                Some(&[allowed, remaining, reset_us, retry_us]) => RateDecision {
                    allowed: allowed == 1,
                    limit,
                    remaining: u32::try_from(remaining.max(0)).unwrap_or(0).min(limit),
                    reset_after: Duration::from_micros(reset_us.max(0) as u64),
                    retry_after: Duration::from_micros(retry_us.max(0) as u64),
                },
                _ => self.local.check_now(key, per_minute),
            }
        })
    }
}
