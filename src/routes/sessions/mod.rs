//! Sessions (contract section 8): create, list, detail with costs, transcript
//! append/read/export, end.

use super::allow;
use crate::auth::Auth;
use crate::calls::starts::{Agents, StartRequest};
use crate::db::schema::{agents, sessions as s, transcripts as t};
use crate::db::sessions::{self as store, NewSession, Session};
use crate::error::{ApiError, ApiResult};
use crate::limits::quota::Resource;
use crate::livekit::names::RoomName;
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod transcript;
pub use transcript::*;

/// Body of `POST /api/v1/sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"room_name": "proj_my-room", "session_type": "voice"}))]
pub struct SessionIn {
    /// Room name, full (with prefix) or short.
    pub room_name: Option<String>,
    pub agent_config_id: Option<i64>,
    pub caller_identity: Option<String>,
    /// voice (default) or sip.
    #[schema(value_type = Option<SessionType>)]
    pub session_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// A session as created.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionOut {
    #[schema(example = 42)]
    pub id: i64,
    #[schema(example = 1)]
    pub project_id: i64,
    #[schema(example = "proj_my-room")]
    pub room_name: String,
    pub status: SessionStatus,
    #[schema(example = "voice")]
    pub session_type: String,
    pub agent_config_id: Option<i64>,
    pub caller_identity: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Session> for SessionOut {
    fn from(x: Session) -> Self {
        Self {
            id: x.id,
            project_id: x.project_id,
            room_name: x.room_name,
            status: x.status,
            session_type: x.session_type,
            agent_config_id: x.agent_config_id,
            caller_identity: x.caller_identity,
            metadata: x.metadata,
            started_at: x.started_at,
            ended_at: x.ended_at,
            created_at: x.created_at,
        }
    }
}

/// `{"session": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionResponse {
    pub session: SessionOut,
}

/// A session in the list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionSummary {
    pub id: i64,
    pub room_name: String,
    pub agent_config_id: Option<i64>,
    pub agent_name: Option<String>,
    pub status: SessionStatus,
    pub session_type: String,
    /// Seconds (running time for active sessions).
    pub duration: i64,
    pub message_count: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub disposition: Option<String>,
    pub tags: Vec<String>,
    pub rating: Option<i16>,
}

/// A page of sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionPage {
    pub sessions: Vec<SessionSummary>,
    pub total: i64,
    pub page: i64,
    pub total_pages: i64,
}

/// Filters of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// Page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// active or completed.
    #[param(value_type = Option<SessionStatus>)]
    pub status: Option<String>,
    pub agent_config_id: Option<i64>,
    /// voice or sip.
    #[param(value_type = Option<SessionType>)]
    pub session_type: Option<String>,
    /// Started at or after (ISO 8601).
    #[param(schema_with = crate::openapi::fields::date_or_date_time)]
    pub from: Option<String>,
    /// Started at or before (ISO 8601).
    #[param(schema_with = crate::openapi::fields::date_or_date_time)]
    pub to: Option<String>,
    /// With this disposition.
    pub disposition: Option<String>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// With this rating (1 to 5).
    #[param(minimum = 1, maximum = 5)]
    pub rating: Option<i16>,
}

/// Session detail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionDetail {
    pub id: i64,
    pub room_name: String,
    pub agent_config_id: Option<i64>,
    pub agent_name: Option<String>,
    pub llm_provider: Option<String>,
    pub llm_model: Option<String>,
    pub status: SessionStatus,
    pub session_type: String,
    pub caller_identity: Option<String>,
    pub duration_seconds: i64,
    pub message_count: i64,
    pub summary: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub disposition: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub rating: Option<i16>,
    /// Who supervised the call, in which mode, when.
    pub supervisions: Vec<crate::supervisor::store::SupervisionPeriod>,
}

/// Costs by service, USD.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Costs {
    #[schema(value_type = f64, example = 0.045)]
    pub total: crate::decimal::Decimal,
    #[schema(value_type = f64, example = 0.038)]
    pub llm: crate::decimal::Decimal,
    #[schema(value_type = f64, example = 0.005)]
    pub stt: crate::decimal::Decimal,
    #[schema(value_type = f64, example = 0.002)]
    pub tts: crate::decimal::Decimal,
}

/// `{"session": …, "costs": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionDetailResponse {
    pub session: SessionDetail,
    pub costs: Costs,
}

/// Body of `end`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"summary": "Customer asked about billing"}))]
pub struct EndIn {
    pub summary: Option<String>,
    /// Override, in seconds.
    #[schema(minimum = 0)]
    pub duration: Option<i32>,
}

/// `{"success": true, "session": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ended {
    pub success: bool,
    pub session: SessionOut,
}

fn room_of(prefix: &str, input: &str) -> ApiResult<RoomName> {
    RoomName::parse(prefix, input)
        .map_err(|_| ApiError::invalid_field("room_name", "invalid room name"))
}

use crate::transcripts::service::parse_time;

