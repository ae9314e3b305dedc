//! `livekit.Egress` (contract §4.2, §6.2 point 7): audio-only room-composite
//! egress to one file.
//!
//! - StartRoomCompositeEgress: the room must exist (`not_found`); exactly one
//!   file output; OGG (Ogg/Opus), MP4 (Opus in ISOBMFF) or, with
//!   `DEFAULT_FILETYPE` and a path ending in `.wav`, WAV (see `audio` for
//!   the codecs). MP3 is refused with `invalid_argument`. The egress is created
//!   `EGRESS_STARTING` (`egress_started`, answered) and goes `EGRESS_ACTIVE`
//!   at once (`egress_updated`).
//! - StopEgress: `EGRESS_ENDING` in the reply; the file is written (as long
//!   as the egress ran, at least 2 s and at most 30 s of audio) and the
//!   egress ends `EGRESS_COMPLETE` with its `file_results` (`egress_ended`).
//!   A write failure ends it `EGRESS_FAILED` with the error.
//! - Deleting a room completes its active egresses the same way.
//! - ListEgress honours `room_name`, `egress_id` and `active`.
//!
//! A relative `filepath` is taken under the simulator's recordings directory.
//! Timestamps are unix nanoseconds, as the egress service sets them.

use super::{Call, Handler};
use crate::embedded::livekit::audio::AudioFormat;
use crate::embedded::livekit::auth::Grant;
use crate::embedded::livekit::state::{Events, SimState, new_id, now_nanos};
use crate::embedded::livekit::twirp::TwirpError;
use crate::embedded::livekit::webhooks;
use actix_web::HttpResponse;
use livekit_protocol as proto;
use proto::EgressStatus;
use std::path::PathBuf;

type Reply = Result<HttpResponse, TwirpError>;

/// Shortest audio written, in ms.
const MIN_AUDIO_MS: u64 = 2_000;
/// Longest audio written, in ms.
const MAX_AUDIO_MS: u64 = 30_000;

/// An egress and the file it writes.
#[derive(Debug, Clone)]
pub struct EgressEntry {
    /// What LiveKit reports.
    pub info: proto::EgressInfo,
    /// Where the file goes.
    pub path: PathBuf,
    /// What is written there.
    pub format: AudioFormat,
}

/// The handler of an Egress method.
pub fn handler(method: &str) -> Option<Handler> {
    Some(match method {
        "StartRoomCompositeEgress" => start_room_composite,
        "StopEgress" => stop,
        "ListEgress" => list,
        _ => return None,
    })
}

fn is_active(status: i32) -> bool {
    status == EgressStatus::EgressStarting as i32
        || status == EgressStatus::EgressActive as i32
        || status == EgressStatus::EgressEnding as i32
}

/// The format for a file output, or why the simulator cannot write it.
fn format_of(out: &proto::EncodedFileOutput) -> Result<AudioFormat, TwirpError> {
    match proto::EncodedFileType::try_from(out.file_type) {
        Ok(proto::EncodedFileType::Ogg) => Ok(AudioFormat::Ogg),
        Ok(proto::EncodedFileType::Mp4) => Ok(AudioFormat::Mp4),
        Ok(proto::EncodedFileType::DefaultFiletype) => {
            if out.filepath.to_ascii_lowercase().ends_with(".wav") {
                Ok(AudioFormat::Wav)
            } else {
                Ok(AudioFormat::Ogg)
            }
        }
        _ => Err(TwirpError::invalid_argument(
            "this egress writes OGG (Opus), MP4 (Opus) or WAV audio files only",
        )),
    }
}

fn start_room_composite(call: &Call<'_>) -> Reply {
    let req: proto::RoomCompositeEgressRequest = call.decode()?;
    call.require(Grant::Record)?;
    let info = call.shared.update(|s, ev| {
        let room = s
            .room(&req.room_name)
            .ok_or_else(TwirpError::room_not_found)?
            .proto();
        let [out] = req.file_outputs.as_slice() else {
            return Err(TwirpError::invalid_argument(
                "this egress needs exactly one file output",
            ));
        };
        if !req.stream_outputs.is_empty()
            || !req.segment_outputs.is_empty()
            || !req.image_outputs.is_empty()
        {
            return Err(TwirpError::invalid_argument(
                "this egress supports file outputs only",
            ));
        }
        let format = format_of(out)?;
        let id = new_id("EG_");
        let ext = format.ext();
        let filepath = if out.filepath.is_empty() {
            format!("{}-{id}.{ext}", req.room_name)
        } else {
            out.filepath.clone()
        };
        let path = s.recordings_dir.join(&filepath);
        let now = now_nanos();
        let mut info = proto::EgressInfo {
            egress_id: id.clone(),
            room_id: room.sid.clone(),
            room_name: room.name.clone(),
            source_type: proto::EgressSourceType::Web as i32,
            status: EgressStatus::EgressStarting as i32,
            started_at: now,
            updated_at: now,
            request: Some(proto::egress_info::Request::RoomComposite(req.clone())),
            ..Default::default()
        };
        ev.push(webhooks::egress_event("egress_started", &info));
        let reply = info.clone();
        info.status = EgressStatus::EgressActive as i32;
        ev.push(webhooks::egress_event("egress_updated", &info));
        s.egresses.insert(id, EgressEntry { info, path, format });
        Ok(reply)
    })?;
    call.reply(&info)
}

