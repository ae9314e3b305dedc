//! The `accounts`, `account_sessions` and `auth_tokens` tables. E-mail
//! addresses are stored lower-cased; tokens only as SHA-256.

use super::schema::{account_sessions as s, accounts as a, auth_tokens as t};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A row of `accounts`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = a)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub plan: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Account {
    /// The plan, read leniently (the CHECK constraint keeps it valid).
    pub fn plan(&self) -> crate::limits::plans::Plan {
        self.plan
            .parse()
            .unwrap_or(crate::limits::plans::Plan::Free)
    }
}

/// Kinds of single-use tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Rotating refresh token of a session.
    Refresh,
    /// Verifies the address of a new account.
    VerifyEmail,
    /// Confirms a new address of an existing account.
    ChangeEmail,
    /// Sets a new password.
    ResetPassword,
}

impl AuthToken {
    /// Whether this is an unused, unexpired token of `kind`.
    pub fn usable(&self, kind: TokenKind) -> bool {
        self.kind == kind.as_str() && self.used_at.is_none() && self.expires_at > Utc::now()
    }
}

impl TokenKind {
    /// The value of `auth_tokens.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Refresh => "refresh",
            TokenKind::VerifyEmail => "verify_email",
            TokenKind::ChangeEmail => "change_email",
            TokenKind::ResetPassword => "reset_password",
        }
    }
}

/// A row of `auth_tokens`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = t)]
pub struct AuthToken {
    pub id: i64,
    pub account_id: i64,
    pub kind: String,
    pub session_id: Option<i64>,
    pub email: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// Verification tokens: the password hash chosen by the registration
    /// the token confirms.
    pub password_hash: Option<String>,
    /// Verification tokens: the name chosen by that registration.
    pub name: Option<String>,
}

/// A registration of an unverified address, carried by its verification
/// token: whoever uses the token gets these credentials.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// argon2id hash of the password chosen.
    pub password_hash: &'a str,
    /// The name chosen.
    pub name: &'a str,
}

/// A token to store (its hash only).
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    pub account_id: i64,
    pub kind: TokenKind,
    pub hash: &'a [u8; 32],
    /// Refresh tokens: their session.
    pub session_id: Option<i64>,
    /// E-mail tokens: the address they verify.
    pub email: Option<&'a str>,
    /// Verification tokens: the registration they confirm.
    pub registration: Option<Registration<'a>>,
    pub expires_at: DateTime<Utc>,
}

/// The account with an address (addresses are stored lower-cased).
pub async fn find_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> QueryResult<Option<Account>> {
    a::table
        .filter(a::email.eq(email))
        .select(Account::as_select())
        .first(conn)
        .await
        .optional()
}

/// An account by id.
pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Account> {
    a::table
        .find(id)
        .select(Account::as_select())
        .first(conn)
        .await
}

/// Creates an unverified account.
pub async fn create(
    conn: &mut AsyncPgConnection,
    email: &str,
    name: &str,
    password_hash: &str,
    plan: &str,
) -> QueryResult<Account> {
    diesel::insert_into(a::table)
        .values((
            a::email.eq(email),
            a::name.eq(name),
            a::password_hash.eq(password_hash),
            a::plan.eq(plan),
        ))
        .returning(Account::as_returning())
        .get_result(conn)
        .await
}

