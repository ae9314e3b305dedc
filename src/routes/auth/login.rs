//! `login`, `refresh` (rotation with reuse detection), `logout`, `logout-all`.

use super::{AccountOut, client_ip};
use crate::auth::password;
use crate::auth::sessions::Account as SignedIn;
use crate::auth::throttle::ThrottleKey;
use crate::auth::tokens;
use crate::db::accounts::{self, Account, NewToken, TokenKind};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use std::time::Duration as StdDuration;

/// Body of `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ann@example.com", "password": "tangerine-Orbit-42"}))]
pub struct LoginIn {
    pub email: String,
    pub password: String,
}

/// Body of `POST /api/v1/auth/refresh`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "the refresh token of the last login or refresh"}))]
pub struct RefreshIn {
    pub refresh_token: String,
}

/// A login: a short-lived access token and a single-use refresh token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginOut {
    /// JWT for `Authorization: Bearer …` (with `X-Project-Id` on the project API).
    #[schema(example = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...")]
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Lifetime of the access token, in seconds.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// Opaque; exchange it at `/auth/refresh` (each one works once).
    #[schema(example = "Zk2x…")]
    pub refresh_token: String,
    pub refresh_expires_at: chrono::DateTime<Utc>,
    pub account: AccountOut,
}

async fn new_refresh_token(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    session_id: i64,
    days: u32,
) -> ApiResult<(String, chrono::DateTime<Utc>)> {
    let token = tokens::generate();
    let expires = Utc::now() + Duration::days(i64::from(days));
    accounts::insert_token(
        conn,
        NewToken {
            account_id,
            kind: TokenKind::Refresh,
            hash: &tokens::hash(&token),
            session_id: Some(session_id),
            email: None,
            registration: None,
            expires_at: expires,
        },
    )
    .await?;
    Ok((token, expires))
}

fn session_out(
    state: &AppState,
    account: Account,
    session_id: i64,
    refresh: (String, chrono::DateTime<Utc>),
) -> LoginOut {
    let (access_token, expires_in) = state.accounts.issue_access(account.id, session_id);
    LoginOut {
        access_token,
        token_type: "Bearer".into(),
        expires_in,
        refresh_token: refresh.0,
        refresh_expires_at: refresh.1,
        account: AccountOut::new(account, None),
    }
}

/// Sign in with e-mail and password (verified accounts only). Past
/// `max_failures_per_account` attempts for an address within `lockout_secs`
/// logins for it answer 429 until the window ends; a client past
/// `max_failures_per_ip` failures is slowed and its failures answer 429,
/// while a right password still signs in.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "Accounts",
    request_body = LoginIn,
    responses(
        (status = 200, description = "Signed in", body = LoginOut),
        (status = 401, description = "Wrong e-mail or password", body = crate::error::ErrorBody),
        (status = 403, description = "E-mail address not verified yet", body = crate::error::ErrorBody),
        (status = 429, description = "Too many failed logins (Retry-After)", body = crate::error::ErrorBody),
    )
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginIn>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let address = body.email.trim().to_lowercase();
    let cfg = &state.settings.accounts;
    let window = StdDuration::from_secs(cfg.lockout_secs);
    let throttle = &state.accounts.throttle;
    let by_account = ThrottleKey::Login(address.clone());
    let ip = client_ip(&req);
    let by_ip = ThrottleKey::LoginIp(ip);
    let limited = |limit, retry_after| ApiError::RateLimited { limit, retry_after };
    // The attempt counts for the account before its password is checked, so
    // parallel guesses cannot pass the limit together.
    let max = cfg.max_failures_per_account;
    throttle
        .acquire(&by_account, max, window)
        .await
        .map_err(|retry| limited(max, retry))?;
    // A client past its failure limit is slowed, not locked out: its checks
    // run one at a time and its failures answer 429, but a right password
    // still signs in (a shared address must not lock out everyone behind it).
    let ip_over = throttle
        .exceeded(&by_ip, cfg.max_failures_per_ip, window)
        .await;
    let queue = ip_over.map(|_| throttle.queue(ip));
    let _turn = match &queue {
        Some(q) => Some(q.lock().await),
        None => None,
    };
    let mut conn = state.pool.get().await?;
    let account = accounts::find_by_email(&mut conn, &address).await?;
    let pw = body.password;
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    let ok = password::blocking(move || match stored {
        Some(h) => password::verify(&pw, &h),
        None => {
            password::verify_dummy(&pw);
            false
        }
    })
    .await?;
    let account = match account {
        Some(a) if ok => a,
        _ => {
            throttle.record(by_ip, window).await;
            if let Some(retry) = ip_over {
                return Err(limited(cfg.max_failures_per_ip, retry));
            }
            return Err(ApiError::Unauthorized("Invalid e-mail or password".into()));
        }
    };
    throttle.reset(&by_account).await;
    if account.email_verified_at.is_none() {
        return Err(ApiError::Forbidden(
            "Verify your e-mail address first (see /auth/resend-verification)".into(),
        ));
    }
    let days = cfg.refresh_token_ttl_days;
    let (session_id, refresh) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let sid = accounts::open_session(conn, account.id, days).await?;
            Ok((sid, new_refresh_token(conn, account.id, sid, days).await?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(session_out(&state, account, session_id, refresh)))
}

