//! `livekit.AgentDispatchService` (contract §4.4).
//!
//! The real server forwards these to the room's node, which answers
//! `requested room does not exist` for a room it does not host and
//! `dispatch ID not found` for an unknown dispatch; CreateDispatch creates a
//! missing room first (room auto-create). `state.created_at` is in unix
//! nanoseconds, as the server sets it.

use super::{Call, Handler};
use crate::embedded::livekit::auth::Grant;
use crate::embedded::livekit::state::{new_id, now_nanos};
use crate::embedded::livekit::twirp::TwirpError;
use actix_web::HttpResponse;
use livekit_protocol as proto;

type Reply = Result<HttpResponse, TwirpError>;

/// The handler of an AgentDispatchService method.
pub fn handler(method: &str) -> Option<Handler> {
    Some(match method {
        "CreateDispatch" => create_dispatch,
        "ListDispatch" => list_dispatch,
        "DeleteDispatch" => delete_dispatch,
        _ => return None,
    })
}

fn create_dispatch(call: &Call<'_>) -> Reply {
    let req: proto::CreateAgentDispatchRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let dispatch = proto::AgentDispatch {
        id: new_id("AD_"),
        agent_name: req.agent_name.clone(),
        room: req.room.clone(),
        metadata: req.metadata.clone(),
        state: Some(proto::AgentDispatchState {
            created_at: now_nanos(),
            ..Default::default()
        }),
        restart_policy: req.restart_policy,
        deployment: req.deployment.clone(),
        attributes: req.attributes.clone(),
    };
    let room = proto::CreateRoomRequest {
        name: req.room.clone(),
        ..Default::default()
    };
    call.shared.update(|s, ev| {
        s.get_or_create_room(&room, ev)
            .dispatches
            .push(dispatch.clone());
    });
    call.reply(&dispatch)
}

/// The room's dispatches, or the one with `dispatch_id` when given.
fn list_dispatch(call: &Call<'_>) -> Reply {
    let req: proto::ListAgentDispatchRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let agent_dispatches = call.shared.read(|s| {
        let entry = s.room(&req.room).ok_or_else(TwirpError::room_not_found)?;
        Ok::<_, TwirpError>(
            entry
                .dispatches
                .iter()
                .filter(|d| req.dispatch_id.is_empty() || d.id == req.dispatch_id)
                .cloned()
                .collect(),
        )
    })?;
    call.reply(&proto::ListAgentDispatchResponse { agent_dispatches })
}

/// Removes a dispatch and answers with it.
fn delete_dispatch(call: &Call<'_>) -> Reply {
    let req: proto::DeleteAgentDispatchRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let dispatch = call.shared.update(|s, _| {
        let entry = s
            .room_mut(&req.room)
            .ok_or_else(TwirpError::room_not_found)?;
        let pos = entry
            .dispatches
            .iter()
            .position(|d| d.id == req.dispatch_id)
            .ok_or_else(|| TwirpError::not_found("dispatch ID not found"))?;
        Ok::<_, TwirpError>(entry.dispatches.remove(pos))
    })?;
    call.reply(&dispatch)
}
