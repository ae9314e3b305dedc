//! Every `/api/v1` request counts as an API call. Counting happens in memory
//! (one atomic add on the hot path) and is flushed to `api_usage_daily` every
//! few seconds, so requests never wait on Postgres for it.

use crate::db::Pool;
use chrono::{NaiveDate, Utc};
use dashmap::DashMap;
use diesel::sql_types::{BigInt, Date};
use diesel_async::RunQueryDsl;
use std::sync::atomic::{AtomicI64, Ordering};

/// Unflushed API-call counts per project and UTC day.
#[derive(Default)]
pub struct ApiCalls {
    counts: DashMap<(i64, NaiveDate), AtomicI64>,
}

impl ApiCalls {
    /// Counts one call of a project now.
    pub fn record(&self, project_id: i64) {
        let key = (project_id, Utc::now().date_naive());
        if let Some(c) = self.counts.get(&key) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counts
            .entry(key)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Calls of a project not yet flushed.
    pub fn pending(&self, project_id: i64) -> i64 {
        self.counts
            .iter()
            .filter(|e| e.key().0 == project_id)
            .map(|e| AtomicI64::load(e.value(), Ordering::Relaxed))
            .sum()
    }

    /// Writes the counts to Postgres (added back if that fails).
    pub async fn flush(&self, pool: &Pool) -> anyhow::Result<()> {
        let taken: Vec<((i64, NaiveDate), i64)> = self
            .counts
            .iter()
            .map(|e| (*e.key(), e.value().swap(0, Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        self.counts.retain(|(_, day), v| {
            AtomicI64::load(v, Ordering::Relaxed) > 0 || *day == Utc::now().date_naive()
        });
        if taken.is_empty() {
            return Ok(());
        }
        let result = async {
            let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            for ((project, day), n) in &taken {
                diesel::sql_query(
                    "INSERT INTO api_usage_daily (project_id, day, calls) VALUES ($1, $2, $3)
                     ON CONFLICT (project_id, day) DO UPDATE SET calls = api_usage_daily.calls + excluded.calls",
                )
                .bind::<BigInt, _>(project)
                .bind::<Date, _>(day)
                .bind::<BigInt, _>(n)
                .execute(&mut conn)
                .await?;
            }
            anyhow::Ok(())
        }
        .await;
        if result.is_err() {
            for (key, n) in taken {
                self.counts
                    .entry(key)
                    .or_default()
                    .fetch_add(n, Ordering::Relaxed);
            }
        }
        result
    }
}
