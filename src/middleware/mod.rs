//! Request pipeline pieces: request ids, metrics and panic recovery for every
//! request; authentication and rate limiting for `/api/v1`; idempotent POSTs;
//! JSON input without NUL characters.

pub mod api_guard;
pub mod client_addr;
pub mod idempotency;
pub mod json_input;
pub mod observe;
pub mod request_id;

/// The largest body the request's route accepts: uploads and ingest under
/// `/knowledge-bases` take documents, everything else JSON. One rule for
/// every layer that reads the body.
pub fn body_limit(req: &actix_web::dev::ServiceRequest, state: &crate::state::AppState) -> usize {
    if req.path().starts_with("/api/v1/knowledge-bases/") {
        crate::routes::knowledge::BODY_LIMIT
    } else {
        state.settings.json_body_limit
    }
}