async fn message_counts(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> ApiResult<std::collections::HashMap<i64, i64>> {
    let rows: Vec<(i64, i64)> = t::table
        .filter(t::session_id.eq_any(ids).and(t::is_final.eq(true)))
        .group_by(t::session_id)
        .select((t::session_id, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Start a session log for a room. Quota: sessions (per month).
#[utoipa::path(
    post, path = "/api/v1/sessions", tag = "Sessions",
    request_body = SessionIn,
    responses(
        (status = 201, description = "Started", body = SessionResponse),
        (status = 400, description = "Invalid input", body = crate::error::ErrorBody),
        (status = 409, description = "The room already has an active session", body = crate::error::ErrorBody),
        (status = 429, description = "Session quota reached", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_session(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<SessionIn>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let room = room_of(
        &auth.project.room_prefix,
        body.room_name
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field("room_name", "room_name is required"))?,
    )?;
    let session_type = body.session_type.unwrap_or_else(|| "voice".into());
    if !matches!(session_type.as_str(), "voice" | "sip") {
        return Err(ApiError::invalid_field(
            "session_type",
            "session_type must be voice or sip",
        ));
    }
    let metadata = body.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() {
        return Err(ApiError::invalid_field(
            "metadata",
            "metadata must be an object",
        ));
    }
    let caller = validate::opt_text("caller_identity", body.caller_identity.as_deref(), 256)?;
    let request = StartRequest {
        project_id: auth.project.id,
        limit: Resource::Sessions.limit(&state.settings.plans, &auth.project),
        agents: Agents::Named(body.agent_config_id),
        session: NewSession {
            room_name: room.full.clone(),
            caller_identity: caller,
            session_type,
            metadata,
            ..Default::default()
        },
    };
    let session = state
        .starts
        .start(&state, request)
        .await?
        .map_err(|refused| refused.into_error(&state.settings.upgrade_url))?
        .session
        .ok_or_else(|| {
            ApiError::conflict(format!("Room {} already has an active session", room.full))
        })?;
    Ok(HttpResponse::Created().json(SessionResponse {
        session: session.into(),
    }))
}

/// Paginated sessions with filters.
#[utoipa::path(
    get, path = "/api/v1/sessions", tag = "Sessions",
    params(SessionQuery),
    responses((status = 200, description = "A page", body = SessionPage), (status = 400, description = "Bad filter", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_sessions(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<SessionQuery>,
) -> ApiResult<HttpResponse> {
    let pg = crate::validate::Page::parse(q.page, q.per_page, 25)?;
    let (page, per_page) = (pg.page, pg.per_page);
    let status = q
        .status
        .as_deref()
        .map(|v| {
            SessionStatus::parse(v).ok_or_else(|| {
                ApiError::invalid_field("status", "status must be active or completed")
            })
        })
        .transpose()?;
    if q.rating.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(ApiError::invalid_field("rating", "rating must be 1 to 5"));
    }
    if let Some(v) = &q.session_type
        && !matches!(v.as_str(), "voice" | "sip")
    {
        return Err(ApiError::invalid_field(
            "session_type",
            "session_type must be voice or sip",
        ));
    }
    let from = q
        .from
        .as_deref()
        .map(|v| parse_time("from", v).map(|(t, _)| t))
        .transpose()?;
    // `to` is inclusive; a date means through the end of that day, so the
    // bound is the next midnight, exclusive.
    let to =
        q.to.as_deref()
            .map(|v| {
                parse_time("to", v).map(|(t, date)| match date {
                    true => (t + chrono::Duration::days(1), true),
                    false => (t, false),
                })
            })
            .transpose()?;
    let filtered = || {
        let mut b = s::table
            .filter(s::project_id.eq(auth.project.id))
            .into_boxed();
        if let Some(v) = status {
            b = b.filter(s::status.eq(v));
        }
        if let Some(v) = &q.session_type {
            b = b.filter(s::session_type.eq(v.clone()));
        }
        if let Some(v) = q.agent_config_id {
            b = b.filter(s::agent_config_id.eq(v));
        }
        if let Some(v) = &q.disposition {
            b = b.filter(s::disposition.eq(v.clone()));
        }
        if let Some(v) = &q.tag {
            b = b.filter(s::tags.contains(vec![v.clone()]));
        }
        if let Some(v) = q.rating {
            b = b.filter(s::rating.eq(v));
        }
        if let Some(v) = from {
            b = b.filter(s::started_at.ge(v));
        }
        match to {
            Some((v, true)) => b = b.filter(s::started_at.lt(v)),
            Some((v, false)) => b = b.filter(s::started_at.le(v)),
            None => {}
        }
        b
    };
    let mut conn = state.pool.get().await?;
    let total: i64 = filtered().count().get_result(&mut conn).await?;
    let ids: Vec<i64> = filtered()
        .order((s::started_at.desc(), s::id.desc()))
        .offset(pg.offset())
        .limit(per_page)
        .select(s::id)
        .load(&mut conn)
        .await?;
    let rows: Vec<(Session, Option<String>)> = s::table
        .left_join(agents::table)
        .filter(s::id.eq_any(&ids))
        .order((s::started_at.desc(), s::id.desc()))
        .select((Session::as_select(), agents::name.nullable()))
        .load(&mut conn)
        .await?;
    let counts = message_counts(&mut conn, &ids).await?;
    let sessions = rows
        .into_iter()
        .map(|(x, agent_name)| SessionSummary {
            message_count: counts.get(&x.id).copied().unwrap_or(0),
            duration: x.duration(),
            id: x.id,
            room_name: x.room_name,
            agent_config_id: x.agent_config_id,
            agent_name,
            status: x.status,
            session_type: x.session_type,
            started_at: x.started_at,
            ended_at: x.ended_at,
            disposition: x.disposition,
            tags: x.tags,
            rating: x.rating,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionPage {
        sessions,
        total,
        page,
        total_pages: pg.total_pages(total),
    }))
}

/// Session detail with the cost breakdown by service.
#[utoipa::path(
    get, path = "/api/v1/sessions/{session_id}/detail", tag = "Sessions",
    params(("session_id" = i64, Path, description = "Session id", example = 42)),
    responses((status = 200, description = "Detail", body = SessionDetailResponse), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_session_detail(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let (x, agent) = store::find(&mut conn, auth.project.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("Session"))?;
    let counts = message_counts(&mut conn, &[x.id]).await?;
    let costs = crate::routes::usage::session_costs(&mut conn, x.id).await?;
    let supervisions = crate::supervisor::store::for_session(&mut conn, x.id).await?;
    let (agent_name, llm_provider, llm_model) = match agent {
        Some((n, p, m)) => (Some(n), p, m),
        None => (None, None, None),
    };
    Ok(HttpResponse::Ok().json(SessionDetailResponse {
        session: SessionDetail {
            duration_seconds: x.duration(),
            message_count: counts.get(&x.id).copied().unwrap_or(0),
            id: x.id,
            room_name: x.room_name,
            agent_config_id: x.agent_config_id,
            agent_name,
            llm_provider,
            llm_model,
            status: x.status,
            session_type: x.session_type,
            caller_identity: x.caller_identity,
            summary: x.summary,
            metadata: x.metadata,
            started_at: x.started_at,
            ended_at: x.ended_at,
            disposition: x.disposition,
            tags: x.tags,
            notes: x.notes,
            rating: x.rating,
            supervisions,
        },
        costs,
    }))
}

/// End the active session of a room.
#[utoipa::path(
    post, path = "/api/v1/sessions/{roomName}/end", tag = "Sessions",
    params(("roomName" = String, Path, description = "Room name, full or short", example = "proj_my-room", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")),
    request_body = EndIn,
    responses(
        (status = 200, description = "Ended", body = Ended),
        (status = 404, description = "The room never had a session", body = crate::error::ErrorBody),
        (status = 409, description = "Already ended", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn end_session(
    auth: Auth,
    state: web::Data<AppState>,
    room: web::Path<String>,
    body: validate::OptionalJson<EndIn>,
) -> ApiResult<HttpResponse> {
    let room = room_of(&auth.project.room_prefix, &room)?;
    let body = body.or_default();
    if body.duration.is_some_and(|d| d < 0) {
        return Err(ApiError::invalid_field(
            "duration",
            "duration must be at least 0",
        ));
    }
    let summary = validate::opt_text("summary", body.summary.as_deref(), 20_000)?;
    let mut conn = state.pool.get().await?;
    let project_id = auth.project.id;
    let ended = conn
        .transaction::<_, ApiError, _>(async |conn| {
            match store::end(
                conn,
                project_id,
                &room.full,
                summary.as_deref(),
                body.duration,
                Utc::now(),
            )
            .await?
            {
                Some(x) => Ok(x),
                None if store::any_for_room(conn, project_id, &room.full).await? => {
                    Err(ApiError::conflict(format!(
                        "The session in room {} has already ended",
                        room.full
                    )))
                }
                None => Err(ApiError::NotFound(format!(
                    "No session in room {}",
                    room.full
                ))),
            }
        })
        .await?;
    Ok(HttpResponse::Ok().json(Ended {
        success: true,
        session: ended.into(),
    }))
}

/// Registers the routes, relative to the `/sessions` scope they are mounted in
/// (`routes::configure_api`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(list_sessions))
            .route(web::post().to(create_session))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{session_id}/detail")
            .route(web::get().to(get_session_detail))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{key}/transcript")
            .route(web::get().to(get_transcript))
            .route(web::post().to(add_transcript))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{session_id}/transcript/text")
            .route(web::get().to(get_transcript_text))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{roomName}/end")
            .route(web::post().to(end_session))
            .default_service(allow(&["POST"])),
    );
}

/// The statuses of a session (the `status` filters and fields).
pub use crate::db::sessions::SessionStatus;

/// The documented values of `session_type`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SessionType {
    /// A WebRTC call.
    Voice,
    /// A phone call over SIP.
    Sip,
}

/// The documented values of a transcript line's `speaker`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Speaker {
    /// The AI agent.
    Agent,
    /// The caller.
    User,
    /// A system note.
    System,
}
