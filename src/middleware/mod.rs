//! Request pipeline pieces: request ids, metrics and panic recovery for every
//! request; authentication and rate limiting for `/api/v1`; idempotent POSTs;
//! JSON input without NUL characters.

pub mod api_guard;
pub mod client_addr;
pub mod idempotency;
pub mod json_input;
pub mod observe;
pub mod request_id;
