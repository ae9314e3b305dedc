//! The chat hub of a node: a registry of the chat sockets (`/ws/chat`) per
//! account and of the call sockets (`/ws/call/{id}`) per call, each with a
//! bounded queue. The event dispatcher hands it every round's `chat.*`
//! events ([`ChatHub::publish`]); each event names its recipients, so the
//! hub needs no database. Publishing never waits on a socket: one whose
//! queue is full is told to close (4008) and skipped from then on. Sockets
//! unregister themselves when their [`Registration`] drops; an account's
//! first socket on the node and its last one ask the presence worker to
//! bring the shared presence up to date (the last one after the grace).
//!
//! Also the per-account message rate limit (per node).

use super::events as ev;
use crate::events::Event;
use crate::events::hub::{Lagging, concat, text_frame};
use actix_web::web::Bytes;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// One connected chat or call socket.
pub struct ChatSocket {
    /// Unique within the node.
    pub id: u64,
    /// The signed-in account.
    pub account_id: i64,
    /// For call sockets: the call they follow.
    pub call_id: Option<i64>,
    chats: Mutex<HashSet<i64>>,
    /// Call sockets: the version of the call last sent.
    call_version: Mutex<i64>,
    tx: mpsc::Sender<Bytes>,
    lagged: Arc<AtomicBool>,
    /// Wakes the socket task when it must close (4008).
    pub kick: Notify,
}

impl Lagging for ChatSocket {
    fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Relaxed)
    }
}

/// The queue of a socket, made when it connects (before it authenticates
/// and becomes a [`ChatSocket`]): its sending end, its receiving end (for
/// the response body) and the flag set when it overflows.
pub struct Queue {
    /// Frames go in here.
    pub tx: mpsc::Sender<Bytes>,
    /// The response body reads them from here.
    pub rx: mpsc::Receiver<Bytes>,
    /// Set when the queue overflowed (the body stops, 4008 goes out).
    pub lagged: Arc<AtomicBool>,
}

/// A socket may join no more chats.
#[derive(Debug)]
pub struct TooManyChats;

impl ChatSocket {
    /// Queues a frame without waiting. False when the socket is gone or its
    /// queue is full; then it is told to close (4008).
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

    /// [`Self::push`] of a JSON value as a text frame.
    pub fn push_json(&self, v: &Value) -> bool {
        self.push(text_frame(&v.to_string()))
    }

    /// Call sockets: queues the state of the call at `version` unless a
    /// newer one went out already (the snapshot sent on connecting may be
    /// newer than a report the dispatcher delivers after it). False when
    /// not sent.
    pub fn push_call_state(&self, version: i64, frame: Bytes) -> bool {
        let mut last = self.call_version.lock().unwrap_or_else(|p| p.into_inner());
        if version <= *last {
            return false;
        }
        *last = version;
        self.push(frame)
    }

    fn chats(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.chats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins a chat (its messages and typing come to this socket).
    pub fn join(&self, chat_id: i64, max: usize) -> Result<(), TooManyChats> {
        let mut chats = self.chats();
        if !chats.contains(&chat_id) && chats.len() >= max {
            return Err(TooManyChats);
        }
        chats.insert(chat_id);
        Ok(())
    }

    /// Leaves a chat; whether it had joined it.
    pub fn leave(&self, chat_id: i64) -> bool {
        self.chats().remove(&chat_id)
    }

    /// Whether the socket joined a chat.
    pub fn joined(&self, chat_id: i64) -> bool {
        self.chats().contains(&chat_id)
    }
}

/// Why a socket could not be registered.
#[derive(Debug)]
pub struct TooManySockets;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;

/// See the module documentation.
pub struct ChatHub {
    /// This node's id in `chat_nodes` / `chat_presence` (random per process).
    pub node_id: String,
    accounts: DashMap<i64, Vec<Arc<ChatSocket>>>,
    calls: DashMap<i64, Vec<Arc<ChatSocket>>>,
    next_id: AtomicU64,
    buffer: usize,
    max_per_account: usize,
    quota: Quota,
    limiters: DashMap<i64, Arc<Limiter>>,
    clock: DefaultClock,
    /// (account, delay): bring the account's presence up to date after the delay.
    presence: mpsc::UnboundedSender<(i64, Duration)>,
    /// The receiving end, until the presence worker takes it.
    requests: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(i64, Duration)>>>,
    grace: Duration,
}

/// Unregisters its socket when dropped.
pub struct Registration {
    hub: Arc<ChatHub>,
    /// The socket.
    pub socket: Arc<ChatSocket>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let s = &self.socket;
        let map = if s.call_id.is_some() {
            &self.hub.calls
        } else {
            &self.hub.accounts
        };
        let key = s.call_id.unwrap_or(s.account_id);
        map.alter(&key, |_, mut v| {
            v.retain(|x| x.id != s.id);
            v
        });
        let gone = map.remove_if(&key, |_, v| v.is_empty()).is_some();
        if gone && s.call_id.is_none() {
            let _ = self.hub.presence.send((s.account_id, self.hub.grace));
        }
    }
}

