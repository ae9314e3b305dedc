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
pub mod sessions;
pub mod token;
pub mod usage;
pub mod ws_body;

use crate::error::ApiError;
use actix_web::{HttpResponse, Route, web};
use serde::Serialize;

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
///
/// Resources with path parameters sit in a scope per first path segment:
/// actix tries a scope's static prefix first and the resources' patterns
/// (regular expressions) only inside the scope that matches, instead of
/// every pattern registered before the one a request is for (route matching
/// runs on every request, so its cost shows on the hot paths). A path in a
/// scope that matches none of its resources gets the 404 of the `/api/v1`
/// scope.
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    auth::configure(cfg);
    projects::configure_invitations(cfg);
    project::configure(cfg);
    quota::configure(cfg);
    token::configure(cfg);
    connection_details::configure(cfg);
    usage::configure(cfg);
    knowledge::configure_search(cfg);
    crate::transcripts::configure_search(cfg);
    crate::chat::configure(cfg);
    cfg.service(web::scope("/projects").configure(projects::configure))
        .service(web::scope("/agents").configure(agents::configure))
        .service(
            web::scope("/rooms")
                .configure(crate::rooms::configure)
                .configure(crate::recordings::configure_room)
                .configure(call_control::configure),
        )
        .service(web::scope("/recordings").configure(crate::recordings::configure))
        .service(web::scope("/webhooks").configure(crate::webhooks::configure))
        .service(
            web::scope("/sessions")
                .configure(crate::transcripts::configure_sessions)
                .configure(crate::outcomes::configure_lists)
                .configure(sessions::configure)
                .configure(crate::outcomes::configure)
                .configure(crate::supervisor::configure),
        )
        .service(web::scope("/sip").configure(crate::sip::configure))
        .service(web::scope("/knowledge-bases").configure(knowledge::configure));
}

/// `{"success": true, "message": …}`: the answer of deletes and other
/// actions with nothing else to return (one type, one schema name).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuccessMessage {
    /// Always `true`.
    pub success: bool,
    /// What happened.
    #[schema(example = "Agent deleted")]
    pub message: String,
}
