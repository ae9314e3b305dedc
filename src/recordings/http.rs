//! The recording endpoints: parse → [`super::service`] → respond.

use super::range::{RangeReq, parse_range};
use super::service::{self, base_dir, content_type, is_running, lies_under};
use super::store::{self, Filter, Recording, RecordingStatus};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::events::emit;
use crate::livekit::names::RoomName;
use crate::rooms::http::RoomPath;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Body of `POST /rooms/:roomName/recordings/start` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartIn {
    /// `ogg` (default, Ogg/Opus), `mp4` (Opus in MP4) or `wav` (PCM).
    /// Real LiveKit Egress writes ogg and mp4; the built-in simulator all
    /// three.
    #[schema(example = "ogg")]
    pub format: Option<String>,
}

/// Body of `POST /rooms/:roomName/recordings/stop` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopIn {
    /// Stop this egress; all active recordings of the room when omitted.
    #[schema(example = "EG_abc123")]
    pub egress_id: Option<String>,
}

/// A recording as started.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingBrief {
    #[schema(example = 7)]
    pub id: i64,
    #[schema(example = "EG_abc123")]
    pub egress_id: String,
    /// Full (prefixed) room name.
    #[schema(example = "proj_my-room")]
    pub room_name: String,
    #[schema(example = "ogg")]
    pub format: String,
    /// recording, completed or error.
    #[schema(example = "recording")]
    pub status: String,
}

impl From<&Recording> for RecordingBrief {
    fn from(r: &Recording) -> Self {
        Self {
            id: r.id,
            egress_id: r.egress_id.clone(),
            room_name: r.room_name.clone(),
            format: r.format.clone(),
            status: r.status.as_str().to_owned(),
        }
    }
}

/// `{"success": true, "recording": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StartOut {
    pub success: bool,
    pub recording: RecordingBrief,
}

/// What a stop request stopped.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StopOut {
    pub success: bool,
    /// The recordings asked to stop; each turns `completed` (or `error`)
    /// when LiveKit reports the end of its egress.
    pub stopped: Vec<RecordingBrief>,
    #[schema(example = "1 recording stopped")]
    pub message: String,
}

/// A recording in full.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingOut {
    #[schema(example = 7)]
    pub id: i64,
    #[schema(example = "EG_abc123")]
    pub egress_id: String,
    #[schema(example = "proj_my-room")]
    pub room_name: String,
    #[schema(example = "ogg")]
    pub format: String,
    /// recording, completed or error.
    #[schema(example = "completed")]
    pub status: String,
    /// Bytes (completed recordings).
    #[schema(example = 48213)]
    pub size_bytes: Option<i64>,
    #[schema(example = 12.5)]
    pub duration_seconds: Option<f64>,
    /// Why the egress failed (status error).
    pub error: Option<String>,
    /// `audio/ogg`, `audio/mp4` or `audio/wav`.
    #[schema(example = "audio/ogg")]
    pub content_type: String,
    #[schema(example = "/api/v1/recordings/7/download")]
    pub download_url: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&Recording> for RecordingOut {
    fn from(r: &Recording) -> Self {
        Self {
            id: r.id,
            egress_id: r.egress_id.clone(),
            room_name: r.room_name.clone(),
            format: r.format.clone(),
            status: r.status.as_str().to_owned(),
            size_bytes: r.size_bytes,
            duration_seconds: r.duration_seconds,
            error: r.error.clone(),
            content_type: content_type(&r.format).to_owned(),
            download_url: format!("/api/v1/recordings/{}/download", r.id),
            started_at: r.started_at,
            ended_at: r.ended_at,
            created_at: r.created_at,
        }
    }
}

/// `{"recording": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingDetail {
    pub recording: RecordingOut,
}

/// A page of recordings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordingPage {
    pub recordings: Vec<RecordingOut>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub total_pages: i64,
}

/// Filters of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordingQuery {
    /// Page number (default 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// Room name (with or without the project prefix).
    #[param(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9_.:@+-]+$")]
    pub room_name: Option<String>,
    /// recording, completed or error.
    #[param(value_type = Option<RecordingStatusFilter>)]
    pub status: Option<String>,
}

