//! LiveKit token grants Voxplane gives clients (shared by the token routes,
//! test tokens, SIP dials and chat calls).

use crate::error::{ApiError, ApiResult};
use livekit_api::access_token::{AccessToken, VideoGrants};
use serde_json::{Map, Value};
use std::time::Duration;

/// Builds the video grant: join this room only, publish/subscribe/data by
/// default, plus the client-safe extras the caller asked for.
pub fn client_grants(room: &str, extra: Option<&Map<String, Value>>) -> ApiResult<VideoGrants> {
    let mut g = VideoGrants {
        room_join: true,
        room: room.to_owned(),
        can_publish: Some(true),
        can_subscribe: Some(true),
        can_publish_data: Some(true),
        ..Default::default()
    };
    for (name, value) in extra.into_iter().flatten() {
        let flag = || {
            value.as_bool().ok_or_else(|| {
                ApiError::invalid_field("grants", format!("grant `{name}` must be a boolean"))
            })
        };
        match name.as_str() {
            "canPublish" => g.can_publish = Some(flag()?),
            "canSubscribe" => g.can_subscribe = Some(flag()?),
            "canPublishData" => g.can_publish_data = Some(flag()?),
            "canUpdateOwnMetadata" => g.can_update_own_metadata = Some(flag()?),
            "hidden" => g.hidden = flag()?,
            "canPublishSources" => {
                const SOURCES: [&str; 4] =
                    ["camera", "microphone", "screen_share", "screen_share_audio"];
                let list = value.as_array().ok_or_else(|| {
                    ApiError::invalid_field(
                        "grants",
                        "grant `canPublishSources` must be an array of sources",
                    )
                })?;
                let mut sources = Vec::new();
                for s in list {
                    match s.as_str().filter(|s| SOURCES.contains(s)) {
                        Some(s) => sources.push(s.to_owned()),
                        None => {
                            return Err(ApiError::invalid_field(
                                "grants",
                                format!("canPublishSources entries must be one of {SOURCES:?}"),
                            ));
                        }
                    }
                }
                g.can_publish_sources = sources;
            }
            "roomAdmin" | "roomCreate" | "roomList" | "roomRecord" | "ingressAdmin"
            | "recorder" | "agent" | "room" | "roomJoin" | "destinationRoom" => {
                return Err(ApiError::invalid_field(
                    "grants",
                    format!("grant `{name}` cannot be given to a client token"),
                ));
            }
            other => {
                return Err(ApiError::invalid_field(
                    "grants",
                    format!("unknown grant `{other}`"),
                ));
            }
        }
    }
    Ok(g)
}

/// The grant of a voice call's member: join `room` only, publish the
/// microphone, subscribe, send data.
pub fn voice_call_grants(room: &str) -> VideoGrants {
    VideoGrants {
        room_join: true,
        room: room.to_owned(),
        can_publish: Some(true),
        can_subscribe: Some(true),
        can_publish_data: Some(true),
        can_publish_sources: vec!["microphone".to_owned()],
        ..Default::default()
    }
}

/// A signed LiveKit access token for `identity` with `grants`.
pub fn sign(
    api_key: &str,
    api_secret: &str,
    identity: &str,
    name: &str,
    ttl: Duration,
    grants: VideoGrants,
) -> ApiResult<String> {
    AccessToken::with_api_key(api_key, api_secret)
        .with_identity(identity)
        .with_name(name)
        .with_ttl(ttl)
        .with_grants(grants)
        .to_jwt()
        .map_err(ApiError::internal)
}
