//! `livekit.RoomService` (contract §4.1).
//!
//! Not-found choices where the real server's answer was not traced
//! (contract §7): MutePublishedTrack and SendData on an unknown room answer
//! `not_found` / `requested room does not exist`, as the room manager that
//! serves them does for a room it does not host; an unknown track is
//! `not_found` / `track is not found` (never a reply without `track`, which
//! would panic the Rust client).

use super::{Call, Handler};
use crate::embedded::livekit::auth::Grant;
use crate::embedded::livekit::state::SentData;
use crate::embedded::livekit::twirp::TwirpError;
use actix_web::HttpResponse;
use livekit_protocol as proto;
use livekit_protocol::DisconnectReason;

type Reply = Result<HttpResponse, TwirpError>;

/// The handler of a RoomService method.
pub fn handler(method: &str) -> Option<Handler> {
    Some(match method {
        "CreateRoom" => create_room,
        "ListRooms" => list_rooms,
        "DeleteRoom" => delete_room,
        "UpdateRoomMetadata" => update_room_metadata,
        "ListParticipants" => list_participants,
        "GetParticipant" => get_participant,
        "RemoveParticipant" => remove_participant,
        "MutePublishedTrack" => mute_published_track,
        "UpdateParticipant" => update_participant,
        "SendData" => send_data,
        "UpdateSubscriptions" => update_subscriptions,
        _ => return None,
    })
}

/// Get-or-create: an existing room comes back unchanged; a new one gets the
/// default timeouts and posts `room_started`.
fn create_room(call: &Call<'_>) -> Reply {
    let req: proto::CreateRoomRequest = call.decode()?;
    call.require(Grant::Create)?;
    let room = call
        .shared
        .update(|s, ev| s.get_or_create_room(&req, ev).proto());
    call.reply(&room)
}

/// All rooms, or those named (unknown names are simply absent).
fn list_rooms(call: &Call<'_>) -> Reply {
    let req: proto::ListRoomsRequest = call.decode()?;
    call.require(Grant::List)?;
    let rooms = call.shared.read(|s| {
        s.rooms()
            .map(|r| r.proto())
            .filter(|r| req.names.is_empty() || req.names.contains(&r.name))
            .collect()
    });
    call.reply(&proto::ListRoomsResponse { rooms })
}

/// Disconnects everyone (`participant_left`), then `room_finished`.
fn delete_room(call: &Call<'_>) -> Reply {
    let req: proto::DeleteRoomRequest = call.decode()?;
    call.require(Grant::Create)?;
    call.shared.update(|s, ev| s.delete_room(&req.room, ev))?;
    call.reply(&proto::DeleteRoomResponse {})
}

fn update_room_metadata(call: &Call<'_>) -> Reply {
    let req: proto::UpdateRoomMetadataRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let room = call.shared.update(|s, _| {
        let entry = s
            .room_mut(&req.room)
            .ok_or_else(TwirpError::room_not_found)?;
        entry.set_metadata(req.metadata.clone());
        Ok::<_, TwirpError>(entry.proto())
    })?;
    call.reply(&room)
}

/// An unknown room lists no one (LiveKit's local store does the same).
fn list_participants(call: &Call<'_>) -> Reply {
    let req: proto::ListParticipantsRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let participants = call.shared.read(|s| {
        s.room(&req.room)
            .map(|r| r.participants.clone())
            .unwrap_or_default()
    });
    call.reply(&proto::ListParticipantsResponse { participants })
}

fn get_participant(call: &Call<'_>) -> Reply {
    let req: proto::RoomParticipantIdentity = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let p = call
        .shared
        .read(|s| s.room(&req.room)?.participant(&req.identity).cloned())
        .ok_or_else(TwirpError::participant_not_found)?;
    call.reply(&p)
}

fn remove_participant(call: &Call<'_>) -> Reply {
    let req: proto::RoomParticipantIdentity = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    call.shared
        .update(|s, ev| {
            s.remove_participant(
                &req.room,
                &req.identity,
                DisconnectReason::ParticipantRemoved,
                ev,
            )
        })
        .ok_or_else(|| TwirpError::not_found("participant not found"))?;
    call.reply(&proto::RemoveParticipantResponse {})
}

