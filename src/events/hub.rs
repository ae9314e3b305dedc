//! The monitor hub: a registry of `/ws/monitor` sockets per project, each with
//! a bounded queue. Publishing never waits on a socket: a socket whose queue
//! is full is told to close (4008) and dropped, so a slow consumer cannot slow
//! the others. Sockets unregister themselves when their guard drops.
//!
//! A message is encoded once, as a complete WebSocket text frame, and the
//! same bytes go to every socket: the socket's response body writes queued
//! frames straight to the connection (see `routes::monitor`), with no task
//! of its own in between.

use super::Event;
use actix_web::web::Bytes;
use dashmap::DashMap;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// One connected socket.
pub struct Subscriber {
    id: u64,
    project_id: i64,
    /// The API key it was opened with (`-session_id` for the dashboard).
    key_id: i64,
    prefix: String,
    channels: Mutex<HashSet<String>>,
    /// Most channels it may hold.
    max_channels: usize,
    /// What `channels` holds, read without its lock on every publish.
    wants_rooms: AtomicBool,
    wants_sessions: AtomicBool,
    room_channels: AtomicUsize,
    tx: mpsc::Sender<Bytes>,
    /// Set when the queue overflowed; the socket closes with 4008.
    pub lagged: AtomicBool,
    /// Set when its key stopped working; the socket closes with 4001.
    pub revoked: AtomicBool,
    /// Set when the process shuts down; the socket closes with 1001.
    pub going_away: AtomicBool,
    /// Wakes the socket task when it must close.
    pub kick: Notify,
}

impl Subscriber {
    /// Whether the dashboard opened it (with a session, not an API key).
    pub fn is_dashboard(&self) -> bool {
        self.key_id < 0
    }

    /// Subscribes to `rooms`, `sessions` or `room:<name>` (short or full name).
    pub fn subscribe(&self, channel: &str) -> Result<String, String> {
        let normalized = self.normalize(channel)?;
        let mut channels = self.lock();
        if channels.len() >= self.max_channels && !channels.contains(&normalized) {
            return Err(format!(
                "at most {} channels per connection; unsubscribe from one first",
                self.max_channels
            ));
        }
        channels.insert(normalized.clone());
        self.summarize(&channels);
        Ok(normalized)
    }

    /// The project the socket belongs to.
    pub fn project_id(&self) -> i64 {
        self.project_id
    }

    /// The full room name of `room` (short or full) in the socket's project.
    pub fn full_room(&self, room: &str) -> Result<String, String> {
        self.normalize(&format!("room:{room}"))
            .map(|c| c.trim_start_matches("room:").to_owned())
    }

    /// Unsubscribes; returns whether it was subscribed.
    pub fn unsubscribe(&self, channel: &str) -> Result<bool, String> {
        let normalized = self.normalize(channel)?;
        let mut channels = self.lock();
        let was = channels.remove(&normalized);
        self.summarize(&channels);
        Ok(was)
    }

    /// Updates the lock-free summary of `channels` (under its lock).
    fn summarize(&self, channels: &HashSet<String>) {
        let (rooms, sessions) = (channels.contains("rooms"), channels.contains("sessions"));
        self.wants_rooms.store(rooms, Ordering::Relaxed);
        self.wants_sessions.store(sessions, Ordering::Relaxed);
        self.room_channels.store(
            channels.len() - usize::from(rooms) - usize::from(sessions),
            Ordering::Relaxed,
        );
    }

