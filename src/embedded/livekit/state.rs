//! The simulated world: rooms with their participants and agent dispatches,
//! and the data packets sent through `SendData`.
//!
//! Everything lives behind one mutex ([`Shared`]); every change that LiveKit
//! reports by webhook pushes its events while the lock is held, so webhooks
//! leave in the order the changes happened.

use super::twirp::TwirpError;
use super::webhooks::{self, WebhookQueue};
use livekit_protocol::participant_info::State as ParticipantState;
use livekit_protocol::{
    AgentDispatch, CreateRoomRequest, DisconnectReason, ParticipantInfo, Room, RoomEndReason,
    WebhookEvent,
};
use rand::Rng;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Webhook events produced by a change, in order.
pub type Events = Vec<WebhookEvent>;

/// Default `empty_timeout` of a room created without one (LiveKit's default).
const DEFAULT_EMPTY_TIMEOUT: u32 = 300;
/// Default `departure_timeout` of a room created without one.
const DEFAULT_DEPARTURE_TIMEOUT: u32 = 20;

/// A data packet accepted by `SendData`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentData {
    /// The room it was sent to.
    pub room: String,
    /// The payload.
    pub data: Vec<u8>,
    /// The topic, when one was given.
    pub topic: Option<String>,
    /// The identities it was addressed to; empty means everyone.
    pub destination_identities: Vec<String>,
    /// `DataPacket.Kind` (0 RELIABLE, 1 LOSSY).
    pub kind: i32,
    /// The identities in the room that received it, in join order.
    pub recipients: Vec<String>,
}

/// The state shared by the HTTP handlers and the [`LiveKitSim`](super::LiveKitSim) handle.
pub struct Shared {
    /// The API key tokens must be issued by.
    pub api_key: String,
    /// The secret tokens are verified with.
    pub api_secret: String,
    /// Where webhook events go.
    pub webhooks: WebhookQueue,
    state: Mutex<SimState>,
}

impl Shared {
    /// Shared state for a key pair, empty; egress files with a relative
    /// path go under `recordings_dir`.
    pub fn new(
        api_key: &str,
        api_secret: &str,
        webhooks: WebhookQueue,
        recordings_dir: PathBuf,
    ) -> Self {
        Self {
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            webhooks,
            state: Mutex::new(SimState {
                recordings_dir,
                ..SimState::default()
            }),
        }
    }

    /// Runs a change and enqueues the webhook events it produced.
    pub fn update<R>(&self, f: impl FnOnce(&mut SimState, &mut Events) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut events = Events::new();
        let result = f(&mut state, &mut events);
        // Still under the lock: events leave in the order of the changes.
        self.webhooks.enqueue(events);
        result
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&SimState) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// All rooms and sent data.
#[derive(Debug, Default)]
pub struct SimState {
    rooms: BTreeMap<String, RoomEntry>,
    data: Vec<SentData>,
    /// Where egress files with a relative path are written.
    pub recordings_dir: PathBuf,
    /// RPCs (by method name) whose reply is sent this much later; the
    /// change itself is made at once, as when LiveKit is slow to answer.
    pub latency: BTreeMap<String, std::time::Duration>,
    /// RPCs (by method name) that fail with `unavailable` without doing
    /// anything, as when LiveKit is down or refuses the request.
    pub failing: std::collections::BTreeSet<String>,
    /// Egresses by id (`services::egress`).
    pub egresses: BTreeMap<String, super::services::egress::EgressEntry>,
    /// SIP trunks, dispatch rules and calls (`services::sip`).
    pub sip: super::services::sip::SipState,
}

/// A room with its participants (in join order) and agent dispatches.
#[derive(Debug)]
pub struct RoomEntry {
    room: Room,
    /// Participants in join order.
    pub participants: Vec<ParticipantInfo>,
    /// Agent dispatches in creation order.
    pub dispatches: Vec<AgentDispatch>,
    /// Subscriptions and subscription permissions (`media`).
    pub(super) media: super::media::Media,
}

impl RoomEntry {
    fn new(req: &CreateRoomRequest) -> Self {
        let ms = now_millis();
        Self {
            room: Room {
                sid: new_id("RM_"),
                name: req.name.clone(),
                empty_timeout: nonzero_or(req.empty_timeout, DEFAULT_EMPTY_TIMEOUT),
                departure_timeout: nonzero_or(req.departure_timeout, DEFAULT_DEPARTURE_TIMEOUT),
                max_participants: req.max_participants,
                creation_time: ms / 1000,
                creation_time_ms: ms,
                metadata: req.metadata.clone(),
                ..Default::default()
            },
            participants: Vec::new(),
            dispatches: Vec::new(),
            media: Default::default(),
        }
    }

    /// The room as LiveKit reports it, with its current counts.
    pub fn proto(&self) -> Room {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Room {
            num_participants: count(self.participants.len()),
            num_publishers: count(self.participants.iter().filter(|p| p.is_publisher).count()),
            ..self.room.clone()
        }
    }

    /// Replaces the room's metadata.
    pub fn set_metadata(&mut self, metadata: String) {
        self.room.metadata = metadata;
    }

