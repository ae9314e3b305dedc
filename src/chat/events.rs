//! The chat's events on the spine (`chat.*` rows of `events`, written in
//! the transaction of the change): each names its recipients, so every
//! node's [`super::hub::ChatHub`] delivers it to its own sockets without a
//! query. They are not webhook event types (see `events::CHAT_PREFIX`).

use super::store::MemberView;
use super::types::{ChatCallOut, ChatMemberOut, ChatMessageOut};
use crate::events::emit;
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde_json::json;

/// A message was stored: `new_message` to the members' sockets that joined
/// the chat (except the socket that sent it, which had `message_ack`).
pub const MESSAGE: &str = "chat.message";
/// A member started or stopped typing.
pub const TYPING: &str = "chat.typing";
/// An account went online or offline.
pub const PRESENCE: &str = "chat.presence";
/// A chat was created, renamed, or its members changed: `chat_list_update`.
pub const CHAT: &str = "chat.chat";
/// A call rang, someone joined or left, it ended.
pub const CALL: &str = "chat.call";

/// The socket a message came from (it gets `message_ack`, not `new_message`).
#[derive(Debug, Clone)]
pub struct Origin {
    /// The node of the socket.
    pub node: String,
    /// The socket's id on that node.
    pub socket: u64,
}

/// Emits [`MESSAGE`].
pub async fn message(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    message: &ChatMessageOut,
    recipients: &[i64],
    origin: Option<&Origin>,
) -> QueryResult<()> {
    let data = json!({
        "chat_id": message.chat_id,
        "message": message,
        "recipients": recipients,
        "origin_node": origin.map(|o| o.node.as_str()),
        "origin_socket": origin.map(|o| o.socket),
    });
    emit(conn, project_id, MESSAGE, data).await.map(drop)
}

/// Emits [`TYPING`].
pub async fn typing(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    chat_id: i64,
    account_id: i64,
    state: &str,
    recipients: &[i64],
) -> QueryResult<()> {
    let data = json!({
        "chat_id": chat_id, "account_id": account_id, "state": state, "recipients": recipients,
    });
    emit(conn, project_id, TYPING, data).await.map(drop)
}

/// Emits [`PRESENCE`].
pub async fn presence(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    account_id: i64,
    online: bool,
    recipients: &[i64],
) -> QueryResult<()> {
    let status = if online { "online" } else { "offline" };
    let data = json!({ "account_id": account_id, "status": status, "recipients": recipients });
    emit(conn, project_id, PRESENCE, data).await.map(drop)
}

/// What a chat looks like to every member (the per-member fields come with
/// each recipient).
#[derive(Debug, Clone)]
pub struct ChatShape<'a> {
    pub id: i64,
    pub kind: &'a str,
    pub name: Option<&'a str>,
    pub members: &'a [ChatMemberOut],
    pub created_at: DateTime<Utc>,
}

/// Emits [`CHAT`]: each of `views` with its own change (`added`,
/// `removed`, `members_changed`, `renamed`); `removed` lists accounts no
/// longer members.
pub async fn chat(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    chat: &ChatShape<'_>,
    views: &[(MemberView, &str)],
) -> QueryResult<()> {
    let recipients: Vec<_> = views
        .iter()
        .map(|(v, change)| {
            json!({"account_id": v.account_id, "unread_count": v.unread_count,
                   "archived": v.archived, "change": change})
        })
        .collect();
    let data = json!({
        "chat": {
            "id": chat.id, "kind": chat.kind, "name": chat.name, "members": chat.members,
            "last_message": null, "unread_count": 0, "archived": false, "created_at": chat.created_at,
        },
        "recipients": recipients,
    });
    emit(conn, project_id, CHAT, data).await.map(drop)
}

/// Emits [`CALL`] with the call as it is now and what changed (`ringing`,
/// `participant_joined`, `participant_left`, `active`, `ended`), and who
/// for participant changes.
pub async fn call(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    call: &ChatCallOut,
    change: &str,
    account_id: Option<i64>,
    recipients: &[i64],
) -> QueryResult<()> {
    let data = json!({
        "call": call, "change": change, "account_id": account_id,
        "from_account_id": call.started_by, "recipients": recipients,
    });
    emit(conn, project_id, CALL, data).await.map(drop)
}
