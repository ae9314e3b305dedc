//! `POST /livekit/webhook`: where LiveKit sends its events.

use super::allow;
use crate::error::{ApiError, ApiResult};
use crate::livekit::webhook::{self, Outcome};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// The acknowledgement.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAck {
    /// processed, duplicate or ignored.
    #[schema(value_type = String, example = "processed")]
    pub outcome: Outcome,
}

/// Receive a LiveKit webhook (signed by LiveKit with the API secret).
#[utoipa::path(
    post, path = "/livekit/webhook", tag = "LiveKit",
    request_body(content = String, content_type = "application/webhook+json", description = "LiveKit WebhookEvent"),
    responses(
        (status = 200, description = "Accepted", body = WebhookAck),
        (status = 400, description = "The event holds a NUL (\\u0000) character, which cannot be stored", body = crate::error::ErrorBody),
        (status = 401, description = "Signature invalid", body = crate::error::ErrorBody),
    )
)]
pub async fn receive_livekit_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized("Missing LiveKit webhook signature".into()))?;
    let body = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("Webhook body is not UTF-8"))?;
    let outcome = webhook::receive(&state, body, auth).await?;
    Ok(HttpResponse::Ok().json(WebhookAck { outcome }))
}

/// Registers the route (outside `/api/v1`: LiveKit has no API key).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/livekit/webhook")
            .route(web::post().to(receive_livekit_webhook))
            .default_service(allow(&["POST"])),
    );
}
