//! `reset-password-request`, `reset-password`, `change-password`.

use super::signup::{EmailIn, TokenMail, deliver, token_mail};
use super::{MessageOut, email, invalid_link, message};
use crate::auth::password;
use crate::auth::sessions::Account as SignedIn;
use crate::auth::throttle::ThrottleKey;
use crate::auth::tokens;
use crate::db::accounts::{self, TokenKind};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chrono::Duration;
use diesel_async::AsyncConnection;
use serde::Deserialize;
use std::time::Duration as StdDuration;

/// Body of `POST /api/v1/auth/reset-password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "the token from the e-mailed link", "password": "new-Tangerine-Orbit-7"}))]
pub struct ResetPasswordIn {
    pub token: String,
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
}

/// Body of `POST /api/v1/auth/change-password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "tangerine-Orbit-42", "new_password": "new-Tangerine-Orbit-7"}))]
pub struct ChangePasswordIn {
    pub current_password: String,
    #[schema(min_length = 10, max_length = 256)]
    pub new_password: String,
}

const RESET_REQUESTED: &str =
    "If an account exists for this address, a password reset link is on its way";

/// Ask for a password reset link (valid 1 hour). Always 200 with the same
/// body, whether or not the address has an account.
#[utoipa::path(
    post, path = "/api/v1/auth/reset-password-request", tag = "Accounts",
    request_body = EmailIn,
    responses(
        (status = 200, description = "Queued if the account exists (same answer otherwise)", body = MessageOut),
        (status = 400, description = "Not an e-mail address", body = crate::error::ErrorBody),
        (status = 429, description = "Too many requests for this address", body = crate::error::ErrorBody),
    )
)]
pub async fn reset_password_request(
    state: web::Data<AppState>,
    body: web::Json<EmailIn>,
) -> ApiResult<HttpResponse> {
    // A malformed address is refused (400) like everywhere else: that says
    // nothing about which addresses have accounts.
    let address = email("email", &body.email)?;
    let max = state.settings.accounts.verification_resends_per_hour;
    let window = StdDuration::from_secs(3600);
    let key = ThrottleKey::Reset(address.clone());
    if let Err(retry_after) = state.accounts.throttle.acquire(&key, max, window).await {
        return Err(ApiError::RateLimited {
            limit: max,
            retry_after,
        });
    }
    let mut conn = state.pool.get().await?;
    let st = state.clone();
    let queued = conn
        .transaction::<_, ApiError, _>(async |conn| {
            match accounts::find_by_email(conn, &address).await? {
                Some(a) => {
                    let mail = TokenMail {
                        kind: TokenKind::ResetPassword,
                        to: &address,
                        ttl: Duration::hours(1),
                        registration: None,
                    };
                    Ok(Some(token_mail(conn, &st, &a, mail).await?))
                }
                None => Ok(None),
            }
        })
        .await?;
    deliver(&state, queued);
    Ok(message(RESET_REQUESTED))
}

/// Set a new password with the token of a reset link (single use, 1 hour).
/// Every session of the account ends.
#[utoipa::path(
    post, path = "/api/v1/auth/reset-password", tag = "Accounts",
    request_body = ResetPasswordIn,
    responses(
        (status = 200, description = "Password changed; sign in again", body = MessageOut),
        (status = 400, description = "Unknown, used or expired token, or a weak password", body = crate::error::ErrorBody),
    )
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    body: web::Json<ResetPasswordIn>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    if !tokens::looks_like_token(&body.token) {
        return Err(invalid_link());
    }
    let hash = tokens::hash(&body.token);
    let mut conn = state.pool.get().await?;
    let token = accounts::find_token(&mut conn, &hash)
        .await?
        .filter(|t| t.usable(TokenKind::ResetPassword))
        .ok_or_else(invalid_link)?;
    let account = accounts::find(&mut conn, token.account_id).await?;
    password::check_strength("password", &body.password, &account.email)?;
    let pw = body.password;
    let new_hash = password::blocking(move || password::hash(&pw)).await??;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let still = accounts::find_token(conn, &hash).await?;
        if !still.is_some_and(|t| t.usable(TokenKind::ResetPassword))
            || !accounts::use_token(conn, token.id).await?
        {
            return Err(invalid_link());
        }
        accounts::set_password(conn, account.id, &new_hash).await?;
        accounts::spend_tokens(conn, account.id, TokenKind::ResetPassword).await?;
        accounts::revoke_sessions(conn, account.id, None).await?;
        // The link reached the mailbox: the address is proven, and pending
        // registrations of it are moot.
        accounts::verify_email(conn, account.id, None).await?;
        accounts::spend_tokens(conn, account.id, TokenKind::VerifyEmail).await?;
        Ok(())
    })
    .await?;
    state.accounts.evict_account(account.id);
    state
        .accounts
        .throttle
        .reset(&ThrottleKey::Login(account.email.clone()))
        .await;
    Ok(message("Password changed; sign in again"))
}

/// Change the password (the current one is required). Every other session
/// of the account ends; this one stays.
#[utoipa::path(
    post, path = "/api/v1/auth/change-password", tag = "Accounts",
    request_body = ChangePasswordIn,
    responses(
        (status = 200, description = "Password changed", body = MessageOut),
        (status = 400, description = "Weak new password", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "The current password is wrong", body = crate::error::ErrorBody),
        (status = 429, description = "Too many wrong passwords (Retry-After)", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn change_password(
    me: SignedIn,
    state: web::Data<AppState>,
    body: web::Json<ChangePasswordIn>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let mut conn = state.pool.get().await?;
    let account = accounts::find(&mut conn, me.account_id).await?;
    let cfg = &state.settings.accounts;
    let window = StdDuration::from_secs(cfg.lockout_secs);
    let key = ThrottleKey::Login(account.email.clone());
    // Counted before the check, like a login.
    if let Err(retry_after) = state
        .accounts
        .throttle
        .acquire(&key, cfg.max_failures_per_account, window)
        .await
    {
        return Err(ApiError::RateLimited {
            limit: cfg.max_failures_per_account,
            retry_after,
        });
    }
    let (current, stored) = (body.current_password, account.password_hash.clone());
    if !password::blocking(move || password::verify(&current, &stored)).await? {
        return Err(ApiError::Forbidden("The current password is wrong".into()));
    }
    state.accounts.throttle.reset(&key).await;
    password::check_strength("new_password", &body.new_password, &account.email)?;
    let pw = body.new_password;
    let new_hash = password::blocking(move || password::hash(&pw)).await??;
    conn.transaction::<_, ApiError, _>(async |conn| {
        accounts::set_password(conn, account.id, &new_hash).await?;
        accounts::spend_tokens(conn, account.id, TokenKind::ResetPassword).await?;
        accounts::revoke_sessions(conn, account.id, Some(me.session_id)).await?;
        Ok(())
    })
    .await?;
    state.accounts.evict_account(account.id);
    Ok(message(
        "Password changed; other sessions have been signed out",
    ))
}
