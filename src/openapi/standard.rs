//! What every operation shares, stated once: its security alternatives and
//! the statuses the request pipeline can answer before (or instead of) the
//! handler — authentication, roles, rate limits, body parsing and size,
//! `Idempotency-Key`, an unavailable dependency. Applied to the generated
//! document so that no annotation can forget one; a handler's own
//! description of a status wins.

use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// `/api/v1` project routes: an API key (header or Bearer) or a member's
    /// access token with `X-Project-Id`.
    Project,
    /// Team chat: a member's access token with `X-Project-Id`.
    Member,
    /// Account routes (`/auth/*` that need a sign-in, `/projects…`,
    /// `/invitations/*`): an access token.
    Account,
    /// Open `/api/v1` routes (register, login, …): no credentials.
    OpenApi,
    /// Outside `/api/v1` (health, readiness, the LiveKit webhook).
    Outside,
}

fn audience(path: &str, security: &Value) -> Audience {
    if !path.starts_with("/api/v1/") {
        return Audience::Outside;
    }
    let names: Vec<&str> = security
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_object())
        .flat_map(|r| r.keys().map(String::as_str))
        .collect();
    if names.contains(&"api_key") {
        Audience::Project
    } else if path.starts_with("/api/v1/chat/") {
        Audience::Member
    } else if names.contains(&"bearer") {
        Audience::Account
    } else {
        Audience::OpenApi
    }
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn header(description: &str, required: bool) -> Value {
    json!({"description": description, "required": required, "schema": {"type": "integer", "minimum": 0}})
}

fn rate_limited() -> Value {
    let mut r = error(
        "Too many requests (`RATE_LIMITED`: the caller's per-minute limit, or a flood from one \
         address without valid credentials) or a plan quota spent (`QUOTA_EXCEEDED`, with \
         `details`). Retry after `Retry-After` seconds.",
    );
    r["headers"] = json!({
        "Retry-After": header("Seconds to wait before retrying", false),
        "X-RateLimit-Limit": header("Requests allowed per minute", false),
        "X-RateLimit-Remaining": header("Requests left in the window", false),
        "X-RateLimit-Reset": header("Unix time the window resets", false),
    });
    r
}

fn unavailable() -> Value {
    let mut r = error("A dependency (Postgres, LiveKit, the embedding model) is unavailable");
    r["headers"] = json!({"Retry-After": header("Seconds to wait before retrying", false)});
    r
}

/// Security alternatives of an audience.
fn security(a: Audience) -> Option<Value> {
    match a {
        Audience::Project => Some(json!([
            {"api_key": []},
            {"api_key_bearer": []},
            {"bearer": [], "project_id": []}
        ])),
        Audience::Member => Some(json!([{"bearer": [], "project_id": []}])),
        Audience::Account => Some(json!([{"bearer": []}])),
        Audience::OpenApi | Audience::Outside => None,
    }
}

/// Applies the shared security and statuses to every operation.
pub fn apply(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let a = audience(path, &op["security"]);
            if let Some(sec) = security(a) {
                op["security"] = sec;
            }
            let has_input = op["parameters"].as_array().is_some_and(|p| !p.is_empty())
                || op.get("requestBody").is_some();
            let json_body = op["requestBody"]["content"]
                .get("application/json")
                .is_some();
            let has_body = op.get("requestBody").is_some();
            let project_post = a == Audience::Project && method == "post";
            if project_post {
                add_idempotency_header(op);
            }
            let responses = op
                .as_object_mut()
                .map(|o| o.entry("responses").or_insert_with(|| json!({})))
                .and_then(Value::as_object_mut);
            let Some(responses) = responses else { continue };
            let mut add = |status: &str, v: Value| {
                responses.entry(status.to_string()).or_insert(v);
            };
            let api = a != Audience::Outside;
            if has_input || matches!(a, Audience::Project | Audience::Member) {
                add("400", shared("BadRequest"));
            }
            if a != Audience::OpenApi && a != Audience::Outside {
                add("401", shared("Unauthorized"));
            }
            if matches!(a, Audience::Project | Audience::Member) {
                add("403", shared("Forbidden"));
                add("404", shared("NotFound"));
            }
            if path.contains('{') {
                add("404", shared("NotFound"));
            }
            if project_post {
                add("409", shared("Conflict"));
                add("422", shared("IdempotencyKeyReused"));
            }
            if has_body {
                add("413", shared("PayloadTooLarge"));
            }
            if json_body {
                add("415", shared("UnsupportedMediaType"));
            }
            if api {
                add("429", shared("TooManyRequests"));
                add("503", shared("ServiceUnavailable"));
            }
            // Every error answer carries the envelope; 429s say when to retry.
            for (status, r) in responses.iter_mut() {
                if status.as_str() >= "400" && r.get("content").is_none() && r.get("$ref").is_none()
                {
                    r["content"] = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
                }
                if status == "429" && r.get("headers").is_none() && r.get("$ref").is_none() {
                    r["headers"] = rate_limited()["headers"].clone();
                }
            }
            sort_responses(responses);
        }
    }
    add_schemes(doc);
    add_shared_responses(doc);
    constrain_emails(doc);
    cross_field_rules(doc);
}

