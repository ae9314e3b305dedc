//! Transcript rules: search across a project's sessions, exports of one
//! transcript and of a period's sessions, the transcript so far of a room.

use super::formats::{self, Format, csv_field};
use super::store::{self, ExportRow, SessionFilter};
use crate::db::sessions::{self, Line};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::web::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::Serialize;

/// The lines of a room's active session so far: (session id, lines), or
/// `None` when the room has no active session.
pub async fn so_far(
    state: &AppState,
    project_id: i64,
    room_full: &str,
) -> ApiResult<Option<(i64, Vec<Line>)>> {
    let mut conn = state.pool.get().await?;
    let Some(s) = sessions::active(&mut conn, project_id, room_full).await? else {
        return Ok(None);
    };
    let lines = sessions::lines(&mut conn, s.id).await?;
    Ok(Some((s.id, lines)))
}

/// An ISO 8601 date-time, or a date (its midnight, UTC); true when a date.
pub fn parse_time(field: &str, v: &str) -> ApiResult<(DateTime<Utc>, bool)> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok((t.with_timezone(&Utc), false));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok((t.and_utc(), true));
    }
    Err(ApiError::invalid_field(
        field,
        format!("{field} must be an ISO 8601 date or date-time"),
    ))
}

/// The raw session filters of a query string.
#[derive(Debug, Default, Clone)]
pub struct RawFilter<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub agent_config_id: Option<i64>,
    pub status: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub disposition: Option<&'a str>,
}

/// Validates filters: `from` inclusive, `to` inclusive (a date: through
/// its end), status active or completed.
pub fn filter(raw: &RawFilter<'_>) -> ApiResult<SessionFilter> {
    let status = raw
        .status
        .map(|v| {
            sessions::SessionStatus::parse(v).ok_or_else(|| {
                ApiError::invalid_field("status", "status must be active or completed")
            })
        })
        .transpose()?;
    let text = |field: &str, v: Option<&str>| crate::validate::opt_text(field, v, 100);
    let from = raw
        .from
        .map(|v| parse_time("from", v).map(|(t, _)| t))
        .transpose()?;
    let to = raw
        .to
        .map(|v| {
            parse_time("to", v).map(|(t, date)| match date {
                true => t + chrono::Duration::days(1),
                false => t + chrono::Duration::milliseconds(1),
            })
        })
        .transpose()?;
    Ok(SessionFilter {
        from,
        to,
        agent_config_id: raw.agent_config_id,
        status,
        tag: text("tag", raw.tag)?,
        disposition: text("disposition", raw.disposition)?,
    })
}

/// A search hit as returned.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TranscriptHit {
    pub session_id: i64,
    pub room_name: String,
    pub agent_config_id: Option<i64>,
    pub session_started_at: DateTime<Utc>,
    /// agent, user or system.
    pub speaker: String,
    /// Offset of the line in the call, milliseconds.
    pub timestamp_ms: i64,
    /// The same offset as `[mm:ss]`.
    #[schema(example = "[01:05]")]
    pub offset: String,
    /// The matching text with hits in `<mark>…</mark>` (the line's text is
    /// not HTML-escaped).
    pub snippet: String,
    /// Relevance (higher is better).
    pub rank: f64,
}

/// Response of `GET /api/v1/transcripts/search`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub query: String,
    pub results: Vec<TranscriptHit>,
    /// Matching lines (a lower bound when `total_is_capped`).
    pub total: i64,
    /// True when more lines matched than are ranked.
    pub total_is_capped: bool,
    pub page: i64,
    pub per_page: i64,
}

/// Searches the final lines of a project's sessions.
pub async fn search(
    state: &AppState,
    project_id: i64,
    q: &str,
    f: &SessionFilter,
    speaker: Option<&str>,
    page: crate::validate::Page,
) -> ApiResult<SearchPage> {
    let mut conn = state.pool.get().await?;
    let hits = store::search(
        &mut conn,
        project_id,
        q,
        f,
        speaker,
        page.per_page,
        page.offset(),
    )
    .await?;
    let total = match hits.first() {
        Some(h) => h.total,
        // A page past the last hit: the count comes with the first one.
        None if page.offset() > 0 => store::search(&mut conn, project_id, q, f, speaker, 1, 0)
            .await?
            .first()
            .map_or(0, |h| h.total),
        None => 0,
    };
    Ok(SearchPage {
        query: q.to_owned(),
        total,
        total_is_capped: total >= store::MAX_CANDIDATES,
        page: page.page,
        per_page: page.per_page,
        results: hits
            .into_iter()
            .map(|h| TranscriptHit {
                offset: sessions::stamp(h.timestamp_ms),
                session_id: h.session_id,
                room_name: h.room_name,
                agent_config_id: h.agent_config_id,
                session_started_at: h.session_started_at,
                speaker: h.speaker,
                timestamp_ms: h.timestamp_ms,
                snippet: h.snippet,
                rank: h.rank,
            })
            .collect(),
    })
}

