//! Passwords: argon2id hashes (PHC strings), a strength check, and a dummy
//! verification so unknown accounts take as long as known ones.

use crate::error::{ApiError, ApiResult};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use std::sync::OnceLock;

/// Shortest accepted password.
pub const MIN_LEN: usize = 10;
/// Longest accepted password (argon2 takes any length; this bounds the work).
pub const MAX_LEN: usize = 256;

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string of a password.
pub fn hash(password: &str) -> ApiResult<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(anyhow::anyhow!("hashing a password: {e}")))
}

/// Whether `password` matches a stored hash (false for a malformed hash).
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// Spends the time of one verification, for callers without an account, so
/// that answers for unknown e-mails cannot be told apart by timing.
pub fn verify_dummy(password: &str) {
    let _ = verify(password, dummy_hash());
}

/// A hash to verify against when there is no account, made once per process
/// (call at start so the first unknown login is not slower than the rest).
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("dummy password for timing").unwrap_or_default())
}

/// Runs `f` on the blocking pool (argon2 takes tens of milliseconds of CPU).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)
}

const COMMON: [&str; 16] = [
    "password", "passw0rd", "123456", "qwerty", "letmein", "welcome", "iloveyou", "admin",
    "monkey", "dragon", "abc123", "111111", "sunshine", "football", "baseball", "trustno1",
];

/// Refuses passwords that are short, long, or trivially weak (one repeated
/// character, a run like `1234567890`, a common password, or the e-mail itself).
pub fn check_strength(field: &str, password: &str, email: &str) -> ApiResult<()> {
    let weak = |why: &str| Err(ApiError::invalid_field(field, format!("{field} {why}")));
    let len = password.chars().count();
    if len < MIN_LEN {
        return weak(&format!("must be at least {MIN_LEN} characters"));
    }
    if len > MAX_LEN {
        return weak(&format!("must be at most {MAX_LEN} characters"));
    }
    let lower = password.to_lowercase();
    let distinct: std::collections::HashSet<char> = lower.chars().collect();
    if distinct.len() < 4 {
        return weak("is too weak: use more different characters");
    }
    let bytes = lower.as_bytes();
    let sequential = bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
        || bytes.windows(2).all(|w| w[1].wrapping_add(1) == w[0]);
    if sequential {
        return weak("is too weak: it is a simple sequence");
    }
    let stripped: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    if COMMON
        .iter()
        .any(|c| lower.starts_with(c) && (stripped.len() <= c.len()))
        || COMMON.contains(&stripped.as_str())
    {
        return weak("is too weak: it is a common password");
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if lower == email.to_lowercase() || (local.len() >= 3 && lower.contains(&local)) {
        return weak("must not contain your e-mail address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong horse battery", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn weak_passwords_are_refused() {
        let e = "ann@example.com";
        for bad in [
            "short",
            "aaaaaaaaaaaa",
            "1234567890",
            "password123",
            "Password1!",
            "ann-example-99",
            "abababababab",
        ] {
            assert!(check_strength("password", bad, e).is_err(), "{bad}");
        }
        assert!(check_strength("password", "tangerine-Orbit-42", e).is_ok());
    }
}