enum Refreshed {
    Ok(Account, i64, (String, chrono::DateTime<Utc>)),
    Reused(i64),
    Invalid,
}

/// Exchange a refresh token for a new access token and a new refresh token.
/// Each refresh token works once: presenting a used one revokes its whole
/// session (every token of that login).
#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "Accounts",
    request_body = RefreshIn,
    responses(
        (status = 200, description = "New tokens", body = LoginOut),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = crate::error::ErrorBody),
    )
)]
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshIn>,
) -> ApiResult<HttpResponse> {
    if !tokens::looks_like_token(&body.refresh_token) {
        return Err(ApiError::Unauthorized("Invalid refresh token".into()));
    }
    let hash = tokens::hash(&body.refresh_token);
    let days = state.settings.accounts.refresh_token_ttl_days;
    let mut conn = state.pool.get().await?;
    let outcome = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let Some(t) = accounts::find_token(conn, &hash).await? else {
                return Ok(Refreshed::Invalid);
            };
            let Some(sid) = t
                .session_id
                .filter(|_| t.kind == TokenKind::Refresh.as_str())
            else {
                return Ok(Refreshed::Invalid);
            };
            if t.used_at.is_some() || !accounts::use_token(conn, t.id).await? {
                accounts::revoke_session(conn, t.account_id, sid).await?;
                return Ok(Refreshed::Reused(sid));
            }
            if t.expires_at <= Utc::now() || !accounts::session_open(conn, sid).await? {
                return Ok(Refreshed::Invalid);
            }
            let refresh = new_refresh_token(conn, t.account_id, sid, days).await?;
            Ok(Refreshed::Ok(
                accounts::find(conn, t.account_id).await?,
                sid,
                refresh,
            ))
        })
        .await?;
    match outcome {
        Refreshed::Ok(account, sid, refresh) => {
            Ok(HttpResponse::Ok().json(session_out(&state, account, sid, refresh)))
        }
        Refreshed::Reused(sid) => {
            state.accounts.evict_session(sid);
            tracing::warn!(session.id = sid, "refresh token reused; session revoked");
            Err(ApiError::Unauthorized(
                "Refresh token was already used; the session has been revoked".into(),
            ))
        }
        Refreshed::Invalid => Err(ApiError::Unauthorized(
            "Invalid or expired refresh token".into(),
        )),
    }
}

/// End the current session (its access and refresh tokens stop working).
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "Accounts",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn logout(me: SignedIn, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    accounts::revoke_session(&mut conn, me.account_id, me.session_id).await?;
    state.accounts.evict_session(me.session_id);
    // The dashboard's monitor sockets of this session on this node close at
    // once; those on other nodes at their next check (`check_monitor_keys`).
    state
        .hub
        .revoke(crate::events::hub::Revoke::Key(-me.session_id));
    Ok(HttpResponse::NoContent().finish())
}

/// End every session of the account, on every device.
#[utoipa::path(
    post, path = "/api/v1/auth/logout-all", tag = "Accounts",
    responses(
        (status = 204, description = "Every session ended"),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn logout_all(me: SignedIn, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    accounts::revoke_sessions(&mut conn, me.account_id, None).await?;
    state.accounts.evict_account(me.account_id);
    Ok(HttpResponse::NoContent().finish())
}
