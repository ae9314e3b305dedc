//! Rooms (contract section 6): `http.rs` (handlers and their types: parse
//! → service → respond), `service.rs` (the rules: create with reserve →
//! commit → call LiveKit → confirm, close, the live room); the SQL is
//! `crate::db::rooms`, shared with the LiveKit webhook and the reconciler.

use crate::routes::allow;
use actix_web::web;

pub mod http;
pub mod service;

/// Registers the routes, relative to the `/rooms` scope they are mounted in
/// (`routes::configure_api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(http::list_rooms))
            .route(web::post().to(http::create_room))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{roomName}")
            .route(web::get().to(http::get_room))
            .route(web::delete().to(http::delete_room))
            .default_service(allow(&["GET", "DELETE"])),
    )
    .service(
        web::resource("/{roomName}/participants")
            .route(web::get().to(http::list_participants))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{roomName}/kick/{identity}")
            .route(web::post().to(http::kick_participant))
            .default_service(allow(&["POST"])),
    );
}
