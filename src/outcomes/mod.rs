//! Call outcomes: disposition, tags, notes and rating of a session, and the
//! project's disposition list (see [`service`]).

pub mod http;
pub mod service;
pub mod store;

use crate::routes::allow;
use actix_web::web;

/// `/dispositions` inside the `/sessions` scope (before the `/{id}` routes).
pub fn configure_lists(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/dispositions")
            .route(web::get().to(http::get_dispositions))
            .route(web::put().to(http::set_dispositions))
            .default_service(allow(&["GET", "PUT"])),
    );
}

/// `/{session_id}` inside the `/sessions` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{session_id}")
            .route(web::patch().to(http::update_session_outcome))
            .default_service(allow(&["PATCH"])),
    );
}
