//! Voice calls in a chat.

use crate::auth::Auth;
use crate::chat::calls;
use crate::chat::service::Member;
use crate::chat::types::{ChatCallEnvelopeOut, ChatCallIn, ChatCallTokenOut, ChatStartCallIn};
use crate::error::ApiResult;
use crate::state::AppState;
use actix_web::{HttpResponse, web};

/// Starts a voice call in a chat: a LiveKit room of the project, the
/// caller's token for it; the members get `incoming_call` on `/ws/chat`
/// and a `call` message appears in the chat.
#[utoipa::path(
    post, path = "/api/v1/chat/start-call", tag = "Team Chat",
    request_body = ChatStartCallIn,
    responses(
        (status = 201, description = "Ringing; the caller's token", body = ChatCallTokenOut),
        (status = 400, description = "Invalid body", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 409, description = "A call is already running in the chat (details.call_id)", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable or not configured", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn start_call(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatStartCallIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let out = calls::start(&state, &m, body.chat_id).await?;
    Ok(HttpResponse::Created().json(out))
}

/// A member's token for the live call of a chat (or a call by id).
#[utoipa::path(
    post, path = "/api/v1/chat/join-call", tag = "Team Chat",
    request_body = ChatCallIn,
    responses(
        (status = 200, description = "The member's token", body = ChatCallTokenOut),
        (status = 400, description = "Neither chat_id nor call_id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat or call of the caller, or no call running", body = crate::error::ErrorBody),
        (status = 409, description = "The call has ended", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit not configured", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn join_call(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatCallIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let out: ChatCallTokenOut = calls::join(&state, &m, body.chat_id, body.call_id).await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Ends a call for everyone (any member) and closes its room.
#[utoipa::path(
    post, path = "/api/v1/chat/end-call", tag = "Team Chat",
    request_body = ChatCallIn,
    responses(
        (status = 200, description = "The call, ended", body = ChatCallEnvelopeOut),
        (status = 400, description = "Neither chat_id nor call_id", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat or call of the caller, or no call running", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn end_call(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatCallIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let call = calls::end(&state, &m, body.chat_id, body.call_id).await?;
    Ok(HttpResponse::Ok().json(ChatCallEnvelopeOut { call }))
}
