//! Guards `/api/v1`: resolves the caller (401 otherwise), applies its rate
//! limit (429 otherwise), and puts the rate-limit headers on every response.
//!
//! A request that presents no credentials at all to a route that needs them
//! is answered 401 at once, before any limiter: that answer costs no lookup
//! (nothing to look up), so it is as cheap as a 429 and an ordinary client
//! that forgot its key always learns why. Everything that costs work — a
//! presented key or access token that must be looked up, the open routes
//! (register, login, …) — is counted per client address and answered 429
//! once the anonymous allowance is spent, which is what holds off floods
//! and credential guessing.
//!
//! Callers: a project API key (full rights); a signed-in account with
//! `Authorization: Bearer <access token>` + `X-Project-Id` acting on that
//! project with its member role (reads need a viewer, writes a member, see
//! [`Role::for_method`]; team chat needs a viewer); a signed-in account on `/auth/*`, `/projects…` and
//! `/invitations/*`. Requests without valid credentials are limited per
//! client IP; API keys per key; accounts per account. Only the first lookup
//! of a key, session or membership within the cache TTL touches Postgres.

use crate::auth::roles::Role;
use crate::auth::sessions::AccountAuth;
use crate::auth::{self, AuthContext};
use crate::error::ApiError;
use crate::limits::rate::{RateDecision, RateKey};
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// See the module documentation.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal(anyhow::anyhow!("AppState missing")).into());
    };
    let presented =
        auth::presented_key(req.request()).is_some() || auth::bearer_token(req.request()).is_some();
    let (caller, denied) = match identify(&req, &state).await {
        Ok(caller) => (caller, None),
        // Nothing was presented, nothing was looked up: the cheap 401.
        Err(e) if !presented => return Ok(req.into_response(e.error_response())),
        Err(e) => (Caller::Anonymous, Some(e)),
    };
    let (rate_key, per_minute) = match &caller {
        Caller::Key(ctx) => (
            RateKey::ApiKey(ctx.key_id),
            ctx.project
                .rate_limit_per_minute
                .unwrap_or_else(|| state.settings.rate_limits.for_plan(ctx.project.plan)),
        ),
        Caller::Member(ctx, account) => (
            RateKey::Account(account.account_id),
            ctx.project
                .rate_limit_per_minute
                .unwrap_or_else(|| state.settings.rate_limits.for_plan(ctx.project.plan)),
        ),
        Caller::Account(account) => (
            RateKey::Account(account.account_id),
            state.settings.rate_limits.account,
        ),
        Caller::Anonymous => (
            RateKey::Ip(client_ip(&req)),
            state.settings.rate_limits.anonymous,
        ),
    };
    let decision = state.limiter.check(rate_key, per_minute).await;
    let mut res = if !decision.allowed {
        let err = ApiError::RateLimited {
            limit: decision.limit,
            retry_after: decision.retry_after.as_secs_f64().ceil().max(1.0) as u64,
        };
        req.into_response(err.error_response())
    } else if let Some(err) = denied {
        req.into_response(err.error_response())
    } else {
        match caller {
            Caller::Key(ctx) => {
                state.api_calls.record(ctx.project.id);
                req.extensions_mut().insert::<Arc<AuthContext>>(ctx);
            }
            Caller::Member(ctx, account) => {
                state.api_calls.record(ctx.project.id);
                req.extensions_mut().insert::<Arc<AuthContext>>(ctx);
                req.extensions_mut().insert(account);
            }
            Caller::Account(account) => {
                req.extensions_mut().insert(account);
            }
            Caller::Anonymous => {}
        }
        next.call(req).await?.map_into_boxed_body()
    };
    set_rate_headers(res.headers_mut(), &decision);
    Ok(res)
}

/// Who a request comes from, once its credentials are checked.
enum Caller {
    /// A project API key (acts as owner).
    Key(Arc<AuthContext>),
    /// A signed-in member acting on a project (`X-Project-Id`).
    Member(Arc<AuthContext>, AccountAuth),
    /// A signed-in account on the account routes.
    Account(AccountAuth),
    /// No (valid) credentials, where that is allowed.
    Anonymous,
}

