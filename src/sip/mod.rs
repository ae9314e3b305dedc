//! SIP telephony (contract section 10): trunks, call configurations and
//! outbound dialing through LiveKit SIP.
//!
//! - A trunk is a phone number at a SIP provider. Creating one creates, in
//!   LiveKit, an outbound trunk (address, number, auth), an inbound trunk
//!   for the number and a dispatch rule that puts each inbound call in its
//!   own project room (`<prefix>_call-…`) with the line's agent dispatched
//!   (the config of the number, else the project's first active agent),
//!   kept in line with it as configs and agents change ([`rules`]).
//!   PATCH of the number, address or auth recreates the three; DELETE
//!   removes them.
//! - A config is a line's call settings: agent, DTMF, max call duration and
//!   trunk. Quota: `sip_configs`.
//! - `POST /sip/dial` ([`dial`]) places an outbound call; the calls worker
//!   (`crate::livekit::calls`) reports its progress and ends it at the
//!   deadline, in whichever process runs then. Quota: concurrent calls
//!   (active sip sessions) up to the plan's `sip_configs` limit.
//!
//! Layout: `http.rs` (trunk and config handlers), `provision.rs` (trunks
//! in LiveKit, validation), `rules.rs` (dispatch rules kept in line with
//! the line's agent), `lines.rs` (the agent of a line, shared with the
//! LiveKit webhook), `dial.rs` (outbound calls: the handler), `dialing.rs` (their rules:
//! reserve → commit → call → confirm, and the reconciler's settling), `store.rs` (SQL of
//! `sip_trunks` and `sip_configs`).

use crate::routes::allow;
use actix_web::web;

pub mod dial;
pub mod dialing;
pub mod http;
pub mod lines;
pub mod provision;
pub mod rules;
pub mod store;

pub use crate::livekit::calls::DEFAULT_MAX_CALL_SECS;
pub use provision::e164;
pub use rules::sync_dispatch_rules;

/// Mounts the SIP routes, relative to the `/sip` scope they are mounted in
/// (`routes::configure_api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/trunks")
            .route(web::get().to(http::list_trunks))
            .route(web::post().to(http::create_trunk))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/trunks/{id}")
            .route(web::patch().to(http::update_trunk))
            .route(web::delete().to(http::delete_trunk))
            .default_service(allow(&["PATCH", "DELETE"])),
    )
    .service(
        web::resource("/configs")
            .route(web::get().to(http::list_configs))
            .route(web::post().to(http::create_config))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/configs/{id}")
            .route(web::patch().to(http::update_config))
            .route(web::delete().to(http::delete_config))
            .default_service(allow(&["PATCH", "DELETE"])),
    )
    .service(
        web::resource("/dial")
            .route(web::post().to(dial::dial))
            .default_service(allow(&["POST"])),
    );
}
