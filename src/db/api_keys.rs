//! The `api_keys` table. Keys are `pk_` + 40 random base62 characters; only
//! their SHA-256 is stored, with a display prefix and the last four characters.

use super::projects::Project;
use super::schema::{api_keys, projects};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::Rng;
use sha2::{Digest, Sha256};

/// A row of `api_keys` (never holds the key itself).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub key_prefix: String,
    pub key_last4: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_by: Option<i64>,
}

impl ApiKey {
    /// The key as shown after creation: `pk_ab12…wxyz`.
    pub fn masked(&self) -> String {
        format!("{}…{}", self.key_prefix, self.key_last4)
    }
}

/// SHA-256 of a presented key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A new random key `pk_…`.
pub fn generate_key() -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let body: String = (0..40)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect();
    format!("pk_{body}")
}

/// Whether a string has the shape of one of our keys (cheap pre-check).
pub fn looks_like_key(key: &str) -> bool {
    key.len() == 43 && key.starts_with("pk_") && key[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[derive(Insertable)]
#[diesel(table_name = api_keys)]
struct NewApiKey<'a> {
    project_id: i64,
    name: &'a str,
    key_hash: &'a [u8],
    key_prefix: &'a str,
    key_last4: &'a str,
    expires_at: Option<DateTime<Utc>>,
    created_by: Option<i64>,
}

/// Creates a key for a project; returns the row and the key (shown once).
pub async fn create(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> QueryResult<(ApiKey, String)> {
    create_by(conn, project_id, name, expires_at, None).await
}

/// [`create`], recording the account that created the key.
pub async fn create_by(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    created_by: Option<i64>,
) -> QueryResult<(ApiKey, String)> {
    let key = generate_key();
    let hash = hash_key(&key);
    let row = NewApiKey {
        project_id,
        name,
        key_hash: &hash,
        key_prefix: &key[..7],
        key_last4: &key[key.len() - 4..],
        expires_at,
        created_by,
    };
    let created = diesel::insert_into(api_keys::table)
        .values(&row)
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await?;
    Ok((created, key))
}

/// The project and key behind a key hash, if the key is usable now (not
/// revoked, not expired, project not deleted); marks it used.
pub async fn authenticate(
    conn: &mut AsyncPgConnection,
    hash: &[u8; 32],
) -> QueryResult<Option<(ApiKey, Project)>> {
    let now = Utc::now();
    let found = api_keys::table
        .inner_join(projects::table)
        .filter(api_keys::key_hash.eq(hash.as_slice()))
        .filter(api_keys::revoked_at.is_null())
        .filter(
            api_keys::expires_at
                .is_null()
                .or(api_keys::expires_at.gt(now)),
        )
        .filter(projects::deleted_at.is_null())
        .select((ApiKey::as_select(), Project::as_select()))
        .first::<(ApiKey, Project)>(conn)
        .await
        .optional()?;
    // `last_used_at` to the minute: a busy key is not a hot row.
    if let Some((key, _)) = &found
        && key
            .last_used_at
            .is_none_or(|t| now - t > chrono::Duration::seconds(60))
    {
        diesel::update(api_keys::table.find(key.id))
            .set(api_keys::last_used_at.eq(now))
            .execute(conn)
            .await?;
    }
    Ok(found)
}

/// Of `ids`, the keys that still work: not revoked, not expired, of a
/// project that is not deleted (monitor sockets opened with the others
/// are closed).
pub async fn still_valid(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    api_keys::table
        .inner_join(projects::table)
        .filter(api_keys::id.eq_any(ids))
        .filter(api_keys::revoked_at.is_null())
        .filter(
            api_keys::expires_at
                .is_null()
                .or(api_keys::expires_at.gt(Utc::now())),
        )
        .filter(projects::deleted_at.is_null())
        .select(api_keys::id)
        .load(conn)
        .await
}

/// The keys of a project that are not revoked, newest first.
pub async fn list_live(conn: &mut AsyncPgConnection, project_id: i64) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(
            api_keys::project_id
                .eq(project_id)
                .and(api_keys::revoked_at.is_null()),
        )
        .order(api_keys::id.desc())
        .select(ApiKey::as_select())
        .load(conn)
        .await
}

/// Revokes a key of a project; returns whether a live key was revoked.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    project_id: i64,
    key_id: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(key_id))
            .filter(api_keys::project_id.eq(project_id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape() {
        let k = generate_key();
        assert!(looks_like_key(&k), "{k}");
        assert_ne!(generate_key(), k);
        assert!(!looks_like_key("pk_short"));
        assert!(!looks_like_key(&format!("sk_{}", &k[3..])));
    }
}
