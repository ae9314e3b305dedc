//! The rules of team chat, shared by the HTTP handlers and the sockets.
//!
//! - Chat users are signed-in members of the chat's project (any role);
//!   API keys are not ([`Member::of`]: 403). A chat of another project, or
//!   one the caller is not in, is answered as missing (404).
//! - Direct chats have exactly two members and exist once per pair
//!   (`create-chat` returns the existing one). Groups have admins, who add,
//!   remove and rename; anyone may remove themselves (leave).
//! - A message is stored (committed, with its `chat.message` event) before
//!   it is acknowledged and fanned out; see [`send`].

use super::events::{self as ev, ChatShape, Origin};
use super::membership;
use super::store::{self, ChatRow, MemberView};
use super::types::{ChatMemberOut, ChatMessageOut, ChatOut};
use crate::auth::AuthContext;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use std::collections::HashMap;

/// A signed-in member acting on a project's chats.
#[derive(Debug, Clone)]
pub struct Member {
    /// The account.
    pub account_id: i64,
    /// The project (`X-Project-Id`).
    pub project_id: i64,
    /// The project's room prefix (calls).
    pub room_prefix: String,
}

impl Member {
    /// The member behind a request; 403 for API keys.
    pub fn of(ctx: &AuthContext) -> ApiResult<Self> {
        let account_id = ctx.account_id.ok_or_else(|| {
            ApiError::Forbidden(
                "Team chat is for signed-in members of the project (Authorization: Bearer \
                 <access token> + X-Project-Id); API keys cannot chat"
                    .into(),
            )
        })?;
        Ok(Self {
            account_id,
            project_id: ctx.project.id,
            room_prefix: ctx.project.room_prefix.clone(),
        })
    }
}

/// 404 for a chat the caller may not see.
pub fn no_chat() -> ApiError {
    ApiError::not_found("Chat")
}

/// Chats of `limit` at most (default 200, 1 to 1000).
pub fn list_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    Ok(limit)
}

/// The caller's chats (archived or not) with members, last message and
/// unread count: three queries whatever the number of messages.
pub async fn fetch(
    state: &AppState,
    m: &Member,
    archived: bool,
    limit: i64,
) -> ApiResult<Vec<ChatOut>> {
    let mut conn = state.pool.get().await?;
    let rows = store::list(&mut conn, m.project_id, m.account_id, archived, limit).await?;
    Ok(assemble(&mut conn, rows).await?)
}

/// Chats with their members and last messages.
async fn assemble(
    conn: &mut AsyncPgConnection,
    rows: Vec<ChatRow>,
) -> diesel::QueryResult<Vec<ChatOut>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut members: HashMap<i64, Vec<ChatMemberOut>> = HashMap::new();
    for row in store::members(conn, &ids).await? {
        members.entry(row.chat_id).or_default().push(row.into());
    }
    let mut last: HashMap<i64, ChatMessageOut> = store::last_messages(conn, &ids)
        .await?
        .into_iter()
        .map(|m| (m.chat_id, m.into()))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| ChatOut {
            members: members.remove(&r.id).unwrap_or_default(),
            last_message: last.remove(&r.id),
            id: r.id,
            kind: r.kind,
            name: r.name,
            unread_count: r.unread_count,
            archived: r.archived,
            created_at: r.created_at,
        })
        .collect())
}

/// One chat as `account_id` sees it.
pub async fn chat_out(
    conn: &mut AsyncPgConnection,
    chat_id: i64,
    account_id: i64,
) -> ApiResult<ChatOut> {
    let row = store::one(conn, chat_id, account_id)
        .await?
        .ok_or_else(no_chat)?;
    assemble(conn, vec![row]).await?.pop().ok_or_else(no_chat)
}

