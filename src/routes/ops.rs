//! Operations surface: liveness, readiness, metrics, the OpenAPI document
//! and its docs page.

use super::allow;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

/// How long readiness waits for Postgres before answering 503.
const READY_TIMEOUT: Duration = Duration::from_millis(1500);

/// Liveness and readiness body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthResponse {
    /// `ok` or `ready`.
    #[schema(example = "ok")]
    pub status: String,
    /// Per-dependency checks (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checks: Option<serde_json::Value>,
}

/// Liveness: the process is up.
#[utoipa::path(
    get,
    path = "/health",
    tag = "Operations",
    responses((status = 200, description = "Alive", body = HealthResponse))
)]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "ok".into(),
        checks: None,
    })
}

/// Readiness: Postgres answers and no background worker keeps failing.
/// 503 `SERVICE_UNAVAILABLE` otherwise. `checks.embedding_model` says
/// whether knowledge-base search is usable; `checks.rate_limits` is
/// `in_process` (no Redis), `redis`, or `degraded` while Redis does not
/// answer and limits fall back to this process (ready all the same).
#[utoipa::path(
    get,
    path = "/ready",
    tag = "Operations",
    responses(
        (status = 200, description = "Ready to serve", body = HealthResponse),
        (status = 503, description = "A dependency is down", body = crate::error::ErrorBody),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let check = async {
        let mut conn = state.pool.get().await.map_err(|e| e.to_string())?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    let failing = state.lifecycle.failing();
    if !failing.is_empty() {
        tracing::warn!(workers = ?failing, "readiness: background workers keep failing");
        return Err(ApiError::Unavailable(format!(
            "Background workers keep failing: {}",
            failing.join(", ")
        )));
    }
    let rate_limits = match &state.shared {
        None => "in_process",
        Some(store) if store.status() == "ok" => "redis",
        Some(_) => "degraded",
    };
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(_)) => Ok(HttpResponse::Ok().json(HealthResponse {
            status: "ready".into(),
            // The model only affects knowledge bases, and a Redis down only
            // moves the limits in-process: reported, never failing readiness.
            checks: Some(json!({
                "database": "ok",
                "embedding_model": state.rag.status(),
                "rate_limits": rate_limits,
            })),
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            Err(unready())
        }
        Err(_) => Err(unready()),
    }
}

fn unready() -> ApiError {
    ApiError::Unavailable("Database unavailable".into())
}

/// Prometheus text exposition.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.state();
    state
        .metrics
        .pool_connections
        .set(i64::from(pool.connections));
    state
        .metrics
        .pool_idle
        .set(i64::from(pool.idle_connections));
    let m = &state.metrics;
    m.batch_written("session_starts", state.starts.written());
    m.batch_written("transcript_lines", state.transcripts.written());
    m.batch_written("livekit_webhooks", state.webhooks_in.written());
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}

/// The OpenAPI document.
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::document_json())
}

/// The API reference (Swagger UI with try-it-out) for `/openapi.json`,
/// served from the binary: no external assets.
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("docs.html"))
}

/// Swagger UI's bundle, vendored from the npm package `swagger-ui-dist`
/// (version and checksums in `vendor/swagger-ui/VERSION`).
pub const SWAGGER_UI_JS: &[u8] = include_bytes!("../../vendor/swagger-ui/swagger-ui-bundle.js");
/// Swagger UI's stylesheet (same package).
pub const SWAGGER_UI_CSS: &[u8] = include_bytes!("../../vendor/swagger-ui/swagger-ui.css");

async fn swagger_ui_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=86400"))
        .body(SWAGGER_UI_JS)
}

async fn swagger_ui_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=86400"))
        .body(SWAGGER_UI_CSS)
}

/// Registers the routes (outside `/api/v1`'s guard; health and ready are also
/// served under `/api/v1`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for prefix in ["", "/api/v1"] {
        cfg.service(
            web::resource(format!("{prefix}/health"))
                .route(web::get().to(health))
                .route(web::head().to(health))
                .default_service(allow(&["GET", "HEAD"])),
        );
        cfg.service(
            web::resource(format!("{prefix}/ready"))
                .route(web::get().to(ready))
                .route(web::head().to(ready))
                .default_service(allow(&["GET", "HEAD"])),
        );
    }
    cfg.service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .default_service(allow(&["GET"])),
    );
    cfg.service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi_json))
            .default_service(allow(&["GET"])),
    );
    cfg.service(
        web::resource("/docs")
            .route(web::get().to(docs))
            .default_service(allow(&["GET"])),
    );
    cfg.service(
        web::resource("/docs/swagger-ui-bundle.js")
            .route(web::get().to(swagger_ui_js))
            .default_service(allow(&["GET"])),
    );
    cfg.service(
        web::resource("/docs/swagger-ui.css")
            .route(web::get().to(swagger_ui_css))
            .default_service(allow(&["GET"])),
    );
}
