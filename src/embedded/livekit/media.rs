//! Who hears whom: subscriptions, per-track subscription permissions, hidden
//! participants and client-side actions (joining with a token, publishing,
//! asking to subscribe), modelled after LiveKit's rules:
//!
//! - a participant joins with a token: `video.roomJoin` for that room, the
//!   identity in `sub`; `canPublish`/`canSubscribe` default to true,
//!   `canPublishSources` limits what may be published, `hidden` keeps it out
//!   of the other participants' view (the server API still lists it)
//! - auto-subscribe: a participant that may subscribe is subscribed to every
//!   track it is allowed to receive when it joins, and to every track
//!   published later (LiveKit clients' default)
//! - a publisher's subscription permission (set by its client, LiveKit's
//!   `SubscriptionPermission`) decides who may receive its tracks; nobody
//!   (not the server API, not a client) can subscribe past it: such a
//!   subscription waits for the permission (LiveKit answers the request and
//!   sends no media), revoking it puts the subscribers no longer allowed
//!   back to waiting, granting it subscribes those waiting
//! - `UpdateSubscriptions` (server API) and a client's own request subscribe
//!   or unsubscribe within those rules (an unsubscribe also ends a wait);
//!   as in LiveKit, either may undo the other; `UpdateParticipant` with
//!   `can_subscribe: false` drops every subscription
//! - a muted track is still subscribed but carries no sound: [`hears`] lists
//!   only unmuted tracks
//!
//! Subscriptions are kept by the subscriber's sid (a participant that joins
//! again starts afresh) and only tracks still published count.

use super::state::{Events, RoomEntry, new_id};
use super::twirp::TwirpError;
use super::webhooks;
use livekit_api::access_token::Claims;
use livekit_protocol::{
    ParticipantInfo, ParticipantPermission, SubscriptionPermission, TrackInfo, TrackPermission,
    TrackSource, TrackType,
};
use std::collections::{BTreeMap, BTreeSet};

/// Subscriptions and subscription permissions of a room.
#[derive(Debug, Default)]
pub struct Media {
    /// Subscriber sid → subscribed track sids.
    subscribed: BTreeMap<String, BTreeSet<String>>,
    /// Publisher sid → the permission its client set (none: everyone).
    permissions: BTreeMap<String, SubscriptionPermission>,
    /// Subscriber sid → tracks it wants but may not receive (yet).
    waiting: BTreeMap<String, BTreeSet<String>>,
}

impl Media {
    /// `sub` wants `track`: subscribed when `ok`, else waiting for permission.
    fn want(&mut self, sub: &str, track: &str, ok: bool) {
        let (to, from) = if ok {
            (&mut self.subscribed, &mut self.waiting)
        } else {
            (&mut self.waiting, &mut self.subscribed)
        };
        to.entry(sub.to_owned())
            .or_default()
            .insert(track.to_owned());
        if let Some(set) = from.get_mut(sub) {
            set.remove(track);
        }
    }
}

fn permission(p: &ParticipantInfo) -> ParticipantPermission {
    p.permission.clone().unwrap_or(ParticipantPermission {
        can_subscribe: true,
        can_publish: true,
        can_publish_data: true,
        ..Default::default()
    })
}

/// Whether `sub` may receive `track` of `publisher`.
fn allowed(media: &Media, sub: &ParticipantInfo, publisher: &ParticipantInfo, track: &str) -> bool {
    if sub.sid == publisher.sid || !permission(sub).can_subscribe {
        return false;
    }
    match media.permissions.get(&publisher.sid) {
        None => true,
        Some(p) if p.all_participants => true,
        Some(p) => p.track_permissions.iter().any(|t: &TrackPermission| {
            (t.participant_identity == sub.identity || t.participant_sid == sub.sid)
                && (t.all_tracks || t.track_sids.iter().any(|s| s == track))
        }),
    }
}