/// The caller's access to a chat of its project; 404 otherwise.
pub async fn access(
    conn: &mut AsyncPgConnection,
    m: &Member,
    chat_id: i64,
) -> ApiResult<store::Access> {
    store::access(conn, chat_id, m.account_id, Some(m.project_id))
        .await?
        .ok_or_else(no_chat)
}

/// Tells every member (and `removed`) about a change of a chat, inside
/// the transaction that made it: `changes` name the accounts with a change
/// of their own (`added`, `removed`); the other members get `others`.
async fn announce(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    chat_id: i64,
    changes: &[(i64, &str)],
    others: &str,
) -> ApiResult<()> {
    let any = store::views(conn, chat_id).await?;
    let Some(first) = any.first() else {
        return Ok(());
    };
    let row = store::one(conn, chat_id, first.account_id)
        .await?
        .ok_or_else(no_chat)?;
    let members: Vec<ChatMemberOut> = store::members(conn, &[chat_id])
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let change_of = |a: i64| {
        changes
            .iter()
            .find(|(who, _)| *who == a)
            .map_or(others, |(_, c)| *c)
    };
    let mut views: Vec<(MemberView, &str)> = any
        .into_iter()
        .map(|v| (v.clone(), change_of(v.account_id)))
        .collect();
    for (who, change) in changes.iter().filter(|(_, c)| *c == "removed") {
        views.push((
            MemberView {
                account_id: *who,
                unread_count: 0,
                archived: false,
            },
            change,
        ));
    }
    let shape = ChatShape {
        id: chat_id,
        kind: &row.kind,
        name: row.name.as_deref(),
        members: &members,
        created_at: row.created_at,
    };
    ev::chat(conn, project_id, &shape, &views).await?;
    Ok(())
}

/// Distinct account ids, each a member of the project (404 naming the
/// others), without the caller.
async fn project_accounts(
    conn: &mut AsyncPgConnection,
    m: &Member,
    ids: &[i64],
    max: usize,
) -> ApiResult<Vec<i64>> {
    let mut ids: Vec<i64> = ids.iter().copied().filter(|a| *a != m.account_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > max {
        return Err(ApiError::invalid_field(
            "account_ids",
            format!("a group has at most {} members", max + 1),
        ));
    }
    let found = store::project_members(conn, m.project_id, &ids).await?;
    let missing: Vec<i64> = ids.iter().copied().filter(|a| !found.contains(a)).collect();
    if !missing.is_empty() {
        return Err(ApiError::BadRequest {
            message: "Not members of this project".into(),
            details: Some(json!({ "field": "account_ids", "unknown": missing })),
        });
    }
    Ok(ids)
}

/// `create-chat`: the direct chat with another member; `(chat, created)`.
pub async fn create_direct(state: &AppState, m: &Member, other: i64) -> ApiResult<(ChatOut, bool)> {
    if other == m.account_id {
        return Err(ApiError::invalid_field(
            "account_id",
            "a direct chat needs another member",
        ));
    }
    let mut conn = state.pool.get().await?;
    let (id, created) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            if store::project_members(conn, m.project_id, &[other])
                .await?
                .is_empty()
            {
                return Err(ApiError::NotFound(
                    "No member of this project has that account_id".into(),
                ));
            }
            let (id, created) =
                membership::create_direct(conn, m.project_id, m.account_id, other).await?;
            let added = if created {
                vec![m.account_id, other]
            } else {
                // Someone who left the project and came back is in again.
                let (seq, _) = store::lock_chat(conn, id, Some(m.project_id), false)
                    .await?
                    .ok_or_else(no_chat)?;
                membership::add(conn, id, &[m.account_id, other], "member", seq).await?
            };
            if !added.is_empty() {
                let changes: Vec<(i64, &str)> = added.iter().map(|a| (*a, "added")).collect();
                announce(conn, m.project_id, id, &changes, "members_changed").await?;
            }
            Ok((id, created))
        })
        .await?;
    Ok((chat_out(&mut conn, id, m.account_id).await?, created))
}