/// Locks the account row for the rest of the transaction.
pub async fn lock(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<()> {
    a::table
        .find(id)
        .select(a::id)
        .for_update()
        .first::<i64>(conn)
        .await
        .map(|_| ())
}

/// Replaces the name and password of an account that is still unverified
/// (a new registration of its address); 0 when it is verified by now.
pub async fn replace_unverified(
    conn: &mut AsyncPgConnection,
    id: i64,
    reg: Registration<'_>,
) -> QueryResult<usize> {
    diesel::update(a::table.find(id).filter(a::email_verified_at.is_null()))
        .set((
            a::name.eq(reg.name),
            a::password_hash.eq(reg.password_hash),
            a::updated_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
}

/// Sets the name.
pub async fn set_name(conn: &mut AsyncPgConnection, id: i64, name: &str) -> QueryResult<usize> {
    diesel::update(a::table.find(id))
        .set((a::name.eq(name), a::updated_at.eq(Utc::now())))
        .execute(conn)
        .await
}

/// Sets the password hash.
pub async fn set_password(conn: &mut AsyncPgConnection, id: i64, hash: &str) -> QueryResult<usize> {
    diesel::update(a::table.find(id))
        .set((a::password_hash.eq(hash), a::updated_at.eq(Utc::now())))
        .execute(conn)
        .await
}

/// Verifies a new account's address with the registration its token
/// carried (its name and password become the account's); tokens of before
/// this change carry none and keep the account's. 0 when already verified.
pub async fn confirm_registration(
    conn: &mut AsyncPgConnection,
    id: i64,
    reg: Option<Registration<'_>>,
) -> QueryResult<usize> {
    let now = Utc::now();
    let target = a::table.find(id).filter(a::email_verified_at.is_null());
    match reg {
        Some(r) => {
            diesel::update(target)
                .set((
                    a::name.eq(r.name),
                    a::password_hash.eq(r.password_hash),
                    a::email_verified_at.eq(now),
                    a::updated_at.eq(now),
                ))
                .execute(conn)
                .await
        }
        None => {
            diesel::update(target)
                .set((a::email_verified_at.eq(now), a::updated_at.eq(now)))
                .execute(conn)
                .await
        }
    }
}

/// Marks the address verified, optionally replacing it (an e-mail change).
pub async fn verify_email(
    conn: &mut AsyncPgConnection,
    id: i64,
    new_email: Option<&str>,
) -> QueryResult<usize> {
    let now = Utc::now();
    match new_email {
        Some(e) => {
            diesel::update(a::table.find(id))
                .set((
                    a::email.eq(e),
                    a::email_verified_at.eq(now),
                    a::updated_at.eq(now),
                ))
                .execute(conn)
                .await
        }
        None => {
            diesel::update(a::table.find(id).filter(a::email_verified_at.is_null()))
                .set((a::email_verified_at.eq(now), a::updated_at.eq(now)))
                .execute(conn)
                .await
        }
    }
}

/// Opens a session (login) for `days`; returns its id.
pub async fn open_session(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    days: u32,
) -> QueryResult<i64> {
    diesel::insert_into(s::table)
        .values((
            s::account_id.eq(account_id),
            s::expires_at.eq(Utc::now() + Duration::days(i64::from(days))),
        ))
        .returning(s::id)
        .get_result(conn)
        .await
}

/// Whether a session is open (not revoked, not expired).
pub async fn session_open(conn: &mut AsyncPgConnection, session_id: i64) -> QueryResult<bool> {
    s::table
        .filter(s::id.eq(session_id))
        .filter(s::revoked_at.is_null().and(s::expires_at.gt(Utc::now())))
        .count()
        .get_result::<i64>(conn)
        .await
        .map(|n| n == 1)
}

/// Revokes one session of an account.
pub async fn revoke_session(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    session_id: i64,
) -> QueryResult<usize> {
    diesel::update(
        s::table
            .filter(s::id.eq(session_id).and(s::account_id.eq(account_id)))
            .filter(s::revoked_at.is_null()),
    )
    .set(s::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}

/// Those of `ids` that are sessions still open (not revoked, not expired).
pub async fn open_sessions(conn: &mut AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    s::table
        .filter(s::id.eq_any(ids))
        .filter(s::revoked_at.is_null().and(s::expires_at.gt(Utc::now())))
        .select(s::id)
        .load(conn)
        .await
}

/// Revokes every open session of an account except `keep`.
pub async fn revoke_sessions(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    keep: Option<i64>,
) -> QueryResult<usize> {
    diesel::update(
        s::table
            .filter(s::account_id.eq(account_id))
            .filter(s::id.ne(keep.unwrap_or(0)))
            .filter(s::revoked_at.is_null()),
    )
    .set(s::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await
}

/// Stores the hash of a new token.
pub async fn insert_token(conn: &mut AsyncPgConnection, new: NewToken<'_>) -> QueryResult<()> {
    diesel::insert_into(t::table)
        .values((
            t::account_id.eq(new.account_id),
            t::kind.eq(new.kind.as_str()),
            t::token_hash.eq(new.hash.as_slice()),
            t::session_id.eq(new.session_id),
            t::email.eq(new.email),
            t::password_hash.eq(new.registration.map(|r| r.password_hash)),
            t::name.eq(new.registration.map(|r| r.name)),
            t::expires_at.eq(new.expires_at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The token with a hash (any kind, used or not), locked for the transaction.
pub async fn find_token(
    conn: &mut AsyncPgConnection,
    hash: &[u8; 32],
) -> QueryResult<Option<AuthToken>> {
    t::table
        .filter(t::token_hash.eq(hash.as_slice()))
        .select(AuthToken::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Marks a token used; false when it already was (a concurrent use).
pub async fn use_token(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<bool> {
    diesel::update(t::table.find(id).filter(t::used_at.is_null()))
        .set(t::used_at.eq(Utc::now()))
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// Spends every unused token of a kind of an account (a newer one replaces
/// them, or a password reset makes them moot).
pub async fn spend_tokens(
    conn: &mut AsyncPgConnection,
    account_id: i64,
    kind: TokenKind,
) -> QueryResult<usize> {
    diesel::update(
        t::table
            .filter(t::account_id.eq(account_id).and(t::kind.eq(kind.as_str())))
            .filter(t::used_at.is_null()),
    )
    .set(t::used_at.eq(Utc::now()))
    .execute(conn)
    .await
}
