//! The LiveKit server simulator: an in-process HTTP server speaking the
//! LiveKit server API (Twirp) as the real server does for the RPCs Voxplane
//! uses (`livekit-contract.md`), so the real `livekit-api` client can be
//! tested against it over HTTP. A development and test double only.
//!
//! - Twirp routing, protobuf and JSON bodies, Twirp errors (`twirp`, `server`)
//! - token verification and the per-RPC grants of the real server (`auth`)
//! - RoomService, AgentDispatchService, Egress (audio files) and SIP (`services/`)
//! - rooms, participants, dispatches and sent data in memory (`state`)
//! - who hears whom: subscriptions, publishers' subscription permissions,
//!   hidden participants, clients joining with a token, publishing and
//!   asking to subscribe (`media`)
//! - signed LiveKit-format webhooks, delivered in order (`webhooks`)
//! - a control surface for tests and demos, in Rust on [`LiveKitSim`] and as
//!   JSON under `/_sim/` (`control`)

mod audio;
mod auth;
mod config;
mod control;
mod media;
mod server;
mod services;
mod state;
mod twirp;
mod webhooks;

pub use config::{DEV_API_KEY, DEV_API_SECRET, SimConfig};
pub use control::{SimKind, SimParticipant};
pub use services::sip::{
    ActError as SimCallActError, CallAction as SimCallAction, CallFailure as SimCallFailure,
    CallProgress as SimCallProgress, SimCall,
};
pub use state::SentData;
pub use webhooks::sign as sign_webhook;

use livekit_protocol::{AgentDispatch, ParticipantInfo, Room};
use state::Shared;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A running simulator; stops serving when dropped.
pub struct LiveKitSim {
    shared: Arc<Shared>,
    running: server::Running,
    recordings_dir: PathBuf,
}

impl LiveKitSim {
    /// Binds 127.0.0.1:`cfg.port` and serves on its own thread (with its own
    /// actix `System`, which also delivers the webhooks); returns once listening.
    pub fn start(cfg: SimConfig) -> anyhow::Result<LiveKitSim> {
        if cfg.api_key.is_empty() || cfg.api_secret.is_empty() {
            anyhow::bail!("the LiveKit simulator needs an API key and an API secret");
        }
        // reqwest (webhook delivery) panics when built without a provider.
        crate::install_crypto_provider();
        let (queue, worker) =
            webhooks::channel(&cfg.api_key, &cfg.api_secret, cfg.webhook_url.clone());
        let shared = Arc::new(Shared::new(
            &cfg.api_key,
            &cfg.api_secret,
            queue,
            cfg.recordings_dir.clone(),
        ));
        shared.update(|s, _| s.sip.progress = cfg.call_progress);
        let running = server::spawn(shared.clone(), cfg.port, worker)?;
        Ok(LiveKitSim {
            shared,
            running,
            recordings_dir: cfg.recordings_dir,
        })
    }

    /// `http://127.0.0.1:PORT`: what `LIVEKIT_URL` is set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// The API key tokens must be issued by.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// The API secret.
    pub fn api_secret(&self) -> &str {
        &self.shared.api_secret
    }

    /// Where egress recordings are written.
    pub fn recordings_dir(&self) -> &Path {
        &self.recordings_dir
    }