/// The statuses of a recording (the `status` filter).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RecordingStatusFilter {
    /// The egress is writing.
    Recording,
    /// The file is complete.
    Completed,
    /// The egress failed.
    Error,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RecordingPath {
    #[serde(rename = "recordingId")]
    #[param(rename = "recordingId", example = 7)]
    pub recording_id: i64,
}

fn room_of(prefix: &str, input: &str) -> ApiResult<RoomName> {
    RoomName::parse(prefix, input)
        .map_err(|_| ApiError::invalid_field("roomName", "invalid room name"))
}

#[utoipa::path(
    post, path = "/api/v1/rooms/{roomName}/recordings/start", tag = "Recordings",
    params(RoomPath),
    request_body(content = Option<StartIn>, description = "Optional"),
    responses(
        (status = 201, description = "Recording", body = StartOut),
        (status = 400, description = "Invalid format, or one the egress cannot write", body = crate::error::ErrorBody),
        (status = 404, description = "The room does not exist", body = crate::error::ErrorBody),
        (status = 429, description = "Recording quota reached", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn start(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RoomPath>,
    body: crate::validate::OptionalJson<StartIn>,
) -> ApiResult<HttpResponse> {
    state.livekit()?;
    let room = room_of(&auth.project.room_prefix, &path.room_name)?;
    let body = body.or_default();
    let format = body.format.as_deref().unwrap_or("ogg").to_ascii_lowercase();
    let offered = &state.settings.recording_formats;
    if !offered.contains(&format) {
        return Err(ApiError::BadRequest {
            message: format!("format must be one of: {}", offered.join(", ")),
            details: Some(json!({ "field": "format", "allowed": offered })),
        });
    }
    let recording = service::start(&state, &auth.project, &room, &format).await?;
    Ok(HttpResponse::Created().json(StartOut {
        success: true,
        recording: RecordingBrief::from(&recording),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/rooms/{roomName}/recordings/stop", tag = "Recordings",
    params(RoomPath),
    request_body(content = Option<StopIn>, description = "Optional"),
    responses(
        (status = 200, description = "Stopped (the end arrives by webhook)", body = StopOut),
        (status = 404, description = "No such recording in this room", body = crate::error::ErrorBody),
        (status = 409, description = "That recording already ended", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn stop(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RoomPath>,
    body: crate::validate::OptionalJson<StopIn>,
) -> ApiResult<HttpResponse> {
    let lk = state.livekit()?;
    let room = room_of(&auth.project.room_prefix, &path.room_name)?;
    let body = body.or_default();
    let mut conn = state.pool.get().await?;
    let targets = match body.egress_id.as_deref() {
        Some(id) => {
            let row = store::by_egress(&mut conn, auth.project.id, id)
                .await?
                .filter(|r| r.room_name == room.full)
                .ok_or_else(|| ApiError::not_found("Recording"))?;
            if !is_running(&row) {
                return Err(ApiError::conflict(format!(
                    "Recording {} already ended ({})",
                    row.id,
                    row.status.as_str()
                )));
            }
            vec![row]
        }
        None => store::active_in_room(&mut conn, auth.project.id, &room.full).await?,
    };
    drop(conn);
    let mut stopped = Vec::with_capacity(targets.len());
    for row in &targets {
        match lk.call(lk.egress.stop_egress(&row.egress_id)).await {
            Ok(_) => {}
            // Already ending or gone in LiveKit: its end is on the way.
            Err(ApiError::Conflict { .. } | ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        stopped.push(RecordingBrief::from(row));
    }
    let message = match stopped.len() {
        0 => "No active recordings in this room".to_owned(),
        1 => "1 recording stopped".to_owned(),
        n => format!("{n} recordings stopped"),
    };
    Ok(HttpResponse::Ok().json(StopOut {
        success: true,
        stopped,
        message,
    }))
}

#[utoipa::path(
    get, path = "/api/v1/recordings", tag = "Recordings",
    params(RecordingQuery),
    responses(
        (status = 200, description = "A page", body = RecordingPage),
        (status = 400, description = "Bad filter", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    auth: Auth,
    state: web::Data<AppState>,
    q: web::Query<RecordingQuery>,
) -> ApiResult<HttpResponse> {
    let pg = crate::validate::Page::parse(q.page, q.per_page, 25)?;
    let (page, per_page) = (pg.page, pg.per_page);
    let status = match q.status.as_deref() {
        Some(s) => Some(RecordingStatus::listed(s).ok_or_else(|| {
            ApiError::invalid_field("status", "status must be recording, completed or error")
        })?),
        None => None,
    };
    let room = match q.room_name.as_deref() {
        Some(r) => Some(
            RoomName::parse(&auth.project.room_prefix, r)
                .map_err(|_| ApiError::invalid_field("room_name", "invalid room name"))?,
        ),
        None => None,
    };
    let filter = Filter {
        room_name: room.as_ref().map(|r| r.full.as_str()),
        status,
    };
    let mut conn = state.pool.get().await?;
    let (rows, total) = store::page(&mut conn, auth.project.id, &filter, page, per_page).await?;
    Ok(HttpResponse::Ok().json(RecordingPage {
        recordings: rows.iter().map(RecordingOut::from).collect(),
        total,
        page,
        per_page,
        total_pages: pg.total_pages(total),
    }))
}

/// The project's recording: 404 unknown, 403 another project's.
async fn owned(state: &AppState, auth: &Auth, id: i64) -> ApiResult<Recording> {
    let mut conn = state.pool.get().await?;
    let row = store::find_any(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Recording does not exist".into()))?;
    if row.project_id != auth.project.id {
        return Err(ApiError::Forbidden(
            "Recording belongs to a different project".into(),
        ));
    }
    Ok(row)
}

#[utoipa::path(
    get, path = "/api/v1/recordings/{recordingId}", tag = "Recordings",
    params(RecordingPath),
    responses(
        (status = 200, description = "The recording", body = RecordingDetail),
        (status = 403, description = "Recording belongs to different project", body = crate::error::ErrorBody),
        (status = 404, description = "Recording does not exist", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn detail(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RecordingPath>,
) -> ApiResult<HttpResponse> {
    let row = owned(&state, &auth, path.recording_id).await?;
    Ok(HttpResponse::Ok().json(RecordingDetail {
        recording: RecordingOut::from(&row),
    }))
}

/// Whether `path` is absolute, under `base` and free of `..`.
/// The stored path, refused unless it lies under `recordings_dir`.
fn stored_path(state: &AppState, row: &Recording) -> ApiResult<PathBuf> {
    let base = base_dir(state)?;
    let path = Path::new(&row.file_path);
    if !lies_under(path, &base) {
        tracing::error!(recording = row.id, "recording path outside recordings_dir");
        return Err(ApiError::NotFound("Recording file is missing".into()));
    }
    Ok(path.to_path_buf())
}

#[utoipa::path(
    get, path = "/api/v1/recordings/{recordingId}/download", tag = "Recordings",
    params(RecordingPath, ("Range" = Option<String>, Header, description = "One byte range: bytes=0-99, bytes=100-, bytes=-500")),
    responses(
        (status = 200, description = "The audio file (audio/ogg, audio/mp4 or audio/wav)", content_type = "audio/ogg", body = Vec<u8>),
        (status = 206, description = "The requested range, with Content-Range", content_type = "audio/ogg", body = Vec<u8>),
        (status = 403, description = "Recording belongs to different project", body = crate::error::ErrorBody),
        (status = 404, description = "Recording (or its file) does not exist", body = crate::error::ErrorBody),
        (status = 409, description = "Still recording, or the recording failed", body = crate::error::ErrorBody),
        (status = 416, description = "Range not satisfiable (Content-Range: bytes */size)", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn download(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RecordingPath>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let row = owned(&state, &auth, path.recording_id).await?;
    match row.status {
        RecordingStatus::Completed => {}
        RecordingStatus::Recording | RecordingStatus::Starting => {
            return Err(ApiError::conflict(
                "Recording is still in progress; download it once it has completed",
            ));
        }
        _ => {
            return Err(ApiError::conflict(format!(
                "Recording failed and has no file: {}",
                row.error.as_deref().unwrap_or("unknown error")
            )));
        }
    }
    let file_path = stored_path(&state, &row)?;
    let mut file = tokio::fs::File::open(&file_path)
        .await
        .map_err(|_| ApiError::NotFound("Recording file is missing".into()))?;
    let meta = file.metadata().await.map_err(ApiError::internal)?;
    let len = meta.len();
    let modified = meta.modified().ok().map(DateTime::<Utc>::from);
    let etag = format!(
        "\"{}-{:x}-{:x}\"",
        row.id,
        len,
        modified.map(|m| m.timestamp_micros()).unwrap_or_default()
    );
    let last_modified = modified.map(|m| m.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    if req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut res = HttpResponse::NotModified();
        res.insert_header((header::ETAG, etag));
        return Ok(res.finish());
    }
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    // A Range with an If-Range that no longer matches gets the whole file.
    let if_range_ok = req
        .headers()
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = if if_range_ok {
        parse_range(range_header, len)
    } else {
        RangeReq::Full
    };
    let (status, start, count) = match range {
        RangeReq::Full => (actix_web::http::StatusCode::OK, 0, len),
        RangeReq::Part(a, b) => (actix_web::http::StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        RangeReq::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable { size: len });
        }
    };
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(ApiError::internal)?;
    }
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, content_type(&row.format)))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, etag))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"recording-{}.{}\"",
                row.id, row.format
            ),
        ))
        .no_chunking(count);
    if let Some(lm) = last_modified {
        res.insert_header((header::LAST_MODIFIED, lm));
    }
    if status == actix_web::http::StatusCode::PARTIAL_CONTENT {
        res.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", start + count - 1),
        ));
    }
    let stream = futures_util::stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let want = usize::try_from(left.min(64 * 1024)).unwrap_or(64 * 1024);
        let mut buf = vec![0u8; want];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok::<_, std::io::Error>(web::Bytes::from(buf)),
                    (file, left - n as u64),
                ))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    Ok(res.streaming(stream))
}

#[utoipa::path(
    delete, path = "/api/v1/recordings/{recordingId}", tag = "Recordings",
    params(RecordingPath),
    responses(
        (status = 200, description = "Deleted (stopped first when running)", body = crate::routes::SuccessMessage),
        (status = 403, description = "Recording belongs to different project", body = crate::error::ErrorBody),
        (status = 404, description = "Recording does not exist", body = crate::error::ErrorBody),
        (status = 503, description = "LiveKit unavailable", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn delete(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<RecordingPath>,
) -> ApiResult<HttpResponse> {
    let row = owned(&state, &auth, path.recording_id).await?;
    if is_running(&row) {
        let lk = state.livekit()?;
        match lk.call(lk.egress.stop_egress(&row.egress_id)).await {
            Ok(_) | Err(ApiError::Conflict { .. } | ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut conn = state.pool.get().await?;
    let project_id = auth.project.id;
    conn.transaction::<_, ApiError, _>(async |conn| {
        store::delete(conn, row.id).await?;
        if is_running(&row) {
            emit(
                conn,
                project_id,
                "recording.stopped",
                json!({
                    "room_name": row.room_name, "recording_id": row.id,
                    "egress_id": row.egress_id, "status": "deleted",
                }),
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    // The file may still be written by the egress that was just stopped;
    // the webhook of its end removes it then (the row is gone).
    if let Ok(file) = stored_path(&state, &row) {
        match tokio::fs::remove_file(&file).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(recording = row.id, error = %e, "could not delete a recording file")
            }
        }
    }
    Ok(HttpResponse::Ok().json(crate::routes::SuccessMessage {
        success: true,
        message: "Recording deleted".into(),
    }))
}
