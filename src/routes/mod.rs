//! HTTP routes, one module per resource, each with `configure(cfg)`.

pub mod agents;
pub mod auth;
pub mod call_control;
pub mod connection_details;
pub mod knowledge;
pub mod livekit_webhook;
pub mod monitor;
pub mod ops;
pub mod project;
pub mod projects;
pub mod quota;
pub mod recordings;
pub mod rooms;
pub mod sessions;
pub mod sip;
pub mod token;
pub mod usage;
pub mod webhooks;

use crate::error::ApiError;
use actix_web::{HttpResponse, Route, web};

/// The default service of a resource: 405 with the methods it does allow.
pub fn allow(methods: &'static [&'static str]) -> Route {
    web::to(move || async move {
        Err::<HttpResponse, ApiError>(ApiError::MethodNotAllowed {
            allowed: methods.to_vec(),
        })
    })
}

/// The default service of the app: 404 in the envelope.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("No such endpoint".into()))
}

/// Registers the `/api/v1` resources (inside the guarded scope).
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    auth::configure(cfg);
    projects::configure(cfg);
    agents::configure(cfg);
    project::configure(cfg);
    quota::configure(cfg);
    token::configure(cfg);
    rooms::configure(cfg);
    recordings::configure(cfg);
    call_control::configure(cfg);
    connection_details::configure(cfg);
    webhooks::configure(cfg);
    sessions::configure(cfg);
    sip::configure(cfg);
    usage::configure(cfg);
    knowledge::configure(cfg);
}
