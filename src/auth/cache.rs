//! Cache of API-key lookups keyed by the key's SHA-256.
//!
//! A hit younger than the TTL is answered from memory; an older one is checked
//! against Postgres again (which also records `last_used_at`). Revocation on
//! this node evicts at once; other nodes see it within the TTL. Unknown keys
//! are cached too, in a bounded way, so guessing keys cannot hammer Postgres.
//!
//! When a valid entry expires, one request checks it again while the others
//! keep using the entry they have (for the moment that check takes), so a
//! busy key never sends a herd of requests to Postgres at once.

use super::roles::Role;
use super::{AuthContext, ProjectInfo};
use crate::db::{self, api_keys};
use crate::error::ApiResult;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most negative (unknown-key) entries kept before they are swept.
const MAX_NEGATIVE: usize = 10_000;

#[derive(Clone)]
enum Entry {
    /// The caller, when it was checked, and whether a request is checking
    /// it again now.
    Valid(Arc<AuthContext>, Instant, Arc<AtomicBool>),
    Unknown(Instant),
}

/// The key cache shared by all workers of a process.
pub struct KeyCache {
    entries: DashMap<[u8; 32], Entry>,
    ttl: Duration,
}

impl KeyCache {
    /// A cache trusting lookups for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: DashMap::new(),
            ttl,
        }
    }

    /// The caller behind a presented key, or `None` when the key is unknown,
    /// revoked or expired.
    pub async fn lookup(&self, pool: &db::Pool, key: &str) -> ApiResult<Option<Arc<AuthContext>>> {
        if !api_keys::looks_like_key(key) {
            return Ok(None);
        }
        let hash = api_keys::hash_key(key);
        let mut checking: Option<Arc<AtomicBool>> = None;
        if let Some(entry) = self.entries.get(&hash).map(|e| e.clone()) {
            match entry {
                Entry::Valid(ctx, at, _) if at.elapsed() < self.ttl => return Ok(Some(ctx)),
                // Another request is checking it again: this one goes on with
                // what is known (as every request did a moment ago).
                Entry::Valid(ctx, _, busy) => {
                    if busy.swap(true, Ordering::AcqRel) {
                        return Ok(Some(ctx));
                    }
                    checking = Some(busy);
                }
                Entry::Unknown(at) if at.elapsed() < self.ttl => return Ok(None),
                Entry::Unknown(_) => {}
            }
        }
        // Whatever happens below, the next request may check again.
        let _release = Release(checking);
        let mut conn = pool.get().await?;
        let found = api_keys::authenticate(&mut conn, &hash).await?;
        let now = Instant::now();
        Ok(match found {
            Some((key, project)) => {
                let ctx = Arc::new(AuthContext {
                    key_id: key.id,
                    role: Role::Owner,
                    account_id: None,
                    project: ProjectInfo::from(project),
                });
                self.entries.insert(
                    hash,
                    Entry::Valid(ctx.clone(), now, Arc::new(AtomicBool::new(false))),
                );
                Some(ctx)
            }
            None => {
                if self.entries.len() >= MAX_NEGATIVE {
                    self.entries.retain(|_, e| matches!(e, Entry::Valid(..)));
                }
                self.entries.insert(hash, Entry::Unknown(now));
                None
            }
        })
    }

    /// Forgets one key (after revoking it).
    pub fn evict_key(&self, key_id: i64) {
        self.entries
            .retain(|_, e| !matches!(e, Entry::Valid(c, ..) if c.key_id == key_id));
    }

    /// Forgets every key of a project (after changing or deleting it).
    pub fn evict_project(&self, project_id: i64) {
        self.entries
            .retain(|_, e| !matches!(e, Entry::Valid(c, ..) if c.project.id == project_id));
    }
}

/// Clears an entry's "being checked" flag when the check ends (or fails).
struct Release(Option<Arc<AtomicBool>>);

impl Drop for Release {
    fn drop(&mut self) {
        if let Some(busy) = &self.0 {
            busy.store(false, Ordering::Release);
        }
    }
}
