//! JSON input that Postgres and the typed handlers can take, for every
//! request under `/api/v1` (after authentication, so a caller without
//! credentials still gets 401 first):
//!
//! - a NUL character (`\u0000` in a JSON string or key, `%00` in the path or
//!   query) is refused with 400 `INVALID_REQUEST` naming the field: Postgres
//!   refuses NUL in `text` and `jsonb`, so it would otherwise fail deep in a
//!   query;
//! - a number with a zero fraction (`3.0`) is an integer in JSON Schema, so
//!   the body is rewritten with it as `3` before the handler's typed
//!   extractor (which would refuse a float for an integer field) reads it.
//!
//! - a top-level array is refused where the operation takes an object, and
//!   a top-level `null` is read as no body.
//!
//! Bodies that are not valid JSON pass unchanged: the handler's extractor
//! answers them with its own 400.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage, ResponseError, web};
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::OnceLock;

/// See the module documentation.
pub async fn json_input(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    if target.to_ascii_lowercase().contains("%00") {
        let field = if req.uri().query().is_some_and(|q| q.contains("%00")) {
            "query"
        } else {
            "path"
        };
        return Ok(req.into_response(nul_error(field).error_response()));
    }
    if !is_json(&req) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| super::body_limit(&req, s))
        .unwrap_or(1024 * 1024);
    let mut body = BytesMut::new();
    let mut payload = req.take_payload();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(req.into_response(ApiError::PayloadTooLarge { limit }.error_response()));
        }
        body.extend_from_slice(&chunk);
    }
    let mut body: Bytes = body.freeze();
    if let Ok(mut value) = serde_json::from_slice::<Value>(&body) {
        if value.is_null() {
            // `null` is no body: an optional body is then left out, a
            // required one is refused by its extractor.
            body = Bytes::new();
        } else if value.is_array() && !takes_array(req.method().as_str(), req.path()) {
            // serde reads a struct from a sequence too: `[null, null]` would
            // pass as an object with every field left out.
            let err = ApiError::bad_request("The request body must be a JSON object");
            return Ok(req.into_response(err.error_response()));
        }
        if let Some(field) = nul_field(&value, "") {
            return Ok(req.into_response(nul_error(&field).error_response()));
        }
        if !body.is_empty() && integral_floats_to_integers(&mut value) {
            body = Bytes::from(serde_json::to_vec(&value).map_err(ApiError::internal)?);
        }
    }
    // The length the extractors see is the one of the body they will read.
    req.headers_mut().remove(header::TRANSFER_ENCODING);
    req.headers_mut().insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(body.len()),
    );
    req.set_payload(Payload::from(body));
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether the documented body of the operation at `method` `path` may be
/// a JSON array (the OpenAPI document is the one list of operations).
fn takes_array(method: &str, path: &str) -> bool {
    static OPS: OnceLock<Vec<(String, Vec<String>)>> = OnceLock::new();
    let ops = OPS.get_or_init(|| {
        let doc: Value = serde_json::from_str(crate::openapi::document_json()).unwrap_or_default();
        let mut out = Vec::new();
        for (template, item) in doc["paths"].as_object().into_iter().flatten() {
            for (m, op) in item.as_object().into_iter().flatten() {
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                let schema = match schema["$ref"].as_str() {
                    Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap_or("")],
                    None => schema,
                };
                if schema.to_string().contains("\"array\"") && schema["type"] != "object" {
                    let segments = template.split('/').map(str::to_string).collect();
                    out.push((m.to_ascii_uppercase(), segments));
                }
            }
        }
        out
    });
    let segments: Vec<&str> = path.split('/').collect();
    ops.iter().any(|(m, template)| {
        m == method
            && template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| t.starts_with('{') || t == s)
    })
}

/// Refuses a JSON document holding a NUL in a string or key (the same 400
/// as for `/api/v1` bodies), for JSON read outside this middleware (LiveKit
/// webhooks). A body that is not JSON passes.
pub fn refuse_nul(body: &str) -> Result<(), ApiError> {
    if !body.contains("\\u0000") && !body.contains('\0') {
        return Ok(());
    }
    match serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| nul_field(&v, ""))
    {
        Some(field) => Err(nul_error(&field)),
        None => Ok(()),
    }
}

fn nul_error(field: &str) -> ApiError {
    ApiError::invalid_field(
        field,
        format!("{field} must not contain a NUL (\\u0000) character"),
    )
}

/// `application/json` or any `+json` media type.
fn is_json(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
        .unwrap_or(false)
}

/// The dotted path (`payload.note`, `items[2].text`, or `body` for the
/// document itself) of the first string or key holding a NUL.
fn nul_field(value: &Value, at: &str) -> Option<String> {
    let here = || {
        if at.is_empty() {
            "body".to_string()
        } else {
            at.to_string()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(here()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_field(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(here())
            } else {
                nul_field(v, &path)
            }
        }),
        _ => None,
    }
}

/// Rewrites floats with a zero fraction that fit an `i64` as integers;
/// tells whether anything changed.
fn integral_floats_to_integers(value: &mut Value) -> bool {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // 2^63 is exactly representable; anything below it with no
            // fraction converts without loss.
            if f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f)
            {
                *value = Value::from(f as i64);
                true
            } else {
                false
            }
        }
        Value::Array(items) => {
            let mut changed = false;
            for v in items.iter_mut() {
                changed |= integral_floats_to_integers(v);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            for v in map.values_mut() {
                changed |= integral_floats_to_integers(v);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nul_anywhere() {
        assert_eq!(nul_field(&json!("a\u{0}"), ""), Some("body".into()));
        assert_eq!(
            nul_field(&json!({"payload": {"n": ["ok", "x\u{0}y"]}}), ""),
            Some("payload.n[1]".into())
        );
        assert_eq!(nul_field(&json!({"k\u{0}": 1}), ""), Some("body".into()));
        assert_eq!(nul_field(&json!({"a": "\\u0000 is text"}), ""), None);
    }

    #[test]
    fn integral_floats_become_integers() {
        let mut v = json!({"a": 3.0, "b": [1.5, -2.0], "c": 1e300, "d": 7});
        assert!(integral_floats_to_integers(&mut v));
        assert_eq!(v, json!({"a": 3, "b": [1.5, -2], "c": 1e300, "d": 7}));
        let mut v = json!({"d": 7, "e": 0.25});
        assert!(!integral_floats_to_integers(&mut v));
    }
}