/// A group name: 1 to 200 characters.
fn group_name(name: &str) -> ApiResult<String> {
    crate::validate::text("name", name, 200)
}

/// `create-group`: a group with the caller as admin.
pub async fn create_group(
    state: &AppState,
    m: &Member,
    name: &str,
    account_ids: &[i64],
) -> ApiResult<ChatOut> {
    let name = group_name(name)?;
    let max = state.settings.chat.max_group_members - 1;
    let mut conn = state.pool.get().await?;
    let id = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let others = project_accounts(conn, m, account_ids, max).await?;
            let id =
                membership::create_group(conn, m.project_id, m.account_id, &name, &others).await?;
            announce(conn, m.project_id, id, &[], "added").await?;
            Ok(id)
        })
        .await?;
    chat_out(&mut conn, id, m.account_id).await
}

/// The caller's group (locked), or why not: 404 not a member, 400 direct.
async fn locked_group(
    conn: &mut AsyncPgConnection,
    m: &Member,
    chat_id: i64,
) -> ApiResult<(store::Access, i64)> {
    let (seq, _) = store::lock_chat(conn, chat_id, Some(m.project_id), false)
        .await?
        .ok_or_else(no_chat)?;
    let access = access(conn, m, chat_id).await?;
    if access.kind != "group" {
        return Err(ApiError::invalid_field(
            "chat_id",
            "direct chats keep their two members; create a group instead",
        ));
    }
    Ok((access, seq))
}

fn needs_admin() -> ApiError {
    ApiError::Forbidden("Only the group's admins may do this".into())
}

/// `add-members` (group admins).
pub async fn add_members(
    state: &AppState,
    m: &Member,
    chat_id: i64,
    account_ids: &[i64],
) -> ApiResult<ChatOut> {
    if account_ids.is_empty() {
        return Err(ApiError::invalid_field(
            "account_ids",
            "name at least one member",
        ));
    }
    let max = state.settings.chat.max_group_members;
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let (access, seq) = locked_group(conn, m, chat_id).await?;
        if access.role != "admin" {
            return Err(needs_admin());
        }
        let ids = project_accounts(conn, m, account_ids, max).await?;
        let members = store::member_ids(conn, chat_id).await?;
        let new = ids.iter().filter(|a| !members.contains(a)).count();
        if members.len() + new > max {
            return Err(ApiError::invalid_field(
                "account_ids",
                format!("a group has at most {max} members"),
            ));
        }
        let added = membership::add(conn, chat_id, &ids, "member", seq).await?;
        if !added.is_empty() {
            let changes: Vec<(i64, &str)> = added.iter().map(|a| (*a, "added")).collect();
            announce(conn, m.project_id, chat_id, &changes, "members_changed").await?;
        }
        Ok(())
    })
    .await?;
    chat_out(&mut conn, chat_id, m.account_id).await
}

/// `remove-members`: admins remove anyone; a member may remove itself
/// (leave). The chat as the caller sees it now, `None` after leaving.
pub async fn remove_members(
    state: &AppState,
    m: &Member,
    chat_id: i64,
    account_ids: &[i64],
) -> ApiResult<Option<ChatOut>> {
    let mut ids = account_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(ApiError::invalid_field(
            "account_ids",
            "name at least one member",
        ));
    }
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let (access, _) = locked_group(conn, m, chat_id).await?;
        if access.role != "admin" && ids != [m.account_id] {
            return Err(needs_admin());
        }
        let removed = membership::remove(conn, chat_id, &ids).await?;
        if !removed.is_empty() {
            let changes: Vec<(i64, &str)> = removed.iter().map(|a| (*a, "removed")).collect();
            announce(conn, m.project_id, chat_id, &changes, "members_changed").await?;
        }
        Ok(())
    })
    .await?;
    if ids.contains(&m.account_id) {
        return Ok(None);
    }
    chat_out(&mut conn, chat_id, m.account_id).await.map(Some)
}

