//! Live supervision of calls: listen, whisper, barge and take over (see
//! [`service`] for the rules), recorded per session (`supervisions`).

pub mod http;
pub mod service;
pub mod store;

use crate::routes::allow;
use actix_web::web;

/// Registers the routes inside the `/sessions` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{roomName}/supervise")
            .route(web::post().to(http::start_supervision))
            .route(web::patch().to(http::change_supervision))
            .default_service(allow(&["POST", "PATCH"])),
    )
    .service(
        web::resource("/{roomName}/supervise/release")
            .route(web::post().to(http::release_supervision))
            .default_service(allow(&["POST"])),
    );
}
