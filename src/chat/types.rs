//! The JSON shapes of team chat: request bodies (`Chat…In`) and responses
//! (`Chat…Out`), shared by the HTTP handlers, the sockets and the events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A chat as its member sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatOut {
    #[schema(example = 12)]
    pub id: i64,
    /// `direct` (two members) or `group`.
    #[schema(example = "group")]
    pub kind: String,
    /// Group name (`null` for direct chats).
    #[schema(example = "Night shift")]
    pub name: Option<String>,
    pub members: Vec<ChatMemberOut>,
    /// The newest message, if any.
    pub last_message: Option<ChatMessageOut>,
    /// Messages after the caller's read pointer (`mark-read`; sending a
    /// message moves it too).
    #[schema(example = 3)]
    pub unread_count: i64,
    /// Archived by the caller (archiving is per member).
    pub archived: bool,
    pub created_at: DateTime<Utc>,
}

/// A member of a chat.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChatMemberOut {
    #[schema(example = 7)]
    pub account_id: i64,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// `admin` (group admins add and remove members) or `member`.
    #[schema(example = "admin")]
    pub role: String,
    /// Has a chat socket open on some node (with a short grace after the last one closes).
    pub online: bool,
}

/// A message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatMessageOut {
    /// Grows with the chat's order; the cursor of `messages`.
    #[schema(example = 4711)]
    pub id: i64,
    #[schema(example = 12)]
    pub chat_id: i64,
    /// Position in the chat (1, 2, …).
    #[schema(example = 42)]
    pub seq: i64,
    /// `null` for an account that no longer exists.
    #[schema(example = 7)]
    pub sender_account_id: Option<i64>,
    /// `text`, `call` (a voice call in the chat) or `session_ref` (a call
    /// session of the project, `session_id`).
    #[schema(example = "text")]
    pub kind: String,
    #[schema(example = "Can someone take room 4?")]
    pub content: String,
    /// The sender's id for de-duplication, echoed back.
    #[schema(example = "c-5f1e")]
    pub client_id: Option<String>,
    /// The referenced session (`session_ref`), or a session mentioned with text.
    #[schema(example = 42)]
    pub session_id: Option<i64>,
    /// The call (`call` messages), as it is now.
    pub call: Option<ChatCallOut>,
    pub created_at: DateTime<Utc>,
}

/// A voice call in a chat.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatCallOut {
    #[schema(example = 3)]
    pub id: i64,
    #[schema(example = 12)]
    pub chat_id: i64,
    /// The LiveKit room (`<project prefix>_chatcall-<id>`).
    #[schema(example = "p1a2b3_chatcall-3")]
    pub room: String,
    #[schema(example = 7)]
    pub started_by: Option<i64>,
    /// `pending` (room being created), `ringing` (nobody but the caller
    /// joined), `active`, `ended` or `failed`.
    pub status: super::calls_store::ChatCallStatus,
    /// Why it ended: `ended` (end-call), `everyone_left`, `cancelled`
    /// (the caller left before anyone answered), `missed` (nobody answered
    /// in time), `livekit_unavailable`.
    pub end_reason: Option<String>,
    /// Grows with every change (status, someone joining or leaving): of two
    /// reports of a call, the one with the higher version is newer.
    #[schema(example = 4)]
    pub version: i64,
    pub started_at: DateTime<Utc>,
    /// When someone other than the caller first joined.
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// From the answer to the end (0 when nobody answered); `null` while it runs.
    #[schema(example = 95)]
    pub duration_seconds: Option<i64>,
    /// Who is or was in the call (on `/ws/call` and call answers; empty in messages).
    pub participants: Vec<ChatCallParticipantOut>,
}

/// Someone in a call, as LiveKit reported.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatCallParticipantOut {
    #[schema(example = "account-7")]
    pub identity: String,
    #[schema(example = 7)]
    pub account_id: Option<i64>,
    pub joined_at: DateTime<Utc>,
    /// `null` while in the call.
    pub left_at: Option<DateTime<Utc>>,
}

/// `{chat}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatEnvelopeOut {
    pub chat: ChatOut,
}

/// `{chats}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatListOut {
    pub chats: Vec<ChatOut>,
}

/// After `remove-members`: the chat as the caller sees it now (`null`
/// after leaving it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatRemovedOut {
    pub chat_id: i64,
    pub chat: Option<ChatOut>,
}

/// `{chat_id, members}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatMembersOut {
    pub chat_id: i64,
    pub members: Vec<ChatMemberOut>,
}

