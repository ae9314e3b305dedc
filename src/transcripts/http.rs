//! Handlers of transcript search and the exports.

use super::formats::Format;
use super::service::{self, ExportFormat, RawFilter, SearchPage};
use crate::auth::Auth;
use crate::db::sessions as store;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

/// Query of `GET /api/v1/transcripts/search`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TranscriptSearchQuery {
    /// Web-search syntax: words (all must match), `"a phrase"`, `or`, `-word` (not).
    #[param(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub q: Option<String>,
    /// Sessions started at or after (ISO 8601 date or date-time).
    #[param(schema_with = crate::openapi::fields::date_or_date_time)]
    pub from: Option<String>,
    /// Sessions started at or before (a date: through its end).
    #[param(schema_with = crate::openapi::fields::date_or_date_time)]
    pub to: Option<String>,
    pub agent_config_id: Option<i64>,
    /// active or completed.
    #[param(value_type = Option<crate::routes::sessions::SessionStatus>)]
    pub status: Option<String>,
    /// Sessions carrying this tag.
    #[param(schema_with = crate::openapi::fields::label100)]
    pub tag: Option<String>,
    /// Sessions with this disposition.
    #[param(schema_with = crate::openapi::fields::label100)]
    pub disposition: Option<String>,
    /// agent, user or system.
    #[param(value_type = Option<crate::routes::sessions::Speaker>)]
    pub speaker: Option<String>,
    /// Page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// Searches the transcripts of the project's sessions, best matches first.
#[utoipa::path(
    get, path = "/api/v1/transcripts/search", tag = "Sessions",
    params(TranscriptSearchQuery),
    responses(
        (status = 200, description = "Ranked hits with highlighted snippets", body = SearchPage),
        (status = 400, description = "Missing query or bad filter", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn search_transcripts(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<TranscriptSearchQuery>,
) -> ApiResult<HttpResponse> {
    let text =
        q.q.as_deref()
            .ok_or_else(|| ApiError::invalid_field("q", "q is required"))?;
    let text = validate::text("q", text, 500)?;
    let page = validate::Page::parse(q.page, q.per_page, 20)?;
    if let Some(s) = &q.speaker
        && !matches!(s.as_str(), "agent" | "user" | "system")
    {
        return Err(ApiError::invalid_field(
            "speaker",
            "speaker must be agent, user or system",
        ));
    }
    let f = service::filter(&RawFilter {
        from: q.from.as_deref(),
        to: q.to.as_deref(),
        agent_config_id: q.agent_config_id,
        status: q.status.as_deref(),
        tag: q.tag.as_deref(),
        disposition: q.disposition.as_deref(),
    })?;
    let out = service::search(
        &state,
        auth.project.id,
        &text,
        &f,
        q.speaker.as_deref(),
        page,
    )
    .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Query of `GET /api/v1/sessions/export`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionExportQuery {
    /// csv (default) or jsonl.
    #[param(value_type = Option<SessionExportFormat>)]
    pub format: Option<String>,
    /// Sessions started at or after (ISO 8601 date or date-time).
    #[param(schema_with = crate::openapi::fields::date_or_date_time)]
    pub from: Option<String>,
    /// Sessions started at or before (a date: through its end).
    #[param(schema_with = crate::openapi::fields::date_or_date_time)]
    pub to: Option<String>,
    pub agent_config_id: Option<i64>,
    /// active or completed.
    #[param(value_type = Option<crate::routes::sessions::SessionStatus>)]
    pub status: Option<String>,
    #[param(schema_with = crate::openapi::fields::label100)]
    pub tag: Option<String>,
    #[param(schema_with = crate::openapi::fields::label100)]
    pub disposition: Option<String>,
}

/// A period's sessions with costs and outcomes, streamed.
#[utoipa::path(
    get, path = "/api/v1/sessions/export", tag = "Sessions",
    params(SessionExportQuery),
    responses(
        (status = 200, description = "CSV (header row) or JSON Lines, streamed in session id order", content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "Bad format or filter", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn export_sessions(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<SessionExportQuery>,
) -> ApiResult<HttpResponse> {
    let format = match q.format.as_deref().unwrap_or("csv") {
        "csv" => ExportFormat::Csv,
        "jsonl" | "ndjson" => ExportFormat::JsonLines,
        _ => {
            return Err(ApiError::BadRequest {
                message: "format must be csv or jsonl".into(),
                details: Some(serde_json::json!({"field": "format", "allowed": ["csv", "jsonl"]})),
            });
        }
    };
    let f = service::filter(&RawFilter {
        from: q.from.as_deref(),
        to: q.to.as_deref(),
        agent_config_id: q.agent_config_id,
        status: q.status.as_deref(),
        tag: q.tag.as_deref(),
        disposition: q.disposition.as_deref(),
    })?;
    let (content_type, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::JsonLines => ("application/x-ndjson", "jsonl"),
    };
    use futures_util::StreamExt;
    let body = service::export(state.get_ref().clone(), auth.project.id, f, format)
        .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"sessions.{ext}\""),
        ))
        .streaming(body))
}

/// `?format=` of `GET /api/v1/sessions/{session_id}/transcript`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TranscriptFormatQuery {
    /// json (default), srt, vtt or csv.
    #[param(value_type = Option<TranscriptFormat>)]
    pub format: Option<String>,
}

/// The formats of a transcript download.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum TranscriptFormat {
    /// The lines as JSON.
    Json,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// A CSV file with a header row.
    Csv,
}

/// The formats of a session export.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SessionExportFormat {
    /// CSV with a header row.
    Csv,
    /// JSON Lines (`ndjson` is accepted too).
    Jsonl,
}

/// The format asked for (400 for an unknown one).
pub fn transcript_format(q: &TranscriptFormatQuery) -> ApiResult<Format> {
    match q.format.as_deref() {
        None => Ok(Format::Json),
        Some(v) => Format::parse(v).ok_or_else(|| ApiError::BadRequest {
            message: "format must be one of json, srt, vtt, csv".into(),
            details: Some(
                serde_json::json!({"field": "format", "allowed": ["json", "srt", "vtt", "csv"]}),
            ),
        }),
    }
}

/// A session's transcript as SRT, WebVTT or CSV.
pub fn transcript_file(session_id: i64, format: Format, lines: &[store::Line]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"session-{session_id}.{}\"",
                format.extension()
            ),
        ))
        .body(service::render(format, lines))
}
