//! Account tokens: opaque single-use tokens (refresh, e-mail, reset,
//! invitation) stored only as SHA-256, and short-lived HS256 access tokens.

use super::jwt;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A new opaque token: 32 random bytes, base64url (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a presented opaque token: the only form stored.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a string can be one of our opaque tokens (cheap pre-check).
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Account id.
    pub sub: i64,
    /// Session (login) id.
    pub sid: i64,
    /// Always `access`.
    pub typ: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

/// Signs an access token for a session.
pub fn sign_access(secret: &[u8], account_id: i64, session_id: i64, ttl_secs: u64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": "voxplane",
        "sub": account_id,
        "sid": session_id,
        "typ": "access",
        "iat": now,
        "exp": now + i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
    });
    jwt::sign(&claims, secret, None)
}

/// The claims of a valid, unexpired access token.
pub fn verify_access(secret: &[u8], token: &str) -> Option<AccessClaims> {
    let claims: AccessClaims = jwt::verify(token, secret).ok()?;
    (claims.typ == "access" && claims.exp > chrono::Utc::now().timestamp()).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_round_trip_and_expire() {
        let t = sign_access(b"0123456789abcdef0123456789abcdef", 7, 9, 60);
        let c = verify_access(b"0123456789abcdef0123456789abcdef", &t).expect("valid");
        assert_eq!((c.sub, c.sid), (7, 9));
        assert!(verify_access(b"another secret of thirty-two chars!", &t).is_none());
        let expired = jwt::sign(
            &json!({"sub": 1, "sid": 1, "typ": "access", "iat": 0, "exp": 1}),
            b"k",
            None,
        );
        assert!(verify_access(b"k", &expired).is_none());
        let t = generate();
        assert!(looks_like_token(&t) && t != generate());
    }
}
