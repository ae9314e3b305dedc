//! The dashboard's session: the access and refresh tokens live in
//! `HttpOnly`, `SameSite=Strict` cookies that page scripts cannot read, and
//! every state-changing request carries a CSRF token (double submit: the
//! `vp_csrf` cookie, readable by the page, echoed in `X-CSRF-Token`).
//!
//! `/dashboard/session/{login,refresh,logout}` run the `/api/v1/auth`
//! handlers and move their tokens into cookies; [`cookie_auth`], in front
//! of the `/api/v1` guard, turns the session cookie into the
//! `Authorization: Bearer` header the guard already understands (and, on
//! reads, `?project_id=` into `X-Project-Id`, for `<audio src>` and links).

use crate::error::ApiError;
use crate::routes::auth::login::{LoginIn, RefreshIn};
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Value, json};

/// Cookie holding the access token (every path, `HttpOnly`).
pub const ACCESS_COOKIE: &str = "vp_session";
/// Cookie holding the refresh token (only sent to `/dashboard/session`).
pub const REFRESH_COOKIE: &str = "vp_refresh";
/// Cookie holding the CSRF token (readable by the page).
pub const CSRF_COOKIE: &str = "vp_csrf";
/// Header a state-changing request echoes the CSRF cookie in.
pub const CSRF_HEADER: &str = "x-csrf-token";
const REFRESH_PATH: &str = "/dashboard/session";

/// The value of a cookie of the request (the first one of that name).
pub fn cookie<'a>(headers: &'a header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Compares two strings in time that depends only on their lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether a request that changes state carries the CSRF token of its
/// cookie in `X-CSRF-Token`.
pub fn csrf_ok(headers: &header::HeaderMap) -> bool {
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    matches!((cookie(headers, CSRF_COOKIE), sent), (Some(c), Some(s)) if c.len() >= 16 && same(c, s))
}

fn csrf_error() -> ApiError {
    ApiError::Forbidden("Missing or wrong X-CSRF-Token (reload the dashboard and try again)".into())
}

/// Whether cookies must be `Secure`: served over TLS, or behind a proxy
/// whose public address is `https://`.
pub fn secure(req: &HttpRequest, state: &AppState) -> bool {
    req.connection_info().scheme() == "https"
        || state.settings.public_base_url.starts_with("https://")
}

/// A `Set-Cookie` value.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    http_only: bool,
    secure: bool,
    max_age: Option<i64>,
) -> String {
    let mut c = format!("{name}={value}; Path={path}; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// A new random CSRF token.
pub fn new_csrf() -> String {
    crate::auth::tokens::generate()
}

fn add_cookie(res: &mut HttpResponse, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The login (or refresh) answer of the API, with its tokens moved into
/// cookies: the page gets only the account and the lifetimes.
async fn into_cookies(
    req: &HttpRequest,
    state: &AppState,
    res: HttpResponse,
) -> Result<HttpResponse, ApiError> {
    let status = res.status();
    let bytes = actix_web::body::to_bytes(res.into_body())
        .await
        .map_err(|_| ApiError::internal(anyhow::anyhow!("unreadable login body")))?;
    let body: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(anyhow::Error::from(e)))?;
    let access = body["access_token"].as_str().unwrap_or_default();
    let refresh = body["refresh_token"].as_str().unwrap_or_default();
    let expires_in = body["expires_in"].as_i64().unwrap_or(900);
    let refresh_age = body["refresh_expires_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds())
        .unwrap_or(30 * 86_400);
    let tls = secure(req, state);
    let mut out = HttpResponse::build(status).json(json!({
        "account": body["account"],
        "expires_in": expires_in,
    }));
    // The access cookie outlives its token a little: the API answers 401
    // for an expired token, and the page refreshes then.
    add_cookie(
        &mut out,
        set_cookie(ACCESS_COOKIE, access, "/", true, tls, Some(refresh_age)),
    );
    add_cookie(
        &mut out,
        set_cookie(
            REFRESH_COOKIE,
            refresh,
            REFRESH_PATH,
            true,
            tls,
            Some(refresh_age),
        ),
    );
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(out)
}

/// The anonymous per-client-address limit of `/api/v1` (these endpoints
/// sit outside its guard): 429 `RATE_LIMITED` beyond it.
async fn rate_limited(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let ip = crate::middleware::client_addr::client_ip(req);
    let per_minute = state.settings.rate_limits.anonymous;
    let d = state
        .limiter
        .check(crate::limits::rate::RateKey::Ip(ip), per_minute)
        .await;
    if d.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            limit: d.limit,
            retry_after: d.retry_after.as_secs_f64().ceil().max(1.0) as u64,
        })
    }
}

