//! Authentication of API clients: project API keys (`X-API-Key` or
//! `Authorization: Bearer pk_…`), resolved through an in-memory cache so the
//! hot path does not touch Postgres.

pub mod cache;
pub mod jwt;

use crate::error::ApiError;
use crate::limits::plans::Plan;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
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

/// Who is calling: the key and its project. Handlers take [`Auth`].
#[derive(Debug, Clone)]
pub struct AuthContext {
    /// The API key's id.
    pub key_id: i64,
    /// The project.
    pub project: ProjectInfo,
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
