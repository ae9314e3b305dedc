//! Accounts under `/api/v1/auth`: registration and e-mail verification,
//! login with rotating refresh tokens, password reset and change, logout,
//! and the signed-in account (`/me`). Reachable without an API key; answers
//! about e-mail addresses never tell whether an account exists.

pub mod login;
pub mod me;
pub mod password;
pub mod signup;

pub use login::{login, logout, logout_all, refresh};
pub use me::{get_me, update_me};
pub use password::{change_password, reset_password, reset_password_request};
pub(crate) use signup::deliver;
pub use signup::{register, resend_verification, verify_email};

use super::allow;
use crate::db::accounts::Account;
use crate::error::{ApiError, ApiResult};
use crate::limits::plans::Plan;
use actix_web::{HttpRequest, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::net::IpAddr;

/// A signed-in account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "ann@example.com")]
    pub email: String,
    #[schema(example = "Ann Example")]
    pub name: String,
    /// Plan of the projects this account creates.
    pub plan: Plan,
    pub email_verified: bool,
    /// A new address waiting for confirmation, if any.
    #[schema(example = json!(null))]
    pub pending_email: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl AccountOut {
    /// The public view of an account row.
    pub fn new(a: Account, pending_email: Option<String>) -> Self {
        Self {
            id: a.id,
            plan: a.plan(),
            email_verified: a.email_verified_at.is_some(),
            email: a.email,
            name: a.name,
            pending_email,
            created_at: a.created_at,
        }
    }
}

/// `{"account": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountResponse {
    pub account: AccountOut,
}

/// `{"message": …}`: the same body whatever the address (no enumeration).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageOut {
    #[schema(example = "If an account exists for this address, an e-mail is on its way")]
    pub message: String,
}

/// A 200 `{"message": …}`.
pub fn message(m: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(MessageOut { message: m.into() })
}

/// Lower-cased, trimmed and checked e-mail address.
pub fn email(field: &str, value: &str) -> ApiResult<String> {
    let v = value.trim().to_lowercase();
    if v.len() > 254 || v.parse::<lettre::Address>().is_err() {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be a valid e-mail address"),
        ));
    }
    Ok(v)
}

/// 400 for a link that is unknown, used or expired (one message for all).
pub fn invalid_link() -> ApiError {
    ApiError::invalid_field("token", "This link is invalid or has expired")
}

/// The client address the request came from (behind trusted proxies, the
/// client they name).
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    crate::middleware::client_addr::client_ip(req)
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let post = |path: &str, cfg: &mut web::ServiceConfig, route: actix_web::Route| {
        cfg.service(
            web::resource(format!("/auth/{path}"))
                .route(route)
                .default_service(allow(&["POST"])),
        );
    };
    post("register", cfg, web::post().to(register));
    post("verify-email", cfg, web::post().to(verify_email));
    post(
        "resend-verification",
        cfg,
        web::post().to(resend_verification),
    );
    post("login", cfg, web::post().to(login));
    post("refresh", cfg, web::post().to(refresh));
    post("logout", cfg, web::post().to(logout));
    post("logout-all", cfg, web::post().to(logout_all));
    post(
        "reset-password-request",
        cfg,
        web::post().to(reset_password_request),
    );
    post("reset-password", cfg, web::post().to(reset_password));
    post("change-password", cfg, web::post().to(change_password));
    cfg.service(
        web::resource("/auth/me")
            .route(web::get().to(get_me))
            .route(web::patch().to(update_me))
            .default_service(allow(&["GET", "PATCH"])),
    );
}
