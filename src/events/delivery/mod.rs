//! Webhook delivery workers. Due deliveries are claimed with `FOR UPDATE SKIP
//! LOCKED` and a lease (`locked_until`), so several processes never send the
//! same attempt at once, and a delivery claimed by a process that died is
//! taken again when its lease runs out. Each try is logged in
//! `webhook_attempts`; failures are retried on the configured schedule with
//! ±20 % jitter (a `Retry-After` honoured, clamped: see [`retry`]); 410 disables the endpoint,
//! as does failing continuously for `webhook_disable_after_hours`.

mod record;

use super::Spine;
use super::{Event, retry, signing, ssrf};
use crate::config::Settings;
use crate::db::prepared::bind;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use rand::Rng;
use record::{Recorder, disable, finish, recorder, set_failing};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Largest part of a response body kept in an attempt row, in bytes.
pub const MAX_RESPONSE: usize = 1024;

/// What an attempt row keeps of a response body: text of at most
/// [`MAX_RESPONSE`] bytes, cut between characters; bytes that are not UTF-8,
/// and NULs (which a Postgres text column cannot hold), become U+FFFD.
fn kept_text(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}");
    if text.len() > MAX_RESPONSE {
        let mut end = MAX_RESPONSE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A claimed delivery with what sending it needs (one query for all three).
#[derive(QueryableByName, Debug)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    endpoint_id: i64,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    /// Tries so far, this one included; the claim's token.
    #[diesel(sql_type = Integer)]
    attempts: i32,
    /// Tries of the current retry cycle, this one included.
    #[diesel(sql_type = Integer)]
    cycle_attempts: i32,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    previous_secret: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    previous_secret_expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    failing_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Bool)]
    is_active: bool,
    #[diesel(sql_type = Text)]
    public_id: String,
    #[diesel(sql_type = BigInt)]
    project_id: i64,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Jsonb)]
    data: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl Claimed {
    fn event(&self) -> Event {
        Event {
            id: self.event_id,
            public_id: self.public_id.clone(),
            project_id: self.project_id,
            event_type: self.event_type.clone(),
            data: self.data.clone(),
            created_at: self.created_at,
        }
    }
}

/// Runs until aborted: waits for a wake-up or a tick, then sends what is due.
pub async fn run(state: Spine) {
    let client = match client(&state) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery disabled: cannot build the HTTP client");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(state.settings.webhook_concurrency.max(1)));
    let recorder = recorder();
    let poll = Duration::from_millis(state.settings.events_poll_ms);
    let gather = gather_target(state.settings.webhook_concurrency);
    // Whether the last claim got all it asked for (more is probably due).
    let mut backlog = false;
    // Claims being sent: id → the claim's token.
    let inflight: Arc<dashmap::DashMap<i64, i32>> = Arc::default();
    while !state.lifecycle.shutting_down() {
        while !state.lifecycle.shutting_down() {
            // Permits are taken before the claim, so a claimed delivery is
            // sent at once: its lease starts running at the claim.
            let Ok(first) = permits.clone().acquire_owned().await else {
                return;
            };
            let mut held = vec![first];
            if backlog {
                // A backlog is drained in batches: a claim for every try
                // that finishes would cost Postgres a claim per delivery.
                // Wait briefly for a few more tries to finish instead.
                let until = tokio::time::Instant::now() + GATHER_WAIT;
                while held.len() < gather {
                    match tokio::time::timeout_at(until, permits.clone().acquire_owned()).await {
                        Ok(Ok(p)) => held.push(p),
                        _ => break,
                    }
                }
            }
            while let Ok(p) = permits.clone().try_acquire_owned() {
                held.push(p);
            }
            let asked = held.len();
            let batch = match claim(&state, asked as i64).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery: claim failed");
                    backlog = false;
                    break;
                }
            };
            backlog = batch.len() == asked;
            if batch.is_empty() {
                break;
            }
            for (c, permit) in batch.into_iter().zip(held) {
                let (state, client, recorder) = (state.clone(), client.clone(), recorder.clone());
                let (id, inflight) = (c.id, inflight.clone());
                inflight.insert(id, c.attempts);
                tokio::spawn(async move {
                    if let Err(e) = deliver(&state, &recorder, &client, c).await {
                        tracing::warn!(error = %e, "webhook delivery failed to record");
                    }
                    inflight.remove(&id);
                    drop(permit);
                });
            }
        }
        tokio::select! {
            _ = state.delivery_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = state.lifecycle.stopping() => {}
        }
    }
    super::drain::drain(&state, &permits, &inflight).await;
}