impl RoomEntry {
    /// Auto-subscribes a participant that just joined to what it may receive,
    /// and everyone else to the tracks it joined with.
    pub fn auto_subscribe_joined(&mut self, identity: &str) {
        let Some(joined) = self.participant(identity).cloned() else {
            return;
        };
        let mut adds: Vec<(String, String, bool)> = Vec::new();
        for other in &self.participants {
            if other.sid == joined.sid {
                continue;
            }
            if permission(&joined).can_subscribe {
                for t in &other.tracks {
                    let ok = allowed(&self.media, &joined, other, &t.sid);
                    adds.push((joined.sid.clone(), t.sid.clone(), ok));
                }
            }
            if permission(other).can_subscribe {
                for t in &joined.tracks {
                    let ok = allowed(&self.media, other, &joined, &t.sid);
                    adds.push((other.sid.clone(), t.sid.clone(), ok));
                }
            }
        }
        for (sub, track, ok) in adds {
            self.media.want(&sub, &track, ok);
        }
    }

    /// Subscribes (or unsubscribes) `identity` to tracks, within the rules:
    /// a track it may not receive is waited for. True when every track asked
    /// for is subscribed now.
    pub fn set_subscribed(
        &mut self,
        identity: &str,
        track_sids: &[String],
        subscribe: bool,
    ) -> Result<bool, TwirpError> {
        let mut all = true;
        let sub = self
            .participant(identity)
            .cloned()
            .ok_or_else(TwirpError::participant_not_found)?;
        for sid in track_sids {
            if !subscribe {
                for map in [&mut self.media.subscribed, &mut self.media.waiting] {
                    if let Some(set) = map.get_mut(&sub.sid) {
                        set.remove(sid);
                    }
                }
                continue;
            }
            let publisher = self
                .participants
                .iter()
                .find(|p| p.tracks.iter().any(|t| &t.sid == sid))
                .ok_or_else(|| TwirpError::not_found("track is not found"))?;
            if !permission(&sub).can_subscribe {
                return Err(TwirpError::new(
                    "permission_denied",
                    "participant is not allowed to subscribe",
                ));
            }
            let ok = allowed(&self.media, &sub, publisher, sid);
            all &= ok;
            self.media.want(&sub.sid, sid, ok);
        }
        Ok(all)
    }

    /// Drops every subscription of `identity` (it may no longer subscribe).
    pub fn drop_subscriptions(&mut self, identity: &str) {
        if let Some(p) = self.participant(identity) {
            let sid = p.sid.clone();
            self.media.subscribed.remove(&sid);
            self.media.waiting.remove(&sid);
        }
    }

    /// The publisher's client sets who may receive its tracks; subscribers
    /// no longer allowed wait again, those waiting and now allowed are
    /// subscribed.
    pub fn set_subscription_permission(
        &mut self,
        publisher: &str,
        perm: SubscriptionPermission,
    ) -> Result<(), TwirpError> {
        let publisher = self
            .participant(publisher)
            .cloned()
            .ok_or_else(TwirpError::participant_not_found)?;
        self.media.permissions.insert(publisher.sid.clone(), perm);
        let tracks: Vec<String> = publisher.tracks.iter().map(|t| t.sid.clone()).collect();
        let mut moves = Vec::new();
        for sub in &self.participants {
            for t in &tracks {
                let has = |m: &BTreeMap<String, BTreeSet<String>>| {
                    m.get(&sub.sid).is_some_and(|s| s.contains(t))
                };
                if has(&self.media.subscribed) || has(&self.media.waiting) {
                    let ok = allowed(&self.media, sub, &publisher, t);
                    moves.push((sub.sid.clone(), t.clone(), ok));
                }
            }
        }
        for (sub, t, ok) in moves {
            self.media.want(&sub, &t, ok);
        }
        Ok(())
    }