fn stop(call: &Call<'_>) -> Reply {
    let req: proto::StopEgressRequest = call.decode()?;
    call.require(Grant::Record)?;
    let info = call.shared.update(|s, ev| {
        let entry = s
            .egresses
            .get(&req.egress_id)
            .ok_or_else(|| TwirpError::not_found("egress does not exist"))?;
        let status = entry.info.status;
        if status != EgressStatus::EgressStarting as i32
            && status != EgressStatus::EgressActive as i32
        {
            let name = EgressStatus::try_from(status)
                .map(|s| s.as_str_name())
                .unwrap_or("EGRESS_UNKNOWN");
            return Err(TwirpError::new(
                "failed_precondition",
                format!("egress with status {name} cannot be stopped"),
            ));
        }
        let mut reply = entry.info.clone();
        reply.status = EgressStatus::EgressEnding as i32;
        reply.updated_at = now_nanos();
        finish(s, &req.egress_id, None, ev);
        Ok(reply)
    })?;
    call.reply(&info)
}

fn list(call: &Call<'_>) -> Reply {
    let req: proto::ListEgressRequest = call.decode()?;
    call.require(Grant::Record)?;
    let items = call.shared.read(|s| {
        if !req.egress_id.is_empty() && !s.egresses.contains_key(&req.egress_id) {
            return Err(TwirpError::not_found("egress does not exist"));
        }
        Ok(s.egresses
            .values()
            .map(|e| &e.info)
            .filter(|i| req.egress_id.is_empty() || i.egress_id == req.egress_id)
            .filter(|i| req.room_name.is_empty() || i.room_name == req.room_name)
            .filter(|i| !req.active || is_active(i.status))
            .cloned()
            .collect())
    })?;
    call.reply(&proto::ListEgressResponse {
        items,
        next_page_token: None,
    })
}

/// Ends an active egress: writes its file and posts `egress_ended`
/// (`EGRESS_COMPLETE`), or, with `failure` or when the write fails,
/// `EGRESS_FAILED` with the error. Nothing for an unknown or ended egress.
pub fn finish(s: &mut SimState, egress_id: &str, failure: Option<&str>, ev: &mut Events) {
    let Some(entry) = s.egresses.get_mut(egress_id) else {
        return;
    };
    if !is_active(entry.info.status) {
        return;
    }
    let now = now_nanos();
    let info = &mut entry.info;
    info.ended_at = now;
    info.updated_at = now;
    let written = match failure {
        Some(reason) => Err(reason.to_owned()),
        None => {
            let elapsed_ms = u64::try_from((now - info.started_at) / 1_000_000).unwrap_or(0);
            let ms = elapsed_ms.clamp(MIN_AUDIO_MS, MAX_AUDIO_MS);
            entry.format.encode(ms).and_then(|bytes| {
                write_file(&entry.path, &bytes)
                    .map(|()| (ms, bytes.len()))
                    .map_err(|e| format!("could not write {}: {e}", entry.path.display()))
            })
        }
    };
    match written {
        Ok((ms, size)) => {
            info.status = EgressStatus::EgressComplete as i32;
            let duration = i64::try_from(ms).unwrap_or(0) * 1_000_000;
            info.file_results = vec![proto::FileInfo {
                filename: entry
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                started_at: info.started_at,
                ended_at: now,
                duration,
                size: i64::try_from(size).unwrap_or(i64::MAX),
                location: entry.path.to_string_lossy().into_owned(),
            }];
        }
        Err(reason) => {
            info.status = EgressStatus::EgressFailed as i32;
            info.error = reason;
            info.error_code = 500;
        }
    }
    ev.push(webhooks::egress_event("egress_ended", info));
}

fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
}

/// Completes the active egresses of a room (it was deleted).
pub fn finish_room(s: &mut SimState, room: &str, ev: &mut Events) {
    let ids: Vec<String> = s
        .egresses
        .values()
        .filter(|e| e.info.room_name == room && is_active(e.info.status))
        .map(|e| e.info.egress_id.clone())
        .collect();
    for id in ids {
        finish(s, &id, None, ev);
    }
}
