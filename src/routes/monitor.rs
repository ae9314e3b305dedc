//! `/ws/monitor` (contract section 13): live events of the caller's project.
//!
//! `?api_key=pk_…`; a missing or invalid key closes the socket with 4001.
//! The dashboard instead opens `?project_id=<id>` with its session cookie
//! (same origin only), for any member of the project; such a socket is
//! registered with `-session_id` as its key id (never checked as a key).
//! Clients send `{"action":"subscribe"|"unsubscribe","channel":"rooms"|"sessions"|"room:<name>"}`
//! and receive `{"type","data","timestamp"}`; `{"action":"transcript","room":"<name>"}`
//! answers `transcript.snapshot` with the room's active session's lines so far
//! (a supervisor opening the socket mid-call). A malformed message gets an
//! `error` message back. Pings every `monitor_heartbeat_secs`; a socket that
//! falls behind its queue is closed with 4008. A socket holds at most
//! `monitor_max_channels` channels and may send `monitor_messages_per_sec`
//! messages (beyond, they are dropped with an `error` reply); when its key is
//! revoked or its project deleted it is closed with 4001, and so is a
//! dashboard socket whose session ends (sign-out, sign-out everywhere, a
//! password change or reset): reason `Signed out` (`workers::check_monitor_keys`,
//! within half `key_cache_ttl_ms`; at once for a sign-out on this node).

use super::ws_body::QueueBody;
use crate::events::hub::{Subscriber, text_frame};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, Session};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Close code: missing or invalid API key.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code: the consumer fell behind.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code: too many sockets for the project.
pub const CLOSE_TOO_MANY: u16 = 4029;

/// Close code: the server could not check the key (Postgres down); retry.
pub const CLOSE_UNAVAILABLE: u16 = 1011;

/// The `api_key` of the upgrade request's query (the first one), read
/// leniently: whatever else the query holds, a bad key closes with 4001
/// after the upgrade rather than failing the HTTP request.
fn api_key(req: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.into_owned())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Command {
    action: String,
    channel: Option<String>,
    /// For `transcript`: the room (short or full name).
    room: Option<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn reply(kind: &str, data: serde_json::Value) -> String {
    json!({ "type": kind, "data": data, "timestamp": now() }).to_string()
}

async fn close(session: Session, code: u16, why: &str) {
    let _ = session
        .close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(why.to_owned()),
        }))
        .await;
}

/// Upgrades to a WebSocket and serves the monitor on it.
pub async fn monitor(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let ctx = match api_key(&req) {
        Some(key) => state
            .keys
            .lookup(&state.pool, &key)
            .await
            .map(|c| c.map(|c| (c.key_id, c)))
            .map_err(drop),
        None => dashboard_member(&req, &state).await,
    };
    let state = state.into_inner();
    let refused = match ctx {
        Ok(Some((key_id, ctx))) => {
            match state
                .hub
                .register(ctx.project.id, key_id, &ctx.project.room_prefix)
            {
                Ok((registration, events)) => {
                    let subscriber = registration.subscriber.clone();
                    actix_web::rt::spawn(async move {
                        serve(&state, session, stream, registration).await;
                    });
                    return Ok(response
                        .map_body(|_, control| QueueBody::new(control, events, subscriber))
                        .map_into_boxed_body());
                }
                Err(_) => (
                    CLOSE_TOO_MANY,
                    "Too many monitor connections for this project",
                ),
            }
        }
        Ok(None) => (CLOSE_UNAUTHORIZED, "Invalid or missing API key"),
        Err(()) => (CLOSE_UNAVAILABLE, "Temporarily unavailable; retry"),
    };
    actix_web::rt::spawn(close(session, refused.0, refused.1));
    Ok(response)
}

/// A dashboard socket: the session cookie of a same-origin page and the
/// `project_id` of the query; `(-session_id, context)` for a member.
async fn dashboard_member(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<(i64, std::sync::Arc<crate::auth::AuthContext>)>, ()> {
    use crate::dashboard::session::{ACCESS_COOKIE, cookie};
    let headers = req.headers();
    let (Some(token), Some(project_id)) = (
        cookie(headers, ACCESS_COOKIE),
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "project_id")
            .and_then(|(_, v)| v.parse::<i64>().ok()),
    ) else {
        return Ok(None);
    };
    // Cookies ride along on cross-site upgrades too (where SameSite does
    // not stop them): only the dashboard's own origin may use them.
    let host = headers.get("host").and_then(|h| h.to_str().ok());
    let origin = headers.get("origin").and_then(|o| o.to_str().ok());
    let same_origin = match (origin, host) {
        (Some(o), Some(h)) => o
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h)),
        _ => false,
    };
    if !same_origin {
        return Ok(None);
    }
    let Some(account) = state
        .accounts
        .authenticate(&state.pool, token)
        .await
        .map_err(drop)?
    else {
        return Ok(None);
    };
    let ctx = state
        .accounts
        .project_context(&state.pool, account.account_id, project_id)
        .await
        .map_err(drop)?;
    Ok(ctx.map(|c| (-account.session_id, c)))
}

