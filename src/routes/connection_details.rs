//! Connection details (VoceSpace-style): an integrator's backend describes a
//! user — signed as an HS256 JWT with the project's connection secret (GET,
//! e.g. in a redirect) or posted with the project API key (POST) — and gets
//! LiveKit connection details with grants derived from the user's identity.
//!
//! A space maps onto the project: its main room is `<space>`, named rooms are
//! `<space>.<room>`, and `$empty` rooms are `<space>.room-<n>`.

use super::allow;
use crate::auth::{Auth, jwt};
use crate::db::schema::{connection_secrets as cs, projects};
use crate::error::{ApiError, ApiResult};
use crate::livekit::names::{RoomName, identity};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use livekit_api::access_token::{AccessToken, VideoGrants};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// Allowed clock skew for `iat`, in seconds.
const SKEW: i64 = 60;

/// The user description (VoceSpace `TokenResult`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "user_12345", "username": "Zhang San", "space": "my-workspace", "room": "$empty", "identity": "participant", "preJoin": false, "iat": 1790000000, "exp": 1790003600}))]
pub struct TokenResult {
    /// User unique identifier (the LiveKit identity).
    pub id: Option<String>,
    /// Display name.
    pub username: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Space name.
    pub space: Option<String>,
    /// `$empty`, `$space` (default) or a room name.
    pub room: Option<String>,
    /// owner, manager, participant, guest (default), assistant, customer.
    pub identity: Option<String>,
    /// Show a pre-join page.
    #[serde(rename = "preJoin")]
    pub pre_join: Option<bool>,
    /// Issued at (Unix seconds).
    pub iat: Option<i64>,
    /// Expires at (Unix seconds).
    pub exp: Option<i64>,
    /// Token id. A signed token (GET) that carries one is accepted once;
    /// without one it may be used until it expires.
    #[schema(max_length = 255)]
    pub jti: Option<String>,
}

/// Body of `POST /api/v1/connection-details`: the user, described by the
/// integrator's backend (the claims of the GET form's token, without `jti`:
/// a request with the API key is not a link that can be replayed).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "user_12345", "username": "Zhang San", "space": "my-workspace", "room": "$empty", "identity": "participant", "preJoin": false, "iat": 1790000000, "exp": 1790003600}))]
pub struct ConnectionDetailsIn {
    /// User unique identifier (the LiveKit identity).
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")]
    pub id: String,
    /// Display name, 1 to 256 characters.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub username: String,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Space name: 1 to 64 letters, digits, `-` or `_`.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_-]+$")]
    pub space: String,
    /// `$empty` (the next empty room), `$space` (default: the space's main
    /// room) or a room name of up to 63 characters (`<space>.<room>`).
    #[schema(pattern = "^(\\$empty|\\$space|[A-Za-z0-9_.:@+-]{1,63})$")]
    pub room: Option<String>,
    /// What the user may do; `guest` by default. The auth type decides which are allowed.
    #[schema(value_type = Option<ConnectionRole>)]
    pub identity: Option<String>,
    /// Show a pre-join page.
    #[serde(rename = "preJoin")]
    pub pre_join: Option<bool>,
    /// Issued at (Unix seconds), at most a minute ahead of the server's clock.
    pub iat: i64,
    /// Expires at (Unix seconds): after `iat`, in the future (the LiveKit
    /// token lives until then, at most 24 hours).
    pub exp: i64,
}

impl From<ConnectionDetailsIn> for TokenResult {
    fn from(b: ConnectionDetailsIn) -> Self {
        TokenResult {
            id: Some(b.id),
            username: Some(b.username),
            avatar: b.avatar,
            space: Some(b.space),
            room: b.room,
            identity: b.identity,
            pre_join: b.pre_join,
            iat: Some(b.iat),
            exp: Some(b.exp),
            jti: None,
        }
    }
}

/// The identities a user may be given.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ConnectionRole {
    /// Room admin (auth `platform`).
    Owner,
    /// Room admin (auth `platform`).
    Manager,
    /// Publishes and subscribes (auth `platform`).
    Participant,
    /// Listens only (any auth).
    Guest,
    /// Room admin (auth `c_s`).
    Assistant,
    /// Publishes, no data (auth `c_s`).
    Customer,
}

/// Authentication types.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ConnectionAuth {
    /// Platform users.
    Platform,
    /// Customer support.
    #[schema(rename = "c_s")]
    CS,
}

/// What a client needs to connect.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDetails {
    /// LiveKit URL to connect to.
    #[schema(example = "wss://livekit.example.com")]
    pub server_url: String,
    /// Room (without the project prefix).
    #[schema(example = "my-workspace.room-1")]
    pub room_name: String,
    #[schema(example = "Zhang San")]
    pub participant_name: String,
    /// LiveKit JWT for that room.
    pub participant_token: String,
    pub pre_join: bool,
}

