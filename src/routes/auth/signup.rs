//! `register`, `verify-email`, `resend-verification`.

use super::{AccountResponse, MessageOut, email, invalid_link, message};
use crate::auth::password;
use crate::auth::throttle::ThrottleKey;
use crate::auth::tokens;
use crate::db::accounts::{self, Account, NewToken, Registration, TokenKind};
use crate::error::{ApiError, ApiResult};
use crate::mail::{Template, outbox};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Deserialize;
use std::time::Duration as StdDuration;

/// Body of `POST /api/v1/auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ann@example.com", "password": "tangerine-Orbit-42", "name": "Ann Example"}))]
pub struct RegisterIn {
    pub email: String,
    /// At least 10 characters, not trivially weak.
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    pub name: String,
}

/// Body of `POST /api/v1/auth/verify-email`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "the token from the e-mailed link"}))]
pub struct EmailTokenIn {
    /// The `token` parameter of the e-mailed link.
    pub token: String,
}

/// Body of requests naming an address.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ann@example.com"}))]
pub struct EmailIn {
    pub email: String,
}

const REGISTERED: &str =
    "Check your inbox: if the address can be used, a verification link is on its way";
const RESENT: &str =
    "If an unverified account exists for this address, a verification link is on its way";

/// Stores a new single-use e-mail token and queues its message; returns the
/// outbox id to deliver after commit. A new change-address or reset token
/// replaces the account's earlier ones; verification tokens each confirm
/// their own registration (`registration`), so a later registration of the
/// address cannot take over the link of an earlier one (and the other way
/// round): the one whose link is used wins, and using it spends the others.
pub(crate) async fn token_mail(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    account: &Account,
    mail: TokenMail<'_>,
) -> ApiResult<i64> {
    let TokenMail {
        kind,
        to,
        ttl,
        registration,
    } = mail;
    let (template, page) = match kind {
        TokenKind::VerifyEmail => (Template::VerifyEmail, "verify-email"),
        TokenKind::ChangeEmail => (Template::ChangeEmail, "confirm-email"),
        TokenKind::ResetPassword => (Template::ResetPassword, "reset-password"),
        TokenKind::Refresh => {
            return Err(ApiError::internal(anyhow::anyhow!(
                "refresh tokens are not mailed"
            )));
        }
    };
    if kind != TokenKind::VerifyEmail {
        accounts::spend_tokens(conn, account.id, kind).await?;
    }
    let token = tokens::generate();
    let email_col = matches!(kind, TokenKind::VerifyEmail | TokenKind::ChangeEmail).then_some(to);
    accounts::insert_token(
        conn,
        NewToken {
            account_id: account.id,
            kind,
            hash: &tokens::hash(&token),
            session_id: None,
            email: email_col,
            registration,
            expires_at: Utc::now() + ttl,
        },
    )
    .await?;
    let link = state.mailer.link(page, &token);
    let name = registration.map_or(account.name.as_str(), |r| r.name);
    let rendered = state
        .mailer
        .render(template, &[("name", name), ("email", to), ("link", &link)]);
    Ok(outbox::enqueue(conn, template.as_str(), to, &rendered).await?)
}

/// Records a change-address request for an address that already has an
/// account as [`token_mail`] would (so `pending_email` reads the same), but
/// mails that address's owner a notice instead of the link, which nobody
/// ever sees: the change cannot be confirmed.
pub(crate) async fn address_in_use(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    account: &Account,
    mail: TokenMail<'_>,
) -> ApiResult<i64> {
    accounts::spend_tokens(conn, account.id, mail.kind).await?;
    accounts::insert_token(
        conn,
        NewToken {
            account_id: account.id,
            kind: mail.kind,
            hash: &tokens::hash(&tokens::generate()),
            session_id: None,
            email: Some(mail.to),
            registration: None,
            expires_at: Utc::now() + mail.ttl,
        },
    )
    .await?;
    let template = Template::AddressInUse;
    let link = state.mailer.page("sign-in");
    let rendered = state
        .mailer
        .render(template, &[("email", mail.to), ("link", &link)]);
    Ok(outbox::enqueue(conn, template.as_str(), mail.to, &rendered).await?)
}

/// What [`token_mail`] sends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenMail<'a> {
    pub kind: TokenKind,
    /// The address the link goes to.
    pub to: &'a str,
    pub ttl: Duration,
    /// Verification links: the registration the link confirms.
    pub registration: Option<Registration<'a>>,
}

/// Delivers queued messages after the commit that queued them.
pub(crate) fn deliver(state: &AppState, ids: impl IntoIterator<Item = i64>) {
    for id in ids {
        outbox::deliver_soon(state.mailer.clone(), state.pool.clone(), id);
    }
}