/// A page of history, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatMessagesOut {
    pub messages: Vec<ChatMessageOut>,
    /// More messages lie beyond this page in the direction asked (older
    /// ones without `after`, newer ones with it).
    pub has_more: bool,
}

/// `{message}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatMessageEnvelopeOut {
    pub message: ChatMessageOut,
}

/// After `mark-read`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatReadOut {
    pub chat_id: i64,
    /// Position of the newest message read.
    pub read_seq: i64,
    pub unread_count: i64,
}

/// Search hits, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatSearchOut {
    pub messages: Vec<ChatMessageOut>,
}

/// A call and the caller's LiveKit token for it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatCallTokenOut {
    pub call: ChatCallOut,
    /// LiveKit JWT: join this call's room only, publish the microphone.
    pub token: String,
    /// The full LiveKit room name.
    #[schema(example = "p1a2b3_chatcall-3")]
    pub room: String,
    /// The participant identity in the token (`account-<id>`).
    #[schema(example = "account-7")]
    pub identity: String,
    /// Where clients connect.
    #[serde(rename = "wsUrl")]
    #[schema(example = "wss://livekit.example.com")]
    pub ws_url: String,
}

/// `{call}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatCallEnvelopeOut {
    pub call: ChatCallOut,
}

/// Body of `create-chat`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"account_id": 8}))]
pub struct ChatCreateIn {
    /// The other member (a member of the project).
    pub account_id: i64,
}

/// Body of `create-group`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Night shift", "account_ids": [8, 9]}))]
pub struct ChatGroupIn {
    /// 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// Members besides the caller (members of the project).
    pub account_ids: Vec<i64>,
}

/// Body of `add-members` and `remove-members`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chat_id": 12, "account_ids": [9]}))]
pub struct ChatMembersIn {
    pub chat_id: i64,
    /// At least one account (members of the project).
    #[schema(min_items = 1)]
    pub account_ids: Vec<i64>,
}

/// Body naming a chat (`get-members`, `archive-chat`, `unarchive-chat`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chat_id": 12}))]
pub struct ChatIdIn {
    pub chat_id: i64,
}

/// Optional body of `fetch-chats` and `fetch-archived`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"limit": 100}))]
pub struct ChatListIn {
    /// Chats at most, most recently active first (default 200, 1 to 1000).
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Body of `rename-group`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chat_id": 12, "name": "Day shift"}))]
pub struct ChatRenameIn {
    pub chat_id: i64,
    /// 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
}

/// Body of `messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chat_id": 12, "before": 4711, "limit": 50}))]
pub struct ChatMessagesIn {
    pub chat_id: i64,
    /// Only messages with a smaller id: the page right below it.
    pub before: Option<i64>,
    /// Only messages with a larger id: the page right above it (catching up).
    pub after: Option<i64>,
    /// 1 to 100, default 50.
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Body of `send-message`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chat_id": 12, "content": "Can someone take room 4?", "client_id": "c-5f1e"}))]
pub struct ChatSendIn {
    pub chat_id: i64,
    /// Up to `chat.max_message_bytes` (4 KB) of UTF-8; may be empty with a `session_id`.
    pub content: String,
    /// 1 to 64 characters; sending the same id again returns the stored message.
    pub client_id: Option<String>,
    /// A session of the project to refer to (the message is `session_ref`).
    pub session_id: Option<i64>,
}

/// Body of `mark-read`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chat_id": 12, "message_id": 4711}))]
pub struct ChatReadIn {
    pub chat_id: i64,
    /// Everything up to this message is read (the pointer never moves back).
    pub message_id: i64,
}

/// Body of `search`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"query": "room 4", "limit": 20}))]
pub struct ChatSearchIn {
    /// Words to find (web search syntax: `"a phrase"`, `or`, `-word`).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub query: String,
    /// Only this chat.
    pub chat_id: Option<i64>,
    /// 1 to 100, default 20.
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Body of `start-call`: the chat to call in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chat_id": 12}))]
pub struct ChatStartCallIn {
    pub chat_id: i64,
}

/// Body of `join-call` and `end-call`: the chat (its live call) or the
/// call, at least one of them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"chat_id": 12}), min_properties = 1)]
pub struct ChatCallIn {
    #[schema(nullable = false)]
    pub chat_id: Option<i64>,
    #[schema(nullable = false)]
    pub call_id: Option<i64>,
}
