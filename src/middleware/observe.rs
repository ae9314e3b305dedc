//! The outermost middleware: request id, tracing span, access log, metrics,
//! and recovery from panics (answered as a 500 `INTERNAL_ERROR`).

use super::{client_addr, request_id};
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;

/// See the module documentation.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let id = request_id::from_request(req.request());
    let method = req.method().to_string();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let Some(s) = &state {
        s.metrics.in_flight.inc();
    }
    let client = {
        let peer = req
            .peer_addr()
            .map(|a| client_addr::canonical(a.ip()))
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        match &state {
            Some(s) => client_addr::resolve(peer, req.headers(), &s.proxies),
            None => peer,
        }
    };
    req.extensions_mut().insert(client_addr::ClientAddr(client));
    let span = tracing::info_span!(
        "http_request",
        request_id = %id,
        http.method = %method,
        http.path = %req.path(),
        client.ip = %client,
    );
    let (result, emitted) = crate::events::track(request_id::scope(
        id.clone(),
        AssertUnwindSafe(next.call(req))
            .catch_unwind()
            .instrument(span.clone()),
    ))
    .await;
    if emitted && let Some(s) = &state {
        // The handler is done, so its transactions have committed.
        s.events_wake.committed();
    }
    let mut res = match result {
        Ok(Ok(res)) => res.map_into_boxed_body(),
        Ok(Err(err)) => {
            record(
                state.as_ref(),
                &method,
                "unmatched",
                err.as_response_error().status_code().as_u16(),
                started,
            );
            return Err(Failure::new(id, err.error_response()).into());
        }
        Err(panic) => {
            let cause = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let _g = span.enter();
            tracing::error!(panic = %cause, "handler panicked");
            drop(_g);
            let response = request_id::scope(id.clone(), async {
                ApiError::Internal(anyhow::anyhow!("handler panicked: {cause}")).error_response()
            })
            .await;
            record(state.as_ref(), &method, "unmatched", 500, started);
            return Err(Failure::new(id, response).into());
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(request_id::HEADER), v);
    }
    let status = res.status().as_u16();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let elapsed = record(state.as_ref(), &method, &route, status, started);
    let _g = span.enter();
    tracing::info!(
        http.route = %route,
        http.status = status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request served"
    );
    Ok(res)
}

fn record(
    state: Option<&web::Data<AppState>>,
    method: &str,
    route: &str,
    status: u16,
    started: Instant,
) -> std::time::Duration {
    let elapsed = started.elapsed();
    if let Some(s) = state {
        s.metrics.in_flight.dec();
        s.metrics
            .observe(method, route, status, elapsed.as_secs_f64());
    }
    elapsed
}

/// A request that ended in an error or a panic: the request (owned by the
/// inner service) is gone, so the response travels as an error that actix
/// renders as is, with the request id added.
struct Failure {
    id: String,
    status: actix_web::http::StatusCode,
    headers: actix_web::http::header::HeaderMap,
    body: actix_web::web::Bytes,
}

impl Failure {
    fn new(id: String, response: HttpResponse) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().try_into_bytes().unwrap_or_default();
        Self {
            id,
            status,
            headers,
            body,
        }
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request {} failed with {}", self.id, self.status)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl ResponseError for Failure {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        for (name, value) in &self.headers {
            res.insert_header((name.clone(), value.clone()));
        }
        if let Ok(v) = HeaderValue::from_str(&self.id) {
            res.insert_header((HeaderName::from_static(request_id::HEADER), v));
        }
        res.body(self.body.clone())
    }
}
