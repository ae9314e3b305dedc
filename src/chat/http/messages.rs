//! Messages: history, sending, the read pointer, search.

use crate::auth::Auth;
use crate::chat::service::{self, Member, Outgoing};
use crate::chat::types::{
    ChatMessageEnvelopeOut, ChatMessagesIn, ChatMessagesOut, ChatReadIn, ChatReadOut, ChatSearchIn,
    ChatSearchOut, ChatSendIn,
};
use crate::error::ApiResult;
use crate::state::AppState;
use actix_web::{HttpResponse, web};

/// A page of a chat's history, newest first, by message id: without a
/// cursor the newest `limit`; with `before` the ones right below it
/// (scrolling back); with `after` the ones right above it (catching up
/// after a reconnect: repeat with the largest id while `has_more`).
#[utoipa::path(
    post, path = "/api/v1/chat/messages", tag = "Team Chat",
    request_body = ChatMessagesIn,
    responses(
        (status = 200, description = "A page of messages", body = ChatMessagesOut),
        (status = 400, description = "Bad limit", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_messages(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatMessagesIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let (messages, has_more) = service::history(
        &state,
        &m,
        body.chat_id,
        body.before,
        body.after,
        body.limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(ChatMessagesOut { messages, has_more }))
}

/// Sends a message (for clients without a socket): stored, then delivered
/// to the members' sockets. Sending the same `client_id` again returns the
/// stored message (200).
#[utoipa::path(
    post, path = "/api/v1/chat/send-message", tag = "Team Chat",
    request_body = ChatSendIn,
    responses(
        (status = 200, description = "Already stored with this client_id", body = ChatMessageEnvelopeOut),
        (status = 201, description = "Stored", body = ChatMessageEnvelopeOut),
        (status = 400, description = "Empty or oversized content (details.limit_bytes), bad client_id, unknown session_id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 429, description = "Over the account's messages per second (chat.messages_per_second), or rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn send_message(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatSendIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let out = Outgoing {
        account_id: m.account_id,
        project_id: Some(m.project_id),
        chat_id: body.chat_id,
        content: &body.content,
        client_id: body.client_id.as_deref(),
        session_id: body.session_id,
        origin: None,
    };
    let (message, new) = service::send(&state, &out).await?;
    let mut res = if new {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(ChatMessageEnvelopeOut { message }))
}

/// Moves the caller's read pointer up to a message (never back).
#[utoipa::path(
    post, path = "/api/v1/chat/mark-read", tag = "Team Chat",
    request_body = ChatReadIn,
    responses(
        (status = 200, description = "Read pointer and unread count", body = ChatReadOut),
        (status = 400, description = "Invalid body", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller, or no such message in it", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn mark_read(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatReadIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let (read_seq, unread_count) =
        service::mark_read(&state, &m, body.chat_id, body.message_id).await?;
    Ok(HttpResponse::Ok().json(ChatReadOut {
        chat_id: body.chat_id,
        read_seq,
        unread_count,
    }))
}

/// Full-text search (words, no stemming) over the messages of the
/// project's chats the caller is in, newest first.
#[utoipa::path(
    post, path = "/api/v1/chat/search", tag = "Team Chat",
    request_body = ChatSearchIn,
    responses(
        (status = 200, description = "Matching messages", body = ChatSearchOut),
        (status = 400, description = "Empty query or bad limit", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller (chat_id)", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn search_messages(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatSearchIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let messages = service::search(&state, &m, &body.query, body.chat_id, body.limit).await?;
    Ok(HttpResponse::Ok().json(ChatSearchOut { messages }))
}
