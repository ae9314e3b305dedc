//! Transcripts beyond one session's lines: search across a project's
//! sessions, exports (SRT, WebVTT, CSV of a transcript; CSV or JSON Lines of
//! a period's sessions, streamed) and the transcript so far for monitors.

pub mod formats;
pub mod http;
pub mod service;
pub mod store;

use crate::routes::allow;
use actix_web::web;

/// `/transcripts/search` (in the `/api/v1` scope).
pub fn configure_search(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/transcripts/search")
            .route(web::get().to(http::search_transcripts))
            .default_service(allow(&["GET"])),
    );
}

/// `/export` inside the `/sessions` scope (before the `/{id}` routes).
pub fn configure_sessions(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/export")
            .route(web::get().to(http::export_sessions))
            .default_service(allow(&["GET"])),
    );
}