    /// Changes where webhooks emitted from now on are posted (`None`: nowhere).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared.webhooks.set_url(url);
    }

    /// Stops serving: the port closes and queued webhooks are dropped.
    /// Also done on drop.
    pub fn stop(&mut self) {
        self.running.stop();
    }

    /// Joins a simulated participant, creating the room when missing (as a
    /// real join does): `room_started` if new, `participant_joined`, then
    /// `track_published` per track. An identity already in the room is
    /// replaced (it leaves first), as LiveKit does.
    pub async fn join(&self, room: &str, p: SimParticipant) -> anyhow::Result<ParticipantInfo> {
        control::join(&self.shared, room, p)
    }

    /// A client joins with a LiveKit token (verified as the server does):
    /// its grants become its permission (`hidden`, `canPublish`, …); it
    /// publishes nothing yet and is auto-subscribed to what it may receive.
    pub async fn connect(&self, room: &str, token: &str) -> anyhow::Result<ParticipantInfo> {
        let claims = livekit_api::access_token::TokenVerifier::with_api_key(
            &self.shared.api_key,
            &self.shared.api_secret,
        )
        .verify(token)
        .map_err(|e| anyhow::anyhow!("invalid token: {e}"))?;
        let info = media::info_from_claims(&claims, room).map_err(anyhow::Error::msg)?;
        Ok(self
            .shared
            .update(|s, ev| s.add_participant(room, info, ev)))
    }

    /// A participant's client publishes its microphone (`track_published`);
    /// refused when its permission does not allow it.
    pub async fn publish_microphone(
        &self,
        room: &str,
        identity: &str,
    ) -> anyhow::Result<livekit_protocol::TrackInfo> {
        self.shared
            .update(|s, ev| {
                s.room_mut(room)
                    .ok_or_else(twirp::TwirpError::room_not_found)?
                    .publish_microphone(identity, ev)
            })
            .map_err(|e| anyhow::anyhow!("{}", e.msg))
    }

    /// A participant's client asks to subscribe to (or leave) a track; true
    /// when subscribed now, false when it waits for the publisher's
    /// permission (no media flows).
    pub fn client_subscribe(
        &self,
        room: &str,
        identity: &str,
        track_sid: &str,
        subscribe: bool,
    ) -> anyhow::Result<bool> {
        self.shared
            .update(|s, _| {
                s.room_mut(room)
                    .ok_or_else(twirp::TwirpError::room_not_found)?
                    .set_subscribed(identity, &[track_sid.to_owned()], subscribe)
            })
            .map_err(|e| anyhow::anyhow!("{}", e.msg))
    }

    /// A publisher's client sets who may receive its tracks (LiveKit's
    /// `SubscriptionPermission`): everyone, or only these identities.
    pub fn set_subscription_permission(
        &self,
        room: &str,
        publisher: &str,
        only: Option<&[&str]>,
    ) -> anyhow::Result<()> {
        let perm = livekit_protocol::SubscriptionPermission {
            all_participants: only.is_none(),
            track_permissions: only
                .unwrap_or_default()
                .iter()
                .map(|i| livekit_protocol::TrackPermission {
                    participant_identity: (*i).to_owned(),
                    all_tracks: true,
                    ..Default::default()
                })
                .collect(),
        };
        self.shared
            .update(|s, _| {
                s.room_mut(room)
                    .ok_or_else(twirp::TwirpError::room_not_found)?
                    .set_subscription_permission(publisher, perm)
            })
            .map_err(|e| anyhow::anyhow!("{}", e.msg))
    }

    /// Whom `identity` hears in `room`: (publisher identity, track sid) of
    /// the unmuted audio tracks it is subscribed to.
    pub fn hears(&self, room: &str, identity: &str) -> Vec<(String, String)> {
        self.shared
            .read(|s| s.room(room).map(|r| r.hears(identity)).unwrap_or_default())
    }

    /// The identities `viewer`'s client sees in `room` (hidden ones left out).
    pub fn visible_to(&self, room: &str, viewer: &str) -> Vec<String> {
        self.shared.read(|s| {
            s.room(room)
                .map(|r| {
                    r.visible_to(viewer)
                        .into_iter()
                        .map(|p| p.identity)
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// A participant leaves: `track_unpublished` per track, `participant_left`.
    pub async fn leave(&self, room: &str, identity: &str) -> anyhow::Result<()> {
        control::leave(&self.shared, room, identity)
    }

    /// Every data packet accepted by `SendData`, oldest first.
    pub fn data_packets(&self) -> Vec<SentData> {
        self.shared.read(|s| s.data().to_vec())
    }

    /// All rooms, by name.
    pub fn rooms(&self) -> Vec<Room> {
        self.shared.read(|s| s.rooms().map(|r| r.proto()).collect())
    }

    /// The participants of a room in join order (none for an unknown room).
    pub fn participants(&self, room: &str) -> Vec<ParticipantInfo> {
        self.shared.read(|s| {
            s.room(room)
                .map(|r| r.participants.clone())
                .unwrap_or_default()
        })
    }

    /// The agent dispatches of a room (none for an unknown room).
    pub fn dispatches(&self, room: &str) -> Vec<AgentDispatch> {
        self.shared.read(|s| {
            s.room(room)
                .map(|r| r.dispatches.clone())
                .unwrap_or_default()
        })
    }

    /// Every egress, in id order.
    pub fn egresses(&self) -> Vec<livekit_protocol::EgressInfo> {
        self.shared
            .read(|s| s.egresses.values().map(|e| e.info.clone()).collect())
    }

    /// Ends an active egress as failed with `reason` (`egress_ended`,
    /// `EGRESS_FAILED`); `false` when it is unknown or already ended.
    pub fn fail_egress(&self, egress_id: &str, reason: &str) -> bool {
        control::fail_egress_now(&self.shared, egress_id, reason)
    }

    /// Makes the next CreateSIPParticipant fail with this SIP status.
    pub fn fail_next_call(&self, failure: SimCallFailure) {
        self.shared
            .update(|s, _| s.sip.next_failure = Some(failure));
    }

    /// Every placed call with its status, by call id.
    pub fn sip_placed_calls(&self) -> Vec<SimCall> {
        self.shared
            .read(|s| s.sip.placed.values().cloned().collect())
    }

    /// Drives a placed call: answer, busy, no answer, fail or hang up.
    pub fn sip_call_action(
        &self,
        call_id: &str,
        action: &SimCallAction,
    ) -> Result<SimCall, SimCallActError> {
        self.shared
            .update(|s, ev| services::sip::act(s, call_id, action, ev))
    }

    /// Changes how calls placed from now on (and those in progress) move on.
    pub fn set_call_progress(&self, progress: SimCallProgress) {
        self.shared.update(|s, _| s.sip.progress = progress);
    }

    /// Delays the reply of an RPC (by method name, e.g.
    /// `CreateSIPParticipant`) by `delay`, or no longer (`None`). The RPC
    /// takes effect at once; only its answer is late.
    pub fn set_latency(&self, rpc: &str, delay: Option<std::time::Duration>) {
        self.shared.update(|s, _| match delay {
            Some(d) => s.latency.insert(rpc.to_owned(), d),
            None => s.latency.remove(rpc),
        });
    }

    /// Makes an RPC (by method name, e.g. `CreateRoom`) fail with Twirp
    /// `unavailable` (503) without doing anything, or no longer (`false`).
    pub fn set_failing(&self, rpc: &str, failing: bool) {
        self.shared.update(|s, _| {
            if failing {
                s.failing.insert(rpc.to_owned());
            } else {
                s.failing.remove(rpc);
            }
        });
    }

    /// Every CreateSIPParticipant request that placed a call, in order.
    pub fn sip_calls(&self) -> Vec<livekit_protocol::CreateSipParticipantRequest> {
        self.shared.read(|s| s.sip.calls.clone())
    }

    /// The outbound SIP trunks.
    pub fn sip_outbound_trunks(&self) -> Vec<livekit_protocol::SipOutboundTrunkInfo> {
        self.shared
            .read(|s| s.sip.outbound.values().cloned().collect())
    }

    /// The inbound SIP trunks.
    pub fn sip_inbound_trunks(&self) -> Vec<livekit_protocol::SipInboundTrunkInfo> {
        self.shared
            .read(|s| s.sip.inbound.values().cloned().collect())
    }

    /// The SIP dispatch rules.
    pub fn sip_dispatch_rules(&self) -> Vec<livekit_protocol::SipDispatchRuleInfo> {
        self.shared
            .read(|s| s.sip.rules.values().cloned().collect())
    }

    /// Returns once every webhook queued so far was delivered or given up
    /// (at once when stopped), so tests never sleep.
    pub async fn flush_webhooks(&self) {
        self.shared.webhooks.flush().await;
    }
}

impl Drop for LiveKitSim {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for LiveKitSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKitSim")
            .field("addr", &self.running.addr)
            .field("api_key", &self.shared.api_key)
            .finish_non_exhaustive()
    }
}