    /// Queues a frame for the socket without waiting (events, and replies to
    /// the client's messages, so that both keep their order). False when the
    /// socket is gone or its queue is full; then it is told to close (4008).
    pub fn push(&self, frame: Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.store(true, Ordering::Relaxed);
                self.kick.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn normalize(&self, channel: &str) -> Result<String, String> {
        match channel {
            "rooms" | "sessions" => Ok(channel.to_owned()),
            _ => match channel.strip_prefix("room:") {
                Some(name) if !name.is_empty() && name.len() <= 256 => {
                    let own = format!("{}_", self.prefix);
                    let full = if name.starts_with(&own) {
                        name.to_owned()
                    } else {
                        format!("{own}{name}")
                    };
                    Ok(format!("room:{full}"))
                }
                _ => Err(format!(
                    "unknown channel `{channel}` (rooms, sessions, room:<name>)"
                )),
            },
        }
    }

    fn wants(&self, m: &MonitorMessage) -> bool {
        (m.rooms && self.wants_rooms.load(Ordering::Relaxed))
            || (m.sessions && self.wants_sessions.load(Ordering::Relaxed))
            || m.room_channel.as_ref().is_some_and(|c| {
                self.room_channels.load(Ordering::Relaxed) > 0 && self.lock().contains(c)
            })
    }
}

/// A socket fed from a bounded queue that may be told to close because it
/// fell behind (monitor and chat sockets; their response bodies ask).
pub trait Lagging: Send + Sync + 'static {
    /// True once the socket's queue overflowed: no more queued frames go
    /// out, its close frame goes next.
    fn lagged(&self) -> bool;
}

impl Lagging for AtomicBool {
    fn lagged(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

impl Lagging for Subscriber {
    fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Relaxed)
    }
}

/// A message for monitor sockets, derived from an event.
#[derive(Debug, Clone)]
pub struct MonitorMessage {
    /// Project it belongs to.
    pub project_id: i64,
    /// The `room:<full room name>` channel it goes to, if it concerns a room.
    pub room_channel: Option<String>,
    /// Delivered on the `rooms` channel.
    pub rooms: bool,
    /// Delivered on the `sessions` channel.
    pub sessions: bool,
    /// The JSON text pushed, `{"type","data","timestamp"}`, as a complete
    /// unmasked WebSocket text frame (shared by every socket: cloning it
    /// copies no bytes).
    pub frame: Bytes,
}

