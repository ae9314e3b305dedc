//! Signed-in accounts: access tokens checked against their session (login),
//! and the member's view of a project as an [`AuthContext`]. Both lookups
//! are cached for the key-cache TTL so that the guard stays off Postgres on
//! the hot path; changes made on this node evict at once.

use super::roles::Role;
use super::throttle::Throttle;
use super::{AuthContext, ProjectInfo, tokens};
use crate::db::schema::{account_sessions as s, project_members as pm, projects as p};
use crate::db::{self, projects::Project};
use crate::error::{ApiError, ApiResult};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chrono::Utc;
use dashmap::DashMap;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rand::RngCore;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries kept per cache before stale ones are swept.
const SWEEP_AT: usize = 50_000;

/// A cached membership: the member's context (None: not a member) and when it was read.
type MemberEntry = (Option<Arc<AuthContext>>, Instant);

/// A signed-in account, as its access token says.
#[derive(Debug, Clone, Copy)]
pub struct AccountAuth {
    /// The account.
    pub account_id: i64,
    /// The session (login) the access token belongs to.
    pub session_id: i64,
}

/// Access-token secret, caches and login throttling of a process.
pub struct Accounts {
    secret: Vec<u8>,
    access_ttl: u64,
    ttl: Duration,
    sessions: DashMap<i64, (Option<i64>, Instant)>,
    members: DashMap<(i64, i64), MemberEntry>,
    /// Failed-login and resend counters.
    pub throttle: Throttle,
}

impl Accounts {
    /// Built from the settings (a random secret when none is configured),
    /// throttling in `shared` when given.
    pub fn new(
        settings: &crate::config::Settings,
        shared: Option<Arc<crate::limits::shared::SharedStore>>,
    ) -> Self {
        super::password::dummy_hash();
        let secret = match &settings.accounts.jwt_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut b = vec![0u8; 32];
                rand::rng().fill_bytes(&mut b);
                b
            }
        };
        Self {
            secret,
            access_ttl: settings.accounts.access_token_ttl_secs,
            ttl: Duration::from_millis(settings.key_cache_ttl_ms),
            sessions: DashMap::new(),
            members: DashMap::new(),
            throttle: Throttle::new(shared),
        }
    }

    /// A new access token for a session, and its lifetime in seconds.
    pub fn issue_access(&self, account_id: i64, session_id: i64) -> (String, u64) {
        (
            tokens::sign_access(&self.secret, account_id, session_id, self.access_ttl),
            self.access_ttl,
        )
    }

    /// The account behind an access token whose session is still open.
    pub async fn authenticate(
        &self,
        pool: &db::Pool,
        token: &str,
    ) -> ApiResult<Option<AccountAuth>> {
        let Some(claims) = tokens::verify_access(&self.secret, token) else {
            return Ok(None);
        };
        let owner = match self.sessions.get(&claims.sid).map(|e| *e) {
            Some((owner, at)) if at.elapsed() < self.ttl => owner,
            _ => {
                let mut conn = pool.get().await?;
                let owner: Option<i64> = s::table
                    .filter(s::id.eq(claims.sid))
                    .filter(s::revoked_at.is_null().and(s::expires_at.gt(Utc::now())))
                    .select(s::account_id)
                    .first(&mut conn)
                    .await
                    .optional()?;
                if self.sessions.len() >= SWEEP_AT {
                    let ttl = self.ttl;
                    self.sessions.retain(|_, (_, at)| at.elapsed() < ttl);
                }
                self.sessions.insert(claims.sid, (owner, Instant::now()));
                owner
            }
        };
        Ok((owner == Some(claims.sub)).then_some(AccountAuth {
            account_id: claims.sub,
            session_id: claims.sid,
        }))
    }

    /// The caller context of a member acting on a live project, or `None`
    /// when the account is not a member (or the project is gone).
    pub async fn project_context(
        &self,
        pool: &db::Pool,
        account_id: i64,
        project_id: i64,
    ) -> ApiResult<Option<Arc<AuthContext>>> {
        let key = (account_id, project_id);
        if let Some((ctx, at)) = self.members.get(&key).map(|e| e.clone())
            && at.elapsed() < self.ttl
        {
            return Ok(ctx);
        }
        let mut conn = pool.get().await?;
        let found: Option<(String, Project)> = pm::table
            .inner_join(p::table)
            .filter(
                pm::account_id
                    .eq(account_id)
                    .and(pm::project_id.eq(project_id)),
            )
            .filter(p::deleted_at.is_null())
            .select((pm::role, Project::as_select()))
            .first(&mut conn)
            .await
            .optional()?;
        let ctx = found.map(|(role, project)| {
            Arc::new(AuthContext {
                key_id: 0,
                role: role.parse().unwrap_or(Role::Viewer),
                account_id: Some(account_id),
                project: ProjectInfo::from(project),
            })
        });
        if self.members.len() >= SWEEP_AT {
            let ttl = self.ttl;
            self.members.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        self.members.insert(key, (ctx.clone(), Instant::now()));
        Ok(ctx)
    }

    /// Forgets a session (after logging it out).
    pub fn evict_session(&self, session_id: i64) {
        self.sessions.remove(&session_id);
    }

    /// Forgets every session of an account (after logout-all or a password change).
    pub fn evict_account(&self, account_id: i64) {
        self.sessions
            .retain(|_, (owner, _)| *owner != Some(account_id));
        self.members.retain(|(a, _), _| *a != account_id);
    }

    /// Forgets every membership of a project (after a role change, a
    /// removal, or deleting the project).
    pub fn evict_project(&self, project_id: i64) {
        self.members.retain(|(_, p), _| *p != project_id);
    }
}

/// Extractor for routes that need a signed-in account (`Authorization:
/// Bearer <access token>`); the guard puts it in the request.
#[derive(Debug, Clone, Copy)]
pub struct Account(pub AccountAuth);

impl std::ops::Deref for Account {
    type Target = AccountAuth;
    fn deref(&self) -> &AccountAuth {
        &self.0
    }
}

impl FromRequest for Account {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<AccountAuth>()
                .copied()
                .map(Account)
                .ok_or_else(|| ApiError::Unauthorized("Missing or invalid access token".into())),
        )
    }
}