    /// A participant by identity.
    pub fn participant(&self, identity: &str) -> Option<&ParticipantInfo> {
        self.participants.iter().find(|p| p.identity == identity)
    }

    /// A participant by identity, to change it.
    pub fn participant_mut(&mut self, identity: &str) -> Option<&mut ParticipantInfo> {
        self.participants
            .iter_mut()
            .find(|p| p.identity == identity)
    }

    /// Emits what LiveKit reports when `p` (already removed) leaves.
    fn departed(
        &self,
        mut p: ParticipantInfo,
        reason: DisconnectReason,
        ev: &mut Events,
    ) -> ParticipantInfo {
        let room = self.proto();
        for track in &p.tracks {
            ev.push(webhooks::track_event("track_unpublished", &room, &p, track));
        }
        p.state = ParticipantState::Disconnected as i32;
        p.disconnect_reason = reason as i32;
        ev.push(webhooks::participant_event("participant_left", &room, &p));
        p
    }
}

impl SimState {
    /// A room by name.
    pub fn room(&self, name: &str) -> Option<&RoomEntry> {
        self.rooms.get(name)
    }

    /// A room by name, to change it.
    pub fn room_mut(&mut self, name: &str) -> Option<&mut RoomEntry> {
        self.rooms.get_mut(name)
    }

    /// All rooms, by name.
    pub fn rooms(&self) -> impl Iterator<Item = &RoomEntry> {
        self.rooms.values()
    }

    /// The room named by `req`, created (with `room_started`) when missing.
    /// An existing room is returned unchanged.
    pub fn get_or_create_room(
        &mut self,
        req: &CreateRoomRequest,
        ev: &mut Events,
    ) -> &mut RoomEntry {
        match self.rooms.entry(req.name.clone()) {
            Entry::Occupied(existing) => existing.into_mut(),
            Entry::Vacant(slot) => {
                let entry = RoomEntry::new(req);
                ev.push(webhooks::room_event("room_started", &entry.proto()));
                slot.insert(entry)
            }
        }
    }

    /// Closes a room: everyone leaves, its dispatches go, `room_finished`.
    pub fn delete_room(&mut self, name: &str, ev: &mut Events) -> Result<(), TwirpError> {
        let mut entry = self
            .rooms
            .remove(name)
            .ok_or_else(TwirpError::room_not_found)?;
        while !entry.participants.is_empty() {
            let p = entry.participants.remove(0);
            entry.departed(p, DisconnectReason::RoomDeleted, ev);
        }
        let mut event = webhooks::room_event("room_finished", &entry.proto());
        event.room_end_reason = RoomEndReason::RoomEndApiDelete as i32;
        ev.push(event);
        // Recordings of the room end with it.
        super::services::egress::finish_room(self, name, ev);
        Ok(())
    }

    /// Adds a participant, creating the room when missing (as a join does).
    /// One already there with the same identity is disconnected first
    /// (`DUPLICATE_IDENTITY`), as LiveKit does.
    pub fn add_participant(
        &mut self,
        room: &str,
        p: ParticipantInfo,
        ev: &mut Events,
    ) -> ParticipantInfo {
        let req = CreateRoomRequest {
            name: room.to_owned(),
            ..Default::default()
        };
        let entry = self.get_or_create_room(&req, ev);
        if let Some(pos) = entry
            .participants
            .iter()
            .position(|x| x.identity == p.identity)
        {
            let old = entry.participants.remove(pos);
            entry.departed(old, DisconnectReason::DuplicateIdentity, ev);
        }
        entry.participants.push(p.clone());
        entry.auto_subscribe_joined(&p.identity);
        let room = entry.proto();
        ev.push(webhooks::participant_event("participant_joined", &room, &p));
        for track in &p.tracks {
            ev.push(webhooks::track_event("track_published", &room, &p, track));
        }
        p
    }

    /// Removes a participant; `None` when the room or the identity is unknown.
    pub fn remove_participant(
        &mut self,
        room: &str,
        identity: &str,
        reason: DisconnectReason,
        ev: &mut Events,
    ) -> Option<ParticipantInfo> {
        let entry = self.rooms.get_mut(room)?;
        let pos = entry
            .participants
            .iter()
            .position(|p| p.identity == identity)?;
        let p = entry.participants.remove(pos);
        Some(entry.departed(p, reason, ev))
    }

    /// Records a sent data packet.
    pub fn record_data(&mut self, data: SentData) {
        self.data.push(data);
    }

    /// Every data packet sent so far, oldest first.
    pub fn data(&self) -> &[SentData] {
        &self.data
    }
}

fn nonzero_or(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

/// A LiveKit-style id: the prefix and 12 random alphanumerics.
pub fn new_id(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    format!("{prefix}{suffix}")
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Now, in unix seconds.
pub fn now_secs() -> u64 {
    since_epoch().as_secs()
}

/// Now, in unix milliseconds.
pub fn now_millis() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

/// Now, in unix nanoseconds.
pub fn now_nanos() -> i64 {
    i64::try_from(since_epoch().as_nanos()).unwrap_or(i64::MAX)
}
