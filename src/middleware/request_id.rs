//! `X-Request-ID`: accepted from the client when sane, generated otherwise,
//! echoed on every response and visible to code running for the request.

use actix_web::HttpRequest;
use rand::Rng;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The header name.
pub const HEADER: &str = "x-request-id";

/// The id of the request being served by this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The client's id when it is 1–128 characters of `[A-Za-z0-9._:-]`, else a new one.
pub fn from_request(req: &HttpRequest) -> String {
    req.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(generate)
}

/// Whether a client-supplied id may be used as is.
pub fn is_acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A new random id (`req_` + 24 hex characters).
pub fn generate() -> String {
    let bytes: [u8; 12] = rand::rng().random();
    format!("req_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptable_ids() {
        assert!(is_acceptable("abc-123_x.y:z"));
        assert!(!is_acceptable(""));
        assert!(!is_acceptable("has space"));
        assert!(!is_acceptable(&"a".repeat(129)));
        assert!(is_acceptable(&generate()));
    }
}
