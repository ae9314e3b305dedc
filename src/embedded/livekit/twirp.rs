//! The Twirp wire format: error bodies and status codes, and the protobuf /
//! JSON request and response encodings (contract §3.1).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// A Twirp error: `{"code","msg"[,"meta"]}` with the status of its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {msg}")]
pub struct TwirpError {
    /// The Twirp code (`not_found`, `bad_route`, …).
    pub code: &'static str,
    /// The message; always present, or the client reports a decode error.
    pub msg: String,
    /// Extra string values; omitted from the body when empty.
    pub meta: BTreeMap<String, String>,
}

impl TwirpError {
    /// An error with a code and a message.
    pub fn new(code: &'static str, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            meta: BTreeMap::new(),
        }
    }

    /// `bad_route` (404) with `meta.twirp_invalid_route = "<METHOD> <path>"`.
    pub fn bad_route(msg: impl Into<String>, method: &str, path: &str) -> Self {
        let mut err = Self::new("bad_route", msg);
        err.meta
            .insert("twirp_invalid_route".into(), format!("{method} {path}"));
        err
    }

    /// `not_found` (404).
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new("not_found", msg)
    }

    /// `malformed` (400).
    pub fn malformed(msg: impl Into<String>) -> Self {
        Self::new("malformed", msg)
    }

    /// `invalid_argument` (400).
    pub fn invalid_argument(msg: impl Into<String>) -> Self {
        Self::new("invalid_argument", msg)
    }

    /// The real server's answer to a missing grant:
    /// 401 `unauthenticated` / `permissions denied`.
    pub fn permission_denied() -> Self {
        Self::new("unauthenticated", "permissions denied")
    }

    /// The LiveKit `ErrRoomNotFound`.
    pub fn room_not_found() -> Self {
        Self::not_found("requested room does not exist")
    }

    /// The LiveKit `ErrParticipantNotFound`.
    pub fn participant_not_found() -> Self {
        Self::not_found("participant does not exist")
    }

    /// The HTTP status Twirp maps this code to
    /// (`twirp.ServerHTTPStatusFromErrorCode`).
    pub fn status(&self) -> StatusCode {
        let code = match self.code {
            "canceled" | "deadline_exceeded" => 408,
            "invalid_argument" | "malformed" | "out_of_range" => 400,
            "not_found" | "bad_route" => 404,
            "already_exists" | "aborted" => 409,
            "permission_denied" => 403,
            "unauthenticated" => 401,
            "resource_exhausted" => 429,
            "failed_precondition" => 412,
            "unimplemented" => 501,
            "unavailable" => 503,
            _ => 500,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON error response.
    pub fn response(&self) -> HttpResponse {
        #[derive(Serialize)]
        struct Body<'a> {
            code: &'a str,
            msg: &'a str,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            meta: &'a BTreeMap<String, String>,
        }
        HttpResponse::build(self.status()).json(Body {
            code: self.code,
            msg: &self.msg,
            meta: &self.meta,
        })
    }
}

/// How a request body is encoded; the response uses the same encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `application/protobuf`: prost binary.
    Protobuf,
    /// `application/json`: protojson via pbjson. Requests accept camelCase
    /// and proto names and skip unknown fields; responses are camelCase with
    /// defaults omitted (what Twirp writes with `WithServerJSONCamelCase` and
    /// `WithServerJSONSkipDefaults`; LiveKit's router defaults to proto names
    /// with defaults written, which any protojson reader also accepts back).
    Json,
}

impl Codec {
    /// The codec for a `Content-Type` value; parameters after `;` are ignored.
    /// `None` for anything else (Twirp answers `bad_route`).
    pub fn from_content_type(value: &str) -> Option<Self> {
        let essence = value.split(';').next().unwrap_or_default();
        match essence.trim().to_ascii_lowercase().as_str() {
            "application/protobuf" => Some(Self::Protobuf),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }

    /// Decodes a request; an empty body is the default message.
    pub fn decode<M: Message + Default + DeserializeOwned>(
        self,
        body: &[u8],
    ) -> Result<M, TwirpError> {
        if body.is_empty() {
            return Ok(M::default());
        }
        match self {
            Self::Protobuf => M::decode(body)
                .map_err(|_| TwirpError::malformed("the protobuf request could not be decoded")),
            Self::Json => serde_json::from_slice(body)
                .map_err(|_| TwirpError::malformed("the json request could not be decoded")),
        }
    }

    /// The 200 response carrying `msg`.
    pub fn encode<M: Message + Serialize>(self, msg: &M) -> Result<HttpResponse, TwirpError> {
        match self {
            Self::Protobuf => Ok(HttpResponse::Ok()
                .content_type("application/protobuf")
                .body(msg.encode_to_vec())),
            Self::Json => {
                let body = serde_json::to_vec(msg).map_err(|e| {
                    TwirpError::new("internal", format!("failed to marshal the response: {e}"))
                })?;
                Ok(HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body))
            }
        }
    }
}
