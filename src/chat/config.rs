//! The `[chat]` settings: limits of team chat and its sockets, presence
//! timing, calls.

use serde::{Deserialize, Serialize};

/// Team chat: message and socket limits, presence, calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// Largest message content, in bytes (UTF-8).
    pub max_message_bytes: usize,
    /// Messages an account may send per second (sockets and HTTP together,
    /// per node), refilled evenly…
    pub messages_per_second: u32,
    /// …with bursts of up to this many.
    pub message_burst: u32,
    /// A socket's `typing` `start` for one chat is passed on at most once
    /// per this many ms (others are dropped; `stop` always passes).
    pub typing_interval_ms: u64,
    /// Chats one socket may join.
    pub max_chats_per_socket: usize,
    /// Chat sockets (`/ws/chat` and `/ws/call/…`) per account and node.
    pub max_sockets_per_account: usize,
    /// Frames queued per socket before it is closed as too slow (4008).
    pub socket_buffer: usize,
    /// Members a group may have.
    pub max_group_members: usize,
    /// A socket that has not authenticated after this many ms is closed (4001).
    pub auth_timeout_ms: u64,
    /// Interval of pings, in seconds; a socket silent for 3 intervals is closed.
    pub heartbeat_secs: u64,
    /// An account whose last socket on a node closed is reported offline
    /// only if it has not come back after this many ms.
    pub presence_grace_ms: u64,
    /// How often a node records that it is alive, in ms.
    pub node_heartbeat_ms: u64,
    /// A node silent this long (ms) is taken for dead: its sockets' accounts
    /// go offline (unless connected elsewhere).
    pub node_timeout_ms: u64,
    /// A call nobody answers ends (`missed`) after this many seconds.
    pub call_ring_timeout_secs: u64,
    /// Lifetime of the LiveKit tokens of calls, in seconds.
    pub call_token_ttl_secs: u64,
    /// Chat events (`chat.*` rows of the outbox, only needed for live
    /// delivery) are deleted after this many seconds.
    pub event_retention_secs: u64,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            max_message_bytes: 4096,
            messages_per_second: 10,
            message_burst: 20,
            typing_interval_ms: 2000,
            max_chats_per_socket: 200,
            max_sockets_per_account: 10,
            socket_buffer: 256,
            max_group_members: 256,
            auth_timeout_ms: 5000,
            heartbeat_secs: 20,
            presence_grace_ms: 5000,
            node_heartbeat_ms: 5000,
            node_timeout_ms: 30_000,
            call_ring_timeout_secs: 60,
            call_token_ttl_secs: 3600,
            event_retention_secs: 600,
        }
    }
}

impl ChatSettings {
    /// Checks the values; the error names the setting.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let at_least_one = [
            ("chat.max_message_bytes", self.max_message_bytes as u64),
            (
                "chat.messages_per_second",
                u64::from(self.messages_per_second),
            ),
            ("chat.message_burst", u64::from(self.message_burst)),
            (
                "chat.max_chats_per_socket",
                self.max_chats_per_socket as u64,
            ),
            (
                "chat.max_sockets_per_account",
                self.max_sockets_per_account as u64,
            ),
            ("chat.socket_buffer", self.socket_buffer as u64),
            ("chat.auth_timeout_ms", self.auth_timeout_ms),
            ("chat.heartbeat_secs", self.heartbeat_secs),
            ("chat.node_heartbeat_ms", self.node_heartbeat_ms),
            ("chat.call_ring_timeout_secs", self.call_ring_timeout_secs),
        ];
        if let Some((name, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err((name, "must be at least 1"));
        }
        if self.max_message_bytes > 64 * 1024 {
            return Err(("chat.max_message_bytes", "must be at most 65536"));
        }
        if self.max_group_members < 2 {
            return Err(("chat.max_group_members", "must be at least 2"));
        }
        if self.node_timeout_ms < 2 * self.node_heartbeat_ms {
            return Err((
                "chat.node_timeout_ms",
                "must be at least twice chat.node_heartbeat_ms",
            ));
        }
        if !(60..=86_400).contains(&self.call_token_ttl_secs) {
            return Err(("chat.call_token_ttl_secs", "must be between 60 and 86400"));
        }
        if self.event_retention_secs < 360 {
            return Err((
                "chat.event_retention_secs",
                "must be at least 360 (longer than the dispatcher looks for late events)",
            ));
        }
        Ok(())
    }
}
