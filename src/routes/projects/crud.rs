//! Create, list, read, rename and delete projects.

use super::member;
use crate::auth::roles::Role;
use crate::auth::sessions::Account;
use crate::db::schema::{project_members as pm, projects as p};
use crate::db::{accounts, members, projects};
use crate::error::{ApiError, ApiResult};
use crate::limits::plans::Plan;
use crate::limits::quota;
use crate::state::AppState;
use crate::validate;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

/// A project as its members see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberProjectOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "Acme Support")]
    pub name: String,
    #[schema(example = "acme-support-x7k2qa")]
    pub slug: String,
    pub plan: Plan,
    /// Prefix LiveKit sees before every room name of the project.
    #[schema(example = "pk3x9a2bq1")]
    pub room_prefix: String,
    /// The caller's role.
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl MemberProjectOut {
    /// From a project row and the caller's role.
    pub fn new(p: projects::Project, role: Role) -> Self {
        Self {
            id: p.id,
            plan: p.plan(),
            name: p.name,
            slug: p.slug,
            room_prefix: p.room_prefix,
            role,
            created_at: p.created_at,
        }
    }
}

/// `{"project": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberProjectResponse {
    pub project: MemberProjectOut,
}

/// `{"projects": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberProjectList {
    pub projects: Vec<MemberProjectOut>,
}

/// Body of `POST /api/v1/projects` and `PATCH /api/v1/projects/{project_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Acme Support"}))]
pub struct ProjectIn {
    /// 1–200 characters.
    #[schema(
        max_length = 200,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
}

/// Create a project owned by the caller, on the caller's plan. Quota: projects per owner.
#[utoipa::path(
    post, path = "/api/v1/projects", tag = "Projects",
    request_body = ProjectIn,
    responses(
        (status = 201, description = "Created; the caller is its owner", body = MemberProjectResponse),
        (status = 400, description = "Invalid name", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 429, description = "Project quota of the plan reached", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_project(
    me: Account,
    state: web::Data<AppState>,
    body: web::Json<ProjectIn>,
) -> ApiResult<HttpResponse> {
    let name = validate::text("name", &body.name, 200)?;
    let mut conn = state.pool.get().await?;
    let settings = state.settings.clone();
    let project = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let plan = accounts::find(conn, me.account_id).await?.plan();
            quota::reserve_owned_project(
                conn,
                &settings.plans,
                &settings.upgrade_url,
                me.account_id,
                plan,
            )
            .await?;
            let project = projects::create(conn, &name, plan).await?;
            projects::set_owner(conn, project.id, me.account_id).await?;
            members::add(conn, project.id, me.account_id, Role::Owner.as_str()).await?;
            Ok(project)
        })
        .await?;
    Ok(HttpResponse::Created().json(MemberProjectResponse {
        project: MemberProjectOut::new(project, Role::Owner),
    }))
}

/// The projects the caller is a member of, oldest first.
#[utoipa::path(
    get, path = "/api/v1/projects", tag = "Projects",
    responses(
        (status = 200, description = "Projects with the caller's role", body = MemberProjectList),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_projects(me: Account, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.pool.get().await?;
    let rows: Vec<(projects::Project, String)> = p::table
        .inner_join(pm::table)
        .filter(
            pm::account_id
                .eq(me.account_id)
                .and(p::deleted_at.is_null()),
        )
        .order(p::id.asc())
        .select((projects::Project::as_select(), pm::role))
        .load(&mut conn)
        .await?;
    let projects = rows
        .into_iter()
        .map(|(p, role)| MemberProjectOut::new(p, role.parse().unwrap_or(Role::Viewer)))
        .collect();
    Ok(HttpResponse::Ok().json(MemberProjectList { projects }))
}

/// A project the caller is a member of.
#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}", tag = "Projects", operation_id = "get_member_project",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    responses(
        (status = 200, description = "The project", body = MemberProjectResponse),
        (status = 404, description = "No such project among the caller's", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_project(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Viewer).await?;
    let mut conn = state.pool.get().await?;
    let project = projects::find(&mut conn, ctx.project.id).await?;
    Ok(HttpResponse::Ok().json(MemberProjectResponse {
        project: MemberProjectOut::new(project, ctx.role),
    }))
}

/// Rename a project (admin).
#[utoipa::path(
    patch, path = "/api/v1/projects/{project_id}", tag = "Projects",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    request_body = ProjectIn,
    responses(
        (status = 200, description = "The project", body = MemberProjectResponse),
        (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody),
        (status = 404, description = "No such project among the caller's", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_project(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<ProjectIn>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Admin).await?;
    let name = validate::text("name", &body.name, 200)?;
    let mut conn = state.pool.get().await?;
    let project = projects::rename(&mut conn, ctx.project.id, &name).await?;
    state.keys.evict_project(project.id);
    state.accounts.evict_project(project.id);
    Ok(HttpResponse::Ok().json(MemberProjectResponse {
        project: MemberProjectOut::new(project, ctx.role),
    }))
}

/// Delete a project (owner): soft delete; every API key stops working at once.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project_id}", tag = "Projects",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the owner role", body = crate::error::ErrorBody),
        (status = 404, description = "No such project among the caller's", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_project(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Owner).await?;
    let mut conn = state.pool.get().await?;
    projects::soft_delete(&mut conn, ctx.project.id).await?;
    state.keys.evict_project(ctx.project.id);
    state.accounts.evict_project(ctx.project.id);
    state
        .hub
        .revoke(crate::events::hub::Revoke::Project(ctx.project.id));
    Ok(HttpResponse::NoContent().finish())
}