/// Routes of accounts rather than of one project: `/auth/*` is open to
/// anyone (handlers that need an account ask for it), `/projects…` and
/// `/invitations/*` need an account access token.
fn account_route(path: &str) -> Option<bool> {
    let rest = path.strip_prefix("/api/v1/")?;
    if rest.starts_with("auth/") {
        Some(false)
    } else if rest == "projects"
        || rest.starts_with("projects/")
        || rest.starts_with("invitations/")
    {
        Some(true)
    } else {
        None
    }
}

/// Resolves the credentials of a request; errors are answered after the
/// rate limit (so guessing is limited per address).
async fn identify(req: &ServiceRequest, state: &AppState) -> Result<Caller, ApiError> {
    let bearer = auth::bearer_token(req.request());
    let account = match bearer {
        Some(token) => state.accounts.authenticate(&state.pool, token).await?,
        None => None,
    };
    if let Some(needs_account) = account_route(req.path()) {
        return match account {
            Some(a) => Ok(Caller::Account(a)),
            None if !needs_account => Ok(Caller::Anonymous),
            None if auth::presented_key(req.request()).is_some() => Err(ApiError::Unauthorized(
                "This endpoint needs an account access token (Authorization: Bearer <access token>), not an API key".into(),
            )),
            None => Err(ApiError::Unauthorized("Missing or invalid access token".into())),
        };
    }
    // The GET form of connection details authenticates with its signed token.
    if req.method() == Method::GET && req.path() == "/api/v1/connection-details" {
        return Ok(Caller::Anonymous);
    }
    if let Some(key) = auth::presented_key(req.request()) {
        return match state.keys.lookup(&state.pool, key).await? {
            Some(ctx) => Ok(Caller::Key(ctx)),
            None => Err(ApiError::Unauthorized(
                "Invalid or deactivated API key".into(),
            )),
        };
    }
    let Some(account) = account else {
        return Err(ApiError::Unauthorized(if bearer.is_some() {
            "Invalid or expired access token".into()
        } else {
            "Missing X-API-Key header".into()
        }));
    };
    // A dashboard: the account acts on the project named by X-Project-Id
    // with its member role.
    let project_id = req
        .headers()
        .get("x-project-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "X-Project-Id",
                "X-Project-Id (a project id) is required with an account access token",
            )
        })?;
    let ctx = state
        .accounts
        .project_context(&state.pool, account.account_id, project_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Project"))?;
    ctx.require(needed_role(req))?;
    Ok(Caller::Member(ctx, account))
}

/// The role a member needs for a request: see [`Role::for_method`]; team
/// chat (`/api/v1/chat/…`, all POST) is open to every member, viewers too,
/// since it changes nothing of the project's resources.
fn needed_role(req: &ServiceRequest) -> Role {
    if req.path().starts_with("/api/v1/chat/") {
        Role::Viewer
    } else {
        Role::for_method(req.method())
    }
}

fn client_ip(req: &ServiceRequest) -> IpAddr {
    crate::middleware::client_addr::client_ip(req.request())
}

/// `X-RateLimit-*` (the contract) and the IETF draft `RateLimit-Policy`/`RateLimit`.
fn set_rate_headers(headers: &mut HeaderMap, d: &RateDecision) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let reset_secs = d.reset_after.as_secs_f64().ceil() as u64;
    let reset_at = now.as_secs() + reset_secs;
    let pairs = [
        ("x-ratelimit-limit", d.limit.to_string()),
        ("x-ratelimit-remaining", d.remaining.to_string()),
        ("x-ratelimit-reset", reset_at.to_string()),
        (
            "ratelimit-policy",
            format!("\"per-minute\";q={};w=60", d.limit),
        ),
        (
            "ratelimit",
            format!("\"per-minute\";r={};t={}", d.remaining, reset_secs),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}
