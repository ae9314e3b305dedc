//! Recordings outside HTTP: the rules the API, the LiveKit webhook and the
//! reconciler share (the egress file named by its egress id once complete).

use crate::db::recordings::Recording;
use std::path::Path;

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