impl ChatHub {
    /// A hub for `settings`.
    pub fn new(settings: &super::config::ChatSettings) -> Self {
        let (presence, requests) = mpsc::unbounded_channel();
        let per_second = NonZeroU32::new(settings.messages_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.message_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            node_id: format!(
                "{}-{}",
                std::process::id(),
                crate::db::projects::random_alnum(12)
            ),
            accounts: DashMap::new(),
            calls: DashMap::new(),
            next_id: AtomicU64::new(1),
            buffer: settings.socket_buffer.max(1),
            max_per_account: settings.max_sockets_per_account,
            quota: Quota::per_second(per_second).allow_burst(burst),
            limiters: DashMap::new(),
            clock: DefaultClock::default(),
            presence,
            requests: Arc::new(tokio::sync::Mutex::new(requests)),
            grace: Duration::from_millis(settings.presence_grace_ms),
        }
    }

    /// The presence requests `(account, delay)`, for the presence worker:
    /// the worker holds the lock while it reads, and a restarted worker takes
    /// it over once the one before is gone.
    pub fn presence_requests(
        &self,
    ) -> Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(i64, Duration)>>> {
        self.requests.clone()
    }

    /// A new socket's queue (`chat.socket_buffer` frames).
    pub fn queue(&self) -> Queue {
        let (tx, rx) = mpsc::channel(self.buffer);
        Queue {
            tx,
            rx,
            lagged: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The socket of an authenticated account on a queue (not registered yet).
    pub fn socket(
        &self,
        account_id: i64,
        call_id: Option<i64>,
        tx: mpsc::Sender<Bytes>,
        lagged: Arc<AtomicBool>,
    ) -> ChatSocket {
        ChatSocket {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            account_id,
            call_id,
            chats: Mutex::new(HashSet::new()),
            call_version: Mutex::new(-1),
            tx,
            lagged,
            kick: Notify::new(),
        }
    }

    /// Registers a socket: a chat socket under its account, a call socket
    /// under its call. An account's first chat socket on this node makes
    /// it online (presence is updated at once).
    pub fn register(
        self: &Arc<Self>,
        socket: Arc<ChatSocket>,
    ) -> Result<Registration, TooManySockets> {
        let (map, key) = match socket.call_id {
            Some(call) => (&self.calls, call),
            None => (&self.accounts, socket.account_id),
        };
        let mut entry = map.entry(key).or_default();
        let mine = entry
            .iter()
            .filter(|s| s.account_id == socket.account_id)
            .count();
        if mine >= self.max_per_account {
            return Err(TooManySockets);
        }
        let first = entry.is_empty();
        entry.push(socket.clone());
        drop(entry);
        if first && socket.call_id.is_none() {
            let _ = self.presence.send((socket.account_id, Duration::ZERO));
        }
        Ok(Registration {
            hub: self.clone(),
            socket,
        })
    }

    /// Chat sockets of an account on this node.
    pub fn local_sockets(&self, account_id: i64) -> usize {
        self.accounts.get(&account_id).map_or(0, |v| v.len())
    }

    /// Accounts with a chat socket on this node.
    pub fn local_accounts(&self) -> Vec<i64> {
        self.accounts.iter().map(|e| *e.key()).collect()
    }

    /// Chat and call sockets on this node.
    pub fn connections(&self) -> usize {
        let chats: usize = self.accounts.iter().map(|e| e.value().len()).sum();
        let calls: usize = self.calls.iter().map(|e| e.value().len()).sum();
        chats + calls
    }

    /// Counts one message of `account_id` against its rate; `Err(wait)`
    /// when over it.
    pub fn check_rate(&self, account_id: i64) -> Result<(), Duration> {
        let limiter = self
            .limiters
            .entry(account_id)
            .or_insert_with(|| {
                Arc::new(RateLimiter::direct_with_clock(
                    self.quota,
                    self.clock.clone(),
                ))
            })
            .clone();
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets the rate state of accounts without sockets here (a
    /// forgotten state starts full again, as after a second idle).
    pub fn sweep_limiters(&self) {
        self.limiters
            .retain(|account, _| self.accounts.contains_key(account));
    }

    /// The sockets of `account` (chat sockets), cloned out of the map.
    fn of(&self, account: i64) -> Vec<Arc<ChatSocket>> {
        self.accounts
            .get(&account)
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Delivers a round's events (in order) to the local sockets they name:
    /// one push per socket for the whole round.
    pub fn publish(&self, events: &[Event]) {
        if self.accounts.is_empty() && self.calls.is_empty() {
            return;
        }
        let mut out = Outbox::default();
        for e in events {
            match e.event_type.as_str() {
                ev::MESSAGE => self.message(&e.data, &mut out),
                ev::TYPING => self.typing(&e.data, &mut out),
                ev::PRESENCE => self.presence(&e.data, &mut out),
                ev::CHAT => self.chat(&e.data, &mut out),
                ev::CALL => self.call(&e.data, &mut out),
                _ => {}
            }
        }
        out.flush();
    }

    fn message(&self, d: &Value, out: &mut Outbox) {
        let chat_id = d["chat_id"].as_i64().unwrap_or_default();
        let origin = (d["origin_node"].as_str() == Some(self.node_id.as_str()))
            .then(|| d["origin_socket"].as_u64())
            .flatten();
        let frame =
            text_frame(&json!({"type": "new_message", "message": d["message"]}).to_string());
        for account in ids(&d["recipients"]) {
            for s in self.of(account) {
                if s.joined(chat_id) && Some(s.id) != origin {
                    out.add(&s, &frame);
                }
            }
        }
    }

    fn typing(&self, d: &Value, out: &mut Outbox) {
        let chat_id = d["chat_id"].as_i64().unwrap_or_default();
        let typist = d["account_id"].as_i64().unwrap_or_default();
        let frame = text_frame(
            &json!({"type": "typing", "chat_id": chat_id, "account_id": typist, "state": d["state"]})
                .to_string(),
        );
        for account in ids(&d["recipients"]).filter(|a| *a != typist) {
            for s in self.of(account) {
                if s.joined(chat_id) {
                    out.add(&s, &frame);
                }
            }
        }
    }

    fn presence(&self, d: &Value, out: &mut Outbox) {
        let frame = text_frame(
            &json!({"type": "presence", "account_id": d["account_id"], "status": d["status"]})
                .to_string(),
        );
        for account in ids(&d["recipients"]) {
            for s in self.of(account) {
                out.add(&s, &frame);
            }
        }
    }

    /// `chat_list_update`: each recipient with its change and its own view
    /// of the chat (unread count, archived); a removed member's sockets
    /// leave the chat.
    fn chat(&self, d: &Value, out: &mut Outbox) {
        let chat_id = d["chat"]["id"].as_i64().unwrap_or_default();
        for r in d["recipients"].as_array().into_iter().flatten() {
            let Some(account) = r["account_id"].as_i64() else {
                continue;
            };
            let sockets = self.of(account);
            if sockets.is_empty() {
                continue;
            }
            let mut chat = d["chat"].clone();
            chat["unread_count"] = r["unread_count"].clone();
            chat["archived"] = r["archived"].clone();
            let frame = text_frame(
                &json!({"type": "chat_list_update", "chat": chat, "change": r["change"]})
                    .to_string(),
            );
            let removed = r["change"] == "removed";
            for s in sockets {
                if removed {
                    s.leave(chat_id);
                }
                out.add(&s, &frame);
            }
        }
    }

    /// Calls: `incoming_call` (ringing) and `call_ended` to the members'
    /// chat sockets, `call_state` to the call's sockets (pushed at once, each
    /// only if newer than what the socket was sent).
    fn call(&self, d: &Value, out: &mut Outbox) {
        let call = &d["call"];
        let call_id = call["id"].as_i64().unwrap_or_default();
        let from = d["from_account_id"].as_i64();
        let chat_frame = match d["change"].as_str() {
            Some("ringing") => Some(json!({
                "type": "incoming_call", "call_id": call_id, "chat_id": call["chat_id"],
                "from_account_id": from, "call": call,
            })),
            Some("ended") => Some(json!({
                "type": "call_ended", "call_id": call_id, "chat_id": call["chat_id"],
                "duration_seconds": call["duration_seconds"], "reason": call["end_reason"],
                "call": call,
            })),
            _ => None,
        };
        if let Some(frame) = chat_frame {
            let frame = text_frame(&frame.to_string());
            let ringing = d["change"] == "ringing";
            for account in ids(&d["recipients"]) {
                if ringing && Some(account) == from {
                    continue;
                }
                for s in self.of(account) {
                    out.add(&s, &frame);
                }
            }
        }
        let sockets = self
            .calls
            .get(&call_id)
            .map(|v| v.clone())
            .unwrap_or_default();
        if !sockets.is_empty() {
            let frame = text_frame(
                &json!({"type": "call_state", "change": d["change"], "account_id": d["account_id"], "call": call})
                    .to_string(),
            );
            let version = call["version"].as_i64().unwrap_or_default();
            for s in sockets {
                if !s.lagged() {
                    s.push_call_state(version, frame.clone());
                }
            }
        }
    }
}

/// The account ids of a JSON array.
fn ids(v: &Value) -> impl Iterator<Item = i64> + '_ {
    v.as_array().into_iter().flatten().filter_map(Value::as_i64)
}

/// Frames gathered per socket during a round.
#[derive(Default)]
struct Outbox(HashMap<u64, (Arc<ChatSocket>, Vec<Bytes>)>);

impl Outbox {
    fn add(&mut self, s: &Arc<ChatSocket>, frame: &Bytes) {
        if s.lagged() {
            return;
        }
        self.0
            .entry(s.id)
            .or_insert_with(|| (s.clone(), Vec::new()))
            .1
            .push(frame.clone());
    }

    fn flush(self) {
        for (_, (s, frames)) in self.0 {
            s.push(concat(frames.iter()));
        }
    }
}

impl crate::events::Listener for ChatHub {
    fn connections(&self) -> usize {
        ChatHub::connections(self)
    }

    fn publish(&self, events: &[Event]) {
        ChatHub::publish(self, events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn event(kind: &str, data: Value) -> Event {
        Event {
            id: 1,
            public_id: "evt_x".into(),
            project_id: 1,
            event_type: kind.into(),
            data,
            created_at: Utc::now(),
        }
    }

    fn hub() -> Arc<ChatHub> {
        Arc::new(ChatHub::new(&Default::default()))
    }

    fn connect(hub: &Arc<ChatHub>, account: i64) -> (Registration, mpsc::Receiver<Bytes>) {
        let q = hub.queue();
        let s = hub.socket(account, None, q.tx, q.lagged);
        let r = hub
            .register(Arc::new(s))
            .unwrap_or_else(|_| panic!("registered"));
        (r, q.rx)
    }

    #[test]
    fn messages_go_to_joined_sockets_of_recipients_but_not_their_origin() {
        let hub = hub();
        let (a, mut a_rx) = connect(&hub, 1);
        let (b, mut b_rx) = connect(&hub, 2);
        let (_c, mut c_rx) = connect(&hub, 3);
        assert!(a.socket.join(10, 5).is_ok());
        assert!(b.socket.join(10, 5).is_ok());
        let data = json!({"chat_id": 10, "message": {"id": 7}, "recipients": [1, 2],
                          "origin_node": hub.node_id, "origin_socket": a.socket.id});
        hub.publish(&[event(ev::MESSAGE, data.clone()), event(ev::MESSAGE, data)]);
        let got = b_rx.try_recv().unwrap_or_default();
        let text = String::from_utf8_lossy(&got);
        assert_eq!(text.matches("new_message").count(), 2, "one push: {text}");
        assert!(a_rx.try_recv().is_err(), "the sending socket has its ack");
        assert!(c_rx.try_recv().is_err(), "not a recipient");
    }

    #[test]
    fn a_full_queue_marks_the_socket_lagged() {
        let settings = crate::chat::config::ChatSettings {
            socket_buffer: 1,
            ..Default::default()
        };
        let hub = Arc::new(ChatHub::new(&settings));
        let (a, _rx) = connect(&hub, 1);
        assert!(a.socket.push(Bytes::from_static(b"x")));
        assert!(!a.socket.push(Bytes::from_static(b"y")));
        assert!(a.socket.lagged());
    }

    #[test]
    fn the_rate_allows_a_burst_then_refuses() {
        let settings = crate::chat::config::ChatSettings {
            messages_per_second: 1,
            message_burst: 3,
            ..Default::default()
        };
        let hub = ChatHub::new(&settings);
        for _ in 0..3 {
            assert!(hub.check_rate(1).is_ok());
        }
        assert!(hub.check_rate(1).is_err());
        assert!(hub.check_rate(2).is_ok(), "per account");
    }
}
