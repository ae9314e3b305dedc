//! The rules of webhook endpoints: what a URL and a subscription may be.

use crate::error::{ApiError, ApiResult};
use crate::events::{self, ssrf};
use crate::state::AppState;
use serde_json::json;

/// The subscribed event types: known ones, sorted, without duplicates.
pub fn event_types(list: Option<Vec<String>>) -> ApiResult<Vec<String>> {
    let mut list = list.unwrap_or_default();
    if let Some(bad) = list.iter().find(|t| !events::is_known(t)) {
        return Err(ApiError::BadRequest {
            message: format!("Unknown event type `{bad}`"),
            details: Some(json!({ "field": "event_types", "allowed": events::EVENT_TYPES })),
        });
    }
    list.sort();
    list.dedup();
    Ok(list)
}

/// A webhook URL: at most 2048 characters, passing the SSRF guard.
pub async fn checked_url(state: &AppState, url: &str) -> ApiResult<String> {
    let url = url.trim();
    if url.len() > 2048 {
        return Err(ApiError::invalid_field(
            "url",
            "url must be at most 2048 characters",
        ));
    }
    ssrf::check_url(url, state.webhook_allow())
        .await
        .map_err(|why| ApiError::invalid_field("url", why))?;
    Ok(url.to_owned())
}