/// `POST /dashboard/session/login`: `{email, password}` → the account; the
/// tokens go into cookies. Same rules and errors as `/api/v1/auth/login`.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginIn>,
) -> Result<HttpResponse, ApiError> {
    if !csrf_ok(req.headers()) {
        return Err(csrf_error());
    }
    rate_limited(&req, &state).await?;
    let res = crate::routes::auth::login(req.clone(), state.clone(), body).await?;
    into_cookies(&req, &state, res).await
}

/// `POST /dashboard/session/refresh`: rotates the refresh cookie and
/// renews the access cookie (401 when the session has ended).
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !csrf_ok(req.headers()) {
        return Err(csrf_error());
    }
    rate_limited(&req, &state).await?;
    let Some(token) = cookie(req.headers(), REFRESH_COOKIE) else {
        return Err(ApiError::Unauthorized("Not signed in".into()));
    };
    let body = web::Json(RefreshIn {
        refresh_token: token.to_owned(),
    });
    let res = crate::routes::auth::refresh(state.clone(), body).await?;
    into_cookies(&req, &state, res).await
}

/// `POST /dashboard/session/logout`: forgets the cookies (the page ends the
/// session itself first with `/api/v1/auth/logout` or `/logout-all`).
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !csrf_ok(req.headers()) {
        return Err(csrf_error());
    }
    let tls = secure(&req, &state);
    let mut res = HttpResponse::NoContent().finish();
    add_cookie(
        &mut res,
        set_cookie(ACCESS_COOKIE, "", "/", true, tls, Some(0)),
    );
    add_cookie(
        &mut res,
        set_cookie(REFRESH_COOKIE, "", REFRESH_PATH, true, tls, Some(0)),
    );
    Ok(res)
}

/// In front of the `/api/v1` guard: a request with no credentials of its
/// own but the session cookie acts as `Authorization: Bearer <cookie>`;
/// unless it is a GET/HEAD/OPTIONS it must carry the CSRF token (403
/// otherwise). Requests with an API key or an `Authorization` header are
/// left as they are.
pub async fn cookie_auth(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let headers = req.headers();
    let own_credentials = headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("x-api-key")
        || req.query_string().contains("api_key=");
    if !own_credentials && let Some(token) = cookie(headers, ACCESS_COOKIE) {
        let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !csrf_ok(headers) {
            return Ok(req.into_response(csrf_error().error_response()));
        }
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
        if safe && !req.headers().contains_key("x-project-id") {
            project_from_query(&mut req);
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// A page's `<audio src>` (or a download link) cannot send headers: on a
/// read with the session cookie, `?project_id=<id>` stands for
/// `X-Project-Id` (used by the recording player; the handlers that take a
/// query refuse the unknown parameter, so the pages send it only there).
fn project_from_query(req: &mut ServiceRequest) {
    let project = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "project_id")
        .map(|(_, v)| v.into_owned());
    if let Some(value) = project.and_then(|p| HeaderValue::from_str(&p).ok()) {
        req.headers_mut()
            .insert(header::HeaderName::from_static("x-project-id"), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> header::HeaderMap {
        let mut h = header::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn reads_cookies_and_checks_csrf() {
        let token = "abcdefghijklmnopqrstuvwxyz";
        let h = headers(&[
            ("cookie", &format!("a=1; vp_csrf={token}; vp_session=x")),
            ("x-csrf-token", token),
        ]);
        assert_eq!(cookie(&h, "vp_session"), Some("x"));
        assert_eq!(cookie(&h, "missing"), None);
        assert!(csrf_ok(&h));
        let wrong = headers(&[
            ("cookie", &format!("vp_csrf={token}")),
            ("x-csrf-token", "abcdefghijklmnopqrstuvwxyZ"),
        ]);
        assert!(!csrf_ok(&wrong));
        let short = headers(&[("cookie", "vp_csrf=a"), ("x-csrf-token", "a")]);
        assert!(!csrf_ok(&short));
    }
}
