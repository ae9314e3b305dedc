//! Recordings (contract section 9): audio-only LiveKit room-composite egress
//! to a file, listed, downloaded (with byte ranges) and deleted.
//!
//! A recording's file ends up at
//! `<recordings_dir>/<project id>/<full room name>/<egress id>.<ext>`. Egress
//! file names can only be templated with `{room_name}`, `{room_id}`, `{time}`
//! and `{utc}`, and the egress id is only known once the start call answers,
//! so the egress writes to `…/<room>/pending-<random>.<ext>` and the file is
//! renamed to its egress id when `egress_ended` reports it complete (the
//! row's `file_path` follows). Every path is built here from the configured
//! directory, the project id, a validated room name and LiveKit's egress id
//! (checked to be `[A-Za-z0-9_-]`); downloads read only the stored path,
//! checked to lie under `recordings_dir`, never anything from the request.
//!
//! A start reserves its row (`starting`, hidden from the API) and the
//! quota in a short transaction, calls LiveKit with no transaction open,
//! and records the egress (`recording`) in a second one; a failed call
//! drops the reservation. Status then follows the egress webhooks
//! (`crate::livekit::webhook`): `recording` until `egress_ended`, then
//! `completed` (size, duration, `ended_at`) or `error` (with LiveKit's
//! reason).
//!
//! Layout: `http.rs` (handlers and their types), `service.rs` (the rules:
//! starting an egress — reserve, call LiveKit, confirm — and the file named
//! by its egress id, shared with the LiveKit webhook and the reconciler),
//! `store.rs` (SQL of `recordings`), `range.rs` (byte ranges of downloads).

use crate::routes::allow;
use actix_web::web;

pub mod http;
pub mod range;
pub mod service;
pub mod store;

pub use service::{lies_under, settle_file};
pub use store::RecordingStatus;

/// Mounts the recording routes, relative to the `/recordings` scope they are mounted in
/// (`routes::configure_api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(http::list))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{recordingId}")
            .route(web::get().to(http::detail))
            .route(web::delete().to(http::delete))
            .default_service(allow(&["GET", "DELETE"])),
    )
    .service(
        web::resource("/{recordingId}/download")
            .route(web::get().to(http::download))
            .default_service(allow(&["GET"])),
    );
}

/// Registers the recording routes of a room (inside the `/rooms` scope).
pub fn configure_room(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/{roomName}/recordings/start")
            .route(web::post().to(http::start))
            .default_service(allow(&["POST"])),
    )
    .service(
        web::resource("/{roomName}/recordings/stop")
            .route(web::post().to(http::stop))
            .default_service(allow(&["POST"])),
    );
}
