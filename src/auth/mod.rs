//! Authentication of API clients: project API keys (`X-API-Key` or
//! `Authorization: Bearer pk_…`), resolved through an in-memory cache so the
//! hot path does not touch Postgres.

pub mod cache;
pub mod jwt;
pub mod password;
pub mod roles;
pub mod sessions;
pub mod throttle;
pub mod tokens;

use crate::error::{ApiError, ApiResult};
use crate::limits::plans::Plan;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use roles::Role;
use std::future::{Ready, ready};
use std::sync::Arc;

/// The project a request acts for, as cached with its key.
#[derive(Debug, Clone)]
pub struct ProjectInfo {
    /// Project id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// URL-safe unique name.
    pub slug: String,
    /// Prefix of the project's rooms in LiveKit (`<prefix>_<room>`).
    pub room_prefix: String,
    /// Plan.
    pub plan: Plan,
    /// Requests-per-minute override, if any.
    pub rate_limit_per_minute: Option<u32>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<crate::db::projects::Project> for ProjectInfo {
    fn from(project: crate::db::projects::Project) -> Self {
        Self {
            id: project.id,
            plan: project.plan(),
            rate_limit_per_minute: project
                .rate_limit_per_minute
                .and_then(|v| u32::try_from(v).ok()),
            name: project.name,
            slug: project.slug,
            room_prefix: project.room_prefix,
            created_at: project.created_at,
        }
    }
}

/// Who is calling: an API key, or a member signed in to the dashboard
/// (`Authorization: Bearer <access token>` + `X-Project-Id`), and the
/// project. Handlers take [`Auth`].
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// The API key's id (0 when a signed-in account calls).
    pub key_id: i64,
    /// The member's role; API keys act as [`Role::Owner`].
    pub role: Role,
    /// The signed-in account, when a dashboard calls.
    pub account_id: Option<i64>,
    /// The project.
    pub project: ProjectInfo,
}

impl AuthContext {
    /// 403 unless the caller has at least the rights of `role` (API keys
    /// always do). The guard already requires a viewer for reads and a member
    /// for writes; handlers call this for anything finer.
    pub fn require(&self, role: Role) -> ApiResult<()> {
        self.role.require(role)
    }
}

/// Extractor for the authenticated caller; present on every guarded route.
#[derive(Debug, Clone)]
pub struct Auth(pub Arc<AuthContext>);

impl std::ops::Deref for Auth {
    type Target = AuthContext;
    fn deref(&self) -> &AuthContext {
        &self.0
    }
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Arc<AuthContext>>()
                .cloned()
                .map(Auth)
                .ok_or_else(|| ApiError::Unauthorized("Missing X-API-Key header".into())),
        )
    }
}

/// The key a request presents: `X-API-Key`, else `Authorization: Bearer pk_…`.
pub fn presented_key(req: &HttpRequest) -> Option<&str> {
    if let Some(v) = req.headers().get("x-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| t.starts_with("pk_"))
}

/// An `Authorization: Bearer` token that is not an API key (an account's
/// access token).
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let auth = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.starts_with("pk_") && !t.is_empty())
}