/// The longest a claim waits for more free slots while a backlog drains.
const GATHER_WAIT: Duration = Duration::from_millis(5);

/// Free slots a claim gathers while a backlog drains: a quarter of the
/// concurrency (8 of the default 32), at most 64.
fn gather_target(concurrency: usize) -> usize {
    (concurrency / 4).clamp(1, 64)
}

/// The HTTP client deliveries use: no redirects, the configured timeout, and
/// the SSRF guard as its DNS resolver.
pub fn client(state: &Spine) -> anyhow::Result<reqwest::Client> {
    client_for(
        state.webhook_allow(),
        Duration::from_millis(state.settings.webhook_timeout_ms),
    )
}

/// A delivery client for a policy and a timeout: one client for every
/// endpoint, whose resolver refuses answers with disallowed addresses, so the
/// addresses checked are the ones connected to.
pub fn client_for(allow: ssrf::Allow, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    crate::install_crypto_provider();
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .dns_resolver(ssrf::GuardedResolver::new(allow))
        .user_agent(concat!("Voxplane-Webhooks/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .build()?)
}

/// How long a claim holds a delivery. It covers the worst case of one try:
/// the whole send — DNS lookup (done by the SSRF-guarded resolver inside the
/// request), connect, request and response body — is cut off after
/// `webhook_timeout_ms`; recording the result waits at most
/// `database_timeout_ms` for a connection; [`LEASE_MARGIN`] covers the rest.
/// A worker that still overruns its lease finds out when it records the try
/// ([`finish`]) and leaves the delivery to its new owner.
pub fn lease(settings: &Settings) -> Duration {
    Duration::from_millis(settings.webhook_timeout_ms + settings.database_timeout_ms) + LEASE_MARGIN
}

/// Slack on top of the longest a send and its recording can take.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Claims up to `limit` due deliveries. Each claim adds one to `attempts`;
/// the new value is the claim's token: only the holder of that value may
/// record the outcome.
async fn claim(state: &Spine, limit: i64) -> anyhow::Result<Vec<Claimed>> {
    let mut conn = state.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let lease = lease(&state.settings).as_secs_f64().ceil() as i32;
    Ok(crate::prepared!(
        "WITH c AS (
             UPDATE webhook_deliveries d
             SET locked_until = now() + make_interval(secs => $1), attempts = d.attempts + 1,
                 cycle_attempts = d.cycle_attempts + 1, updated_at = now()
             FROM (SELECT id FROM webhook_deliveries
                   WHERE status = 'pending' AND next_attempt_at <= now()
                     AND (locked_until IS NULL OR locked_until < now())
                   ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) c
             WHERE d.id = c.id
             RETURNING d.id, d.endpoint_id, d.event_id, d.attempts, d.cycle_attempts
         )
         SELECT c.id, c.endpoint_id, c.event_id, c.attempts, c.cycle_attempts,
                w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, w.failing_since, w.is_active,
                e.public_id, e.project_id, e.event_type, e.data, e.created_at
         FROM c
         JOIN webhook_endpoints w ON w.id = c.endpoint_id
         JOIN events e ON e.id = c.event_id",
        bind::<Integer, _>(lease),
        bind::<BigInt, _>(limit)
    )
    .load(&mut conn)
    .await?)
}

crate::db::text_enum::text_enum! {
    /// The status of a delivery (`webhook_deliveries.status`).
    #[derive(utoipa::ToSchema)]
    pub enum DeliveryStatus in ("webhook_deliveries", "status") {
        /// Waiting for its (next) try.
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Every try of its cycle failed.
        Failed = "failed",
    }
}

struct Outcome {
    status: Option<u16>,
    body: Option<String>,
    error: Option<String>,
    retry_after: Option<Duration>,
    latency_ms: i32,
}

impl Outcome {
    /// A try that got no response.
    fn no_response(error: String, latency_ms: i32) -> Self {
        Outcome {
            status: None,
            body: None,
            error: Some(error),
            retry_after: None,
            latency_ms,
        }
    }
}

async fn deliver(
    state: &Spine,
    recorder: &Arc<Recorder>,
    client: &reqwest::Client,
    c: Claimed,
) -> anyhow::Result<()> {
    if !c.is_active {
        let error = Some("endpoint disabled".into());
        finish(
            state,
            recorder,
            &c,
            None,
            DeliveryStatus::Failed,
            error,
            None,
        )
        .await?;
        return Ok(());
    }
    let event = c.event();
    let body = serde_json::to_vec(&event.payload())?;
    let previous = c
        .previous_secret
        .as_deref()
        .filter(|_| c.previous_secret_expires_at.is_some_and(|t| t > Utc::now()));
    // The whole try is cut off at the timeout, whatever it is waiting for,
    // so it always ends within its lease.
    let timeout_ms = state.settings.webhook_timeout_ms;
    let outcome = tokio::time::timeout(
        Duration::from_millis(timeout_ms),
        send(state, client, &c.url, &c.secret, previous, &event, &body),
    )
    .await
    .unwrap_or_else(|_| {
        Outcome::no_response(
            format!("timed out after {timeout_ms} ms"),
            timeout_ms.min(i32::MAX as u64) as i32,
        )
    });
    // What the try makes of the delivery: its new status, the error kept,
    // and when to try again.
    let (status, error, next) = match outcome.status {
        Some(s) if (200..300).contains(&s) => (DeliveryStatus::Delivered, None, None),
        Some(410) => (
            DeliveryStatus::Failed,
            Some("410 Gone: endpoint disabled".into()),
            None,
        ),
        _ => {
            let error = outcome
                .error
                .clone()
                .or_else(|| outcome.status.map(|s| format!("HTTP {s}")));
            let schedule = &state.settings.webhook_retry_schedule_secs;
            // The schedule restarts with each retry cycle (a manual
            // redeliver or recover starts a new one).
            let n = c.cycle_attempts.max(1) as usize;
            let jitter = rand::rng().random_range(0.8..=1.2);
            match retry::next_delay(schedule, n, outcome.retry_after, jitter) {
                Some(delay) => {
                    let next = Utc::now()
                        + chrono::Duration::from_std(delay)
                            .unwrap_or_else(|_| chrono::Duration::days(1));
                    (DeliveryStatus::Pending, error, Some(next))
                }
                None => (DeliveryStatus::Failed, error, None),
            }
        }
    };
    if !finish(state, recorder, &c, Some(&outcome), status, error, next).await? {
        // The claim had passed on: the endpoint's state is its new owner's.
        return Ok(());
    }
    let failing_since = c.failing_since;
    match outcome.status {
        Some(s) if (200..300).contains(&s) => {
            if failing_since.is_some() {
                set_failing(state, c.endpoint_id, None).await?;
            }
        }
        Some(410) => {
            disable(
                state,
                c.endpoint_id,
                event.project_id,
                "the endpoint answered 410 Gone",
            )
            .await?;
        }
        _ => {
            let since = failing_since.unwrap_or_else(Utc::now);
            if failing_since.is_none() {
                set_failing(state, c.endpoint_id, Some(since)).await?;
            }
            let limit =
                chrono::Duration::hours(i64::from(state.settings.webhook_disable_after_hours));
            if Utc::now() - since > limit {
                disable(
                    state,
                    c.endpoint_id,
                    event.project_id,
                    "the endpoint failed continuously",
                )
                .await?;
            }
        }
    }
    Ok(())
}

async fn send(
    state: &Spine,
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    previous: Option<&str>,
    event: &Event,
    body: &[u8],
) -> Outcome {
    let started = Instant::now();
    let elapsed = |s: Instant| s.elapsed().as_millis().min(i32::MAX as u128) as i32;
    // IP literals never reach the resolver: check them here. Names are
    // checked by the client's resolver, on the answer it connects to.
    if let Err(why) = ssrf::check_literal(url, state.webhook_allow()) {
        return Outcome::no_response(why, 0);
    }
    let ts = Utc::now().timestamp();
    let mut sigs = vec![signing::standard_signature(
        secret,
        &event.public_id,
        ts,
        body,
    )];
    if let Some(prev) = previous {
        sigs.push(signing::standard_signature(
            prev,
            &event.public_id,
            ts,
            body,
        ));
    }
    let res = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "x-webhook-signature",
            signing::contract_signature(secret, body),
        )
        .header("x-webhook-event", event.event_type.as_str())
        .header("webhook-id", event.public_id.as_str())
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sigs.join(" "))
        .body(body.to_vec())
        .send()
        .await;
    match res {
        Err(e) => {
            let what = if let Some(refused) = ssrf::refused_in(&e) {
                refused.0.clone()
            } else if e.is_timeout() {
                format!("timed out after {} ms", state.settings.webhook_timeout_ms)
            } else {
                format!("connection failed: {}", root_cause(&e))
            };
            Outcome::no_response(what, elapsed(started))
        }
        Ok(mut r) => {
            let status = r.status().as_u16();
            let retry_after = retry::retry_after(
                status,
                r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
                Utc::now(),
            );
            let mut kept = Vec::new();
            while kept.len() < MAX_RESPONSE {
                match r.chunk().await {
                    Ok(Some(chunk)) => {
                        kept.extend_from_slice(&chunk[..chunk.len().min(MAX_RESPONSE - kept.len())])
                    }
                    _ => break,
                }
            }
            let body = (!kept.is_empty()).then(|| kept_text(&kept));
            Outcome {
                status: Some(status),
                body,
                error: None,
                retry_after,
                latency_ms: elapsed(started),
            }
        }
    }
}

