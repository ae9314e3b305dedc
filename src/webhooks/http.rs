//! The webhook endpoints: parse → [`super::service`] / [`super::store`] →
//! respond.

use super::service::{checked_url, event_types};
use super::store::{
    self, Attempt, Delivery, DeliveryStatus, Endpoint, EndpointChanges, NewEndpoint,
};
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::events::{self, signing};
use crate::limits::quota::{self, Resource};
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A webhook endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "https://example.com/hooks/voxplane")]
    pub url: String,
    pub description: String,
    /// Subscribed event types; empty = all.
    pub event_types: Vec<String>,
    pub is_active: bool,
    /// Why it was disabled, if it was.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookOut {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            is_active: e.is_active,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A new endpoint with its secret (shown once).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// `whsec_…` — store it now; it is not shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// `{"webhook": …}` at creation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookCreatedResponse {
    pub webhook: WebhookCreated,
}

/// `{"webhook": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookResponse {
    pub webhook: WebhookOut,
}

/// `{"webhooks": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookOut>,
}

/// Body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/hooks/voxplane", "event_types": ["session.started", "session.ended"]}))]
pub struct WebhookIn {
    /// http(s) URL; internal addresses are refused.
    pub url: String,
    pub description: Option<String>,
    /// Subset of the event catalogue; empty or absent = all.
    pub event_types: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

/// Body of `PATCH /api/v1/webhooks/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"is_active": true}))]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Re-enabling clears the disabled reason.
    pub is_active: Option<bool>,
}

/// A rotated secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    pub secret: String,
    /// Until then deliveries are signed with the previous secret too.
    pub previous_secret_expires_at: DateTime<Utc>,
}

/// Body of the test call.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"event_type": "test", "payload": {"hello": "world"}}))]
pub struct TestIn {
    /// Event type to simulate (default `test`).
    pub event_type: Option<String>,
    /// Custom payload (the event's `data`).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
}

/// What the test call enqueued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestOut {
    pub success: bool,
    /// The event's id (`webhook-id`).
    #[schema(example = "evt_k3x9a2bq1f0zk3x9a2bq1f0z")]
    pub event_id: String,
    #[schema(example = "test")]
    pub event_type: String,
    /// How many deliveries were enqueued.
    pub enqueued: usize,
    /// The endpoints they go to.
    pub webhook_ids: Vec<i64>,
}

/// A delivery of an event to an endpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    /// The event's id (`webhook-id`).
    pub event_id: String,
    pub event_type: String,
    /// pending, delivered or failed.
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One try.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// The start of the response body: at most 1024 bytes of text, cut
    /// between characters (bytes that are not UTF-8, and NULs, become U+FFFD).
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> Self {
        Self {
            attempt: a.attempt,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            response_body: a.response_body,
            error: a.error,
            created_at: a.created_at,
        }
    }
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    pub delivery: DeliveryOut,
    pub attempts: Vec<AttemptOut>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryOut>,
    pub total: i64,
    pub page: i64,
    pub total_pages: i64,
}

/// Filters of the delivery list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// pending, delivered or failed.
    #[param(value_type = Option<DeliveryStatusFilter>)]
    pub status: Option<String>,
    /// Page number (from 1).
    #[param(minimum = 1, maximum = 1000000)]
    pub page: Option<i64>,
    /// 1 to 100, default 25.
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
}

/// The statuses of a delivery (the `status` filter).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum DeliveryStatusFilter {
    /// Not delivered yet (retries pending).
    Pending,
    /// Accepted by the endpoint.
    Delivered,
    /// Given up after the last retry.
    Failed,
}

/// Body of `recover`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"since": "2026-11-22T00:00:00Z"}))]
pub struct RecoverIn {
    /// Failed deliveries created at or after this time are re-enqueued.
    pub since: DateTime<Utc>,
}

/// What `recover` re-enqueued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoverOut {
    pub success: bool,
    pub recovered: usize,
}

async fn find(conn: &mut AsyncPgConnection, project_id: i64, id: i64) -> ApiResult<WebhookOut> {
    store::find(conn, project_id, id)
        .await?
        .map(WebhookOut::from)
        .ok_or_else(|| ApiError::not_found("Webhook"))
}

