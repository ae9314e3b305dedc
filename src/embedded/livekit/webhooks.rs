//! LiveKit-format webhooks (contract §5, §6.2 points 10–11).
//!
//! Events are queued on a channel and posted, in order, by one delivery task
//! per simulator. The body is the pbjson encoding of `WebhookEvent`; the
//! `Authorization` header carries a raw HS256 JWT (no `Bearer `) with
//! `iss`, `nbf`, `iat`, `exp = now + 5 min` and `sha256` = standard base64 of
//! SHA-256 over the exact body bytes, as LiveKit's notifier signs it.

use super::state::{new_id, now_secs};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use livekit_protocol::{ParticipantInfo, Room, TrackInfo, WebhookEvent};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Delivery attempts per event (the first one included).
const MAX_ATTEMPTS: u32 = 4;
/// Backoff before the second attempt; doubled for each further one.
const BACKOFF: Duration = Duration::from_millis(50);
/// Time limit of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Lifetime of a webhook token, as LiveKit signs them.
const TOKEN_TTL_SECS: u64 = 300;

/// A message for the delivery task.
enum Msg {
    Event {
        url: String,
        event: Box<WebhookEvent>,
    },
    Flush(oneshot::Sender<()>),
}

/// The sending side: enqueues events for the URL configured at the time.
pub struct WebhookQueue {
    tx: mpsc::UnboundedSender<Msg>,
    url: Arc<Mutex<Option<String>>>,
    /// Off: events are dropped, as a LiveKit whose webhooks were lost.
    enabled: std::sync::atomic::AtomicBool,
}

/// The delivery task's side, run on the simulator's thread.
pub struct WebhookWorker {
    rx: mpsc::UnboundedReceiver<Msg>,
    api_key: String,
    api_secret: String,
    client: reqwest::Client,
}

/// A queue and its worker.
pub fn channel(
    api_key: &str,
    api_secret: &str,
    url: Option<String>,
) -> (WebhookQueue, WebhookWorker) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    (
        WebhookQueue {
            tx,
            url: Arc::new(Mutex::new(url)),
            enabled: std::sync::atomic::AtomicBool::new(true),
        },
        WebhookWorker {
            rx,
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            client,
        },
    )
}

impl WebhookQueue {
    /// Changes the destination of events enqueued from now on.
    pub fn set_url(&self, url: Option<String>) {
        *self.url.lock().unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// Switches sending on or off (off: events are lost, not queued).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Enqueues events (dropped when no URL is set, sending is switched
    /// off or the simulator stopped).
    pub fn enqueue(&self, events: Vec<WebhookEvent>) {
        if !self.enabled.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let url = self
            .url
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(url) = url else { return };
        for event in events {
            let _ = self.tx.send(Msg::Event {
                url: url.clone(),
                event: Box::new(event),
            });
        }
    }

    /// Returns once every event enqueued before the call was delivered or
    /// given up (immediately when the simulator is stopped).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl WebhookWorker {
    /// Delivers events in order until every queue handle is gone.
    pub async fn run(mut self) {
        while let Some(msg) = self.rx.recv().await {
            match msg {
                Msg::Event { url, event } => self.deliver(&url, &event).await,
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    async fn deliver(&self, url: &str, event: &WebhookEvent) {
        let body = match serde_json::to_string(event) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(error = %e, "livekit simulator: webhook not encodable");
                return;
            }
        };
        let token = match sign(&self.api_key, &self.api_secret, body.as_bytes(), now_secs()) {
            Ok(token) => token,
            Err(e) => {
                tracing::warn!(error = %e, "livekit simulator: webhook not signable");
                return;
            }
        };
        let mut backoff = BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            let sent = self
                .client
                .post(url)
                .header(reqwest::header::AUTHORIZATION, &token)
                .header(reqwest::header::CONTENT_TYPE, "application/webhook+json")
                .header(reqwest::header::USER_AGENT, "LiveKit")
                .body(body.clone())
                .timeout(ATTEMPT_TIMEOUT)
                .send()
                .await;
            match sent {
                Ok(res) if res.status().is_success() => return,
                Ok(res) => tracing::debug!(
                    webhook.event = %event.event, attempt, status = res.status().as_u16(),
                    "livekit simulator: webhook refused"
                ),
                Err(e) => tracing::debug!(
                    webhook.event = %event.event, attempt, error = %e,
                    "livekit simulator: webhook not delivered"
                ),
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::warn!(webhook.event = %event.event, "livekit simulator: webhook given up");
    }
}

/// The webhook token for `body` at `now` (unix seconds).
pub fn sign(api_key: &str, api_secret: &str, body: &[u8], now: u64) -> anyhow::Result<String> {
    let claims = serde_json::json!({
        "iss": api_key,
        "nbf": now,
        "iat": now,
        "exp": now + TOKEN_TTL_SECS,
        "sha256": STANDARD.encode(Sha256::digest(body)),
    });
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?);
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(api_secret.as_bytes())?;
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{signing_input}.{signature}"))
}

/// A new event with its `EV_` id and creation time.
fn event(name: &str) -> WebhookEvent {
    WebhookEvent {
        event: name.to_owned(),
        id: new_id("EV_"),
        created_at: i64::try_from(now_secs()).unwrap_or(i64::MAX),
        ..Default::default()
    }
}

/// `room_started` / `room_finished`: the full room.
pub fn room_event(name: &str, room: &Room) -> WebhookEvent {
    WebhookEvent {
        room: Some(room.clone()),
        ..event(name)
    }
}

/// `participant_joined` / `participant_left`: the room and the participant.
pub fn participant_event(name: &str, room: &Room, participant: &ParticipantInfo) -> WebhookEvent {
    WebhookEvent {
        room: Some(room.clone()),
        participant: Some(participant.clone()),
        ..event(name)
    }
}

/// `track_published` / `track_unpublished`: room and participant reduced to
/// their ids, and the track.
pub fn track_event(
    name: &str,
    room: &Room,
    participant: &ParticipantInfo,
    track: &TrackInfo,
) -> WebhookEvent {
    WebhookEvent {
        room: Some(Room {
            sid: room.sid.clone(),
            name: room.name.clone(),
            ..Default::default()
        }),
        participant: Some(ParticipantInfo {
            sid: participant.sid.clone(),
            identity: participant.identity.clone(),
            ..Default::default()
        }),
        track: Some(track.clone()),
        ..event(name)
    }
}

/// `egress_started` / `egress_updated` / `egress_ended`: the egress only.
pub fn egress_event(name: &str, info: &livekit_protocol::EgressInfo) -> WebhookEvent {
    WebhookEvent {
        egress_info: Some(info.clone()),
        ..event(name)
    }
}
