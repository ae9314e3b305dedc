//! The one error type of the HTTP API and its JSON envelope.
//!
//! Every failure a client can see is an [`ApiError`], rendered as
//! `{"error": "...", "code": "...", "details": {...}}` with the status the
//! contract assigns to the code. Unexpected errors are logged once, here, and
//! answered with an opaque 500 that carries only the request id.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt;

/// Result alias used by handlers and domain functions.
pub type ApiResult<T> = Result<T, ApiError>;

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Human-readable message.
    #[schema(example = "Missing X-API-Key header")]
    pub error: String,
    /// Stable machine-readable code.
    #[schema(example = "UNAUTHORIZED")]
    pub code: String,
    /// Optional extra context.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// An error answered to an API client.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `INVALID_REQUEST`.
    BadRequest {
        message: String,
        details: Option<Value>,
    },
    /// 401 `UNAUTHORIZED`.
    Unauthorized(String),
    /// 403 `FORBIDDEN`.
    Forbidden(String),
    /// 404 `NOT_FOUND`.
    NotFound(String),
    /// 405 `METHOD_NOT_ALLOWED`, with the allowed methods.
    MethodNotAllowed { allowed: Vec<&'static str> },
    /// 409 `CONFLICT`.
    Conflict {
        message: String,
        details: Option<Value>,
    },
    /// 416 `RANGE_NOT_SATISFIABLE`: a byte range outside a file of `size` bytes.
    RangeNotSatisfiable { size: u64 },
    /// 413 `PAYLOAD_TOO_LARGE`.
    PayloadTooLarge { limit: usize },
    /// 413 `PAYLOAD_TOO_LARGE` for content past a limit other than the body's
    /// size (pages of a PDF, what a DOCX expands to), with the limit in `details`.
    ContentTooLarge { message: String, details: Value },
    /// 415 `UNSUPPORTED_MEDIA_TYPE`.
    UnsupportedMediaType(String),
    /// 422 `IDEMPOTENCY_KEY_REUSED`: the same key came with another request.
    IdempotencyMismatch,
    /// 429 `QUOTA_EXCEEDED`.
    QuotaExceeded {
        resource: &'static str,
        limit: i64,
        used: i64,
        upgrade_url: String,
    },
    /// 429 `RATE_LIMITED`, with the flat body of the contract.
    RateLimited { limit: u32, retry_after: u64 },
    /// 503 `SERVICE_UNAVAILABLE`: a dependency is down.
    Unavailable(String),
    /// 500 `INTERNAL_ERROR`: the cause is logged, never returned.
    Internal(anyhow::Error),
}