/// Create a webhook endpoint. Quota: webhook_configs.
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "Webhooks",
    request_body = WebhookIn,
    responses(
        (status = 201, description = "Created; the secret is shown only now", body = WebhookCreatedResponse),
        (status = 400, description = "Invalid URL or event type", body = crate::error::ErrorBody),
        (status = 429, description = "Quota reached", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn create_webhook(
    auth: Auth,
    state: web::Data<AppState>,
    body: web::Json<WebhookIn>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let url = checked_url(&state, &body.url).await?;
    let types = event_types(body.event_types)?;
    let description =
        validate::opt_text("description", body.description.as_deref(), 500)?.unwrap_or_default();
    let secret = signing::new_secret();
    let mut conn = state.pool.get().await?;
    let settings = state.settings.clone();
    let project = auth.project.clone();
    let created = conn
        .transaction::<_, ApiError, _>(async |conn| {
            quota::reserve(
                conn,
                &settings.plans,
                &settings.upgrade_url,
                &project,
                Resource::WebhookConfigs,
            )
            .await?;
            let new = NewEndpoint {
                project_id: project.id,
                url: &url,
                description: &description,
                event_types: &types,
                is_active: body.is_active.unwrap_or(true),
                secret: &secret,
            };
            Ok(store::insert(conn, &new).await?)
        })
        .await?;
    Ok(HttpResponse::Created().json(WebhookCreatedResponse {
        webhook: WebhookCreated {
            webhook: created.into(),
            secret,
        },
    }))
}

/// List the project's webhook endpoints (secrets are never listed).
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "Webhooks",
    responses((status = 200, description = "Endpoints", body = WebhookList)),
    security(("api_key" = []))
)]
pub async fn list_webhooks(auth: Auth, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let webhooks = store::list(&mut conn, auth.project.id).await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: webhooks.into_iter().map(WebhookOut::from).collect(),
    }))
}

/// One endpoint.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}", tag = "Webhooks",
    params(("id" = i64, Path, description = "Webhook id", example = 1)),
    responses((status = 200, description = "Endpoint", body = WebhookResponse), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_webhook(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(WebhookResponse {
        webhook: find(&mut conn, auth.project.id, *id).await?,
    }))
}

/// Update an endpoint.
#[utoipa::path(
    patch, path = "/api/v1/webhooks/{id}", tag = "Webhooks",
    params(("id" = i64, Path, description = "Webhook id", example = 1)),
    request_body = WebhookPatch,
    responses((status = 200, description = "Updated", body = WebhookResponse), (status = 400, description = "Invalid input", body = crate::error::ErrorBody), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn update_webhook(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<WebhookPatch>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let url = match &body.url {
        Some(u) => Some(checked_url(&state, u).await?),
        None => None,
    };
    let types = body.event_types.map(|t| event_types(Some(t))).transpose()?;
    let description = validate::opt_text("description", body.description.as_deref(), 500)?;
    // One statement: the changes land together or not at all.
    let changes = EndpointChanges::new(url, description, types, body.is_active);
    let mut conn = state.pool.get().await?;
    let updated = store::update(&mut conn, auth.project.id, *id, &changes)
        .await?
        .ok_or_else(|| ApiError::not_found("Webhook"))?;
    Ok(HttpResponse::Ok().json(WebhookResponse {
        webhook: updated.into(),
    }))
}

/// Delete an endpoint (its delivery log goes with it).
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "Webhooks",
    params(("id" = i64, Path, description = "Webhook id", example = 1)),
    responses((status = 200, description = "Deleted", body = crate::routes::SuccessMessage), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn delete_webhook(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    if !store::delete(&mut conn, auth.project.id, *id).await? {
        return Err(ApiError::not_found("Webhook"));
    }
    Ok(HttpResponse::Ok().json(crate::routes::SuccessMessage {
        success: true,
        message: "Webhook deleted".into(),
    }))
}

/// Rotate the secret; the previous one keeps signing for the overlap window.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/rotate-secret", tag = "Webhooks",
    params(("id" = i64, Path, description = "Webhook id", example = 1)),
    responses((status = 200, description = "New secret", body = RotatedSecret), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn rotate_secret(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let secret = signing::new_secret();
    let until = Utc::now()
        + chrono::Duration::hours(i64::from(state.settings.webhook_rotation_overlap_hours));
    if !store::rotate_secret(&mut conn, auth.project.id, *id, &secret, until).await? {
        return Err(ApiError::not_found("Webhook"));
    }
    Ok(HttpResponse::Ok().json(RotatedSecret {
        secret,
        previous_secret_expires_at: until,
    }))
}

/// Send a test event to every active endpoint of the project.
#[utoipa::path(
    post, path = "/api/v1/webhooks/test", tag = "Webhooks",
    request_body = TestIn,
    responses((status = 200, description = "Enqueued", body = TestOut), (status = 400, description = "Unknown event type", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn test_webhook(
    auth: Auth,
    state: web::Data<AppState>,
    body: crate::validate::OptionalJson<TestIn>,
) -> ApiResult<HttpResponse> {
    let body = body.0.unwrap_or(TestIn {
        event_type: None,
        payload: None,
    });
    let event_type = body.event_type.unwrap_or_else(|| "test".into());
    if !events::is_known(&event_type) {
        return Err(ApiError::BadRequest {
            message: format!("Unknown event type `{event_type}`"),
            details: Some(json!({ "field": "event_type", "allowed": events::EVENT_TYPES })),
        });
    }
    // An event's `data` is an object, in every event the receiver gets.
    let data = match body.payload {
        None | Some(Value::Null) => json!({ "message": "This is a test event from Voxplane" }),
        Some(data @ Value::Object(_)) => data,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "payload",
                "payload must be a JSON object (the event's data)",
            ));
        }
    };
    let mut conn = state.pool.get().await?;
    let project_id = auth.project.id;
    let (event, ids) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let event = events::emit(conn, project_id, &event_type, data).await?;
            // The event's trigger created the deliveries of the endpoints
            // subscribed to its type; a test goes to every active endpoint.
            let ids = store::enqueue_test(conn, project_id, event.id).await?;
            Ok((event, ids))
        })
        .await?;
    state.delivery_wake.notify_one();
    Ok(HttpResponse::Ok().json(TestOut {
        success: true,
        event_id: event.public_id,
        event_type: event.event_type,
        enqueued: ids.len(),
        webhook_ids: ids,
    }))
}

