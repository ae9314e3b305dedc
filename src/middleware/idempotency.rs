//! `Idempotency-Key` for POST requests under `/api/v1`.
//!
//! The first request with a key runs and its response (any status below 500
//! other than 429) is stored for the configured TTL, per project for API keys
//! and per account for signed-in members (one member never replays another's
//! response). The same key
//! with the same method, path and body replays the stored status and body with
//! `Idempotent-Replayed: true`; with another request it is refused with 422.
//! A duplicate arriving while the first is still running waits for it (up to
//! a few seconds, then 409), so concurrent duplicates execute once.

use crate::auth::AuthContext;
use crate::db::schema::idempotency_keys as ik;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// How long a duplicate waits for the first request to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);
/// An unfinished record older than this was abandoned (crash) and is retaken.
const ABANDONED_AFTER_SECS: i64 = 60;

/// See the module documentation.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let key = match req.headers().get(HEADER) {
        Some(v) if req.method() == Method::POST => v.to_str().map(str::to_owned).ok(),
        _ => return Ok(next.call(req).await?.map_into_boxed_body()),
    };
    let Some(key) = key.filter(|k| (1..=255).contains(&k.len())) else {
        let err = ApiError::invalid_field(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        );
        return Ok(req.into_response(err.error_response()));
    };
    let (Some(state), Some(ctx)) = (
        req.app_data::<web::Data<AppState>>().cloned(),
        req.extensions().get::<Arc<AuthContext>>().cloned(),
    ) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };

    // Buffer the body to fingerprint it, then hand it on unchanged: never
    // more than the route itself would accept.
    let limit = super::body_limit(&req, &state);
    let too_large = || ApiError::PayloadTooLarge { limit }.error_response();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // A body past the limit is drained (so the client reads the answer), up
    // to a few times the limit; beyond that the connection is cut short.
    let drain_cap = 4 * limit as u64;
    if declared.is_some_and(|n| n > drain_cap) {
        return Ok(req.into_response(too_large()));
    }
    let mut body = BytesMut::with_capacity(declared.map_or(0, |n| n.min(limit as u64) as usize));
    let mut seen = 0u64;
    let mut payload = req.take_payload();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > drain_cap {
            return Ok(req.into_response(too_large()));
        }
        if seen <= limit as u64 {
            body.extend_from_slice(&chunk);
        }
    }
    if seen > limit as u64 {
        return Ok(req.into_response(too_large()));
    }
    let body = body.freeze();
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b"\n");
    hasher.update(req.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""));
    hasher.update(b"\n");
    hasher.update(&body);
    let fingerprint: [u8; 32] = hasher.finalize().into();
    req.set_payload(Payload::from(body));

    // The stored key names its owner: the project for API keys, the account
    // for signed-in members.
    let key = match ctx.account_id {
        Some(account) => format!("a{account}:{key}"),
        None => format!("p:{key}"),
    };
    match claim(&state, ctx.project.id, &key, &fingerprint).await {
        Ok(Claim::Run) => {}
        Ok(Claim::Replay(res)) => return Ok(req.into_response(res)),
        Err(e) => return Ok(req.into_response(e.error_response())),
    }

    let res = next.call(req).await?;
    let status = res.status();
    let content_type = res.headers().get(header::CONTENT_TYPE).cloned();
    let (http_req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(b) => b,
        Err(_) => Bytes::new(),
    };
    let keep = status.as_u16() < 500 && status != StatusCode::TOO_MANY_REQUESTS;
    if let Err(e) = finish(
        &state,
        ctx.project.id,
        &key,
        keep,
        status,
        content_type.as_ref(),
        &bytes,
    )
    .await
    {
        tracing::warn!(error = %e, "could not record idempotent response");
    }
    Ok(ServiceResponse::new(
        http_req,
        head.set_body(bytes).map_into_boxed_body(),
    ))
}

enum Claim {
    Run,
    Replay(HttpResponse),
}

async fn claim(
    state: &AppState,
    project_id: i64,
    key: &str,
    fingerprint: &[u8; 32],
) -> Result<Claim, ApiError> {
    let now = Utc::now();
    let expires = now + chrono::Duration::hours(i64::from(state.settings.idempotency_ttl_hours));
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        // A connection per try, none while waiting: duplicates waiting for the
        // first request must not take the connections it needs to finish.
        let mut conn = state.pool.get().await?;
        // Forget an expired record, and retake one abandoned mid-flight.
        diesel::delete(
            ik::table
                .filter(ik::project_id.eq(project_id))
                .filter(ik::key.eq(key))
                .filter(
                    ik::expires_at
                        .lt(Utc::now())
                        .or(ik::status_code.is_null().and(
                            ik::created_at
                                .lt(Utc::now() - chrono::Duration::seconds(ABANDONED_AFTER_SECS)),
                        )),
                ),
        )
        .execute(&mut conn)
        .await?;
        let inserted = diesel::insert_into(ik::table)
            .values((
                ik::project_id.eq(project_id),
                ik::key.eq(key),
                ik::request_hash.eq(fingerprint.as_slice()),
                ik::expires_at.eq(expires),
            ))
            .on_conflict_do_nothing()
            .execute(&mut conn)
            .await?;
        if inserted == 1 {
            return Ok(Claim::Run);
        }
        let existing = ik::table
            .filter(ik::project_id.eq(project_id))
            .filter(ik::key.eq(key))
            .select((
                ik::request_hash,
                ik::status_code,
                ik::response_body,
                ik::response_content_type,
            ))
            .first::<(Vec<u8>, Option<i32>, Option<Vec<u8>>, Option<String>)>(&mut conn)
            .await
            .optional()?;
        let Some((hash, status, body, content_type)) = existing else {
            continue;
        };
        if hash != fingerprint.as_slice() {
            return Err(ApiError::IdempotencyMismatch);
        }
        if let Some(status) = status {
            let status = u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let mut res = HttpResponse::build(status);
            res.insert_header((
                HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            ));
            if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                res.insert_header((header::CONTENT_TYPE, ct));
            }
            return Ok(Claim::Replay(res.body(body.unwrap_or_default())));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::conflict(
                "A request with this Idempotency-Key is still being processed; retry later",
            ));
        }
        drop(conn);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finish(
    state: &AppState,
    project_id: i64,
    key: &str,
    keep: bool,
    status: StatusCode,
    content_type: Option<&HeaderValue>,
    body: &Bytes,
) -> Result<(), ApiError> {
    let mut conn = state.pool.get().await?;
    let row = ik::table
        .filter(ik::project_id.eq(project_id))
        .filter(ik::key.eq(key));
    if keep {
        diesel::update(row)
            .set((
                ik::status_code.eq(i32::from(status.as_u16())),
                ik::response_body.eq(body.as_ref()),
                ik::response_content_type.eq(content_type.and_then(|c| c.to_str().ok())),
            ))
            .execute(&mut conn)
            .await?;
    } else {
        diesel::delete(row).execute(&mut conn).await?;
    }
    Ok(())
}
