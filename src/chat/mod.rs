//! Team chat: 1:1 and group chats of a project's members (dashboard
//! accounts), delivered live over `/ws/chat` with presence and typing, and
//! voice calls in a chat through LiveKit (`/ws/call/{call_id}` follows one).
//! See docs/CHAT.md.
//!
//! | file | what |
//! |---|---|
//! | `http/` | `/api/v1/chat/…` handlers (POST + JSON, as the ChatCLI surface) |
//! | `ws.rs`, `call_ws.rs` | the sockets |
//! | `service.rs` | the rules of chats, members and messages |
//! | `calls.rs` | voice calls (reserve → LiveKit → confirm; LiveKit webhooks) |
//! | `store.rs`, `membership.rs`, `calls_store.rs` | SQL |
//! | `events.rs` | `chat.*` events on the spine, naming their recipients |
//! | `hub.rs` | this node's sockets; delivers the dispatcher's chat events |
//! | `presence.rs` | presence shared by the nodes (heartbeats), housekeeping |
//! | `types.rs`, `config.rs` | JSON shapes, the `[chat]` settings |

pub mod call_ws;
pub mod calls;
pub mod calls_store;
pub mod config;
pub mod events;
pub mod http;
pub mod hub;
pub mod membership;
pub mod presence;
pub mod service;
pub mod store;
pub mod types;
pub mod ws;

use actix_web::web;

/// The `/api/v1/chat/…` routes (inside the guarded `/api/v1` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/chat").configure(http::configure));
}

/// The sockets, outside `/api/v1` (they authenticate with their first frame).
pub fn configure_sockets(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/chat", web::get().to(ws::chat_socket))
        .route("/ws/call/{call_id}", web::get().to(call_ws::call_socket));
}