/// A session's transcript in a text format (not JSON): the body.
pub fn render(format: Format, lines: &[Line]) -> String {
    match format {
        Format::Srt => formats::srt(lines),
        Format::Vtt => formats::vtt(lines),
        Format::Csv | Format::Json => formats::csv(lines),
    }
}

/// The sessions export's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV with a header.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

/// Sessions per page of the export.
pub const EXPORT_PAGE: i64 = 500;

const CSV_HEADER: &str = "id,room_name,agent_config_id,agent_name,status,session_type,caller_identity,started_at,ended_at,duration_seconds,message_count,cost_total,cost_llm,cost_stt,cost_tts,disposition,tags,notes,rating,summary\r\n";

fn csv_row(r: &ExportRow) -> String {
    let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or_default());
    let t = |v: &DateTime<Utc>| v.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
        r.id,
        csv_field(&r.room_name),
        r.agent_config_id.map(|v| v.to_string()).unwrap_or_default(),
        o(&r.agent_name),
        r.status,
        r.session_type,
        o(&r.caller_identity),
        t(&r.started_at),
        r.ended_at.as_ref().map(t).unwrap_or_default(),
        r.duration_seconds,
        r.message_count,
        r.cost_total,
        r.cost_llm,
        r.cost_stt,
        r.cost_tts,
        o(&r.disposition),
        csv_field(&r.tags.join(";")),
        o(&r.notes),
        r.rating.map(|v| v.to_string()).unwrap_or_default(),
        o(&r.summary),
    )
}

/// The export, streamed: one keyset page of [`EXPORT_PAGE`] sessions at a
/// time (a connection is held only while a page is read), so memory stays
/// flat whatever the period holds.
pub fn export(
    state: AppState,
    project_id: i64,
    f: SessionFilter,
    format: ExportFormat,
) -> impl Stream<Item = Result<Bytes, ApiError>> {
    let start = (state, f, Some(0_i64), format == ExportFormat::Csv);
    futures_util::stream::unfold(start, move |(state, f, after, header)| async move {
        let after = after?;
        let page = async {
            let mut conn = state.pool.get().await?;
            Ok::<_, ApiError>(
                store::export_page(&mut conn, project_id, after, &f, EXPORT_PAGE).await?,
            )
        }
        .await;
        let rows = match page {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "sessions export stopped");
                return Some((Err(e), (state, f, None, false)));
            }
        };
        let mut out = String::new();
        if header {
            out.push_str(CSV_HEADER);
        }
        for r in &rows {
            match format {
                ExportFormat::Csv => out.push_str(&csv_row(r)),
                ExportFormat::JsonLines => {
                    out.push_str(&serde_json::to_string(r).unwrap_or_default());
                    out.push('\n');
                }
            }
        }
        let next = match rows.last() {
            Some(last) if rows.len() as i64 == EXPORT_PAGE => Some(last.id),
            _ => None,
        };
        if out.is_empty() {
            return None;
        }
        Some((Ok(Bytes::from(out)), (state, f, next, false)))
    })
}

/// How long `transcript.interim` events are kept: they only feed monitor
/// sockets, which read them within moments.
pub const INTERIM_EVENT_RETENTION_SECS: i64 = 600;

/// Deletes interim transcript events older than
/// [`INTERIM_EVENT_RETENTION_SECS`], 10,000 per statement, at most 100
/// statements per call.
pub async fn purge_interim_events(state: &AppState) -> ApiResult<usize> {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    let mut conn = state.pool.get().await?;
    let mut deleted = 0;
    for _ in 0..100 {
        let n = diesel::sql_query(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events WHERE event_type = 'transcript.interim'
                   AND created_at < now() - make_interval(secs => $1::bigint)
                 LIMIT 10000)",
        )
        .bind::<BigInt, _>(INTERIM_EVENT_RETENTION_SECS)
        .execute(&mut conn)
        .await?;
        deleted += n;
        if n < 10_000 {
            break;
        }
    }
    Ok(deleted)
}