/// Query of the GET form.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DetailsQuery {
    /// The signed JWT (HS256, `kid` = the connection secret's key id).
    #[param(required = true, nullable = false, min_length = 1)]
    pub token: Option<String>,
    /// Authentication type: absent (guests only), `platform`, or `c_s` (customer support).
    #[param(value_type = Option<ConnectionAuth>)]
    pub auth: Option<String>,
}

/// Query of the POST form.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuthQuery {
    /// Authentication type: `platform` (default for API-key calls) or `c_s`.
    #[param(value_type = Option<ConnectionAuth>)]
    pub auth: Option<String>,
}

/// A connection secret, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretOut {
    /// Put this in the JWT header as `kid`.
    #[schema(example = "cs_k3x9a2bq1f0z")]
    pub key_id: String,
    /// HS256 signing secret; only returned when created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Owner,
    Manager,
    Participant,
    Guest,
    Assistant,
    Customer,
}

impl Role {
    fn parse(s: Option<&str>) -> ApiResult<Self> {
        Ok(match s.unwrap_or("guest") {
            "owner" => Role::Owner,
            "manager" => Role::Manager,
            "participant" => Role::Participant,
            "guest" => Role::Guest,
            "assistant" => Role::Assistant,
            "customer" => Role::Customer,
            other => {
                return Err(ApiError::invalid_field(
                    "identity",
                    format!(
                        "unknown identity `{other}` (owner, manager, participant, guest, assistant, customer)"
                    ),
                ));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Participant => "participant",
            Role::Guest => "guest",
            Role::Assistant => "assistant",
            Role::Customer => "customer",
        }
    }

    /// Which identities an authentication type may claim.
    fn allowed(self, auth: Option<&str>) -> ApiResult<bool> {
        Ok(match auth {
            None => self == Role::Guest,
            Some("platform") => matches!(
                self,
                Role::Owner | Role::Manager | Role::Participant | Role::Guest
            ),
            Some("c_s") => matches!(self, Role::Assistant | Role::Customer | Role::Guest),
            Some(other) => {
                return Err(ApiError::invalid_field(
                    "auth",
                    format!("unknown auth type `{other}` (platform, c_s)"),
                ));
            }
        })
    }

    fn grants(self, room: &str) -> VideoGrants {
        let base = VideoGrants {
            room_join: true,
            room: room.to_owned(),
            ..Default::default()
        };
        let (admin, publish, subscribe, data) = match self {
            Role::Owner | Role::Manager | Role::Assistant => (true, true, true, true),
            Role::Participant => (false, true, true, true),
            Role::Guest => (false, false, true, false),
            Role::Customer => (false, true, true, false),
        };
        VideoGrants {
            room_admin: admin,
            can_publish: Some(publish),
            can_subscribe: Some(subscribe),
            can_publish_data: Some(data),
            ..base
        }
    }
}

fn space_name(s: Option<&str>) -> ApiResult<String> {
    let s = s.ok_or_else(|| ApiError::invalid_field("space", "space is required"))?;
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !ok {
        return Err(ApiError::invalid_field(
            "space",
            "space must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    Ok(s.to_owned())
}

/// Turns a verified description into connection details.
async fn details(
    state: &AppState,
    project_id: i64,
    prefix: &str,
    t: TokenResult,
    auth: Option<&str>,
) -> ApiResult<ConnectionDetails> {
    let lk = state.livekit()?;
    let now = Utc::now().timestamp();
    let (Some(iat), Some(exp)) = (t.iat, t.exp) else {
        return Err(ApiError::bad_request("iat and exp are required"));
    };
    if exp <= now {
        return Err(ApiError::Unauthorized("Token expired".into()));
    }
    if iat > now + SKEW {
        return Err(ApiError::Unauthorized("Token issued in the future".into()));
    }
    if exp <= iat {
        return Err(ApiError::bad_request("exp must be after iat"));
    }
    let user = identity(
        "id",
        t.id.as_deref()
            .ok_or_else(|| ApiError::invalid_field("id", "id is required"))?,
    )?;
    let username = validate::text("username", t.username.as_deref().unwrap_or(""), 256)?;
    let space = space_name(t.space.as_deref())?;
    let role = Role::parse(t.identity.as_deref())?;
    if !role.allowed(auth)? {
        return Err(ApiError::Forbidden(format!(
            "identity `{}` is not allowed for auth type `{}`",
            role.as_str(),
            auth.unwrap_or("none")
        )));
    }
    let short = match t.room.as_deref().unwrap_or("$space") {
        "$space" => space.clone(),
        "$empty" => empty_room(state, prefix, &space).await?,
        name => format!("{space}.{name}"),
    };
    let room = RoomName::parse(prefix, &short)?;
    let ttl = (exp - now).clamp(1, 86_400) as u64;
    let metadata = json!({"identity": role.as_str(), "space": space, "avatar": t.avatar, "project_id": project_id});
    let token = AccessToken::with_api_key(lk.api_key(), lk.api_secret())
        .with_identity(&user)
        .with_name(&username)
        .with_metadata(&metadata.to_string())
        .with_ttl(Duration::from_secs(ttl))
        .with_grants(role.grants(&room.full))
        .to_jwt()
        .map_err(ApiError::internal)?;
    Ok(ConnectionDetails {
        server_url: lk.ws_url().to_owned(),
        room_name: room.short,
        participant_name: username,
        participant_token: token,
        pre_join: t.pre_join.unwrap_or(false),
    })
}

/// An empty room of the space (`<space>.room-<n>`), or the next new one.
async fn empty_room(state: &AppState, prefix: &str, space: &str) -> ApiResult<String> {
    let lk = state.livekit()?;
    let stem = format!("{space}.room-");
    let mut taken = Vec::new();
    for r in lk.call(lk.rooms.list_rooms(Vec::new())).await? {
        let Some(name) = RoomName::from_full(prefix, &r.name) else {
            continue;
        };
        let Some(n) = name
            .short
            .strip_prefix(&stem)
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if r.num_participants == 0 {
            return Ok(name.short);
        }
        taken.push(n);
    }
    let next = (1..).find(|n| !taken.contains(n)).unwrap_or(1);
    Ok(format!("{stem}{next}"))
}

/// Connection details from a signed token (no API key: the signature is the credential).
#[utoipa::path(
    get, path = "/api/v1/connection-details", tag = "Connection Details",
    params(DetailsQuery),
    responses(
        (status = 200, description = "Connection details", body = ConnectionDetails),
        (status = 400, description = "Missing or bad fields", body = crate::error::ErrorBody),
        (status = 401, description = "Invalid, expired, too long-lived or already used (`jti`) token", body = crate::error::ErrorBody),
        (status = 403, description = "Identity not allowed for the auth type", body = crate::error::ErrorBody),
    )
)]
pub async fn get_connection_details(
    state: web::Data<AppState>,
    q: web::Query<DetailsQuery>,
) -> ApiResult<HttpResponse> {
    let token = q
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid_field("token", "token is required"))?;
    let invalid = || ApiError::Unauthorized("Invalid token".into());
    let header = jwt::header(token).map_err(|_| invalid())?;
    let kid = header.kid.ok_or_else(invalid)?;
    let mut conn = state.pool.get().await?;
    let found = cs::table
        .inner_join(projects::table)
        .filter(
            cs::key_id
                .eq(&kid)
                .and(cs::revoked_at.is_null())
                .and(projects::deleted_at.is_null()),
        )
        .select((cs::secret, projects::id, projects::room_prefix))
        .first::<(String, i64, String)>(&mut conn)
        .await
        .optional()?;
    drop(conn);
    let Some((secret, project_id, prefix)) = found else {
        return Err(invalid());
    };
    let claims: TokenResult = jwt::verify(token, secret.as_bytes()).map_err(|e| match e {
        jwt::JwtError::Claims(why) => {
            ApiError::bad_request(format!("Invalid token payload: {why}"))
        }
        _ => invalid(),
    })?;
    // A link is a bearer credential: its lifetime is bounded, and one that
    // names itself (`jti`) is spent by its first use.
    let max = state.settings.connection_token_max_lifetime_secs;
    if let (Some(iat), Some(exp)) = (claims.iat, claims.exp)
        && exp.saturating_sub(iat) > i64::try_from(max).unwrap_or(i64::MAX)
    {
        return Err(ApiError::Unauthorized(format!(
            "Token lifetime (exp - iat) exceeds {max} seconds"
        )));
    }
    if let (Some(jti), Some(exp)) = (claims.jti.as_deref(), claims.exp) {
        spend_jti(&state, project_id, jti, exp).await?;
    }
    let out = details(&state, project_id, &prefix, claims, q.auth.as_deref()).await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Records a signed token's `jti` as used until the token expires; 401 when
/// it was used before.
async fn spend_jti(state: &AppState, project_id: i64, jti: &str, exp: i64) -> ApiResult<()> {
    use sha2::{Digest, Sha256};
    if jti.is_empty() || jti.len() > 255 {
        return Err(ApiError::bad_request("jti must be 1 to 255 characters"));
    }
    let expires_at = DateTime::<Utc>::from_timestamp(exp, 0)
        .ok_or_else(|| ApiError::bad_request("exp is out of range"))?;
    let hash = Sha256::digest(jti.as_bytes()).to_vec();
    let mut conn = state.pool.get().await?;
    // One statement: a new id is recorded; a use whose token has expired no
    // longer blocks the id (the row is taken over); a live one refuses.
    let inserted = diesel::sql_query(
        "INSERT INTO connection_token_uses (project_id, jti_hash, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id, jti_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at \
         WHERE connection_token_uses.expires_at < now()",
    )
    .bind::<diesel::sql_types::Int8, _>(project_id)
    .bind::<diesel::sql_types::Bytea, _>(&hash)
    .bind::<diesel::sql_types::Timestamptz, _>(expires_at)
    .execute(&mut conn)
    .await?;
    if inserted == 0 {
        return Err(ApiError::Unauthorized("Token already used".into()));
    }
    Ok(())
}

/// Connection details for a user described by the integrator's backend.
#[utoipa::path(
    post, path = "/api/v1/connection-details", tag = "Connection Details",
    params(AuthQuery),
    request_body = ConnectionDetailsIn,
    responses(
        (status = 200, description = "Connection details", body = ConnectionDetails),
        (status = 400, description = "Missing or bad fields", body = crate::error::ErrorBody),
        (status = 401, description = "Expired", body = crate::error::ErrorBody),
        (status = 403, description = "Identity not allowed for the auth type", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn post_connection_details(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<AuthQuery>,
    body: web::Json<ConnectionDetailsIn>,
) -> ApiResult<HttpResponse> {
    let auth_type = Some(q.auth.as_deref().unwrap_or("platform"));
    let out = details(
        &state,
        auth.project.id,
        &auth.project.room_prefix,
        body.into_inner().into(),
        auth_type,
    )
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Create or rotate the project's connection secret (the old one stops working).
#[utoipa::path(
    post, path = "/api/v1/connection-secret", tag = "Connection Details",
    responses((status = 201, description = "The new secret, shown once", body = SecretOut)),
    security(("api_key" = []))
)]
pub async fn rotate_connection_secret(
    auth: Auth,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let key_id = format!("cs_{}", crate::db::projects::random_alnum(12));
    let secret = format!(
        "vcs_{}",
        crate::db::api_keys::generate_key().trim_start_matches("pk_")
    );
    let mut conn = state.pool.get().await?;
    let project_id = auth.project.id;
    let created_at = conn
        .transaction::<_, ApiError, _>(async |conn| {
            crate::db::projects::lock(conn, project_id).await?;
            diesel::update(
                cs::table.filter(cs::project_id.eq(project_id).and(cs::revoked_at.is_null())),
            )
            .set(cs::revoked_at.eq(Utc::now()))
            .execute(conn)
            .await?;
            let at = diesel::insert_into(cs::table)
                .values((
                    cs::project_id.eq(project_id),
                    cs::key_id.eq(&key_id),
                    cs::secret.eq(&secret),
                ))
                .returning(cs::created_at)
                .get_result::<DateTime<Utc>>(conn)
                .await?;
            Ok(at)
        })
        .await?;
    Ok(HttpResponse::Created().json(SecretOut {
        key_id,
        secret: Some(secret),
        created_at,
    }))
}

/// The current connection secret's key id (never the secret).
#[utoipa::path(
    get, path = "/api/v1/connection-secret", tag = "Connection Details",
    responses(
        (status = 200, description = "Key id", body = SecretOut),
        (status = 404, description = "No secret yet", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_connection_secret(
    auth: Auth,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let (key_id, created_at) = cs::table
        .filter(
            cs::project_id
                .eq(auth.project.id)
                .and(cs::revoked_at.is_null()),
        )
        .select((cs::key_id, cs::created_at))
        .first::<(String, DateTime<Utc>)>(&mut conn)
        .await
        .optional()?
        .ok_or_else(|| {
            ApiError::NotFound(
                "No connection secret; POST /api/v1/connection-secret creates one".into(),
            )
        })?;
    Ok(HttpResponse::Ok().json(SecretOut {
        key_id,
        secret: None,
        created_at,
    }))
}

/// Registers the routes. The GET form is public (see `api_guard`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/connection-details")
            .route(web::get().to(get_connection_details))
            .route(web::post().to(post_connection_details))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/connection-secret")
            .route(web::get().to(get_connection_secret))
            .route(web::post().to(rotate_connection_secret))
            .default_service(allow(&["GET", "POST"])),
    );
}
