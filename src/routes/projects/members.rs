//! Members and invitations of a project, and accepting an invitation.

use super::crud::{MemberProjectOut, MemberProjectResponse};
use super::member;
use crate::auth::roles::Role;
use crate::auth::sessions::Account;
use crate::auth::tokens;
use crate::db::members::{self, Invitation, MemberRow};
use crate::db::{accounts, projects};
use crate::error::{ApiError, ApiResult};
use crate::limits::quota::{self, Resource};
use crate::mail::{Template, outbox};
use crate::routes::auth::{email, invalid_link};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};

/// A member of a project.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberOut {
    #[schema(example = 2)]
    pub account_id: i64,
    #[schema(example = "bob@example.com")]
    pub email: String,
    #[schema(example = "Bob")]
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl From<MemberRow> for MemberOut {
    fn from(m: MemberRow) -> Self {
        Self {
            account_id: m.account_id,
            email: m.email,
            name: m.name,
            role: m.role.parse().unwrap_or(Role::Viewer),
            joined_at: m.created_at,
        }
    }
}

/// `{"members": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberOut>,
}

/// `{"member": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberResponse {
    pub member: MemberOut,
}

/// An open invitation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationOut {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "bob@example.com")]
    pub email: String,
    pub role: Role,
    /// Account id of the inviter.
    pub invited_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<Invitation> for InvitationOut {
    fn from(i: Invitation) -> Self {
        Self {
            id: i.id,
            email: i.email,
            role: i.role.parse().unwrap_or(Role::Viewer),
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// `{"invitation": …}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationResponse {
    pub invitation: InvitationOut,
}

/// `{"invitations": […]}`
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<InvitationOut>,
}

/// Body of `POST /api/v1/projects/{project_id}/members`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "bob@example.com", "role": "member"}))]
pub struct InviteIn {
    pub email: String,
    /// owner, admin, member or viewer (default member); only owners invite owners.
    pub role: Option<String>,
}

/// Body of `PATCH /api/v1/projects/{project_id}/members/{account_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "admin"}))]
pub struct MemberPatch {
    pub role: String,
}

/// Body of `POST /api/v1/invitations/accept`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "the token from the invitation link"}))]
pub struct AcceptIn {
    pub token: String,
}

/// The members of a project.
#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/members", tag = "Projects",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    responses(
        (status = 200, description = "Members", body = MemberList),
        (status = 404, description = "No such project among the caller's", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_members(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Viewer).await?;
    let mut conn = state.pool.get().await?;
    let list = members::list(&mut conn, ctx.project.id).await?;
    Ok(HttpResponse::Ok().json(MemberList {
        members: list.into_iter().map(MemberOut::from).collect(),
    }))
}

/// Invite someone by e-mail (admin; only owners invite owners). The
/// invitation link (single use, 7 days) is e-mailed. Quota: team_members
/// (members plus open invitations). Inviting an address again replaces its
/// open invitation.
#[utoipa::path(
    post, path = "/api/v1/projects/{project_id}/members", tag = "Projects",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    request_body = InviteIn,
    responses(
        (status = 201, description = "Invitation sent", body = InvitationResponse),
        (status = 400, description = "Invalid address or role", body = crate::error::ErrorBody),
        (status = 403, description = "Needs the admin role (owner to invite an owner)", body = crate::error::ErrorBody),
        (status = 409, description = "Already a member", body = crate::error::ErrorBody),
        (status = 429, description = "team_members quota reached", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn invite_member(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Json<InviteIn>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Admin).await?;
    let address = email("email", &body.email)?;
    let role: Role = body.role.as_deref().unwrap_or("member").parse()?;
    ctx.require(role.max(Role::Admin))?;
    let mut conn = state.pool.get().await?;
    let st = state.clone();
    let (invitation, queued) = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let project = &ctx.project;
            if let Some(existing) = accounts::find_by_email(conn, &address).await?
                && members::role_of(conn, project.id, existing.id)
                    .await?
                    .is_some()
            {
                return Err(ApiError::conflict(
                    "This address is already a member of the project",
                ));
            }
            members::revoke_open(conn, project.id, &address).await?;
            let settings = &st.settings;
            quota::reserve(
                conn,
                &settings.plans,
                &settings.upgrade_url,
                project,
                Resource::TeamMembers,
            )
            .await?;
            let token = tokens::generate();
            let inviter = accounts::find(conn, me.account_id).await?;
            let invitation = members::invite(
                conn,
                project.id,
                &address,
                role.as_str(),
                &tokens::hash(&token),
                me.account_id,
                Utc::now() + Duration::days(7),
            )
            .await?;
            let link = st.mailer.link("accept-invitation", &token);
            let rendered = st.mailer.render(
                Template::Invitation,
                &[
                    ("inviter", &inviter.name),
                    ("project", &project.name),
                    ("role", role.as_str()),
                    ("email", &address),
                    ("link", &link),
                ],
            );
            let id =
                outbox::enqueue(conn, Template::Invitation.as_str(), &address, &rendered).await?;
            Ok((invitation, id))
        })
        .await?;
    crate::routes::auth::deliver(&state, [queued]);
    Ok(HttpResponse::Created().json(InvitationResponse {
        invitation: invitation.into(),
    }))
}

