//! Chats and their members.

use crate::auth::Auth;
use crate::chat::service::{self, Member};
use crate::chat::types::{
    ChatCreateIn, ChatEnvelopeOut, ChatGroupIn, ChatIdIn, ChatListIn, ChatListOut, ChatMembersIn,
    ChatMembersOut, ChatRemovedOut, ChatRenameIn,
};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::validate::OptionalJson;
use actix_web::{HttpResponse, web};

/// The caller's active (not archived) chats, most recently active first,
/// with members, last message and unread count.
#[utoipa::path(
    post, path = "/api/v1/chat/fetch-chats", tag = "Team Chat",
    request_body(content = Option<ChatListIn>, description = "Optional"),
    responses(
        (status = 200, description = "Chats", body = ChatListOut),
        (status = 400, description = "Bad limit", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "Not a member of the project", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn fetch_chats(
    auth: Auth,
    state: web::Data<AppState>,
    body: OptionalJson<ChatListIn>,
) -> ApiResult<HttpResponse> {
    list(auth, state, body, false).await
}

/// The caller's archived chats.
#[utoipa::path(
    post, path = "/api/v1/chat/fetch-archived", tag = "Team Chat",
    request_body(content = Option<ChatListIn>, description = "Optional"),
    responses(
        (status = 200, description = "Archived chats", body = ChatListOut),
        (status = 400, description = "Bad limit", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "Not a member of the project", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn fetch_archived(
    auth: Auth,
    state: web::Data<AppState>,
    body: OptionalJson<ChatListIn>,
) -> ApiResult<HttpResponse> {
    list(auth, state, body, true).await
}

async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    body: OptionalJson<ChatListIn>,
    archived: bool,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let limit = service::list_limit(body.or_default().limit)?;
    let chats = service::fetch(&state, &m, archived, limit).await?;
    Ok(HttpResponse::Ok().json(ChatListOut { chats }))
}

/// The direct (1:1) chat with another member of the project: created, or
/// the existing one (200).
#[utoipa::path(
    post, path = "/api/v1/chat/create-chat", tag = "Team Chat",
    request_body = ChatCreateIn,
    responses(
        (status = 200, description = "The existing chat", body = ChatEnvelopeOut),
        (status = 201, description = "Created", body = ChatEnvelopeOut),
        (status = 400, description = "Invalid body, or the caller's own account", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No member of the project with that account id", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_chat(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatCreateIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let (chat, created) = service::create_direct(&state, &m, body.account_id).await?;
    let mut res = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res.json(ChatEnvelopeOut { chat }))
}

/// A group with the caller as its admin.
#[utoipa::path(
    post, path = "/api/v1/chat/create-group", tag = "Team Chat",
    request_body = ChatGroupIn,
    responses(
        (status = 201, description = "Created", body = ChatEnvelopeOut),
        (status = 400, description = "Invalid name, too many members, or accounts not in the project", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "Not a member of the project", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_group(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatGroupIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let chat = service::create_group(&state, &m, &body.name, &body.account_ids).await?;
    Ok(HttpResponse::Created().json(ChatEnvelopeOut { chat }))
}

/// Adds members to a group (group admins).
#[utoipa::path(
    post, path = "/api/v1/chat/add-members", tag = "Team Chat",
    request_body = ChatMembersIn,
    responses(
        (status = 200, description = "The group now", body = ChatEnvelopeOut),
        (status = 400, description = "A direct chat, too many members, or accounts not in the project", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a group admin, or an API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_members(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatMembersIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let chat = service::add_members(&state, &m, body.chat_id, &body.account_ids).await?;
    Ok(HttpResponse::Ok().json(ChatEnvelopeOut { chat }))
}

/// Removes members from a group (group admins; anyone may remove
/// themselves, i.e. leave). A group left without admins gets its
/// longest-standing member as admin.
#[utoipa::path(
    post, path = "/api/v1/chat/remove-members", tag = "Team Chat",
    request_body = ChatMembersIn,
    responses(
        (status = 200, description = "The group now (`chat` null after leaving)", body = ChatRemovedOut),
        (status = 400, description = "A direct chat, or no account named", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a group admin (removing others), or an API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn remove_members(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatMembersIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let chat = service::remove_members(&state, &m, body.chat_id, &body.account_ids).await?;
    Ok(HttpResponse::Ok().json(ChatRemovedOut {
        chat_id: body.chat_id,
        chat,
    }))
}

/// Renames a group (group admins).
#[utoipa::path(
    post, path = "/api/v1/chat/rename-group", tag = "Team Chat",
    request_body = ChatRenameIn,
    responses(
        (status = 200, description = "The group now", body = ChatEnvelopeOut),
        (status = 400, description = "Invalid name, or a direct chat", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "Not a group admin, or an API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rename_group(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatRenameIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let chat = service::rename_group(&state, &m, body.chat_id, &body.name).await?;
    Ok(HttpResponse::Ok().json(ChatEnvelopeOut { chat }))
}

/// The members of a chat, with presence.
#[utoipa::path(
    post, path = "/api/v1/chat/get-members", tag = "Team Chat",
    request_body = ChatIdIn,
    responses(
        (status = 200, description = "Members", body = ChatMembersOut),
        (status = 400, description = "Invalid body", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_members(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatIdIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let members = service::members(&state, &m, body.chat_id).await?;
    Ok(HttpResponse::Ok().json(ChatMembersOut {
        chat_id: body.chat_id,
        members,
    }))
}

/// Archives a chat for the caller (the other members' views do not change).
#[utoipa::path(
    post, path = "/api/v1/chat/archive-chat", tag = "Team Chat",
    request_body = ChatIdIn,
    responses(
        (status = 200, description = "The chat", body = ChatEnvelopeOut),
        (status = 400, description = "Invalid body", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn archive_chat(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatIdIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let chat = service::set_archived(&state, &m, body.chat_id, true).await?;
    Ok(HttpResponse::Ok().json(ChatEnvelopeOut { chat }))
}

/// Brings an archived chat back to the caller's active chats.
#[utoipa::path(
    post, path = "/api/v1/chat/unarchive-chat", tag = "Team Chat",
    request_body = ChatIdIn,
    responses(
        (status = 200, description = "The chat", body = ChatEnvelopeOut),
        (status = 400, description = "Invalid body", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "An API key (chat is for signed-in members)", body = crate::error::ErrorBody),
        (status = 404, description = "No such chat of the caller", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn unarchive_chat(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<ChatIdIn>,
) -> ApiResult<HttpResponse> {
    let m = Member::of(&auth)?;
    let chat = service::set_archived(&state, &m, body.chat_id, false).await?;
    Ok(HttpResponse::Ok().json(ChatEnvelopeOut { chat }))
}
