//! `GET/PATCH /api/v1/auth/me`: the signed-in account.

use super::signup::{TokenMail, address_in_use, deliver, token_mail};
use super::{AccountOut, AccountResponse, email};
use crate::auth::sessions::Account as SignedIn;
use crate::db::accounts::{self, TokenKind};
use crate::db::schema::auth_tokens as t;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;

/// Body of `PATCH /api/v1/auth/me`; absent fields stay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ann B. Example", "email": "ann@new.example.com"}))]
pub struct MePatch {
    pub name: Option<String>,
    /// A new address: it replaces the current one once confirmed through
    /// the link e-mailed to it (valid 24 hours).
    pub email: Option<String>,
}

async fn pending_email(
    conn: &mut AsyncPgConnection,
    account_id: i64,
) -> QueryResult<Option<String>> {
    t::table
        .filter(
            t::account_id
                .eq(account_id)
                .and(t::kind.eq(TokenKind::ChangeEmail.as_str())),
        )
        .filter(t::used_at.is_null().and(t::expires_at.gt(Utc::now())))
        .order(t::id.desc())
        .select(t::email)
        .first::<Option<String>>(conn)
        .await
        .optional()
        .map(Option::flatten)
}

/// The signed-in account.
#[utoipa::path(
    get, path = "/api/v1/auth/me", tag = "Accounts",
    responses(
        (status = 200, description = "The account", body = AccountResponse),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_me(me: SignedIn, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let account = accounts::find(&mut conn, me.account_id).await?;
    let pending = pending_email(&mut conn, me.account_id).await?;
    Ok(HttpResponse::Ok().json(AccountResponse {
        account: AccountOut::new(account, pending),
    }))
}

/// Change the name, or ask to change the e-mail address (a confirmation
/// link goes to the new address; until it is used the old one stays). An
/// address that already has an account gets the same answer, and its owner
/// a notice instead of a link.
#[utoipa::path(
    patch, path = "/api/v1/auth/me", tag = "Accounts",
    request_body = MePatch,
    responses(
        (status = 200, description = "The account (`pending_email` while a change waits)", body = AccountResponse),
        (status = 400, description = "Invalid name or address", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_me(
    me: SignedIn,
    state: web::Data<AppState>,
    body: web::Json<MePatch>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let name = validate::opt_text("name", body.name.as_deref(), 200)?;
    let new_email = body
        .email
        .as_deref()
        .map(|e| email("email", e))
        .transpose()?;
    let mut conn = state.pool.get().await?;
    let st = state.clone();
    let (account, queued) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            if let Some(name) = &name {
                accounts::set_name(conn, me.account_id, name).await?;
            }
            let account = accounts::find(conn, me.account_id).await?;
            let mut queued = None;
            if let Some(new) = new_email.as_deref().filter(|e| *e != account.email) {
                let mail = TokenMail {
                    kind: TokenKind::ChangeEmail,
                    to: new,
                    ttl: Duration::hours(24),
                    registration: None,
                };
                // The answer is the same whether or not the address has an
                // account (no enumeration): an owner is told by mail instead
                // of getting a link, and the change can never be confirmed.
                queued = Some(if accounts::find_by_email(conn, new).await?.is_some() {
                    address_in_use(conn, &st, &account, mail).await?
                } else {
                    token_mail(conn, &st, &account, mail).await?
                });
            }
            Ok((account, queued))
        })
        .await?;
    deliver(&state, queued);
    let pending = pending_email(&mut conn, me.account_id).await?;
    Ok(HttpResponse::Ok().json(AccountResponse {
        account: AccountOut::new(account, pending),
    }))
}