/// `rename-group` (group admins).
pub async fn rename_group(
    state: &AppState,
    m: &Member,
    chat_id: i64,
    name: &str,
) -> ApiResult<ChatOut> {
    let name = group_name(name)?;
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let (access, _) = locked_group(conn, m, chat_id).await?;
        if access.role != "admin" {
            return Err(needs_admin());
        }
        membership::rename(conn, chat_id, &name).await?;
        announce(conn, m.project_id, chat_id, &[], "renamed").await
    })
    .await?;
    chat_out(&mut conn, chat_id, m.account_id).await
}

/// `get-members`.
pub async fn members(state: &AppState, m: &Member, chat_id: i64) -> ApiResult<Vec<ChatMemberOut>> {
    let mut conn = state.pool.get().await?;
    access(&mut conn, m, chat_id).await?;
    Ok(store::members(&mut conn, &[chat_id])
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// `archive-chat` / `unarchive-chat` (per member).
pub async fn set_archived(
    state: &AppState,
    m: &Member,
    chat_id: i64,
    archived: bool,
) -> ApiResult<ChatOut> {
    let mut conn = state.pool.get().await?;
    access(&mut conn, m, chat_id).await?;
    store::set_archived(&mut conn, chat_id, m.account_id, archived).await?;
    chat_out(&mut conn, chat_id, m.account_id).await
}

/// A page of history (see [`store::page`]), newest first, and whether
/// more lie beyond it in the direction asked.
pub async fn history(
    state: &AppState,
    m: &Member,
    chat_id: i64,
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<i64>,
) -> ApiResult<(Vec<ChatMessageOut>, bool)> {
    let limit = limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "limit must be between 1 and 100",
        ));
    }
    let mut conn = state.pool.get().await?;
    access(&mut conn, m, chat_id).await?;
    let mut rows = store::page(&mut conn, chat_id, before, after, limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    if after.is_some() {
        rows.reverse();
    }
    Ok((rows.into_iter().map(Into::into).collect(), more))
}

/// `mark-read`: `(read_seq, unread_count)`.
pub async fn mark_read(
    state: &AppState,
    m: &Member,
    chat_id: i64,
    message_id: i64,
) -> ApiResult<(i64, i64)> {
    let mut conn = state.pool.get().await?;
    access(&mut conn, m, chat_id).await?;
    store::mark_read(&mut conn, chat_id, m.account_id, message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message"))
}

/// `search`: messages of the caller's chats in the project matching the
/// words, newest first.
pub async fn search(
    state: &AppState,
    m: &Member,
    query: &str,
    chat_id: Option<i64>,
    limit: Option<i64>,
) -> ApiResult<Vec<ChatMessageOut>> {
    let query = crate::validate::text("query", query, 500)?;
    let limit = limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "limit must be between 1 and 100",
        ));
    }
    let mut conn = state.pool.get().await?;
    if let Some(chat_id) = chat_id {
        access(&mut conn, m, chat_id).await?;
    }
    let rows = store::search(
        &mut conn,
        m.project_id,
        m.account_id,
        chat_id,
        &query,
        limit,
    )
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub account_id: i64,
    /// The project the chat must belong to (HTTP); sockets span projects.
    pub project_id: Option<i64>,
    pub chat_id: i64,
    pub content: &'a str,
    pub client_id: Option<&'a str>,
    pub session_id: Option<i64>,
    /// The socket it came from.
    pub origin: Option<Origin>,
}

