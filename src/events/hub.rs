//! The monitor hub: a registry of `/ws/monitor` sockets per project, each with
//! a bounded queue. Publishing never waits on a socket: a socket whose queue
//! is full is told to close (4008) and dropped, so a slow consumer cannot slow
//! the others. Sockets unregister themselves when their guard drops.

use super::Event;
use bytestring::ByteString;
use dashmap::DashMap;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// One connected socket.
pub struct Subscriber {
    id: u64,
    project_id: i64,
    prefix: String,
    channels: Mutex<HashSet<String>>,
    tx: mpsc::Sender<ByteString>,
    /// Set when the queue overflowed; the socket closes with 4008.
    pub lagged: AtomicBool,
    /// Wakes the socket task when it must close.
    pub kick: Notify,
}

impl Subscriber {
    /// Subscribes to `rooms`, `sessions` or `room:<name>` (short or full name).
    pub fn subscribe(&self, channel: &str) -> Result<String, String> {
        let normalized = self.normalize(channel)?;
        self.lock().insert(normalized.clone());
        Ok(normalized)
    }

    /// Unsubscribes; returns whether it was subscribed.
    pub fn unsubscribe(&self, channel: &str) -> Result<bool, String> {
        let normalized = self.normalize(channel)?;
        Ok(self.lock().remove(&normalized))
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
        let channels = self.lock();
        (m.rooms && channels.contains("rooms"))
            || (m.sessions && channels.contains("sessions"))
            || m.room
                .as_ref()
                .is_some_and(|r| channels.contains(&format!("room:{r}")))
    }
}

/// A message for monitor sockets, derived from an event.
#[derive(Debug, Clone)]
pub struct MonitorMessage {
    /// Project it belongs to.
    pub project_id: i64,
    /// Full room name it concerns, if any.
    pub room: Option<String>,
    /// Delivered on the `rooms` channel.
    pub rooms: bool,
    /// Delivered on the `sessions` channel.
    pub sessions: bool,
    /// The JSON text pushed: `{"type","data","timestamp"}` (shared by every
    /// socket: cloning it copies no bytes).
    pub text: ByteString,
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
        room: d
            .get("room_name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        rooms,
        sessions,
        text: text.into(),
    })
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
    /// A hub with a per-socket queue of `buffer` messages.
    pub fn new(buffer: usize, max_per_project: usize) -> Self {
        Self {
            sockets: DashMap::new(),
            next_id: AtomicU64::new(1),
            buffer: buffer.max(1),
            max_per_project,
        }
    }

    /// Registers a socket of a project.
    pub fn register(
        self: &Arc<Self>,
        project_id: i64,
        prefix: &str,
    ) -> Result<(Registration, mpsc::Receiver<ByteString>), TooMany> {
        let (tx, rx) = mpsc::channel(self.buffer);
        let subscriber = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            project_id,
            prefix: prefix.to_owned(),
            channels: Mutex::new(HashSet::new()),
            tx,
            lagged: AtomicBool::new(false),
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

    /// Pushes a message to the project's subscribed sockets without waiting.
    pub fn publish(&self, m: &MonitorMessage) {
        let Some(sockets) = self.sockets.get(&m.project_id).map(|v| v.clone()) else {
            return;
        };
        for s in sockets {
            if s.lagged.load(Ordering::Relaxed) || !s.wants(m) {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = s.tx.try_send(m.text.clone()) {
                s.lagged.store(true, Ordering::Relaxed);
                s.kick.notify_one();
            }
        }
    }

    /// Sockets connected now (all projects).
    pub fn connections(&self) -> usize {
        self.sockets.iter().map(|e| e.value().len()).sum()
    }
}
