//! `/ws/monitor` (contract section 13): live events of the caller's project.
//!
//! `?api_key=pk_…`; a missing or invalid key closes the socket with 4001.
//! Clients send `{"action":"subscribe"|"unsubscribe","channel":"rooms"|"sessions"|"room:<name>"}`
//! and receive `{"type","data","timestamp"}`. A malformed message gets an
//! `error` message back. Pings every `monitor_heartbeat_secs`; a socket that
//! falls behind its queue is closed with 4008.

use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, Session};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
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
    channel: String,
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
        Some(key) => state.keys.lookup(&state.pool, &key).await.map_err(drop),
        None => Ok(None),
    };
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let ctx = match ctx {
            Ok(Some(ctx)) => ctx,
            Ok(None) => {
                close(session, CLOSE_UNAUTHORIZED, "Invalid or missing API key").await;
                return;
            }
            Err(()) => {
                close(session, CLOSE_UNAVAILABLE, "Temporarily unavailable; retry").await;
                return;
            }
        };
        let Ok((registration, rx)) = state.hub.register(ctx.project.id, &ctx.project.room_prefix)
        else {
            close(
                session,
                CLOSE_TOO_MANY,
                "Too many monitor connections for this project",
            )
            .await;
            return;
        };
        serve(&state, session, stream, registration, rx).await;
    });
    Ok(response)
}

async fn serve(
    state: &AppState,
    mut session: Session,
    mut stream: actix_ws::MessageStream,
    registration: crate::events::hub::Registration,
    mut rx: tokio::sync::mpsc::Receiver<bytestring::ByteString>,
) {
    let sub = registration.subscriber.clone();
    let beat = Duration::from_secs(state.settings.monitor_heartbeat_secs);
    let send_timeout = Duration::from_secs(5);
    let mut ping = tokio::time::interval(beat);
    ping.tick().await;
    let mut last_seen = Instant::now();
    let hello = reply(
        "connected",
        json!({ "channels": ["rooms", "sessions", "room:<name>"] }),
    );
    if session.text(hello).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = stream.next() => {
                last_seen = Instant::now();
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Ping(b))) => { let _ = session.pong(&b).await; continue; }
                    Some(Ok(Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {
                        let _ = session.text(reply("error", json!({"message": "Send JSON text messages"}))).await;
                        continue;
                    }
                };
                let answer = match serde_json::from_str::<Command>(&text) {
                    Err(e) => reply("error", json!({"message": format!("Malformed message: {e}")})),
                    Ok(c) => match c.action.as_str() {
                        "subscribe" => match sub.subscribe(&c.channel) {
                            Ok(_) => reply("subscribed", json!({"channel": c.channel})),
                            Err(why) => reply("error", json!({"message": why})),
                        },
                        "unsubscribe" => match sub.unsubscribe(&c.channel) {
                            Ok(was) => reply("unsubscribed", json!({"channel": c.channel, "was_subscribed": was})),
                            Err(why) => reply("error", json!({"message": why})),
                        },
                        other => reply("error", json!({"message": format!("Unknown action `{other}` (subscribe, unsubscribe)")})),
                    },
                };
                if session.text(answer).await.is_err() { break; }
            }
            out = rx.recv() => {
                let Some(text) = out else { break };
                // A socket whose client stopped reading blocks here once the
                // TCP buffers are full; the hub's kick (its queue overflowed)
                // or the send timeout ends it with 4008 instead of waiting.
                tokio::select! {
                    sent = tokio::time::timeout(send_timeout, session.text(text)) => match sent {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break,
                        Err(_) => {
                            sub.lagged.store(true, std::sync::atomic::Ordering::Relaxed);
                            close_slow(session).await;
                            return;
                        }
                    },
                    _ = sub.kick.notified() => {
                        close_slow(session).await;
                        return;
                    }
                }
            }
            _ = sub.kick.notified() => {
                close_slow(session).await;
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
    // The close frame may wait behind unread data; never wait for ever.
    let _ = tokio::time::timeout(Duration::from_secs(5), session.close(None)).await;
    drop(registration);
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
