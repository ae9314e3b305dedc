//! API keys of a project (admin) and test tokens (member).

use super::member;
use crate::auth::roles::Role;
use crate::auth::sessions::Account;
use crate::db::api_keys::{self, ApiKey};
use crate::error::{ApiError, ApiResult};
use crate::livekit::grants::client_grants;
use crate::livekit::names::{RoomName, identity};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use livekit_api::access_token::AccessToken;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An API key as listed (never the key itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyOut {
    #[schema(example = 3)]
    pub id: i64,
    #[schema(example = "production")]
    pub name: String,
    /// `pk_` + first four characters … last four.
    #[schema(example = "pk_ab12…wxyz")]
    pub masked_key: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Account id of the creator (none for keys made by the CLI).
    pub created_by: Option<i64>,
}

impl From<ApiKey> for KeyOut {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            masked_key: k.masked(),
            name: k.name,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            created_by: k.created_by,
        }
    }
}

/// A new key: the only time the key itself is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewKeyOut {
    #[serde(flatten)]
    pub info: KeyOut,
    /// The key; store it now, it is not shown again.
    #[schema(example = "pk_ab12cd34ef56gh78ij90kl12mn34op56qr78wxyz")]
    pub key: String,
}

/// `{"key": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewKeyResponse {
    pub key: NewKeyOut,
}

/// `{"keys": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyOut>,
}

/// Body of `POST /api/v1/projects/{project_id}/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "production", "expires_at": "2027-01-01T00:00:00Z"}))]
pub struct KeyIn {
    /// 1–200 characters.
    pub name: String,
    /// When the key stops working (in the future), if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Body of `POST /api/v1/projects/{project_id}/test-token`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"room": "test-room", "identity": "tester"}))]
pub struct TestTokenIn {
    /// Room name (auto-prefixed).
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")]
    pub room: String,
    /// Participant identity.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")]
    pub identity: String,
    /// Lifetime in seconds (default 3600, 60 to 86400).
    #[schema(minimum = 60, maximum = 86400)]
    pub ttl: Option<u64>,
}

/// A LiveKit token for trying a room from the dashboard.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestTokenOut {
    #[schema(example = "eyJhbGciOi...")]
    pub token: String,
    /// The full (prefixed) room name.
    #[schema(example = "pk3x9a2bq1_test-room")]
    pub room: String,
    #[schema(example = "tester")]
    pub identity: String,
    #[serde(rename = "wsUrl")]
    #[schema(example = "wss://livekit.example.com")]
    pub ws_url: String,
}

/// Create an API key (admin). The key is in this answer only.
#[utoipa::path(
    post, path = "/api/v1/projects/{project_id}/keys", tag = "Projects",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    request_body = KeyIn,
    responses(
        (status = 201, description = "Created", body = NewKeyResponse),
        (status = 400, description = "Invalid name or expiry", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_key(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<KeyIn>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Admin).await?;
    let name = validate::text("name", &body.name, 200)?;
    if body.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(ApiError::invalid_field(
            "expires_at",
            "expires_at must be in the future",
        ));
    }
    let mut conn = state.pool.get().await?;
    let (row, key) = api_keys::create_by(
        &mut conn,
        ctx.project.id,
        &name,
        body.expires_at,
        Some(me.account_id),
    )
    .await?;
    Ok(HttpResponse::Created().json(NewKeyResponse {
        key: NewKeyOut {
            info: row.into(),
            key,
        },
    }))
}

/// The project's API keys that are not revoked, masked (admin).
#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/keys", tag = "Projects",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    responses(
        (status = 200, description = "Keys, newest first", body = KeyList),
        (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_keys(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Admin).await?;
    let mut conn = state.pool.get().await?;
    let keys = api_keys::list_live(&mut conn, ctx.project.id).await?;
    Ok(HttpResponse::Ok().json(KeyList {
        keys: keys.into_iter().map(KeyOut::from).collect(),
    }))
}

/// Revoke an API key (admin); it stops working at once.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project_id}/keys/{key_id}", tag = "Projects",
    params(
        ("project_id" = i64, Path, description = "Project id", example = 1),
        ("key_id" = i64, Path, description = "Key id", example = 3),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody),
        (status = 404, description = "No such live key in the project", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_key(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (project_id, key_id) = path.into_inner();
    let ctx = member(&state, &me, project_id, Role::Admin).await?;
    let mut conn = state.pool.get().await?;
    if !api_keys::revoke(&mut conn, ctx.project.id, key_id).await? {
        return Err(ApiError::not_found("API key"));
    }
    state.keys.evict_key(key_id);
    state.hub.revoke(crate::events::hub::Revoke::Key(key_id));
    Ok(HttpResponse::NoContent().finish())
}

/// A LiveKit token for a room and identity of the project, to try it from
/// the dashboard (member). No agent is dispatched.
#[utoipa::path(
    post, path = "/api/v1/projects/{project_id}/test-token", tag = "Projects",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    request_body = TestTokenIn,
    responses(
        (status = 200, description = "Token", body = TestTokenOut),
        (status = 400, description = "Invalid room, identity or ttl", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the member role", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit not configured", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_test_token(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<TestTokenIn>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Member).await?;
    let lk = state.livekit()?;
    let who = identity("identity", &body.identity)?;
    let room = RoomName::parse(&ctx.project.room_prefix, &body.room)?;
    let ttl = body.ttl.unwrap_or(3600);
    if !(60..=86_400).contains(&ttl) {
        return Err(ApiError::invalid_field(
            "ttl",
            "ttl must be between 60 and 86400 seconds",
        ));
    }
    let token = AccessToken::with_api_key(lk.api_key(), lk.api_secret())
        .with_identity(&who)
        .with_ttl(Duration::from_secs(ttl))
        .with_grants(client_grants(&room.full, None)?)
        .to_jwt()
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(TestTokenOut {
        token,
        room: room.full,
        identity: who,
        ws_url: lk.ws_url().to_owned(),
    }))
}
