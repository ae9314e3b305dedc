//! `GET /api/v1/project`: who am I.

use super::allow;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::limits::plans::Plan;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The caller's project.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectOut {
    /// Project id.
    #[schema(example = 1)]
    pub id: i64,
    /// Display name.
    #[schema(example = "Acme Support")]
    pub name: String,
    /// URL-safe unique name.
    #[schema(example = "acme-support-x7k2qa")]
    pub slug: String,
    /// Plan.
    pub plan: Plan,
    /// Prefix LiveKit sees before every room name of the project.
    #[schema(example = "pk3x9a2bq1")]
    pub room_prefix: String,
    /// Requests per minute allowed per API key.
    #[schema(example = 300)]
    pub rate_limit_per_minute: u32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// `{"project": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectResponse {
    /// The project.
    pub project: ProjectOut,
}

/// The project the API key belongs to.
#[utoipa::path(
    get,
    path = "/api/v1/project",
    tag = "Project",
    responses(
        (status = 200, description = "The caller's project", body = ProjectResponse),
        (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_project(auth: Auth, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let p = &auth.project;
    Ok(HttpResponse::Ok().json(ProjectResponse {
        project: ProjectOut {
            id: p.id,
            name: p.name.clone(),
            slug: p.slug.clone(),
            plan: p.plan,
            room_prefix: p.room_prefix.clone(),
            rate_limit_per_minute: p
                .rate_limit_per_minute
                .unwrap_or_else(|| state.settings.rate_limits.for_plan(p.plan)),
            created_at: p.created_at,
        },
    }))
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/project")
            .route(web::get().to(get_project))
            .default_service(allow(&["GET"])),
    );
}
