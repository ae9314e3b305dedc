//! The `projects` table: tenants.

use super::schema::projects;
use crate::limits::plans::Plan;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::Rng;

/// A row of `projects`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = projects)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub room_prefix: String,
    pub plan: String,
    pub rate_limit_per_minute: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Project {
    /// The plan, read leniently (the CHECK constraint keeps it valid).
    pub fn plan(&self) -> Plan {
        self.plan.parse().unwrap_or(Plan::Free)
    }
}

#[derive(Insertable)]
#[diesel(table_name = projects)]
struct NewProject<'a> {
    name: &'a str,
    slug: &'a str,
    room_prefix: &'a str,
    plan: &'a str,
}

/// Creates a project with a fresh slug and room prefix.
pub async fn create(conn: &mut AsyncPgConnection, name: &str, plan: Plan) -> QueryResult<Project> {
    // Collisions of 40 random bits are retried rather than assumed away.
    let mut attempt = 0;
    loop {
        let slug = format!("{}-{}", slugify(name), random_alnum(6));
        let prefix = format!("p{}", random_alnum(9));
        let row = NewProject {
            name,
            slug: &slug,
            room_prefix: &prefix,
            plan: plan.as_str(),
        };
        match diesel::insert_into(projects::table)
            .values(&row)
            .returning(Project::as_returning())
            .get_result(conn)
            .await
        {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) if attempt < 5 => attempt += 1,
            other => return other,
        }
    }
}

/// A live (not deleted) project by id.
pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Project> {
    projects::table
        .filter(projects::id.eq(id).and(projects::deleted_at.is_null()))
        .select(Project::as_select())
        .first(conn)
        .await
}

/// Locks the project row for the rest of the transaction: creates that check a
/// quota take this lock first, so concurrent creates are counted one by one.
pub async fn lock(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    projects::table
        .filter(projects::id.eq(id))
        .select(projects::id)
        .for_update()
        .first::<i64>(conn)
        .await
        .map(|_| ())
}

/// Inside a transaction: takes the lock a row referencing the project takes
/// for its foreign key (`FOR KEY SHARE`), up front. A writer that will insert
/// such a row after a row another transaction may also write takes it first,
/// so it waits for a [`lock`] holder (an API create) before holding anything
/// that holder needs: otherwise the foreign-key check at the end of the insert
/// waits for the holder while the holder waits for the inserted row, a
/// deadlock Postgres breaks by failing one of them.
pub async fn share(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    projects::table
        .filter(projects::id.eq(id))
        .select(projects::id)
        .for_key_share()
        .first::<i64>(conn)
        .await
        .map(|_| ())
}

/// Sets or clears the per-project requests-per-minute override.
pub async fn set_rate_limit(
    conn: &mut AsyncPgConnection,
    id: i64,
    per_minute: Option<i32>,
) -> QueryResult<usize> {
    diesel::update(projects::table.find(id))
        .set((
            projects::rate_limit_per_minute.eq(per_minute),
            projects::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
}

/// Makes an account the owner of a project (it counts in its `projects` quota).
pub async fn set_owner(
    conn: &mut AsyncPgConnection,
    id: i64,
    account_id: i64,
) -> QueryResult<usize> {
    diesel::update(projects::table.find(id))
        .set(projects::owner_account_id.eq(account_id))
        .execute(conn)
        .await
}

/// Renames a live project.
pub async fn rename(conn: &mut AsyncPgConnection, id: i64, name: &str) -> QueryResult<Project> {
    diesel::update(projects::table.filter(projects::id.eq(id).and(projects::deleted_at.is_null())))
        .set((projects::name.eq(name), projects::updated_at.eq(Utc::now())))
        .returning(Project::as_returning())
        .get_result(conn)
        .await
}

/// Soft-deletes a project and revokes all its API keys at once.
pub async fn soft_delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<usize> {
    use super::schema::api_keys as ak;
    let now = Utc::now();
    diesel::update(ak::table.filter(ak::project_id.eq(id).and(ak::revoked_at.is_null())))
        .set(ak::revoked_at.eq(now))
        .execute(conn)
        .await?;
    diesel::update(projects::table.filter(projects::id.eq(id).and(projects::deleted_at.is_null())))
        .set((projects::deleted_at.eq(now), projects::updated_at.eq(now)))
        .execute(conn)
        .await
}

/// Lower-case alphanumerics, the alphabet of slugs suffixes and room prefixes.
pub fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `"My Project!"` → `"my-project"` (at most 40 characters, never empty).
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_matches('-').to_string();
    if slug.is_empty() {
        "project".into()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("My Project!"), "my-project");
        assert_eq!(slugify("  ***  "), "project");
        assert_eq!(slugify("Ünïcode café"), "n-code-caf");
        assert!(slugify(&"x".repeat(100)).len() <= 40);
    }
}
