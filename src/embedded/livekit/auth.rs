//! Request authentication, mirroring LiveKit's `pkg/service/auth.go`
//! (contract §2.2–§2.4).
//!
//! The middleware step ([`authenticate`]) runs before Twirp routing and fails
//! with a plain-text 401 (the Rust client sees `ServerError::Request`); the
//! grant check ([`Grant::check`]) runs inside each RPC and fails with the
//! Twirp error `unauthenticated` / `permissions denied`.

use super::twirp::TwirpError;
use livekit_api::access_token::{Claims, TokenVerifier};

const BEARER: &str = "Bearer ";

/// The plain-text body of a middleware 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure(pub String);

/// Verifies the `Authorization` header of a request.
///
/// - no header: no grants (`Ok(None)`); the RPC's grant check then refuses
/// - a header not starting with `Bearer `: refused
/// - the token's `iss` must be the API key, the HS256 signature must verify
///   with the secret, `exp` is required, 60 s leeway (the token crate's
///   verifier, i.e. jsonwebtoken's defaults)
pub fn authenticate(
    header: Option<&[u8]>,
    api_key: &str,
    api_secret: &str,
) -> Result<Option<Claims>, AuthFailure> {
    let Some(header) = header else {
        return Ok(None);
    };
    let token = std::str::from_utf8(header)
        .ok()
        .and_then(|h| h.strip_prefix(BEARER))
        .ok_or_else(|| {
            AuthFailure("invalid authorization header. Must start with Bearer ".to_owned())
        })?;
    let unverified = Claims::from_unverified(token)
        .map_err(|_| AuthFailure("invalid authorization token".to_owned()))?;
    if unverified.iss != api_key {
        return Err(AuthFailure(format!("invalid API key: {}", unverified.iss)));
    }
    TokenVerifier::with_api_key(api_key, api_secret)
        .verify(token)
        .map(Some)
        .map_err(|e| AuthFailure(format!("invalid token: {token}, error: {}", cause(&e))))
}

/// The innermost message of an error chain (the token crate's own Display
/// reads "failed to encode jwt" even for verification failures).
fn cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// The grant an RPC requires (contract §2.3).
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    /// `video.roomCreate` (CreateRoom, DeleteRoom).
    Create,
    /// `video.roomList` (ListRooms).
    List,
    /// `video.roomAdmin` with `video.room` equal to this room exactly.
    Admin(&'a str),
    /// `video.roomRecord` (Egress.*).
    Record,
    /// `sip.admin` (SIP trunk and dispatch-rule CRUD).
    SipAdmin,
    /// `sip.call` (CreateSIPParticipant).
    SipCall,
}

impl Grant<'_> {
    /// Whether `claims` hold this grant; otherwise the Twirp error the real
    /// server answers.
    pub fn check(self, claims: Option<&Claims>) -> Result<(), TwirpError> {
        let allowed = claims.is_some_and(|c| match self {
            Self::Create => c.video.room_create,
            Self::List => c.video.room_list,
            Self::Admin(room) => c.video.room_admin && c.video.room == room,
            Self::Record => c.video.room_record,
            Self::SipAdmin => c.sip.admin,
            Self::SipCall => c.sip.call,
        });
        if allowed {
            Ok(())
        } else {
            Err(TwirpError::permission_denied())
        }
    }
}