impl ApiError {
    /// 400 with a message and no details.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: None,
        }
    }

    /// 400 naming the offending field in `details.field`.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: Some(json!({ "field": field })),
        }
    }

    /// 404 for a resource kind, e.g. `ApiError::not_found("Room")`.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// 409 with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            details: None,
        }
    }

    /// 500 from anything that is not the client's fault.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "INVALID_REQUEST",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::Conflict { .. } => "CONFLICT",
            Self::PayloadTooLarge { .. } | Self::ContentTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::RangeNotSatisfiable { .. } => "RANGE_NOT_SATISFIABLE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::IdempotencyMismatch => "IDEMPOTENCY_KEY_REUSED",
            Self::QuotaExceeded { .. } => "QUOTA_EXCEEDED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::BadRequest { message, .. }
            | Self::Conflict { message, .. }
            | Self::ContentTooLarge { message, .. } => message.clone(),
            Self::Unauthorized(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::UnsupportedMediaType(m)
            | Self::Unavailable(m) => m.clone(),
            Self::MethodNotAllowed { .. } => "Method not allowed for this endpoint".into(),
            Self::PayloadTooLarge { limit } => {
                format!("Request body is larger than the limit of {limit} bytes")
            }
            Self::RangeNotSatisfiable { size } => {
                format!("Requested range is outside the file ({size} bytes)")
            }
            Self::IdempotencyMismatch => {
                "Idempotency-Key was already used with a different request".into()
            }
            Self::QuotaExceeded {
                resource, limit, ..
            } => {
                format!("Quota exceeded for {resource}: your plan allows {limit}")
            }
            Self::RateLimited { .. } => "Rate limit exceeded".into(),
            Self::Internal(_) => "Internal server error".into(),
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            Self::BadRequest { details, .. } | Self::Conflict { details, .. } => details.clone(),
            Self::ContentTooLarge { details, .. } => Some(details.clone()),
            Self::MethodNotAllowed { allowed } => Some(json!({ "allowed": allowed })),
            Self::PayloadTooLarge { limit } => Some(json!({ "limit_bytes": limit })),
            Self::RangeNotSatisfiable { size } => Some(json!({ "size_bytes": size })),
            Self::QuotaExceeded {
                resource,
                limit,
                used,
                upgrade_url,
            } => Some(json!({
                "resource": resource,
                "limit": limit,
                "used": used,
                "remaining": (limit - used).max(0),
                "upgrade_url": upgrade_url,
            })),
            Self::Internal(_) => {
                crate::middleware::request_id::current().map(|id| json!({ "request_id": id }))
            }
            _ => None,
        }
    }

    /// The body of this error as JSON.
    pub fn body(&self) -> Value {
        if let Self::RateLimited { limit, retry_after } = self {
            return json!({
                "error": "Rate limit exceeded",
                "code": "RATE_LIMITED",
                "limit": limit,
                "remaining": 0,
                "retry_after": retry_after,
            });
        }
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.message()));
        body.insert("code".into(), Value::String(self.code().into()));
        if let Some(details) = self.details() {
            body.insert("details".into(), details);
        }
        Value::Object(body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Internal(err) => write!(f, "internal error: {err:#}"),
            other => write!(f, "{}: {}", other.code(), other.message()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } | Self::ContentTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QuotaExceeded { .. } | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(err) = self {
            tracing::error!(error = format!("{err:#}"), "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        match self {
            Self::RateLimited { retry_after, .. } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::MethodNotAllowed { allowed } => {
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    res.insert_header((header::ALLOW, v));
                }
            }
            Self::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::RangeNotSatisfiable { size } => {
                res.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
            }
            _ => {}
        }
        res.json(self.body())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => Self::NotFound("Resource not found".into()),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Self::conflict("Resource already exists")
            }
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                Self::Unavailable("Database unavailable".into())
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<crate::db::PoolError> for ApiError {
    fn from(err: crate::db::PoolError) -> Self {
        tracing::warn!(error = %err, "database pool error");
        Self::Unavailable("Database unavailable".into())
    }
}

impl From<actix_web::error::JsonPayloadError> for ApiError {
    fn from(err: actix_web::error::JsonPayloadError) -> Self {
        use actix_web::error::JsonPayloadError as E;
        match err {
            E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
                Self::PayloadTooLarge { limit }
            }
            E::ContentType => {
                Self::UnsupportedMediaType("Content-Type must be application/json".into())
            }
            E::Deserialize(e) => json_error(&e),
            other => Self::bad_request(format!("Invalid request body: {other}")),
        }
    }
}

/// A serde_json error turned into a 400 that says where the problem is.
pub fn json_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let message = match e.classify() {
        Category::Syntax | Category::Eof => format!("Malformed JSON: {e}"),
        Category::Data => format!("Invalid request body: {e}"),
        Category::Io => format!("Could not read request body: {e}"),
    };
    ApiError::BadRequest {
        message,
        details: Some(json!({ "line": e.line(), "column": e.column() })),
    }
}

impl From<actix_web::error::QueryPayloadError> for ApiError {
    fn from(err: actix_web::error::QueryPayloadError) -> Self {
        Self::bad_request(format!("Invalid query string: {err}"))
    }
}

impl From<actix_web::error::PathError> for ApiError {
    fn from(err: actix_web::error::PathError) -> Self {
        Self::bad_request(format!("Invalid path parameter: {err}"))
    }
}
