//! Minimal HS256 JSON Web Tokens for tokens integrators sign for us
//! (connection details): header check, constant-time signature check, claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("token is malformed")]
    Malformed,
    /// Not HS256.
    #[error("token algorithm must be HS256")]
    Algorithm,
    /// The signature does not match.
    #[error("token signature is invalid")]
    Signature,
    /// The claims are not what the endpoint expects.
    #[error("token claims are invalid: {0}")]
    Claims(String),
}

/// The JOSE header fields we read.
#[derive(Debug, Deserialize)]
pub struct Header {
    /// Algorithm; must be HS256.
    pub alg: String,
    /// Key id, naming which secret signed the token.
    pub kid: Option<String>,
}

fn part(s: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed)
}

/// The header of a token, before its signature is checked (to pick the key).
pub fn header(token: &str) -> Result<Header, JwtError> {
    let head = token.split('.').next().ok_or(JwtError::Malformed)?;
    let header: Header = serde_json::from_slice(&part(head)?).map_err(|_| JwtError::Malformed)?;
    if header.alg != "HS256" {
        return Err(JwtError::Algorithm);
    }
    Ok(header)
}

/// Verifies the signature with `secret` and decodes the claims.
pub fn verify<T: DeserializeOwned>(token: &str, secret: &[u8]) -> Result<T, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    header(token)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| JwtError::Signature)?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(c.as_bytes());
    mac.verify_slice(&part(sig)?)
        .map_err(|_| JwtError::Signature)?;
    serde_json::from_slice(&part(c)?).map_err(|e| JwtError::Claims(e.to_string()))
}

/// Signs claims with HS256 (used by tests and examples).
pub fn sign(claims: &serde_json::Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = serde_json::Value::String(kid.to_owned());
    }
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(c.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{c}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn round_trip_and_tampering() {
        let t = sign(&json!({"id": "u1"}), b"secret", Some("k1"));
        assert_eq!(header(&t).map(|h| h.kid), Ok(Some("k1".into())));
        let v: Value = verify(&t, b"secret").expect("valid");
        assert_eq!(v["id"], "u1");
        assert_eq!(verify::<Value>(&t, b"other"), Err(JwtError::Signature));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(json!({"id": "admin"}).to_string());
        assert_eq!(
            verify::<Value>(&parts.join("."), b"secret"),
            Err(JwtError::Signature)
        );
        assert_eq!(verify::<Value>("a.b", b"secret"), Err(JwtError::Malformed));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(verify::<Value>(&none, b"secret"), Err(JwtError::Algorithm));
    }
}
