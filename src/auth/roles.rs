//! Roles of project members and the one place that says what each may do:
//! viewers read, members manage resources, admins also manage API keys and
//! members, owners everything (deleting the project, making owners).
//! API keys act with full rights ([`Role::Owner`]).

use crate::error::{ApiError, ApiResult};
use actix_web::http::Method;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A member's role, ordered by rights (`Viewer < Member < Admin < Owner`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything of the project.
    Viewer,
    /// Also creates, changes and deletes the project's resources.
    Member,
    /// Also manages API keys, members and invitations, and renames the project.
    Admin,
    /// Everything, including deleting the project and making owners.
    Owner,
}

impl Role {
    /// The identifier stored in the database and shown in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// The role a request method needs on the project API: reads need a
    /// viewer, anything else a member. Handlers ask for more with [`Role::require`].
    pub fn for_method(method: &Method) -> Role {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            Role::Viewer
        } else {
            Role::Member
        }
    }

    /// 403 unless this role has at least the rights of `needed`.
    pub fn require(self, needed: Role) -> ApiResult<()> {
        if self >= needed {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "This action needs the {needed} role (you are {self})"
            )))
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ApiError;
    fn from_str(s: &str) -> Result<Self, ApiError> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            _ => Err(ApiError::invalid_field(
                "role",
                "role must be one of owner, admin, member, viewer",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_rights() {
        assert!(Role::Viewer < Role::Member && Role::Member < Role::Admin);
        assert!(Role::Admin < Role::Owner);
        assert!(Role::Admin.require(Role::Member).is_ok());
        assert!(Role::Viewer.require(Role::Member).is_err());
        assert_eq!(Role::for_method(&Method::GET), Role::Viewer);
        assert_eq!(Role::for_method(&Method::DELETE), Role::Member);
        assert_eq!("admin".parse::<Role>().ok(), Some(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