async fn serve(
    state: &AppState,
    mut session: Session,
    mut stream: actix_ws::MessageStream,
    registration: crate::events::hub::Registration,
) {
    let sub = registration.subscriber.clone();
    let beat = Duration::from_secs(state.settings.monitor_heartbeat_secs);
    let mut ping = tokio::time::interval(beat);
    ping.tick().await;
    let mut last_seen = Instant::now();
    let mut budget = Budget::new(state.settings.monitor_messages_per_sec);
    let hello = reply(
        "connected",
        json!({ "channels": ["rooms", "sessions", "room:<name>"] }),
    );
    if !sub.push(text_frame(&hello)) {
        return;
    }
    loop {
        tokio::select! {
            incoming = stream.next() => {
                last_seen = Instant::now();
                let answer = match incoming {
                    Some(Ok(Message::Text(_) | Message::Binary(_))) if !budget.take() => {
                        match budget.warn() {
                            true => reply("error", json!({"message": "Too many messages; slow down"})),
                            false => continue,
                        }
                    }
                    Some(Ok(Message::Text(t))) => match transcript_request(&t) {
                        Some(room) => transcript_so_far(state, &sub, &room).await,
                        None => answer(&sub, &t),
                    },
                    Some(Ok(Message::Ping(b))) => { let _ = session.pong(&b).await; continue; }
                    Some(Ok(Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => reply("error", json!({"message": "Send JSON text messages"})),
                };
                // Queued behind the events already queued, so that nothing
                // of a channel arrives after "unsubscribed".
                if !sub.push(text_frame(&answer)) {
                    break;
                }
            }
            _ = sub.kick.notified() => {
                if sub.going_away.load(Ordering::Relaxed) {
                    close(session, 1001, "The server is shutting down").await;
                } else if sub.revoked.load(Ordering::Relaxed) {
                    let why = if sub.is_dashboard() {
                        "Signed out"
                    } else {
                        "The API key was revoked"
                    };
                    close(session, CLOSE_UNAUTHORIZED, why).await;
                } else {
                    close_slow(session).await;
                }
                return;
            }
            _ = ping.tick() => {
                if last_seen.elapsed() > beat * 3 {
                    close(session, 1001, "No pong received").await;
                    return;
                }
                if session.ping(b"").await.is_err() { break; }
            }
        }
    }
    if sub.lagged.load(Ordering::Relaxed) {
        close_slow(session).await;
        return;
    }
    // The close frame may wait behind unread data; never wait for ever.
    let _ = tokio::time::timeout(Duration::from_secs(5), session.close(None)).await;
    drop(registration);
}

/// What a socket may still send: a token bucket of `rate` messages a second
/// holding at most two seconds' worth.
struct Budget {
    tokens: f64,
    rate: f64,
    at: Instant,
    warned: Option<Instant>,
}

impl Budget {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate);
        Self {
            tokens: 2.0 * rate,
            rate,
            at: Instant::now(),
            warned: None,
        }
    }

    /// Takes one message's worth; false when the socket is over its rate.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(2.0 * self.rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether to tell the client (once a second at most).
    fn warn(&mut self) -> bool {
        let due = self
            .warned
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if due {
            self.warned = Some(Instant::now());
        }
        due
    }
}

/// The room of a `{"action":"transcript","room":…}` request.
fn transcript_request(text: &str) -> Option<String> {
    serde_json::from_str::<Command>(text)
        .ok()
        .filter(|c| c.action == "transcript")
        .and_then(|c| c.room)
}

/// The reply to `transcript`: the lines of the room's active session so far
/// (`transcript.snapshot`). Lines stored while it is read may also arrive
/// as `transcript.new`; clients drop repeats by `timestamp_ms` and content.
async fn transcript_so_far(state: &AppState, sub: &Subscriber, room: &str) -> String {
    let full = match sub.full_room(room) {
        Ok(f) => f,
        Err(why) => return reply("error", json!({"message": why})),
    };
    match crate::transcripts::service::so_far(state, sub.project_id(), &full).await {
        Ok(Some((session_id, lines))) => reply(
            "transcript.snapshot",
            json!({"room_name": full, "session_id": session_id, "transcripts": lines}),
        ),
        Ok(None) => reply(
            "error",
            json!({"message": format!("No active session in room {full}")}),
        ),
        Err(_) => reply(
            "error",
            json!({"message": "The transcript is unavailable; retry"}),
        ),
    }
}

/// The reply to a client's text message.
fn answer(sub: &Subscriber, text: &str) -> String {
    match serde_json::from_str::<Command>(text) {
        Err(e) => reply(
            "error",
            json!({"message": format!("Malformed message: {e}")}),
        ),
        Ok(Command {
            channel: None,
            action,
            ..
        }) if action != "transcript" => reply("error", json!({"message": "channel is required"})),
        Ok(c) => match (c.action.as_str(), c.channel.as_deref().unwrap_or_default()) {
            ("transcript", _) => reply("error", json!({"message": "transcript needs a room"})),
            ("subscribe", channel) => match sub.subscribe(channel) {
                Ok(_) => reply("subscribed", json!({"channel": c.channel})),
                Err(why) => reply("error", json!({"message": why})),
            },
            ("unsubscribe", channel) => match sub.unsubscribe(channel) {
                Ok(was) => reply(
                    "unsubscribed",
                    json!({"channel": c.channel, "was_subscribed": was}),
                ),
                Err(why) => reply("error", json!({"message": why})),
            },
            (other, _) => reply(
                "error",
                json!({"message": format!("Unknown action `{other}` (subscribe, unsubscribe, transcript)")}),
            ),
        },
    }
}

/// Closes with 4008. The close frame queues behind the data the client has not
/// read yet; a client that never reads is dropped after a few seconds.
async fn close_slow(session: Session) {
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        close(
            session,
            CLOSE_TOO_SLOW,
            "Consumer too slow; events were dropped",
        ),
    )
    .await;
}

/// Registers the route (outside `/api/v1`: the key comes in the query).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws/monitor", web::get().to(monitor));
}