/// Rules between fields of a body that the derive cannot state: at least
/// one of several optional fields (`anyOf` of `required`).
const AT_LEAST_ONE_OF: &[(&str, &[&str])] = &[
    ("UsageIn", &["session_id", "room_name"]),
    ("ChatCallIn", &["chat_id", "call_id"]),
    ("ChunkIn", &["content", "is_active"]),
    ("ParticipantUpdateIn", &["metadata", "permission", "name"]),
];

fn cross_field_rules(doc: &mut Value) {
    for (name, fields) in AT_LEAST_ONE_OF {
        let schema = &mut doc["components"]["schemas"][*name];
        if schema.is_object() {
            let any: Vec<Value> = fields.iter().map(|f| json!({"required": [f]})).collect();
            schema["anyOf"] = Value::Array(any);
        }
    }
}

/// What `routes::auth::email` accepts (lettre's address syntax, at most 254
/// characters), stated on every request property named `email`.
const EMAIL_PATTERN: &str = "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

fn constrain_emails(doc: &mut Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object_mut() else {
        return;
    };
    for (name, schema) in schemas.iter_mut() {
        if !name.ends_with("In") && !name.ends_with("Patch") {
            continue;
        }
        if let Some(email) = schema["properties"].get_mut("email")
            && (email["type"] == "string" || email["type"] == json!(["string", "null"]))
        {
            email["maxLength"] = json!(254);
            email["pattern"] = json!(EMAIL_PATTERN);
        }
    }
}

fn shared(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

fn add_shared_responses(doc: &mut Value) {
    doc["components"]["responses"] = json!({
        "BadRequest": error("Invalid request (`INVALID_REQUEST`; the field is named in `details.field`)"),
        "Unauthorized": error("Missing or invalid credentials (`UNAUTHORIZED`)"),
        "Forbidden": error("The member's role does not allow this (`FORBIDDEN`)"),
        "NotFound": error("Not found (`NOT_FOUND`), or no such project for `X-Project-Id`"),
        "Conflict": error("Conflicts with the current state, or a request with the same `Idempotency-Key` is still running (`CONFLICT`)"),
        "IdempotencyKeyReused": error("The `Idempotency-Key` was used with another request (`IDEMPOTENCY_KEY_REUSED`)"),
        "PayloadTooLarge": error("Body larger than the limit (`PAYLOAD_TOO_LARGE`, the limit in `details`)"),
        "UnsupportedMediaType": error("Content-Type is not one this operation reads (`UNSUPPORTED_MEDIA_TYPE`)"),
        "TooManyRequests": rate_limited(),
        "ServiceUnavailable": unavailable(),
    });
}

fn add_idempotency_header(op: &mut Value) {
    let params = op
        .as_object_mut()
        .map(|o| o.entry("parameters").or_insert_with(|| json!([])));
    let Some(Value::Array(params)) = params else {
        return;
    };
    if params.iter().any(|p| p["name"] == "Idempotency-Key") {
        return;
    }
    params.push(json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Makes a retried POST safe: the first response is stored for 24 h and \
                        replayed (with `Idempotent-Replayed: true`) for the same key and request.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}
    }));
}

fn sort_responses(responses: &mut Map<String, Value>) {
    let mut all: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(all);
}

fn add_schemes(doc: &mut Value) {
    let schemes = &mut doc["components"]["securitySchemes"];
    schemes["api_key_bearer"] = json!({
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "pk_…",
        "description": "The project API key as `Authorization: Bearer pk_…`."
    });
    schemes["project_id"] = json!({
        "type": "apiKey",
        "in": "header",
        "name": "X-Project-Id",
        "description": "With an account's access token on the project API: the project to act on \
                        (the member's role decides what is allowed)."
    });
}
