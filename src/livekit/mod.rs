//! Voxplane's side of LiveKit: the `livekit-api` clients with timeouts and
//! error mapping, project room naming, and the inbound webhook.

pub mod applier;
pub mod calls;
mod effects;
pub mod grants;
pub mod names;
pub mod reconcile;
pub mod webhook;

use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use livekit_api::services::ServerError as TwirpError;
use livekit_api::services::ServiceError;
use livekit_api::services::agent_dispatch::AgentDispatchClient;
use livekit_api::services::egress::EgressClient;
use livekit_api::services::room::RoomClient;
use livekit_api::services::sip::SIPClient;
use serde_json::json;
use std::future::Future;
use std::time::Duration;

pub use livekit_protocol as proto;

/// The LiveKit server Voxplane talks to.
pub struct LiveKit {
    /// RoomService.
    pub rooms: RoomClient,
    /// AgentDispatchService.
    pub dispatch: AgentDispatchClient,
    /// Egress (recordings).
    pub egress: EgressClient,
    /// SIP (trunks, dispatch rules, outbound calls).
    pub sip: SIPClient,
    api_key: String,
    api_secret: String,
    ws_url: String,
    timeout: Duration,
}

impl std::fmt::Debug for LiveKit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKit")
            .field("api_key", &self.api_key)
            .field("ws_url", &self.ws_url)
            .finish()
    }
}

impl LiveKit {
    /// Clients for the configured server, or `None` when no URL is set.
    pub fn from_settings(s: &Settings) -> Option<Self> {
        let url = s.livekit_url.as_deref()?;
        let key = s.livekit_api_key.as_deref().unwrap_or_default();
        let secret = s.livekit_api_secret.as_deref().unwrap_or_default();
        let timeout = Duration::from_millis(s.livekit_timeout_ms);
        let ws_url = s.livekit_ws_url.clone().unwrap_or_else(|| ws_url_for(url));
        Some(Self {
            rooms: RoomClient::with_api_key(url, key, secret).with_request_timeout(timeout),
            dispatch: AgentDispatchClient::with_api_key(url, key, secret)
                .with_request_timeout(timeout),
            egress: EgressClient::with_api_key(url, key, secret).with_request_timeout(timeout),
            sip: SIPClient::with_api_key(url, key, secret).with_request_timeout(timeout),
            api_key: key.to_owned(),
            api_secret: secret.to_owned(),
            ws_url,
            timeout,
        })
    }

    /// The URL clients connect to.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The API key tokens are issued under.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The API secret tokens are signed with.
    pub fn api_secret(&self) -> &str {
        &self.api_secret
    }

    /// Runs one LiveKit call with the timeout, mapping its errors.
    pub async fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, ServiceError>>,
    ) -> ApiResult<T> {
        match tokio::time::timeout(self.timeout + Duration::from_millis(250), fut).await {
            Err(_) => Err(unavailable("timed out")),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_error(e)),
        }
    }
}

/// `https://x` → `wss://x`, `http://x` → `ws://x`; ws(s) URLs stay.
pub fn ws_url_for(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_owned()
    }
}

fn unavailable(why: &str) -> ApiError {
    tracing::warn!(reason = why, "LiveKit unavailable");
    ApiError::Unavailable("LiveKit unavailable".into())
}

/// The LiveKit error as the closest contract error; LiveKit's code and
/// message are kept in `details`.
fn map_error(e: ServiceError) -> ApiError {
    let twirp = match e {
        ServiceError::Twirp(TwirpError::Twirp(code)) => code,
        ServiceError::Twirp(TwirpError::Request(e)) => return unavailable(&e.to_string()),
        other => {
            tracing::error!(error = %other, "LiveKit call failed");
            return ApiError::Unavailable("LiveKit unavailable".into());
        }
    };
    let details = Some(json!({ "livekit_code": twirp.code, "livekit_message": twirp.msg }));
    match twirp.code.as_str() {
        "not_found" => ApiError::NotFound(format!("Not found in LiveKit: {}", twirp.msg)),
        "invalid_argument" | "malformed" | "out_of_range" => ApiError::BadRequest {
            message: format!("LiveKit rejected the request: {}", twirp.msg),
            details,
        },
        "already_exists" | "aborted" | "failed_precondition" => ApiError::Conflict {
            message: format!("LiveKit refused: {}", twirp.msg),
            details,
        },
        "unauthenticated" | "permission_denied" => {
            tracing::error!(code = %twirp.code, msg = %twirp.msg, "LiveKit refused Voxplane's credentials");
            ApiError::Unavailable("LiveKit unavailable".into())
        }
        _ => unavailable(&format!("{}: {}", twirp.code, twirp.msg)),
    }
}

impl ApiError {
    /// Replaces a 404's message (LiveKit's wording) with one about the resource.
    pub fn or_not_found(self, message: &str) -> ApiError {
        match self {
            ApiError::NotFound(_) => ApiError::NotFound(message.to_owned()),
            other => other,
        }
    }
}
