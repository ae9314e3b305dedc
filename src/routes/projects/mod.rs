//! Projects of signed-in accounts under `/api/v1/projects` (access token,
//! not API key): the projects themselves, their members and invitations,
//! their API keys and test tokens. Every route checks the caller's role in
//! the project through [`member`]; non-members get 404.

pub mod crud;
pub mod keys;
pub mod members;

pub use crud::{create_project, delete_project, get_project, list_projects, update_project};
pub use keys::{create_key, create_test_token, delete_key, list_keys};
pub use members::{
    accept_invitation, invite_member, list_invitations, list_members, remove_member,
    revoke_invitation, update_member,
};

use super::allow;
use crate::auth::roles::Role;
use crate::auth::{AuthContext, sessions::Account};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use actix_web::web;
use std::sync::Arc;

/// The caller's view of a project it is a member of, with at least `needed`
/// rights: 404 for non-members (as for missing projects), 403 for too small a role.
pub async fn member(
    state: &AppState,
    me: &Account,
    project_id: i64,
    needed: Role,
) -> ApiResult<Arc<AuthContext>> {
    let ctx = state
        .accounts
        .project_context(&state.pool, me.account_id, project_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Project"))?;
    ctx.require(needed)?;
    Ok(ctx)
}

/// Registers the `/projects` routes (inside its scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("")
            .route(web::get().to(list_projects))
            .route(web::post().to(create_project))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{project_id}")
            .route(web::get().to(get_project))
            .route(web::patch().to(update_project))
            .route(web::delete().to(delete_project))
            .default_service(allow(&["GET", "PATCH", "DELETE"])),
    )
    .service(
        web::resource("/{project_id}/members")
            .route(web::get().to(list_members))
            .route(web::post().to(invite_member))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{project_id}/members/{account_id}")
            .route(web::patch().to(update_member))
            .route(web::delete().to(remove_member))
            .default_service(allow(&["PATCH", "DELETE"])),
    )
    .service(
        web::resource("/{project_id}/invitations")
            .route(web::get().to(list_invitations))
            .default_service(allow(&["GET"])),
    )
    .service(
        web::resource("/{project_id}/invitations/{invitation_id}")
            .route(web::delete().to(revoke_invitation))
            .default_service(allow(&["DELETE"])),
    )
    .service(
        web::resource("/{project_id}/keys")
            .route(web::get().to(list_keys))
            .route(web::post().to(create_key))
            .default_service(allow(&["GET", "POST"])),
    )
    .service(
        web::resource("/{project_id}/keys/{key_id}")
            .route(web::delete().to(delete_key))
            .default_service(allow(&["DELETE"])),
    )
    .service(
        web::resource("/{project_id}/test-token")
            .route(web::post().to(create_test_token))
            .default_service(allow(&["POST"])),
    );
}

/// Registers `/invitations/accept` (outside the `/projects` scope).
pub fn configure_invitations(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/invitations/accept")
            .route(web::post().to(accept_invitation))
            .default_service(allow(&["POST"])),
    );
}