/// Sets `muted` on one track and always answers with the track.
fn mute_published_track(call: &Call<'_>) -> Reply {
    let req: proto::MuteRoomTrackRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let track = call.shared.update(|s, _| {
        let entry = s
            .room_mut(&req.room)
            .ok_or_else(TwirpError::room_not_found)?;
        let p = entry
            .participant_mut(&req.identity)
            .ok_or_else(TwirpError::participant_not_found)?;
        let track = p
            .tracks
            .iter_mut()
            .find(|t| t.sid == req.track_sid)
            .ok_or_else(|| TwirpError::not_found("track is not found"))?;
        track.muted = req.muted;
        let track = track.clone();
        p.version += 1;
        Ok::<_, TwirpError>(track)
    })?;
    call.reply(&proto::MuteRoomTrackResponse { track: Some(track) })
}

/// An empty name or metadata means "no change"; attributes are merged, an
/// empty value removes the key; a permission replaces the current one.
fn update_participant(call: &Call<'_>) -> Reply {
    let req: proto::UpdateParticipantRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let p = call.shared.update(|s, _| {
        let p = s
            .room_mut(&req.room)
            .and_then(|r| r.participant_mut(&req.identity))
            .ok_or_else(TwirpError::participant_not_found)?;
        if !req.name.is_empty() {
            p.name = req.name.clone();
        }
        if !req.metadata.is_empty() {
            p.metadata = req.metadata.clone();
        }
        for (key, value) in &req.attributes {
            if value.is_empty() {
                p.attributes.remove(key);
            } else {
                p.attributes.insert(key.clone(), value.clone());
            }
        }
        if let Some(permission) = &req.permission {
            p.permission = Some(permission.clone());
        }
        p.version += 1;
        let p = p.clone();
        // One that may no longer subscribe loses its subscriptions.
        if req.permission.as_ref().is_some_and(|x| !x.can_subscribe)
            && let Some(room) = s.room_mut(&req.room)
        {
            room.drop_subscriptions(&req.identity);
        }
        Ok::<_, TwirpError>(p)
    })?;
    call.reply(&p)
}

/// Records the packet with the identities it reaches: the named ones (by
/// identity or by the deprecated sid list) present in the room, or everyone
/// when none is named.
#[allow(deprecated)] // `destination_sids` is still honoured by LiveKit
fn send_data(call: &Call<'_>) -> Reply {
    let req: proto::SendDataRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    if !req.nonce.is_empty() && req.nonce.len() != 16 {
        return Err(TwirpError::invalid_argument("nonce must be 16 bytes"));
    }
    call.shared.update(|s, _| {
        let entry = s.room(&req.room).ok_or_else(TwirpError::room_not_found)?;
        let broadcast = req.destination_identities.is_empty() && req.destination_sids.is_empty();
        let recipients = entry
            .participants
            .iter()
            .filter(|p| {
                broadcast
                    || req.destination_identities.contains(&p.identity)
                    || req.destination_sids.contains(&p.sid)
            })
            .map(|p| p.identity.clone())
            .collect();
        s.record_data(SentData {
            room: req.room.clone(),
            data: req.data.clone(),
            topic: req.topic.clone(),
            destination_identities: req.destination_identities.clone(),
            kind: req.kind,
            recipients,
        });
        Ok::<_, TwirpError>(())
    })?;
    call.reply(&proto::SendDataResponse {})
}

/// Subscribes or unsubscribes a participant to tracks (by sid, and those of
/// `participant_tracks`), within the publishers' subscription permissions
/// (`media`): a track the participant may not receive waits for permission.
fn update_subscriptions(call: &Call<'_>) -> Reply {
    let req: proto::UpdateSubscriptionsRequest = call.decode()?;
    call.require(Grant::Admin(&req.room))?;
    let mut tracks = req.track_sids.clone();
    for pt in &req.participant_tracks {
        tracks.extend(pt.track_sids.iter().cloned());
    }
    call.shared.update(|s, _| {
        s.room_mut(&req.room)
            .ok_or_else(TwirpError::room_not_found)?
            .set_subscribed(&req.identity, &tracks, req.subscribe)
    })?;
    call.reply(&proto::UpdateSubscriptionsResponse {})
}
