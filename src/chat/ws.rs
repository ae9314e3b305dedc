//! `/ws/chat`: live chat for a signed-in account, across its projects.
//!
//! The first frame must be `{"type":"authenticate","token":"<access token>"}`
//! within `chat.auth_timeout_ms`; anything else, a bad token or silence
//! closes the socket with 4001. Then, as JSON text frames with a `type`:
//!
//! | client → server | server → client |
//! |---|---|
//! | `join_chat {chat_id}` | `joined {chat_id}` |
//! | `leave_chat {chat_id}` | `left {chat_id}` |
//! | `send_message {chat_id, content, client_id, session_id?}` | `message_ack {client_id, message}` (stored) |
//! | `typing {chat_id, state: start\|stop}` | (nothing; others get `typing`) |
//! | | `authenticated {account_id}`, `new_message {message}`, `typing {chat_id, account_id, state}`, `presence {account_id, status}`, `chat_list_update {chat, change}`, `incoming_call {call_id, chat_id, from_account_id, call}`, `call_ended {call_id, chat_id, duration_seconds, reason, call}` |
//! | | `error {code, message, details?, client_id?, chat_id?}` |
//!
//! `new_message` and `typing` come for the chats the socket joined; the
//! rest for all the account's chats. Close codes: 4001 unauthenticated,
//! 4008 too slow (the socket's queue overflowed), 4029 too many sockets for
//! the account, 1011 the server could not check the token (retry).

use super::hub::{ChatSocket, Queue, Registration};
use super::service::{self, Outgoing};
use super::{events::Origin, membership, store};
use crate::error::ApiError;
use crate::events::hub::text_frame;
use crate::routes::ws_body::QueueBody;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Close code: not authenticated (bad token, another frame first, or none in time).
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code: no such call of the account (`/ws/call/{id}`).
pub const CLOSE_NOT_FOUND: u16 = 4004;
/// Close code: the consumer fell behind.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code: too many sockets for the account on this node.
pub const CLOSE_TOO_MANY: u16 = 4029;
/// Close code: the token could not be checked (Postgres down); retry.
pub const CLOSE_UNAVAILABLE: u16 = 1011;

/// Closes a socket with a code and reason (never waiting for ever).
pub async fn close(session: Session, code: u16, why: &str) {
    let reason = CloseReason {
        code: CloseCode::Other(code),
        description: Some(why.to_owned()),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), session.close(Some(reason))).await;
}

/// An `error` frame for an API error (internal ones are logged here).
pub fn error_frame(e: &ApiError, extra: Value) -> Value {
    if let ApiError::Internal(cause) = e {
        tracing::error!(error = ?cause, "chat socket: internal error");
    }
    let mut v = e.body();
    v["type"] = json!("error");
    v["message"] = v["error"].take();
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.remove("error");
        obj.extend(extra);
    }
    v
}

#[derive(Debug, Deserialize)]
struct Authenticate {
    #[serde(rename = "type")]
    kind: String,
    token: String,
}

/// Waits for the authenticate frame: the account, or the socket is closed
/// (4001, or 1011 when the token could not be checked).
pub async fn authenticate(
    state: &AppState,
    session: &mut Session,
    stream: &mut MessageStream,
) -> Result<i64, (u16, &'static str)> {
    let timeout = Duration::from_millis(state.settings.chat.auth_timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let text = match next {
            Err(_) => return Err((CLOSE_UNAUTHORIZED, "Authentication timed out")),
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Ping(b)))) => {
                let _ = session.pong(&b).await;
                continue;
            }
            Ok(Some(Ok(Message::Pong(_)))) => continue,
            Ok(_) => return Err((CLOSE_UNAUTHORIZED, "Authenticate first")),
        };
        let frame = serde_json::from_str::<Authenticate>(&text)
            .ok()
            .filter(|a| a.kind == "authenticate");
        let Some(frame) = frame else {
            return Err((CLOSE_UNAUTHORIZED, "Authenticate first"));
        };
        return match state.accounts.authenticate(&state.pool, &frame.token).await {
            Ok(Some(a)) => Ok(a.account_id),
            Ok(None) => Err((CLOSE_UNAUTHORIZED, "Invalid or expired access token")),
            Err(_) => Err((CLOSE_UNAVAILABLE, "Temporarily unavailable; retry")),
        };
    }
}

