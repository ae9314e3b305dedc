//! Guards `/api/v1`: resolves the API key (401 otherwise), applies the rate
//! limit of the key's plan (429 otherwise), and puts the rate-limit headers on
//! every response. Requests without a valid key are limited per client IP.

use crate::auth::{self, AuthContext};
use crate::error::ApiError;
use crate::limits::rate::{RateDecision, RateKey};
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// See the module documentation.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::internal(anyhow::anyhow!("AppState missing")).into());
    };
    // The GET form of connection details authenticates with its signed token.
    let public =
        req.method() == actix_web::http::Method::GET && req.path() == "/api/v1/connection-details";
    let presented = if public {
        None
    } else {
        auth::presented_key(req.request()).map(str::to_owned)
    };
    let ctx = match &presented {
        None => None,
        Some(key) => match state.keys.lookup(&state.pool, key).await {
            Ok(ctx) => ctx,
            Err(e) => return Ok(req.into_response(e.error_response())),
        },
    };
    let (rate_key, per_minute) = match &ctx {
        Some(ctx) => (
            RateKey::ApiKey(ctx.key_id),
            ctx.project
                .rate_limit_per_minute
                .unwrap_or_else(|| state.settings.rate_limits.for_plan(ctx.project.plan)),
        ),
        None => (
            RateKey::Ip(client_ip(&req)),
            state.settings.rate_limits.anonymous,
        ),
    };
    let decision = state.limiter.check(rate_key, per_minute).await;
    let mut res = if !decision.allowed {
        let err = ApiError::RateLimited {
            limit: decision.limit,
            retry_after: decision.retry_after.as_secs_f64().ceil().max(1.0) as u64,
        };
        req.into_response(err.error_response())
    } else {
        match ctx {
            None if public => next.call(req).await?.map_into_boxed_body(),
            None if presented.is_none() => req.into_response(
                ApiError::Unauthorized("Missing X-API-Key header".into()).error_response(),
            ),
            None => req.into_response(
                ApiError::Unauthorized("Invalid or deactivated API key".into()).error_response(),
            ),
            Some(ctx) => {
                req.extensions_mut().insert::<Arc<AuthContext>>(ctx);
                next.call(req).await?.map_into_boxed_body()
            }
        }
    };
    set_rate_headers(res.headers_mut(), &decision);
    Ok(res)
}

fn client_ip(req: &ServiceRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// `X-RateLimit-*` (the contract) and the IETF draft `RateLimit-Policy`/`RateLimit`.
fn set_rate_headers(headers: &mut HeaderMap, d: &RateDecision) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let reset_secs = d.reset_after.as_secs_f64().ceil() as u64;
    let reset_at = now.as_secs() + reset_secs;
    let pairs = [
        ("x-ratelimit-limit", d.limit.to_string()),
        ("x-ratelimit-remaining", d.remaining.to_string()),
        ("x-ratelimit-reset", reset_at.to_string()),
        (
            "ratelimit-policy",
            format!("\"per-minute\";q={};w=60", d.limit),
        ),
        (
            "ratelimit",
            format!("\"per-minute\";r={};t={}", d.remaining, reset_secs),
        ),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
}
