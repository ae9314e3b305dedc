//! The Twirp services, one file each. A service module exposes
//! `handler(method) -> Option<Handler>`; [`lookup`] picks the service from the
//! `livekit.<Service>` part of the path. Adding a service (egress, SIP) is a
//! new file and one arm here.

mod dispatch;
pub mod egress;
mod room;
pub mod sip;

use super::auth::Grant;
use super::state::Shared;
use super::twirp::{Codec, TwirpError};
use actix_web::HttpResponse;
use livekit_api::access_token::Claims;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One RPC: decodes its request from the call, checks the grant, answers.
pub type Handler = fn(&Call<'_>) -> Result<HttpResponse, TwirpError>;

/// The handler of `<pkg_service>/<method>` (e.g. `livekit.RoomService`,
/// `CreateRoom`), if the simulator serves it.
pub fn lookup(pkg_service: &str, method: &str) -> Option<Handler> {
    match pkg_service {
        "livekit.RoomService" => room::handler(method),
        "livekit.AgentDispatchService" => dispatch::handler(method),
        "livekit.Egress" => egress::handler(method),
        "livekit.SIP" => sip::handler(method),
        _ => None,
    }
}

/// A routed, authenticated request.
pub struct Call<'a> {
    /// The simulator.
    pub shared: &'a Shared,
    /// The verified token's claims; `None` when no token was sent.
    pub claims: Option<&'a Claims>,
    /// The request's (and the response's) encoding.
    pub codec: Codec,
    /// The raw request body.
    pub body: &'a [u8],
}

impl Call<'_> {
    /// The request message (`malformed` when it does not decode).
    pub fn decode<M: Message + Default + DeserializeOwned>(&self) -> Result<M, TwirpError> {
        self.codec.decode(self.body)
    }

    /// Refuses the call unless the token holds `grant`.
    pub fn require(&self, grant: Grant<'_>) -> Result<(), TwirpError> {
        grant.check(self.claims)
    }

    /// The success response.
    pub fn reply<M: Message + Serialize>(&self, msg: &M) -> Result<HttpResponse, TwirpError> {
        self.codec.encode(msg)
    }
}
