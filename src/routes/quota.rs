//! `GET /api/v1/quota`: limits and usage of the project's plan.

use super::allow;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::limits::plans::Plan;
use crate::limits::quota::{QuotaLine, Resource, used};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde::Serialize;

/// Every quota of the plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Quotas {
    /// Projects of the owner.
    pub projects: QuotaLine,
    /// Agent configurations.
    pub agents: QuotaLine,
    /// Knowledge bases.
    pub knowledge_bases: QuotaLine,
    /// SIP configurations.
    pub sip_configs: QuotaLine,
    /// Webhook endpoints.
    pub webhook_configs: QuotaLine,
    /// Team members.
    pub team_members: QuotaLine,
    /// Rooms active now.
    pub rooms: QuotaLine,
    /// Sessions this calendar month (UTC).
    pub sessions: QuotaLine,
    /// Recordings this calendar month (UTC).
    pub recordings: QuotaLine,
}

/// Response of `GET /api/v1/quota`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuotaResponse {
    /// Plan id.
    pub plan: Plan,
    /// Plan name for display.
    #[schema(example = "Professional")]
    pub plan_display: String,
    /// Per-resource limits and usage.
    pub quotas: Quotas,
}

/// Per-resource quota breakdown for the project's plan.
#[utoipa::path(
    get,
    path = "/api/v1/quota",
    tag = "Quota & Usage",
    responses(
        (status = 200, description = "Quota breakdown", body = QuotaResponse),
        (status = 401, description = "Missing or invalid API key", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn get_quota(auth: Auth, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let mut lines = Vec::with_capacity(Resource::ALL.len());
    for r in Resource::ALL {
        let limit = r.limit(&state.settings.plans, &auth.project);
        let used = used(&mut conn, auth.project.id, r).await?;
        lines.push(QuotaLine {
            limit,
            used,
            remaining: (limit - used).max(0),
        });
    }
    let mut it = lines.into_iter();
    let mut next = || {
        it.next().unwrap_or(QuotaLine {
            limit: 0,
            used: 0,
            remaining: 0,
        })
    };
    let quotas = Quotas {
        projects: next(),
        agents: next(),
        knowledge_bases: next(),
        sip_configs: next(),
        webhook_configs: next(),
        team_members: next(),
        rooms: next(),
        sessions: next(),
        recordings: next(),
    };
    Ok(HttpResponse::Ok().json(QuotaResponse {
        plan: auth.project.plan,
        plan_display: auth.project.plan.display_name().into(),
        quotas,
    }))
}

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/quota")
            .route(web::get().to(get_quota))
            .default_service(allow(&["GET"])),
    );
}
