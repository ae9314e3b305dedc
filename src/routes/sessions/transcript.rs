//! A session's transcript over HTTP: lines appended to the active session
//! of a room (batched, `db::transcripts`), read back as JSON or plain text.

use super::{Speaker, room_of};
use crate::auth::Auth;
use crate::db::sessions as store;
use crate::db::transcripts::NewLine;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

/// Body of a transcript line.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"speaker": "user", "content": "Hello, I need help", "timestamp_ms": 5200}))]
pub struct TranscriptIn {
    /// agent, user or system.
    #[schema(required = true, value_type = Speaker)]
    pub speaker: Option<String>,
    /// 1 to 20000 characters.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 20000,
        pattern = "\\S"
    )]
    pub content: Option<String>,
    /// Milliseconds from session start (default 0).
    #[schema(minimum = 0)]
    pub timestamp_ms: Option<i64>,
    /// Default true.
    pub is_final: Option<bool>,
}

/// A stored line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TranscriptAdded {
    pub success: bool,
    pub session_id: i64,
    pub transcript: store::Line,
}

/// `{"session_id", "transcripts"}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TranscriptOut {
    pub session_id: i64,
    pub transcripts: Vec<store::Line>,
}

/// Add a line to the active session of a room.
#[utoipa::path(
    post, path = "/api/v1/sessions/{session}/transcript", tag = "Sessions",
    params(("session" = String, Path, description = "The room name (full or short) whose active session gets the line. \
        (`GET` on this path takes the session id: one path, so the document names the segment once.)", example = "proj_my-room", min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")),
    request_body = TranscriptIn,
    responses(
        (status = 201, description = "Stored", body = TranscriptAdded),
        (status = 400, description = "Invalid line", body = crate::error::ErrorBody),
        (status = 404, description = "No active session in the room", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn add_transcript(
    auth: Auth,
    state: web::Data<AppState>,
    room: web::Path<String>,
    body: web::Json<TranscriptIn>,
) -> ApiResult<HttpResponse> {
    let room = room_of(&auth.project.room_prefix, &room)?;
    let body = body.into_inner();
    let speaker = body
        .speaker
        .ok_or_else(|| ApiError::invalid_field("speaker", "speaker is required"))?;
    if !matches!(speaker.as_str(), "agent" | "user" | "system") {
        return Err(ApiError::invalid_field(
            "speaker",
            "speaker must be agent, user or system",
        ));
    }
    let content = body.content.unwrap_or_default();
    validate::no_nul("content", &content)?;
    if content.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "content",
            "content must not be empty",
        ));
    }
    if content.chars().count() > 20_000 {
        return Err(ApiError::invalid_field(
            "content",
            "content must be at most 20000 characters",
        ));
    }
    // Left out: the time since the session started (set by the database).
    let timestamp_ms = body.timestamp_ms;
    if timestamp_ms.is_some_and(|t| t < 0) {
        return Err(ApiError::invalid_field(
            "timestamp_ms",
            "timestamp_ms must be at least 0",
        ));
    }
    let is_final = body.is_final.unwrap_or(true);
    let appended = state
        .transcripts
        .append(NewLine {
            project_id: auth.project.id,
            room_name: room.full.clone(),
            speaker,
            content,
            timestamp_ms,
            is_final,
        })
        .await?;
    let (session_id, line) = appended
        .ok_or_else(|| ApiError::NotFound(format!("No active session in room {}", room.full)))?;
    Ok(HttpResponse::Created().json(TranscriptAdded {
        success: true,
        session_id,
        transcript: line,
    }))
}

/// The transcript as JSON (every line, interim ones flagged).
#[utoipa::path(
    get, path = "/api/v1/sessions/{session}/transcript", tag = "Sessions",
    params(("session" = i64, Path, description = "Session id", example = 42), crate::transcripts::http::TranscriptFormatQuery),
    responses(
        (status = 200, description = "Transcript (JSON; SRT, WebVTT or CSV with `format`)", content(
            (TranscriptOut = "application/json"),
            (String = "text/csv"),
            (String = "application/x-subrip"),
            (String = "text/vtt"),
        )),
        (status = 400, description = "Unknown format", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_transcript(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<crate::transcripts::http::TranscriptFormatQuery>,
) -> ApiResult<HttpResponse> {
    use crate::transcripts::formats::Format;
    let format = crate::transcripts::http::transcript_format(&q)?;
    let id: i64 = id.parse().map_err(|_| ApiError::not_found("Session"))?;
    let mut conn = state.pool.get().await?;
    store::find(&mut conn, auth.project.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Session"))?;
    let transcripts = store::lines(&mut conn, id).await?;
    if format != Format::Json {
        return Ok(crate::transcripts::http::transcript_file(
            id,
            format,
            &transcripts,
        ));
    }
    Ok(HttpResponse::Ok().json(TranscriptOut {
        session_id: id,
        transcripts,
    }))
}

/// The transcript as plain text: `[mm:ss] User: …`.
#[utoipa::path(
    get, path = "/api/v1/sessions/{session_id}/transcript/text", tag = "Sessions",
    params(("session_id" = i64, Path, description = "Session id", example = 42)),
    responses((status = 200, description = "Text", body = String, content_type = "text/plain"), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_transcript_text(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    store::find(&mut conn, auth.project.id, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("Session"))?;
    let lines = store::lines(&mut conn, *id).await?;
    let mut text = String::new();
    for l in store::superseded_removed(&lines) {
        let who = match l.speaker.as_str() {
            "agent" => "Agent",
            "user" => "User",
            _ => "System",
        };
        text.push_str(&format!(
            "{} {who}: {}\n",
            store::stamp(l.timestamp_ms),
            l.content
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}