    /// What `identity` hears: (publisher identity, track sid) of its
    /// subscribed, published, unmuted audio tracks.
    pub fn hears(&self, identity: &str) -> Vec<(String, String)> {
        let Some(me) = self.participant(identity) else {
            return Vec::new();
        };
        let Some(set) = self.media.subscribed.get(&me.sid) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for p in &self.participants {
            for t in &p.tracks {
                if set.contains(&t.sid) && !t.muted && t.r#type == TrackType::Audio as i32 {
                    out.push((p.identity.clone(), t.sid.clone()));
                }
            }
        }
        out
    }

    /// The participants `viewer` sees: all but the hidden ones (itself aside).
    pub fn visible_to(&self, viewer: &str) -> Vec<ParticipantInfo> {
        self.participants
            .iter()
            .filter(|p| p.identity == viewer || !permission(p).hidden)
            .cloned()
            .collect()
    }

    /// A client publishes a microphone track: refused without `canPublish`
    /// (or with `canPublishSources` not naming the microphone);
    /// `track_published`, then those allowed are subscribed.
    pub fn publish_microphone(
        &mut self,
        identity: &str,
        ev: &mut Events,
    ) -> Result<TrackInfo, TwirpError> {
        let room = self.proto();
        let p = self
            .participant_mut(identity)
            .ok_or_else(TwirpError::participant_not_found)?;
        let perm = permission(p);
        let source_ok = perm.can_publish_sources.is_empty()
            || perm
                .can_publish_sources
                .contains(&(TrackSource::Microphone as i32));
        if !perm.can_publish || !source_ok {
            return Err(TwirpError::new(
                "permission_denied",
                "participant is not allowed to publish",
            ));
        }
        let track = TrackInfo {
            sid: new_id("TR_"),
            r#type: TrackType::Audio as i32,
            name: "microphone".to_owned(),
            source: TrackSource::Microphone as i32,
            mime_type: "audio/opus".to_owned(),
            ..Default::default()
        };
        p.tracks.push(track.clone());
        p.is_publisher = true;
        p.version += 1;
        let publisher = p.clone();
        ev.push(webhooks::track_event(
            "track_published",
            &room,
            &publisher,
            &track,
        ));
        let subs: Vec<(String, bool)> = self
            .participants
            .iter()
            .filter(|s| s.sid != publisher.sid && permission(s).can_subscribe)
            .map(|s| {
                (
                    s.sid.clone(),
                    allowed(&self.media, s, &publisher, &track.sid),
                )
            })
            .collect();
        for (s, ok) in subs {
            self.media.want(&s, &track.sid, ok);
        }
        Ok(track)
    }
}

/// The `ParticipantInfo` of a client joining with a verified token's claims
/// (its grants become its permission); `None` without `roomJoin` or identity.
pub fn info_from_claims(claims: &Claims, room: &str) -> Result<ParticipantInfo, String> {
    let v = &claims.video;
    if !v.room_join || v.room != room {
        return Err(format!("the token does not allow joining room {room:?}"));
    }
    if claims.sub.is_empty() {
        return Err("the token has no identity".into());
    }
    let sources = v
        .can_publish_sources
        .iter()
        .filter_map(|s| match s.as_str() {
            "camera" => Some(TrackSource::Camera as i32),
            "microphone" => Some(TrackSource::Microphone as i32),
            "screen_share" => Some(TrackSource::ScreenShare as i32),
            "screen_share_audio" => Some(TrackSource::ScreenShareAudio as i32),
            _ => None,
        })
        .collect();
    let kind = match claims.kind.as_str() {
        "agent" => livekit_protocol::participant_info::Kind::Agent,
        "sip" => livekit_protocol::participant_info::Kind::Sip,
        _ => livekit_protocol::participant_info::Kind::Standard,
    };
    let ms = super::state::now_millis();
    Ok(ParticipantInfo {
        sid: new_id("PA_"),
        identity: claims.sub.clone(),
        name: claims.name.clone(),
        state: livekit_protocol::participant_info::State::Active as i32,
        metadata: claims.metadata.clone(),
        attributes: claims.attributes.clone(),
        joined_at: ms / 1000,
        joined_at_ms: ms,
        version: 1,
        kind: kind as i32,
        permission: Some(ParticipantPermission {
            can_subscribe: v.can_subscribe(),
            can_publish: v.can_publish(),
            can_publish_data: v.can_publish_data(),
            can_publish_sources: sources,
            hidden: v.hidden,
            can_update_metadata: v.can_update_own_metadata(),
            ..Default::default()
        }),
        ..Default::default()
    })
}
