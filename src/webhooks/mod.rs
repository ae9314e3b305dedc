//! Webhook endpoints (beyond the contract, in its style), their deliveries,
//! and `POST /api/v1/webhooks/test` exactly as the contract shows.
//!
//! Layout: `http.rs` (handlers and their types), `service.rs` (validation
//! of URLs and event types), `store.rs` (SQL of endpoints, deliveries and
//! attempts, with named rows). Delivery itself is the event spine's
//! (`crate::events::delivery`).

use crate::routes::allow;
use actix_web::web;

pub mod http;
pub mod service;
pub mod store;

/// Registers the routes, relative to the `/webhooks` scope they are mounted in
/// (`routes::configure_api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(http::list_webhooks))
            .route(web::post().to(http::create_webhook))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/test")
            .route(web::post().to(http::test_webhook))
            .default_service(allow(&["POST"])),
    )
    .service(
        web::resource("/{id}")
            .route(web::get().to(http::get_webhook))
            .route(web::patch().to(http::update_webhook))
            .route(web::delete().to(http::delete_webhook))
            .default_service(allow(&["GET", "PATCH", "DELETE"])),
    )
    .service(
        web::resource("/{id}/rotate-secret")
            .route(web::post().to(http::rotate_secret))
            .default_service(allow(&["POST"])),
    )
    .service(
        web::resource("/{id}/deliveries")
            .route(web::get().to(http::list_deliveries))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{id}/deliveries/{delivery_id}")
            .route(web::get().to(http::get_delivery))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{id}/deliveries/{delivery_id}/redeliver")
            .route(web::post().to(http::redeliver))
            .default_service(allow(&["POST"])),
    )
    .service(
        web::resource("/{id}/recover")
            .route(web::post().to(http::recover))
            .default_service(allow(&["POST"])),
    );
}