/// Checks a message before anything is stored: size, NUL, client id.
pub fn check_outgoing(state: &AppState, o: &Outgoing<'_>) -> ApiResult<()> {
    let max = state.settings.chat.max_message_bytes;
    if o.content.len() > max {
        return Err(ApiError::BadRequest {
            message: format!("content is larger than {max} bytes"),
            details: Some(json!({ "field": "content", "limit_bytes": max })),
        });
    }
    crate::validate::no_nul("content", o.content)?;
    if o.content.trim().is_empty() && o.session_id.is_none() {
        return Err(ApiError::invalid_field(
            "content",
            "content must not be empty (unless the message refers to a session)",
        ));
    }
    if let Some(c) = o.client_id {
        let ok = (1..=64).contains(&c.chars().count()) && !c.chars().any(char::is_control);
        if !ok {
            return Err(ApiError::invalid_field(
                "client_id",
                "client_id must be 1 to 64 characters without control characters",
            ));
        }
    }
    Ok(())
}

/// Why a send stopped inside its transaction.
enum Stop {
    Api(ApiError),
    /// The sender stored this client id already: nothing new is written.
    Duplicate(Box<store::MessageRow>),
}

impl From<diesel::result::Error> for Stop {
    fn from(e: diesel::result::Error) -> Self {
        Stop::Api(e.into())
    }
}

/// Stores a message and its `chat.message` event in one transaction
/// (after the sender's rate allows it); the message once committed and
/// whether it is new (false: the sender's client id was stored already,
/// and that message is returned).
pub async fn send(state: &AppState, o: &Outgoing<'_>) -> ApiResult<(ChatMessageOut, bool)> {
    check_outgoing(state, o)?;
    if let Err(wait) = state.chat.check_rate(o.account_id) {
        return Err(ApiError::RateLimited {
            limit: state.settings.chat.messages_per_second,
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }
    let kind = if o.session_id.is_some() {
        "session_ref"
    } else {
        "text"
    };
    let mut conn = state.pool.get().await?;
    let stored = conn
        .transaction::<_, Stop, _>(async |conn| {
            let (seq, project_id) = store::lock_chat(conn, o.chat_id, o.project_id, true)
                .await?
                .ok_or_else(|| Stop::Api(no_chat()))?;
            if let Some(session) = o.session_id
                && !store::session_in_project(conn, session, project_id).await?
            {
                return Err(Stop::Api(ApiError::invalid_field(
                    "session_id",
                    "No session with this id in the chat's project",
                )));
            }
            let new = store::NewMessage {
                chat_id: o.chat_id,
                sender_account_id: Some(o.account_id),
                kind,
                content: o.content,
                client_id: o.client_id,
                session_id: o.session_id,
                call_id: None,
            };
            let Some(inserted) = store::insert_message(conn, &new, seq).await? else {
                if let Some(c) = o.client_id
                    && let Some(row) = store::by_client_id(conn, o.chat_id, o.account_id, c).await?
                {
                    return Err(Stop::Duplicate(Box::new(row)));
                }
                return Err(Stop::Api(no_chat()));
            };
            let message = ChatMessageOut::from(inserted.message);
            ev::message(
                conn,
                project_id,
                &message,
                &inserted.recipients,
                o.origin.as_ref(),
            )
            .await?;
            Ok(message)
        })
        .await;
    match stored {
        Ok(message) => {
            state.events_wake.committed();
            Ok((message, true))
        }
        Err(Stop::Duplicate(row)) => Ok(((*row).into(), false)),
        Err(Stop::Api(e)) => Err(e),
    }
}

/// A typing notice from a socket to the chat's other members. The caller
/// checked membership when the socket joined the chat.
pub async fn typing(state: &AppState, account_id: i64, chat_id: i64, start: bool) -> ApiResult<()> {
    let mut conn = state.pool.get().await?;
    let access = store::access(&mut conn, chat_id, account_id, None)
        .await?
        .ok_or_else(no_chat)?;
    let recipients = store::member_ids(&mut conn, chat_id).await?;
    let state_name = if start { "start" } else { "stop" };
    ev::typing(
        &mut conn,
        access.project_id,
        chat_id,
        account_id,
        state_name,
        &recipients,
    )
    .await?;
    state.events_wake.committed();
    Ok(())
}
