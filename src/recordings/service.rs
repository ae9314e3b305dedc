//! The rules of recordings: starting an egress (reserve → commit → call
//! LiveKit → confirm) and, shared with the LiveKit webhook and the
//! reconciler, the egress file named by its egress id once complete.

use super::store::{self, NewRecording, Recording, RecordingStatus};
use crate::auth::ProjectInfo;
use crate::error::{ApiError, ApiResult};
use crate::events::emit;
use crate::jobs::{self, Job};
use crate::limits::quota::{self, Resource};
use crate::livekit::names::RoomName;
use crate::livekit::proto;
use crate::state::AppState;
use diesel_async::AsyncConnection;
use livekit_api::services::egress::{
    EgressListFilter, EgressListOptions, EgressOutput, RoomCompositeOptions,
};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The file formats: (stored name, LiveKit file type, extension).
pub fn file_type(format: &str) -> (proto::EncodedFileType, &'static str) {
    match format {
        "ogg" => (proto::EncodedFileType::Ogg, "ogg"),
        "mp4" => (proto::EncodedFileType::Mp4, "mp4"),
        // Only the simulator writes WAV (configured in recording_formats):
        // LiveKit Egress has no WAV file type, so the path's extension says it.
        _ => (proto::EncodedFileType::DefaultFiletype, "wav"),
    }
}

/// The MIME type of a stored format.
pub fn content_type(format: &str) -> &'static str {
    match format {
        "mp4" => "audio/mp4",
        "wav" => "audio/wav",
        _ => "audio/ogg",
    }
}

/// `recordings_dir` as an absolute path (LiveKit egress gets absolute paths).
pub fn base_dir(state: &AppState) -> ApiResult<PathBuf> {
    std::path::absolute(&state.settings.recordings_dir).map_err(ApiError::internal)
}

/// A random key for the file name used while the egress runs (the egress
/// id is not known before the start call).
fn file_key() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect()
}

/// Starts recording a room (`format` one of the offered ones):
///
/// 1. one short transaction takes the quota and reserves the row
///    (`starting`, hidden from the API);
/// 2. LiveKit starts the egress, with no transaction or connection held;
/// 3. a second short transaction records the egress id (`recording`) and
///    emits `recording.started`.
///
/// When LiveKit fails the reservation is dropped (and its quota with it):
/// the caller gets LiveKit's error and nothing is left behind. A settle
/// job committed with the reservation ([`settle`]) adopts the egress or
/// drops the reservation when this process dies between the steps.
pub async fn start(
    state: &AppState,
    project: &ProjectInfo,
    room: &RoomName,
    format: &str,
) -> ApiResult<Recording> {
    let lk = state.livekit()?;
    let (file_type, ext) = file_type(format);
    let key = file_key();
    // Room names hold no '/', and the prefix keeps them from being "." or "..".
    let file = base_dir(state)?
        .join(project.id.to_string())
        .join(&room.full)
        .join(format!("pending-{key}.{ext}"));
    let filepath = file.to_string_lossy().into_owned();
    let placeholder = format!("starting:{key}");
    let mut conn = state.pool.get().await?;
    let settings = &state.settings;
    let (reserved, job) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            quota::reserve(
                conn,
                &settings.plans,
                &settings.upgrade_url,
                project,
                Resource::Recordings,
            )
            .await?;
            let new = NewRecording {
                project_id: project.id,
                room_name: &room.full,
                egress_id: &placeholder,
                format,
                file_path: &filepath,
            };
            let id = store::reserve(conn, &new).await?;
            let settle = Job::SettleRecording { recording_id: id };
            let job = jobs::enqueue(conn, &settle, settle.grace(settings)).await?;
            Ok((id, job))
        })
        .await?;
    drop(conn);
    let output = proto::EncodedFileOutput {
        file_type: file_type as i32,
        filepath: filepath.clone(),
        ..Default::default()
    };
    let options = RoomCompositeOptions {
        audio_only: true,
        ..Default::default()
    };
    let started = lk
        .call(lk.egress.start_room_composite_egress(
            &room.full,
            vec![EgressOutput::File(output)],
            options,
        ))
        .await;
    let info = match started {
        Ok(info) => info,
        Err(e) => {
            release(state, reserved, job).await;
            return Err(e.or_not_found(&format!("Room {} not found", room.short)));
        }
    };
    let confirmed = confirm(state, project.id, room, (reserved, job), &info.egress_id).await;
    match confirmed {
        Ok(row) => Ok(row),
        Err(e) => {
            // Not recorded: the egress goes too, so that none runs unseen.
            if let Err(stop) = lk.call(lk.egress.stop_egress(&info.egress_id)).await {
                tracing::warn!(egress = %info.egress_id, error = %stop, "could not stop an unrecorded egress");
            }
            release(state, reserved, job).await;
            Err(e)
        }
    }
}

