//! The e-mail outbox. A message is inserted with the change that sends it;
//! after commit [`deliver_soon`] sends it (retrying with backoff in the same
//! task), and [`spawn_worker`] picks up whatever is due (after a restart, or
//! when the in-request task gave up early). A claim is a short lease
//! (`locked_until`), so no connection is held while SMTP talks and two nodes
//! never send one message at once. Bodies are cleared once sent or given up.

use super::{Mailer, Rendered};
use crate::db::Pool;
use crate::db::schema::outbound_emails as o;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::sync::Arc;
use std::time::Duration;

/// How long a claim keeps other senders away.
const LEASE_SECS: i64 = 120;

/// Queues a message; call inside the transaction of the change.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    kind: &str,
    to: &str,
    r: &Rendered,
) -> QueryResult<i64> {
    diesel::insert_into(o::table)
        .values((
            o::kind.eq(kind),
            o::to_address.eq(to),
            o::subject.eq(&r.subject),
            o::body_text.eq(&r.text),
            o::body_html.eq(&r.html),
        ))
        .returning(o::id)
        .get_result(conn)
        .await
}

type Claimed = (String, String, String, Option<String>, Option<String>, i32);

async fn claim(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Claimed>> {
    let now = Utc::now();
    diesel::update(
        o::table
            .filter(o::id.eq(id))
            .filter(o::sent_at.is_null().and(o::failed_at.is_null()))
            .filter(o::next_attempt_at.le(now))
            .filter(o::locked_until.is_null().or(o::locked_until.lt(now))),
    )
    .set((
        o::locked_until.eq(now + chrono::Duration::seconds(LEASE_SECS)),
        o::attempts.eq(o::attempts + 1),
    ))
    .returning((
        o::kind,
        o::to_address,
        o::subject,
        o::body_text,
        o::body_html,
        o::attempts,
    ))
    .get_result(conn)
    .await
    .optional()
}

/// One attempt at a message if it is due; `Some(delay)` when it should be
/// tried again after `delay`.
async fn attempt(mailer: &Mailer, pool: &Pool, id: i64) -> anyhow::Result<Option<Duration>> {
    let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some((kind, to, subject, text, html, attempts)) = claim(&mut conn, id).await? else {
        return Ok(None);
    };
    drop(conn);
    let rendered = Rendered {
        subject,
        text: text.unwrap_or_default(),
        html: html.unwrap_or_default(),
    };
    let result = mailer.send(id, &kind, &to, &rendered).await;
    let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let row = o::table.filter(o::id.eq(id));
    match result {
        Ok(()) => {
            diesel::update(row)
                .set((
                    o::sent_at.eq(Utc::now()),
                    o::locked_until.eq(None::<chrono::DateTime<Utc>>),
                    o::body_text.eq(None::<String>),
                    o::body_html.eq(None::<String>),
                    o::last_error.eq(None::<String>),
                ))
                .execute(&mut conn)
                .await?;
            tracing::info!(email.id = id, kind, attempts, "e-mail sent");
            Ok(None)
        }
        Err(e) if attempts >= i32::try_from(mailer.max_attempts).unwrap_or(i32::MAX) => {
            diesel::update(row)
                .set((
                    o::failed_at.eq(Utc::now()),
                    o::locked_until.eq(None::<chrono::DateTime<Utc>>),
                    o::body_text.eq(None::<String>),
                    o::body_html.eq(None::<String>),
                    o::last_error.eq(format!("{e:#}")),
                ))
                .execute(&mut conn)
                .await?;
            tracing::error!(
                email.id = id,
                kind,
                attempts,
                error = format!("{e:#}"),
                "e-mail given up"
            );
            Ok(None)
        }
        Err(e) => {
            let shift = u32::try_from(attempts.saturating_sub(1))
                .unwrap_or(0)
                .min(16);
            let delay = mailer.retry_base.saturating_mul(1 << shift);
            let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
            diesel::update(row)
                .set((
                    o::next_attempt_at.eq(next),
                    o::locked_until.eq(None::<chrono::DateTime<Utc>>),
                    o::last_error.eq(format!("{e:#}")),
                ))
                .execute(&mut conn)
                .await?;
            tracing::warn!(
                email.id = id,
                kind,
                attempts,
                retry_in_ms = delay.as_millis() as u64,
                error = format!("{e:#}"),
                "e-mail send failed; will retry"
            );
            Ok(Some(delay))
        }
    }
}

/// Sends a queued message in the background (after the commit that queued
/// it), retrying while its delays are short; longer ones are left to the worker.
pub fn deliver_soon(mailer: Arc<Mailer>, pool: Pool, id: i64) {
    tokio::spawn(async move {
        loop {
            match attempt(&mailer, &pool, id).await {
                Ok(Some(delay)) if delay <= Duration::from_secs(300) => {
                    tokio::time::sleep(delay).await;
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(
                        email.id = id,
                        error = format!("{e:#}"),
                        "e-mail outbox unavailable; the worker will retry"
                    );
                    return;
                }
            }
        }
    });
}

/// Attempts every due message once; returns how many were tried.
pub async fn run_due(mailer: &Mailer, pool: &Pool) -> anyhow::Result<usize> {
    let ids: Vec<i64> = {
        let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = Utc::now();
        o::table
            .filter(o::sent_at.is_null().and(o::failed_at.is_null()))
            .filter(o::next_attempt_at.le(now))
            .filter(o::locked_until.is_null().or(o::locked_until.lt(now)))
            .order(o::next_attempt_at.asc())
            .limit(50)
            .select(o::id)
            .load(&mut conn)
            .await?
    };
    for id in &ids {
        attempt(mailer, pool, *id).await?;
    }
    Ok(ids.len())
}

/// Spawns the loop that delivers due messages every few seconds.
pub fn spawn_worker(mailer: Arc<Mailer>, pool: Pool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Err(e) = run_due(&mailer, &pool).await {
                tracing::warn!(error = format!("{e:#}"), "e-mail worker");
            }
        }
    })
}
