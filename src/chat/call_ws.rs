//! `/ws/call/{call_id}`: the state of one call, for members of its chat.
//!
//! Authenticated as `/ws/chat` is (first frame `authenticate`, 4001
//! otherwise). A call that does not exist, or is in a chat the account is
//! not in, closes the socket with 4004. Then the server sends
//! `authenticated`, `call_state {change: "connected", call}` (the call as it
//! is, with its participants) and a `call_state {change, account_id, call}`
//! for every change: `ringing`, `participant_joined`, `participant_left`,
//! `ended`. Every frame carries the call's `version`; a report older than
//! what the socket was sent (the snapshot included) is not sent. Changes
//! already queued when the snapshot is read may arrive just before it. The
//! client only listens (clients talk to LiveKit directly).

use super::calls::call_out;
use super::calls_store;
use super::hub::Queue;
use super::ws::{CLOSE_NOT_FOUND, CLOSE_TOO_MANY, CLOSE_UNAVAILABLE, authenticate, close, serve};
use crate::events::hub::text_frame;
use crate::routes::ws_body::QueueBody;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{MessageStream, Session};
use serde_json::json;
use std::sync::Arc;

/// The upgrade: a queue for the socket now, the rest in its task.
pub async fn call_socket(
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let state = state.into_inner();
    // A malformed id is a call nobody has: closed with 4004 after the
    // authentication, like any other unknown call.
    let call_id = path.parse::<i64>().ok();
    let Queue { tx, rx, lagged } = state.chat.queue();
    let body_flag = lagged.clone();
    actix_web::rt::spawn(async move {
        run(&state, session, stream, call_id, tx, lagged).await;
    });
    Ok(response
        .map_body(|_, control| QueueBody::new(control, rx, body_flag))
        .map_into_boxed_body())
}

async fn run(
    state: &AppState,
    mut session: Session,
    mut stream: MessageStream,
    call_id: Option<i64>,
    tx: tokio::sync::mpsc::Sender<actix_web::web::Bytes>,
    lagged: Arc<std::sync::atomic::AtomicBool>,
) {
    let account = match authenticate(state, &mut session, &mut stream).await {
        Ok(a) => a,
        Err((code, why)) => return close(session, code, why).await,
    };
    let Ok(mut conn) = state.pool.get().await else {
        return close(session, CLOSE_UNAVAILABLE, "Temporarily unavailable; retry").await;
    };
    let call = match call_id {
        Some(id) => calls_store::get(&mut conn, id).await,
        None => Ok(None),
    };
    let call = match call {
        Ok(Some(call)) => call,
        Ok(None) => return close(session, CLOSE_NOT_FOUND, "No such call").await,
        Err(_) => {
            return close(session, CLOSE_UNAVAILABLE, "Temporarily unavailable; retry").await;
        }
    };
    match super::store::access(&mut conn, call.chat_id, account, None).await {
        Ok(Some(_)) => {}
        Ok(None) => return close(session, CLOSE_NOT_FOUND, "No such call").await,
        Err(_) => {
            return close(session, CLOSE_UNAVAILABLE, "Temporarily unavailable; retry").await;
        }
    }
    let socket = Arc::new(state.chat.socket(account, Some(call.id), tx, lagged));
    let Ok(registration) = state.chat.register(socket.clone()) else {
        return close(
            session,
            CLOSE_TOO_MANY,
            "Too many call sockets for this account",
        )
        .await;
    };
    socket.push_json(&json!({"type": "authenticated", "account_id": account}));
    // Read after registering: later changes come after this snapshot.
    let snapshot = match calls_store::get(&mut conn, call.id).await {
        Ok(Some(now)) => call_out(&mut conn, &now).await.ok(),
        _ => None,
    };
    drop(conn);
    let Some(snapshot) = snapshot else {
        return close(session, CLOSE_UNAVAILABLE, "Temporarily unavailable; retry").await;
    };
    let frame =
        json!({"type": "call_state", "change": "connected", "account_id": null, "call": snapshot});
    socket.push_call_state(snapshot.version, text_frame(&frame.to_string()));
    serve(state, session, stream, registration).await;
}