/// A WebSocket text frame (FIN, opcode 1, unmasked as a server sends it) of
/// `text` (RFC 6455 section 5.2).
pub fn text_frame(text: &str) -> Bytes {
    let len = text.len();
    let mut f = Vec::with_capacity(len + 10);
    f.push(0x81);
    match len {
        0..=125 => f.push(len as u8),
        126..=65535 => {
            f.push(126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            f.push(127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(text.as_bytes());
    Bytes::from(f)
}

/// The monitor message an event becomes, if any (contract section 13).
pub fn monitor_message(e: &Event) -> Option<MonitorMessage> {
    let d = &e.data;
    let pick = |keys: &[&str]| -> Value {
        let mut out = serde_json::Map::new();
        for k in keys {
            out.insert((*k).to_owned(), d.get(*k).cloned().unwrap_or(Value::Null));
        }
        Value::Object(out)
    };
    let (kind, data, rooms, sessions) = match e.event_type.as_str() {
        "room.started" => (
            "room.created",
            pick(&["room_name", "created_at"]),
            true,
            false,
        ),
        "room.finished" => ("room.closed", pick(&["room_name"]), true, false),
        "participant.joined" => (
            "participant.joined",
            pick(&["room_name", "identity", "name", "joined_at"]),
            true,
            false,
        ),
        "participant.left" => (
            "participant.left",
            pick(&["room_name", "identity", "reason"]),
            true,
            false,
        ),
        "transcript.new" => (
            "transcript.new",
            pick(&[
                "room_name",
                "session_id",
                "speaker",
                "content",
                "timestamp_ms",
                "is_final",
            ]),
            true,
            true,
        ),
        "recording.started" | "recording.stopped" => (
            "recording.status",
            pick(&["room_name", "recording_id", "status"]),
            true,
            false,
        ),
        "sip.call_status" => (
            "call.status",
            pick(&["room_name", "phone_number", "status", "reason"]),
            true,
            false,
        ),
        "session.started" => (
            "session.started",
            pick(&["room_name", "session_id", "agent_config_id"]),
            false,
            true,
        ),
        "transcript.interim" => (
            "transcript.new",
            pick(&[
                "room_name",
                "session_id",
                "speaker",
                "content",
                "timestamp_ms",
                "is_final",
            ]),
            true,
            true,
        ),
        "supervisor.joined" | "supervisor.left" => (
            e.event_type.as_str(),
            pick(&[
                "room_name",
                "session_id",
                "identity",
                "mode",
                "target_identity",
                "reason",
            ]),
            true,
            true,
        ),
        "session.updated" => (
            "session.updated",
            pick(&[
                "room_name",
                "session_id",
                "disposition",
                "tags",
                "notes",
                "rating",
            ]),
            false,
            true,
        ),
        "session.ended" => (
            "session.ended",
            pick(&["room_name", "session_id", "duration"]),
            false,
            true,
        ),
        _ => return None,
    };
    let text = json!({
        "type": kind,
        "data": data,
        "timestamp": e.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    })
    .to_string();
    Some(MonitorMessage {
        project_id: e.project_id,
        room_channel: d
            .get("room_name")
            .and_then(Value::as_str)
            .map(|r| format!("room:{r}")),
        rooms,
        sessions,
        frame: text_frame(&text),
    })
}

/// Frames one after the other, in one buffer (one frame is shared, not
/// copied).
pub fn concat<'a>(frames: impl Iterator<Item = &'a Bytes> + Clone) -> Bytes {
    let mut two = frames.clone();
    match (two.next(), two.next()) {
        (None, _) => Bytes::new(),
        (Some(one), None) => one.clone(),
        _ => {
            let mut out = Vec::with_capacity(frames.clone().map(Bytes::len).sum());
            for f in frames {
                out.extend_from_slice(f);
            }
            Bytes::from(out)
        }
    }
}

/// Which sockets [`Hub::revoke`] closes.
#[derive(Debug, Clone, Copy)]
pub enum Revoke<'a> {
    /// Those opened with this key (revoked on this node).
    Key(i64),
    /// Those of this project (deleted on this node).
    Project(i64),
    /// Those whose key is in `checked` (sorted) but not in `valid` (sorted);
    /// a dashboard socket's key is `-session_id`.
    AllBut {
        checked: &'a [i64],
        valid: &'a [i64],
    },
}

/// Why a socket could not be registered.
#[derive(Debug)]
pub struct TooMany;

/// All sockets of this process.
pub struct Hub {
    sockets: DashMap<i64, Vec<Arc<Subscriber>>>,
    next_id: AtomicU64,
    buffer: usize,
    max_per_project: usize,
    max_channels: usize,
}

/// Unregisters its socket when dropped.
pub struct Registration {
    hub: Arc<Hub>,
    /// The subscriber.
    pub subscriber: Arc<Subscriber>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let (pid, id) = (self.subscriber.project_id, self.subscriber.id);
        self.hub.sockets.alter(&pid, |_, mut v| {
            v.retain(|s| s.id != id);
            v
        });
        self.hub.sockets.remove_if(&pid, |_, v| v.is_empty());
    }
}

impl Hub {
    /// A hub with a per-socket queue of `buffer` messages, at most
    /// `max_per_project` sockets per project and `max_channels` channels per
    /// socket.
    pub fn new(buffer: usize, max_per_project: usize, max_channels: usize) -> Self {
        Self {
            sockets: DashMap::new(),
            next_id: AtomicU64::new(1),
            buffer: buffer.max(1),
            max_per_project,
            max_channels,
        }
    }

    /// Registers a socket of a project, opened with the API key `key_id`.
    pub fn register(
        self: &Arc<Self>,
        project_id: i64,
        key_id: i64,
        prefix: &str,
    ) -> Result<(Registration, mpsc::Receiver<Bytes>), TooMany> {
        let (tx, rx) = mpsc::channel(self.buffer);
        let subscriber = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            project_id,
            key_id,
            prefix: prefix.to_owned(),
            channels: Mutex::new(HashSet::new()),
            max_channels: self.max_channels,
            wants_rooms: AtomicBool::new(false),
            wants_sessions: AtomicBool::new(false),
            room_channels: AtomicUsize::new(0),
            tx,
            lagged: AtomicBool::new(false),
            revoked: AtomicBool::new(false),
            going_away: AtomicBool::new(false),
            kick: Notify::new(),
        });
        let mut entry = self.sockets.entry(project_id).or_default();
        if entry.len() >= self.max_per_project {
            return Err(TooMany);
        }
        entry.push(subscriber.clone());
        drop(entry);
        Ok((
            Registration {
                hub: self.clone(),
                subscriber,
            },
            rx,
        ))
    }

    /// Pushes messages (in order) to their projects' subscribed sockets
    /// without waiting, one push per socket for all of them: a socket takes
    /// the frames it wants in one write and one wake-up. Sockets that want
    /// every message of their project share one buffer of those frames.
    pub fn publish(&self, ms: &[MonitorMessage]) {
        let mut projects: Vec<i64> = ms.iter().map(|m| m.project_id).collect();
        projects.sort_unstable();
        projects.dedup();
        for pid in projects {
            // Under the map's read lock: nothing below waits.
            let Some(sockets) = self.sockets.get(&pid) else {
                continue;
            };
            let mine: Vec<&MonitorMessage> = ms.iter().filter(|m| m.project_id == pid).collect();
            let mut all: Option<Bytes> = None;
            for s in sockets.iter() {
                if s.lagged.load(Ordering::Relaxed) {
                    continue;
                }
                let wanted = mine.iter().filter(|m| s.wants(m)).map(|m| &m.frame);
                let frames = match wanted.clone().count() {
                    0 => continue,
                    n if n == mine.len() => all
                        .get_or_insert_with(|| concat(mine.iter().map(|m| &m.frame)))
                        .clone(),
                    _ => concat(wanted),
                };
                s.push(frames);
            }
        }
    }

    /// The API keys the sockets of this process were opened with.
    pub fn key_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .sockets
            .iter()
            .flat_map(|e| e.value().iter().map(|s| s.key_id).collect::<Vec<_>>())
            // Dashboard sockets carry `-session_id`: not keys.
            .filter(|id| *id > 0)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The dashboard sessions (logins) the sockets of this process were
    /// opened with (they carry `-session_id` as their key id).
    pub fn session_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .sockets
            .iter()
            .flat_map(|e| e.value().iter().map(|s| s.key_id).collect::<Vec<_>>())
            .filter(|id| *id < 0)
            .map(|id| -id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Closes (4001) the sockets opened with a key that no longer works:
    /// those whose key is not in `valid` of those in `checked`, or of
    /// `project_id` when given (a deleted project), or with `key_id`.
    pub fn revoke(&self, which: Revoke<'_>) {
        for entry in self.sockets.iter() {
            for s in entry.value() {
                let gone = match which {
                    Revoke::Key(id) => s.key_id == id,
                    Revoke::Project(pid) => s.project_id == pid,
                    Revoke::AllBut { checked, valid } => {
                        checked.binary_search(&s.key_id).is_ok()
                            && valid.binary_search(&s.key_id).is_err()
                    }
                };
                if gone && !s.revoked.swap(true, Ordering::Relaxed) {
                    s.kick.notify_one();
                }
            }
        }
    }

    /// Closes every socket of this process with 1001 (going away): the
    /// process is shutting down.
    pub fn close_all(&self) {
        for entry in self.sockets.iter() {
            for s in entry.value() {
                if !s.going_away.swap(true, Ordering::Relaxed) {
                    s.kick.notify_one();
                }
            }
        }
    }

    /// Sockets connected now (all projects).
    pub fn connections(&self) -> usize {
        self.sockets.iter().map(|e| e.value().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(project_id: i64, room: &str) -> MonitorMessage {
        MonitorMessage {
            project_id,
            room_channel: Some(format!("room:p_{room}")),
            rooms: true,
            sessions: false,
            frame: text_frame(room),
        }
    }

    #[test]
    fn a_round_is_one_push_per_socket_of_the_frames_it_wants() {
        let hub = Arc::new(Hub::new(8, 10, 100));
        let (all, mut all_rx) = hub
            .register(1, 1, "p")
            .map_err(|_| ())
            .unwrap_or_else(|_| panic!());
        let (one, mut one_rx) = hub
            .register(1, 1, "p")
            .map_err(|_| ())
            .unwrap_or_else(|_| panic!());
        let (_other, mut other_rx) = hub
            .register(2, 2, "q")
            .map_err(|_| ())
            .unwrap_or_else(|_| panic!());
        assert!(all.subscriber.subscribe("rooms").is_ok());
        assert!(one.subscriber.subscribe("room:b").is_ok());
        hub.publish(&[message(1, "a"), message(1, "b"), message(1, "c")]);
        let got = all_rx.try_recv().unwrap_or_default();
        assert_eq!(&got[..], b"\x81\x01a\x81\x01b\x81\x01c");
        assert!(all_rx.try_recv().is_err(), "one push for the round");
        assert_eq!(&one_rx.try_recv().unwrap_or_default()[..], b"\x81\x01b");
        assert!(one_rx.try_recv().is_err());
        assert!(
            other_rx.try_recv().is_err(),
            "another project's socket sees nothing"
        );
    }

    #[test]
    fn keys_and_dashboard_sessions_are_checked_apart() {
        let hub = Arc::new(Hub::new(8, 10, 100));
        let register = |key_id| {
            hub.register(1, key_id, "p")
                .map_err(|_| ())
                .unwrap_or_else(|_| panic!())
        };
        let (key, _k) = register(7);
        let (kept, _s) = register(-3);
        let (gone, _g) = register(-5);
        assert_eq!(hub.key_ids(), [7]);
        assert_eq!(hub.session_ids(), [3, 5]);
        assert!(gone.subscriber.is_dashboard() && !key.subscriber.is_dashboard());
        // Session 5 ended, session 3 is still open.
        hub.revoke(Revoke::AllBut {
            checked: &[-5, -3],
            valid: &[-3],
        });
        assert!(gone.subscriber.revoked.load(Ordering::Relaxed));
        assert!(!kept.subscriber.revoked.load(Ordering::Relaxed));
        assert!(!key.subscriber.revoked.load(Ordering::Relaxed));
    }

    #[test]
    fn frames_are_joined_and_a_single_one_is_shared() {
        let (a, b) = (text_frame("a"), text_frame("bc"));
        let one = concat([&a].into_iter());
        assert_eq!(one.as_ptr(), a.as_ptr());
        assert_eq!(&concat([&a, &b].into_iter())[..], b"\x81\x01a\x81\x02bc");
        assert!(concat(std::iter::empty()).is_empty());
    }

    #[test]
    fn text_frames_carry_rfc6455_lengths() {
        let f = text_frame("hi");
        assert_eq!(&f[..], b"\x81\x02hi");
        let mid = "x".repeat(300);
        let f = text_frame(&mid);
        assert_eq!(&f[..4], &[0x81, 126, 0x01, 0x2c]);
        assert_eq!(f.len(), 304);
        let big = "y".repeat(70_000);
        let f = text_frame(&big);
        assert_eq!(f[0..2], [0x81, 127]);
        assert_eq!(
            u64::from_be_bytes(f[2..10].try_into().unwrap_or_default()),
            70_000
        );
        assert_eq!(f.len(), 70_010);
    }
}
