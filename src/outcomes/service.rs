//! Call outcome rules: a disposition from the project's list (a default
//! list until the project sets its own), up to [`MAX_TAGS`] tags, notes and
//! a 1–5 rating; every change is one `session.updated` event in the
//! transaction that makes it.

use super::store;
use crate::db::sessions::Session;
use crate::error::{ApiError, ApiResult};
use crate::events;
use crate::state::AppState;
use crate::validate;
use diesel_async::AsyncConnection;
use serde_json::json;

/// The dispositions of a project that set none.
pub const DEFAULT_DISPOSITIONS: [&str; 6] = [
    "resolved",
    "escalated",
    "callback_requested",
    "voicemail",
    "no_answer",
    "spam",
];
/// Tags per session at most.
pub const MAX_TAGS: usize = 20;
/// Dispositions per project at most.
pub const MAX_DISPOSITIONS: usize = 50;

/// A change: absent fields stay; `Some(None)` clears.
#[derive(Debug, Default, Clone)]
pub struct Change {
    pub disposition: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub notes: Option<Option<String>>,
    pub rating: Option<Option<i64>>,
}

/// The project's dispositions and whether they are the default list.
pub async fn dispositions(state: &AppState, project_id: i64) -> ApiResult<(Vec<String>, bool)> {
    let mut conn = state.pool.get().await?;
    Ok(match store::dispositions(&mut conn, project_id).await? {
        Some(list) => (list, false),
        None => (
            DEFAULT_DISPOSITIONS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            true,
        ),
    })
}

/// A clean list: trimmed, 1–64 characters each, no repeats, 1 to
/// [`MAX_DISPOSITIONS`].
pub fn clean_dispositions(list: &[String]) -> ApiResult<Vec<String>> {
    if list.is_empty() || list.len() > MAX_DISPOSITIONS {
        return Err(ApiError::invalid_field(
            "dispositions",
            format!("dispositions must hold 1 to {MAX_DISPOSITIONS} names"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for d in list {
        validate::no_nul("dispositions", d)?;
        let d = validate::text("dispositions", d, 64)?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Replaces the project's dispositions (sessions keep what they have).
pub async fn set_dispositions(
    state: &AppState,
    project_id: i64,
    list: &[String],
) -> ApiResult<Vec<String>> {
    let list = clean_dispositions(list)?;
    let mut conn = state.pool.get().await?;
    store::set_dispositions(&mut conn, project_id, &list).await?;
    Ok(list)
}

fn clean_tags(tags: &[String]) -> ApiResult<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_field(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        validate::no_nul("tags", t)?;
        let t = validate::text("tags", t, 50)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Applies a change to a session of the project; emits `session.updated`
/// with the fields that changed (none changed: no event).
pub async fn update(
    state: &AppState,
    project_id: i64,
    session_id: i64,
    change: Change,
) -> ApiResult<Session> {
    let (allowed, _) = dispositions(state, project_id).await?;
    if let Some(Some(d)) = &change.disposition {
        validate::no_nul("disposition", d)?;
        if !allowed.contains(d) {
            return Err(ApiError::BadRequest {
                message: "disposition must be one of the project's dispositions".into(),
                details: Some(json!({"field": "disposition", "allowed": allowed})),
            });
        }
    }
    if let Some(Some(r)) = change.rating
        && !(1..=5).contains(&r)
    {
        return Err(ApiError::invalid_field(
            "rating",
            "rating must be an integer from 1 to 5",
        ));
    }
    let tags = change.tags.as_deref().map(clean_tags).transpose()?;
    let notes = match &change.notes {
        Some(Some(n)) => {
            validate::no_nul("notes", n)?;
            Some(Some(validate::text("notes", n, 10_000)?))
        }
        Some(None) => Some(None),
        None => None,
    };
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let current = store::lock(conn, project_id, session_id)
            .await?
            .ok_or_else(|| ApiError::not_found("Session"))?;
        let disposition = match &change.disposition {
            Some(d) => d.clone(),
            None => current.disposition.clone(),
        };
        let tags = tags.unwrap_or_else(|| current.tags.clone());
        let notes = notes.unwrap_or_else(|| current.notes.clone());
        let rating = match change.rating {
            Some(r) => r.map(|r| r as i16),
            None => current.rating,
        };
        let mut changed = Vec::new();
        if disposition != current.disposition {
            changed.push("disposition");
        }
        if tags != current.tags {
            changed.push("tags");
        }
        if notes != current.notes {
            changed.push("notes");
        }
        if rating != current.rating {
            changed.push("rating");
        }
        if changed.is_empty() {
            return Ok(current);
        }
        let updated = store::set_outcome(
            conn,
            current.id,
            disposition.as_deref(),
            &tags,
            notes.as_deref(),
            rating,
        )
        .await?;
        events::emit(
            conn,
            project_id,
            "session.updated",
            json!({
                "session_id": updated.id,
                "room_name": updated.room_name,
                "disposition": updated.disposition,
                "tags": updated.tags,
                "notes": updated.notes,
                "rating": updated.rating,
                "changed": changed,
            }),
        )
        .await?;
        Ok(updated)
    })
    .await
}