/// Create an account; a verification link is e-mailed. The answer is the
/// same whether or not the address already has an account.
#[utoipa::path(
    post, path = "/api/v1/auth/register", tag = "Accounts",
    request_body = RegisterIn,
    responses(
        (status = 202, description = "Verification e-mail queued (same answer for known addresses)", body = MessageOut),
        (status = 400, description = "Invalid e-mail, weak password or missing name", body = crate::error::ErrorBody),
        (status = 429, description = "Too many requests from this address", body = crate::error::ErrorBody),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<RegisterIn>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let address = email("email", &body.email)?;
    let name = validate::text("name", &body.name, 200)?;
    password::check_strength("password", &body.password, &address)?;
    let pw = body.password;
    let hash = password::blocking(move || password::hash(&pw)).await??;
    let mut conn = state.pool.get().await?;
    let plan = state.settings.accounts.default_plan;
    let st = state.clone();
    let queued = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let registration = Registration {
                password_hash: &hash,
                name: &name,
            };
            let account = match accounts::find_by_email(conn, &address).await? {
                Some(a) if a.email_verified_at.is_some() => return Ok(None),
                // A new registration of an unverified address replaces the
                // credentials of the earlier one; its link carries them.
                Some(a) => {
                    accounts::replace_unverified(conn, a.id, registration).await?;
                    a
                }
                None => accounts::create(conn, &address, &name, &hash, plan.as_str()).await?,
            };
            let mail = TokenMail {
                kind: TokenKind::VerifyEmail,
                to: &address,
                ttl: Duration::hours(24),
                registration: Some(registration),
            };
            Ok(Some(token_mail(conn, &st, &account, mail).await?))
        })
        .await;
    match queued {
        Ok(ids) => deliver(&state, ids),
        // A concurrent registration of the same address won the race.
        Err(ApiError::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(HttpResponse::Accepted().json(MessageOut {
        message: REGISTERED.into(),
    }))
}

/// Verify an address with the token of an e-mailed link (a new account's
/// address, or a new address after `PATCH /auth/me`). Single use, 24 hours.
#[utoipa::path(
    post, path = "/api/v1/auth/verify-email", tag = "Accounts",
    request_body = EmailTokenIn,
    responses(
        (status = 200, description = "Address verified", body = AccountResponse),
        (status = 400, description = "Unknown, used or expired token", body = crate::error::ErrorBody),
        (status = 409, description = "The new address belongs to another account by now", body = crate::error::ErrorBody),
    )
)]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: web::Json<EmailTokenIn>,
) -> ApiResult<HttpResponse> {
    if !tokens::looks_like_token(&body.token) {
        return Err(invalid_link());
    }
    let hash = tokens::hash(&body.token);
    let mut conn = state.pool.get().await?;
    let account = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let Some(t) = accounts::find_token(conn, &hash).await? else {
                return Err(invalid_link());
            };
            let change = if t.usable(TokenKind::VerifyEmail) {
                None
            } else if t.usable(TokenKind::ChangeEmail) {
                t.email.clone()
            } else {
                return Err(invalid_link());
            };
            if !accounts::use_token(conn, t.id).await? {
                return Err(invalid_link());
            }
            if let Some(new) = &change {
                accounts::verify_email(conn, t.account_id, Some(new))
                    .await
                    .map_err(|e| match ApiError::from(e) {
                        ApiError::Conflict { .. } => {
                            ApiError::conflict("This address is already used by another account")
                        }
                        other => other,
                    })?;
                accounts::spend_tokens(conn, t.account_id, TokenKind::ChangeEmail).await?;
            } else {
                let registration = t.password_hash.as_deref().map(|h| Registration {
                    password_hash: h,
                    name: t.name.as_deref().unwrap_or_default(),
                });
                accounts::confirm_registration(conn, t.account_id, registration).await?;
                // The address is proven: every other registration's link dies.
                accounts::spend_tokens(conn, t.account_id, TokenKind::VerifyEmail).await?;
            }
            Ok(accounts::find(conn, t.account_id).await?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountResponse {
        account: super::AccountOut::new(account, None),
    }))
}

/// E-mail a new verification link (rate limited per address). The answer
/// is the same whether or not the address has an account.
#[utoipa::path(
    post, path = "/api/v1/auth/resend-verification", tag = "Accounts",
    request_body = EmailIn,
    responses(
        (status = 200, description = "Queued if there is an unverified account (same answer otherwise)", body = MessageOut),
        (status = 429, description = "Too many requests for this address", body = crate::error::ErrorBody),
    )
)]
pub async fn resend_verification(
    state: web::Data<AppState>,
    body: web::Json<EmailIn>,
) -> ApiResult<HttpResponse> {
    let address = email("email", &body.email)?;
    let max = state.settings.accounts.verification_resends_per_hour;
    let window = StdDuration::from_secs(3600);
    let key = ThrottleKey::Resend(address.clone());
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
                // A new link for the latest registration (the account's
                // credentials); the links of others stay as they were.
                Some(a) if a.email_verified_at.is_none() => {
                    let mail = TokenMail {
                        kind: TokenKind::VerifyEmail,
                        to: &address,
                        ttl: Duration::hours(24),
                        registration: Some(Registration {
                            password_hash: &a.password_hash,
                            name: &a.name,
                        }),
                    };
                    Ok(Some(token_mail(conn, &st, &a, mail).await?))
                }
                _ => Ok(None),
            }
        })
        .await?;
    deliver(&state, queued);
    Ok(message(RESENT))
}