/// The second transaction of [`start`]: the egress id, `recording.started`,
/// the settle job cancelled.
async fn confirm(
    state: &AppState,
    project_id: i64,
    room: &RoomName,
    (id, job): (i64, i64),
    egress_id: &str,
) -> ApiResult<Recording> {
    let mut conn = state.pool.get().await?;
    let row = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let row = store::confirm(conn, id, egress_id).await?.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("a recording reservation went missing"))
            })?;
            jobs::cancel(conn, job).await?;
            emit(
                conn,
                project_id,
                "recording.started",
                json!({
                    "room_name": room.full, "room": room.short, "recording_id": row.id,
                    "egress_id": row.egress_id, "format": row.format, "status": row.status,
                }),
            )
            .await?;
            Ok(row)
        })
        .await?;
    state.events_wake.committed();
    Ok(row)
}

/// Drops a reservation whose egress did not start, and its settle job
/// (logged when it cannot: the job settles it).
async fn release(state: &AppState, id: i64, job: i64) {
    let released = async {
        let mut conn = state.pool.get().await?;
        store::release(&mut conn, id).await?;
        jobs::cancel(&mut conn, job).await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = released.await {
        tracing::warn!(recording = id, error = %e, "could not release a recording reservation");
    }
}

/// The settle job of a recording reservation ([`Job::SettleRecording`]),
/// when it is still `starting`: the egress LiveKit runs to its file is
/// adopted as the start would have confirmed it, with
/// `recording.started` (`recording_adopted`), else the reservation is
/// dropped, its quota with it (`recording_released`).
pub async fn settle(state: &AppState, id: i64) -> anyhow::Result<Option<&'static str>> {
    let row = {
        let mut conn = state.pool.get().await?;
        store::reservation(&mut conn, id).await?
    };
    let Some(row) = row else {
        return Ok(None);
    };
    let lk = state.livekit().map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = EgressListOptions {
        filter: EgressListFilter::Room(row.room_name.clone()),
        ..Default::default()
    };
    let egresses = lk
        .call(lk.egress.list_egress(options))
        .await
        .map_err(|e| anyhow::anyhow!("ListEgress: {e}"))?;
    let writes_file = |e: &proto::EgressInfo| match &e.request {
        Some(proto::egress_info::Request::RoomComposite(r)) => {
            r.file_outputs.iter().any(|f| f.filepath == row.file_path)
        }
        _ => false,
    };
    let mut conn = state.pool.get().await?;
    let Some(egress) = egresses.iter().find(|e| writes_file(e)) else {
        return Ok(store::release(&mut conn, row.id)
            .await?
            .then_some("recording_released"));
    };
    let adopted = conn
        .transaction::<_, diesel::result::Error, _>(async |conn| {
            let Some(r) = store::confirm(conn, row.id, &egress.egress_id).await? else {
                return Ok(false);
            };
            // As the start would have reported it.
            let room = crate::livekit::names::prefix_of(&r.room_name)
                .and_then(|p| RoomName::from_full(p, &r.room_name))
                .map(|n| n.short);
            let data = json!({
                "room_name": r.room_name, "room": room, "recording_id": r.id,
                "egress_id": r.egress_id, "format": r.format, "status": r.status,
            });
            emit(conn, r.project_id, "recording.started", data).await?;
            Ok(true)
        })
        .await?;
    if adopted {
        state.events_wake.committed();
    }
    Ok(adopted.then_some("recording_adopted"))
}

/// Whether a recording is still running.
pub fn is_running(row: &Recording) -> bool {
    row.status == RecordingStatus::Recording
}

/// Whether `path` is absolute, under `base`, and has no `..`.
pub fn lies_under(path: &Path, base: &Path) -> bool {
    path.is_absolute()
        && path.starts_with(base)
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

/// Renames a completed recording's file to `<egress id>.<ext>` beside it
/// (`<recordings_dir>/<project>/<room>/`) and returns the new path; `None`
/// when it stays where it is (a path or egress id that does not qualify,
/// or a file this process cannot see, e.g. an egress uploading elsewhere).
/// Safe to repeat: a file already renamed is found at its new path.
pub async fn settle_file(settings: &crate::config::Settings, row: &Recording) -> Option<String> {
    let project_dir = std::path::absolute(&settings.recordings_dir)
        .ok()?
        .join(row.project_id.to_string());
    let from = Path::new(&row.file_path);
    let safe_id = !row.egress_id.is_empty()
        && row
            .egress_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !safe_id || !lies_under(from, &project_dir) {
        return None;
    }
    let to = from
        .parent()?
        .join(format!("{}.{}", row.egress_id, row.format));
    if to == from {
        return None;
    }
    match tokio::fs::rename(from, &to).await {
        Ok(()) => Some(to.to_string_lossy().into_owned()),
        Err(_) if tokio::fs::try_exists(&to).await.unwrap_or(false) => {
            Some(to.to_string_lossy().into_owned())
        }
        Err(e) => {
            tracing::warn!(recording = row.id, error = %e, "could not name a recording file by its egress id");
            None
        }
    }
}