/// The upgrade: a queue for the socket now, the rest in its task.
pub async fn chat_socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let state = state.into_inner();
    let Queue { tx, rx, lagged } = state.chat.queue();
    let max_frame = state.settings.chat.max_message_bytes * 6 + 1024;
    let stream = stream.max_frame_size(max_frame.max(16 * 1024));
    let body_flag = lagged.clone();
    actix_web::rt::spawn(async move {
        run(&state, session, stream, tx, lagged).await;
    });
    Ok(response
        .map_body(|_, control| QueueBody::new(control, rx, body_flag))
        .map_into_boxed_body())
}

async fn run(
    state: &AppState,
    mut session: Session,
    mut stream: MessageStream,
    tx: tokio::sync::mpsc::Sender<actix_web::web::Bytes>,
    lagged: Arc<std::sync::atomic::AtomicBool>,
) {
    let account = match authenticate(state, &mut session, &mut stream).await {
        Ok(a) => a,
        Err((code, why)) => return close(session, code, why).await,
    };
    let socket = Arc::new(state.chat.socket(account, None, tx, lagged));
    let Ok(registration) = state.chat.register(socket.clone()) else {
        return close(
            session,
            CLOSE_TOO_MANY,
            "Too many chat sockets for this account",
        )
        .await;
    };
    socket.push_json(&json!({"type": "authenticated", "account_id": account}));
    if let Ok(mut conn) = state.pool.get().await
        && let Ok(online) = membership::online_contacts(&mut conn, account, None).await
    {
        for who in online {
            socket.push_json(&json!({"type": "presence", "account_id": who, "status": "online"}));
        }
    }
    serve(state, session, stream, registration).await;
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Frame {
    Authenticate {},
    JoinChat {
        chat_id: i64,
    },
    LeaveChat {
        chat_id: i64,
    },
    SendMessage {
        chat_id: i64,
        content: String,
        client_id: Option<String>,
        session_id: Option<i64>,
    },
    Typing {
        chat_id: i64,
        state: TypingState,
    },
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum TypingState {
    Start,
    Stop,
}

/// Serves an authenticated socket until it closes; pings every
/// `chat.heartbeat_secs`, a socket silent for three is closed.
pub async fn serve(
    state: &AppState,
    mut session: Session,
    mut stream: MessageStream,
    registration: Registration,
) {
    let socket = registration.socket.clone();
    let beat = Duration::from_secs(state.settings.chat.heartbeat_secs);
    let mut ping = tokio::time::interval(beat);
    ping.tick().await;
    let mut last_seen = Instant::now();
    let mut typing: HashMap<i64, Instant> = HashMap::new();
    loop {
        tokio::select! {
            incoming = stream.next() => {
                last_seen = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(t))) => {
                        if socket.call_id.is_none() {
                            handle(state, &socket, &t, &mut typing).await;
                        } else {
                            socket.push_json(&json!({"type": "error", "code": "INVALID_REQUEST",
                                "message": "A call socket only listens"}));
                        }
                    }
                    Some(Ok(Message::Ping(b))) => { let _ = session.pong(&b).await; }
                    Some(Ok(Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {
                        socket.push_json(&json!({"type": "error", "code": "INVALID_REQUEST",
                            "message": "Send JSON text frames"}));
                    }
                }
            }
            _ = socket.kick.notified() => break,
            _ = ping.tick() => {
                if last_seen.elapsed() > beat * 3 {
                    return close(session, 1001, "No pong received").await;
                }
                if session.ping(b"").await.is_err() { break; }
            }
        }
    }
    if crate::events::hub::Lagging::lagged(&*socket) {
        close(
            session,
            CLOSE_TOO_SLOW,
            "Consumer too slow; frames were dropped",
        )
        .await;
    } else {
        close(session, 1000, "Bye").await;
    }
    drop(registration);
}

/// Answers one client frame (replies go through the socket's queue, after
/// what is queued already).
async fn handle(
    state: &AppState,
    socket: &Arc<ChatSocket>,
    text: &str,
    typing: &mut HashMap<i64, Instant>,
) {
    let frame = match serde_json::from_str::<Frame>(text) {
        Ok(f) => f,
        Err(e) => {
            let err = ApiError::bad_request(format!(
                "Malformed frame: {e} (join_chat, leave_chat, send_message, typing)"
            ));
            socket.push_json(&error_frame(&err, json!({})));
            return;
        }
    };
    let reply = match frame {
        Frame::Authenticate {} => Err((ApiError::bad_request("Already authenticated"), json!({}))),
        Frame::JoinChat { chat_id } => join(state, socket, chat_id).await,
        Frame::LeaveChat { chat_id } => {
            socket.leave(chat_id);
            Ok(json!({"type": "left", "chat_id": chat_id}))
        }
        Frame::SendMessage {
            chat_id,
            content,
            client_id,
            session_id,
        } => {
            let out = Outgoing {
                account_id: socket.account_id,
                project_id: None,
                chat_id,
                content: &content,
                client_id: client_id.as_deref(),
                session_id,
                origin: Some(Origin {
                    node: state.chat.node_id.clone(),
                    socket: socket.id,
                }),
            };
            match service::send(state, &out).await {
                Ok((message, _)) => {
                    Ok(json!({"type": "message_ack", "client_id": client_id, "message": message}))
                }
                Err(e) => Err((e, json!({"client_id": client_id, "chat_id": chat_id}))),
            }
        }
        Frame::Typing { chat_id, state: s } => {
            if !socket.joined(chat_id) {
                Err((
                    ApiError::NotFound("Join the chat first".into()),
                    json!({"chat_id": chat_id}),
                ))
            } else {
                let start = s == TypingState::Start;
                let every = Duration::from_millis(state.settings.chat.typing_interval_ms);
                let recent = typing.get(&chat_id).is_some_and(|t| t.elapsed() < every);
                if start && recent {
                    return;
                }
                if start {
                    typing.insert(chat_id, Instant::now());
                } else {
                    typing.remove(&chat_id);
                }
                match service::typing(state, socket.account_id, chat_id, start).await {
                    Ok(()) => return,
                    Err(e) => Err((e, json!({"chat_id": chat_id}))),
                }
            }
        }
    };
    let frame = match reply {
        Ok(v) => v,
        Err((e, extra)) => error_frame(&e, extra),
    };
    socket.push(text_frame(&frame.to_string()));
}

async fn join(
    state: &AppState,
    socket: &ChatSocket,
    chat_id: i64,
) -> Result<Value, (ApiError, Value)> {
    let ctx = json!({"chat_id": chat_id});
    let access = match state.pool.get().await {
        Ok(mut conn) => store::access(&mut conn, chat_id, socket.account_id, None)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(ApiError::from(e)),
    };
    match access {
        Ok(Some(_)) => {}
        Ok(None) => return Err((service::no_chat(), ctx)),
        Err(e) => return Err((e, ctx)),
    }
    let max = state.settings.chat.max_chats_per_socket;
    if socket.join(chat_id, max).is_err() {
        let err = ApiError::BadRequest {
            message: format!("A socket may join at most {max} chats; leave one first"),
            details: Some(json!({"limit": max})),
        };
        return Err((err, ctx));
    }
    Ok(json!({"type": "joined", "chat_id": chat_id}))
}