/// The innermost cause of an error (reqwest's own message only names the URL).
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut e = err;
    while let Some(next) = e.source() {
        e = next;
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_is_claimed_a_quarter_of_the_slots_at_a_time() {
        assert_eq!(gather_target(1), 1);
        assert_eq!(gather_target(32), 8);
        assert_eq!(gather_target(64), 16);
        assert_eq!(gather_target(10_000), 64);
    }

    #[test]
    fn the_lease_outlasts_the_longest_try_and_its_recording() {
        let s = Settings::default();
        let longest = Duration::from_millis(s.webhook_timeout_ms + s.database_timeout_ms);
        assert!(lease(&s) > longest);
    }

    /// The delivery client connects only where its resolver allows: with
    /// loopback refused, a name resolving to 127.0.0.1 is never connected to.
    #[tokio::test]
    async fn the_client_connects_only_to_addresses_its_resolver_allowed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://localhost:{}/hook",
            listener.local_addr().expect("addr").port()
        );
        let deny = ssrf::Allow::default();
        let err = client_for(deny, Duration::from_secs(2))
            .expect("client")
            .post(&url)
            .send()
            .await
            .expect_err("refused");
        let refused = ssrf::refused_in(&err).expect("refused by the guard");
        assert!(refused.0.contains("loopback"), "{refused}");
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "nothing connected");

        let allow = ssrf::Allow {
            loopback: true,
            private: false,
        };
        let client = client_for(allow, Duration::from_secs(2)).expect("client");
        let send = tokio::spawn(async move { client.post(&url).send().await.map(drop) });
        let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
        assert!(matches!(accepted, Ok(Ok(_))), "connected when allowed");
        send.abort();
    }
}