/// Open invitations of a project (admin).
#[utoipa::path(
    get, path = "/api/v1/projects/{project_id}/invitations", tag = "Projects",
    params(("project_id" = i64, Path, description = "Project id", example = 1)),
    responses(
        (status = 200, description = "Open invitations", body = InvitationList),
        (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_invitations(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let ctx = member(&state, &me, path.into_inner(), Role::Admin).await?;
    let mut conn = state.pool.get().await?;
    let list = members::list_open(&mut conn, ctx.project.id).await?;
    Ok(HttpResponse::Ok().json(InvitationList {
        invitations: list.into_iter().map(InvitationOut::from).collect(),
    }))
}

/// Revoke an open invitation (admin).
#[utoipa::path(
    delete, path = "/api/v1/projects/{project_id}/invitations/{invitation_id}", tag = "Projects",
    params(
        ("project_id" = i64, Path, description = "Project id", example = 1),
        ("invitation_id" = i64, Path, description = "Invitation id", example = 1),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Needs the admin role", body = crate::error::ErrorBody),
        (status = 404, description = "No such open invitation", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_invitation(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (project_id, invitation_id) = path.into_inner();
    let ctx = member(&state, &me, project_id, Role::Admin).await?;
    let mut conn = state.pool.get().await?;
    if members::revoke(&mut conn, ctx.project.id, invitation_id).await? == 0 {
        return Err(ApiError::not_found("Invitation"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Change a member's role (admin; only owners make or unmake owners). The
/// last owner cannot be demoted.
#[utoipa::path(
    patch, path = "/api/v1/projects/{project_id}/members/{account_id}", tag = "Projects",
    params(
        ("project_id" = i64, Path, description = "Project id", example = 1),
        ("account_id" = i64, Path, description = "The member's account id", example = 2),
    ),
    request_body = MemberPatch,
    responses(
        (status = 200, description = "The member", body = MemberResponse),
        (status = 403, description = "Needs the admin role (owner for owners)", body = crate::error::ErrorBody),
        (status = 404, description = "No such member", body = crate::error::ErrorBody),
        (status = 409, description = "It would leave the project without an owner", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_member(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    body: web::Json<MemberPatch>,
) -> ApiResult<HttpResponse> {
    let (project_id, account_id) = path.into_inner();
    let ctx = member(&state, &me, project_id, Role::Admin).await?;
    let role: Role = body.role.parse()?;
    let mut conn = state.pool.get().await?;
    let updated = conn
        .transaction::<_, ApiError, _>(async |conn| {
            projects::lock(conn, ctx.project.id).await?;
            let current: Role = members::role_of(conn, ctx.project.id, account_id)
                .await?
                .ok_or_else(|| ApiError::not_found("Member"))?
                .parse()?;
            ctx.require(current.max(role).max(Role::Admin))?;
            if current == Role::Owner
                && role != Role::Owner
                && members::owners(conn, ctx.project.id).await? <= 1
            {
                return Err(ApiError::conflict(
                    "The last owner cannot be demoted; make someone else owner first",
                ));
            }
            members::set_role(conn, ctx.project.id, account_id, role.as_str()).await?;
            let list = members::list(conn, ctx.project.id).await?;
            list.into_iter()
                .find(|m| m.account_id == account_id)
                .ok_or_else(|| ApiError::not_found("Member"))
        })
        .await?;
    state.accounts.evict_project(ctx.project.id);
    Ok(HttpResponse::Ok().json(MemberResponse {
        member: updated.into(),
    }))
}

/// Remove a member (admin; owners only by owners), or leave the project
/// (any member, themselves). The last owner cannot leave.
#[utoipa::path(
    delete, path = "/api/v1/projects/{project_id}/members/{account_id}", tag = "Projects",
    params(
        ("project_id" = i64, Path, description = "Project id", example = 1),
        ("account_id" = i64, Path, description = "The member's account id", example = 2),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Needs the admin role (owner for owners)", body = crate::error::ErrorBody),
        (status = 404, description = "No such member", body = crate::error::ErrorBody),
        (status = 409, description = "The last owner cannot leave", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn remove_member(
    me: Account,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (project_id, account_id) = path.into_inner();
    let ctx = member(&state, &me, project_id, Role::Viewer).await?;
    let mut conn = state.pool.get().await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        projects::lock(conn, ctx.project.id).await?;
        let current: Role = members::role_of(conn, ctx.project.id, account_id)
            .await?
            .ok_or_else(|| ApiError::not_found("Member"))?
            .parse()?;
        if account_id != me.account_id {
            ctx.require(current.max(Role::Admin))?;
        }
        if current == Role::Owner && members::owners(conn, ctx.project.id).await? <= 1 {
            return Err(ApiError::conflict(
                "The last owner cannot leave; make someone else owner first",
            ));
        }
        members::remove(conn, ctx.project.id, account_id).await?;
        Ok(())
    })
    .await?;
    state.accounts.evict_project(ctx.project.id);
    Ok(HttpResponse::NoContent().finish())
}

/// Accept an invitation with the token of its link. The signed-in account's
/// (verified) address must be the invited one.
#[utoipa::path(
    post, path = "/api/v1/invitations/accept", tag = "Projects",
    request_body = AcceptIn,
    responses(
        (status = 200, description = "Joined; the project with the new role", body = MemberProjectResponse),
        (status = 400, description = "Unknown, used, revoked or expired invitation", body = crate::error::ErrorBody),
        (status = 401, description = "Missing or invalid access token", body = crate::error::ErrorBody),
        (status = 403, description = "The invitation is for another address", body = crate::error::ErrorBody),
        (status = 409, description = "The inviter can no longer grant the role (the invitation is revoked)", body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn accept_invitation(
    me: Account,
    state: web::Data<AppState>,
    body: web::Json<AcceptIn>,
) -> ApiResult<HttpResponse> {
    if !tokens::looks_like_token(&body.token) {
        return Err(invalid_link());
    }
    let hash = tokens::hash(&body.token);
    let mut conn = state.pool.get().await?;
    let joined = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let inv = members::find_by_hash(conn, &hash)
                .await?
                .filter(|i| {
                    i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > Utc::now()
                })
                .ok_or_else(invalid_link)?;
            let account = accounts::find(conn, me.account_id).await?;
            if account.email != inv.email || account.email_verified_at.is_none() {
                return Err(ApiError::Forbidden(
                    "This invitation was sent to another e-mail address".into(),
                ));
            }
            let project = projects::find(conn, inv.project_id)
                .await
                .map_err(|_| invalid_link())?;
            // The role is granted now, so the inviter must still be allowed
            // to grant it: a demoted or removed inviter's invitations lapse.
            let granted: Role = inv.role.parse()?;
            let inviter_role = match inv.invited_by {
                Some(inviter) => members::role_of(conn, inv.project_id, inviter)
                    .await?
                    .and_then(|r| r.parse::<Role>().ok()),
                None => None,
            };
            if inviter_role.is_none_or(|r| r.require(granted.max(Role::Admin)).is_err()) {
                members::revoke(conn, inv.project_id, inv.id).await?;
                return Ok(None);
            }
            members::add(conn, inv.project_id, me.account_id, &inv.role).await?;
            members::accept(conn, inv.id).await?;
            let role = members::role_of(conn, inv.project_id, me.account_id)
                .await?
                .and_then(|r| r.parse().ok())
                .unwrap_or(Role::Viewer);
            Ok(Some((project, role)))
        })
        .await?;
    let Some((project, role)) = joined else {
        return Err(ApiError::conflict(
            "This invitation lapsed: whoever sent it can no longer grant its role. Ask a project admin for a new invitation",
        ));
    };
    state.accounts.evict_project(project.id);
    Ok(HttpResponse::Ok().json(MemberProjectResponse {
        project: MemberProjectOut::new(project, role),
    }))
}
