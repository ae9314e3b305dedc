//! Handlers of call outcomes: `PATCH /api/v1/sessions/{id}` and the
//! project's dispositions.

use super::service::{self, Change};
use crate::auth::Auth;
use crate::db::sessions::Session;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Body of `PATCH /api/v1/sessions/{session_id}` (absent: unchanged; null: cleared).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"disposition": "resolved", "tags": ["billing"], "notes": "Refund issued", "rating": 5}))]
pub struct SessionOutcomeIn {
    /// One of the project's dispositions.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub disposition: Option<Option<String>>,
    /// Replaces the tags (at most 20, 1–50 characters each).
    #[schema(schema_with = crate::openapi::fields::tags)]
    pub tags: Option<Vec<String>>,
    /// Up to 10,000 characters.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// 1 to 5.
    #[serde(default, deserialize_with = "validate::double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 5)]
    pub rating: Option<Option<i64>>,
}

/// A session's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionOutcome {
    pub id: i64,
    pub room_name: String,
    pub status: crate::db::sessions::SessionStatus,
    pub disposition: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub rating: Option<i16>,
    pub updated_at: DateTime<Utc>,
}

/// `{"session": …}` of the outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionOutcomeResponse {
    pub session: SessionOutcome,
}

impl From<Session> for SessionOutcome {
    fn from(x: Session) -> Self {
        Self {
            id: x.id,
            room_name: x.room_name,
            status: x.status,
            disposition: x.disposition,
            tags: x.tags,
            notes: x.notes,
            rating: x.rating,
            updated_at: x.updated_at,
        }
    }
}

/// Sets a session's outcome: disposition, tags, notes, rating.
#[utoipa::path(
    patch, path = "/api/v1/sessions/{session_id}", tag = "Sessions",
    params(("session_id" = i64, Path, description = "Session id", example = 42)),
    request_body = SessionOutcomeIn,
    responses(
        (status = 200, description = "Updated", body = SessionOutcomeResponse),
        (status = 400, description = "Invalid outcome", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown session", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn update_session_outcome(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SessionOutcomeIn>,
) -> ApiResult<HttpResponse> {
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("Session"))?;
    let b = body.into_inner();
    let change = Change {
        disposition: b.disposition,
        tags: b.tags,
        notes: b.notes,
        rating: b.rating,
    };
    let s = service::update(&state, auth.project.id, id, change).await?;
    Ok(HttpResponse::Ok().json(SessionOutcomeResponse { session: s.into() }))
}

/// The project's dispositions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"dispositions": ["resolved", "escalated"], "is_default": false}))]
pub struct DispositionList {
    pub dispositions: Vec<String>,
    /// True while the project uses the default list.
    pub is_default: bool,
}

/// Body of `PUT /api/v1/sessions/dispositions`: the new list (repeats are
/// dropped).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"dispositions": ["resolved", "escalated"]}))]
pub struct DispositionsIn {
    #[schema(schema_with = crate::openapi::fields::dispositions)]
    pub dispositions: Vec<String>,
}

/// The dispositions sessions may be given.
#[utoipa::path(
    get, path = "/api/v1/sessions/dispositions", tag = "Sessions",
    responses((status = 200, description = "The list", body = DispositionList)),
    security(("api_key" = []))
)]
pub async fn get_dispositions(auth: Auth, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let (dispositions, is_default) = service::dispositions(&state, auth.project.id).await?;
    Ok(HttpResponse::Ok().json(DispositionList {
        dispositions,
        is_default,
    }))
}

/// Replaces the project's dispositions.
#[utoipa::path(
    put, path = "/api/v1/sessions/dispositions", tag = "Sessions",
    request_body = DispositionsIn,
    responses(
        (status = 200, description = "The new list", body = DispositionList),
        (status = 400, description = "Invalid list", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn set_dispositions(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<DispositionsIn>,
) -> ApiResult<HttpResponse> {
    let dispositions =
        service::set_dispositions(&state, auth.project.id, &body.dispositions).await?;
    Ok(HttpResponse::Ok().json(DispositionList {
        dispositions,
        is_default: false,
    }))
}