fn delivery_out(r: Delivery) -> DeliveryOut {
    let pending = r.attempts >= 0 && r.status == DeliveryStatus::Pending;
    DeliveryOut {
        id: r.id,
        event_id: r.event_id,
        event_type: r.event_type,
        status: r.status,
        attempts: r.attempts,
        last_status_code: r.last_status_code,
        last_error: r.last_error,
        next_attempt_at: pending.then_some(r.next_attempt_at),
        delivered_at: r.delivered_at,
        created_at: r.created_at,
    }
}

/// The deliveries of an endpoint, newest first.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "Webhooks",
    params(("id" = i64, Path, description = "Webhook id", example = 1), DeliveryQuery),
    responses((status = 200, description = "Deliveries", body = DeliveryPage), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_deliveries(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<DeliveryQuery>,
) -> ApiResult<HttpResponse> {
    let pg = crate::validate::Page::parse(q.page, q.per_page, 25)?;
    let (page, per_page) = (pg.page, pg.per_page);
    let status = match q.status.as_deref() {
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field("status", "status must be pending, delivered or failed")
        })?),
        None => None,
    };
    let mut conn = state.pool.get().await?;
    find(&mut conn, auth.project.id, *id).await?;
    let (rows, total) = store::deliveries(&mut conn, *id, status, pg.offset(), per_page).await?;
    Ok(HttpResponse::Ok().json(DeliveryPage {
        deliveries: rows.into_iter().map(delivery_out).collect(),
        total,
        page,
        total_pages: pg.total_pages(total),
    }))
}

async fn delivery(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    endpoint: i64,
    id: i64,
) -> ApiResult<DeliveryOut> {
    store::delivery(conn, project_id, endpoint, id)
        .await?
        .map(delivery_out)
        .ok_or_else(|| ApiError::not_found("Delivery"))
}

/// One delivery with every attempt.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}", tag = "Webhooks",
    params(("id" = i64, Path, description = "Webhook id"), ("delivery_id" = i64, Path, description = "Delivery id")),
    responses((status = 200, description = "Delivery", body = DeliveryDetail), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_delivery(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (endpoint, id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let d = delivery(&mut conn, auth.project.id, endpoint, id).await?;
    let attempts = store::attempts(&mut conn, id)
        .await?
        .into_iter()
        .map(AttemptOut::from)
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryDetail {
        delivery: d,
        attempts,
    }))
}

/// Send a delivery again now (whatever its status), with a fresh retry cycle:
/// if this try fails, the whole retry schedule applies again. A delivery that
/// is being sent at this moment is not sent a second time alongside: that
/// answers 409.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "Webhooks",
    params(("id" = i64, Path, description = "Webhook id"), ("delivery_id" = i64, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Re-enqueued", body = DeliveryDetail),
        (status = 404, description = "Unknown", body = crate::error::ErrorBody),
        (status = 409, description = "The delivery is being sent right now; redeliver it after this attempt", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn redeliver(
    auth: Auth,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (endpoint, id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    delivery(&mut conn, auth.project.id, endpoint, id).await?;
    // Only a delivery no worker holds: a live lease means a send in flight.
    let n = usize::from(store::redeliver(&mut conn, id).await?);
    if n == 0 {
        return Err(ApiError::Conflict {
            message: "Delivery is being sent; redeliver it once the current attempt has finished"
                .into(),
            details: Some(json!({ "delivery_id": id })),
        });
    }
    state.delivery_wake.notify_one();
    let d = delivery(&mut conn, auth.project.id, endpoint, id).await?;
    let attempts = store::attempts(&mut conn, id)
        .await?
        .into_iter()
        .map(AttemptOut::from)
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryDetail {
        delivery: d,
        attempts,
    }))
}

/// Re-enqueue the endpoint's failed deliveries since a time, each with a fresh
/// retry cycle (the whole retry schedule applies again).
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/recover", tag = "Webhooks",
    params(("id" = i64, Path, description = "Webhook id")),
    request_body = RecoverIn,
    responses((status = 200, description = "Re-enqueued", body = RecoverOut), (status = 404, description = "Unknown", body = crate::error::ErrorBody)),
    security(("api_key" = []))
)]
pub async fn recover(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<RecoverIn>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    find(&mut conn, auth.project.id, *id).await?;
    let n = store::recover(&mut conn, *id, body.since).await?;
    state.delivery_wake.notify_one();
    Ok(HttpResponse::Ok().json(RecoverOut {
        success: true,
        recovered: n,
    }))
}
