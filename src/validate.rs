//! Input validation shared by the resources: bounded strings, identifiers,
//! and the JSON Schema check of agent tool parameters.

use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`)
/// or a value (`Some(Some(v))`), for PATCH bodies.
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A text field that Postgres can store: no NUL characters.
pub fn no_nul(field: &str, v: &str) -> ApiResult<()> {
    if v.contains('\0') {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not contain NUL characters"),
        ));
    }
    Ok(())
}

/// A trimmed, non-empty string of at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if v.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(v.to_string())
}

/// An optional text field: absent or null stays `None`.
pub fn opt_text(field: &str, value: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    value.map(|v| text(field, v, max)).transpose()
}

/// An identifier: 1–`max` characters of `[A-Za-z0-9._-]`.
pub fn ident(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let ok = (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1 to {max} characters of letters, digits, '.', '_' or '-'"),
        ));
    }
    Ok(value.to_string())
}

/// Largest page number accepted: keeps `(page - 1) * per_page` far from overflow.
pub const MAX_PAGE: i64 = 1_000_000;

/// A validated page of a paginated list.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// 1-based page number.
    pub page: i64,
    /// Rows per page, 1 to 100.
    pub per_page: i64,
}

impl Page {
    /// `page` (default 1, at most [`MAX_PAGE`]) and `per_page` (default
    /// `default_per_page`, 1 to 100), or a 400 naming the bad one.
    pub fn parse(
        page: Option<i64>,
        per_page: Option<i64>,
        default_per_page: i64,
    ) -> ApiResult<Self> {
        let page = page.unwrap_or(1);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(ApiError::invalid_field(
                "page",
                format!("page must be between 1 and {MAX_PAGE}"),
            ));
        }
        let per_page = per_page.unwrap_or(default_per_page);
        if !(1..=100).contains(&per_page) {
            return Err(ApiError::invalid_field(
                "per_page",
                "per_page must be between 1 and 100",
            ));
        }
        Ok(Self { page, per_page })
    }

    /// Rows to skip.
    pub fn offset(self) -> i64 {
        (self.page - 1) * self.per_page
    }

    /// Pages needed for `total` rows.
    pub fn total_pages(self, total: i64) -> i64 {
        (total + self.per_page - 1) / self.per_page
    }
}

const SCHEMA_TYPES: [&str; 7] = [
    "object", "array", "string", "number", "integer", "boolean", "null",
];

/// Checks OpenAI-style tool definitions: `[{name, description?, parameters?}]`
/// where `parameters` is a JSON Schema of type object. Errors name the path.
pub fn tools(value: &Value) -> ApiResult<Value> {
    let Some(list) = value.as_array() else {
        return Err(schema_error(
            "tools",
            "must be an array of tool definitions",
        ));
    };
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        let Some(obj) = tool.as_object() else {
            return Err(schema_error(&path, "must be an object"));
        };
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "name" | "description" | "parameters" | "strict"
            ) {
                return Err(schema_error(
                    &format!("{path}.{key}"),
                    "is not a tool field (name, description, parameters, strict)",
                ));
            }
        }
        let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
        let valid_name = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(schema_error(
                &format!("{path}.name"),
                "must be 1 to 64 characters of letters, digits, '_' or '-'",
            ));
        }
        if !names.insert(name.to_string()) {
            return Err(schema_error(
                &format!("{path}.name"),
                "duplicates another tool's name",
            ));
        }
        if let Some(d) = obj.get("description")
            && !d.is_string()
        {
            return Err(schema_error(
                &format!("{path}.description"),
                "must be a string",
            ));
        }
        if let Some(s) = obj.get("strict")
            && !s.is_boolean()
        {
            return Err(schema_error(&format!("{path}.strict"), "must be a boolean"));
        }
        let parameters = obj
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let ppath = format!("{path}.parameters");
        if parameters.get("type").and_then(Value::as_str) != Some("object") {
            return Err(schema_error(
                &format!("{ppath}.type"),
                "must be \"object\" (a tool takes named arguments)",
            ));
        }
        schema(&parameters, &ppath, 0)?;
        let mut t = serde_json::Map::new();
        t.insert("name".into(), json!(name));
        if let Some(d) = obj.get("description") {
            t.insert("description".into(), d.clone());
        }
        t.insert("parameters".into(), parameters);
        if let Some(s) = obj.get("strict") {
            t.insert("strict".into(), s.clone());
        }
        out.push(Value::Object(t));
    }
    Ok(Value::Array(out))
}

fn schema_error(path: &str, problem: &str) -> ApiError {
    ApiError::BadRequest {
        message: format!("Invalid tool definition: {path} {problem}"),
        details: Some(json!({ "path": path })),
    }
}

/// A structural check of a JSON Schema (the keywords tools use).
fn schema(s: &Value, path: &str, depth: usize) -> ApiResult<()> {
    if depth > 32 {
        return Err(schema_error(path, "is nested too deeply"));
    }
    if s.is_boolean() {
        return Ok(());
    }
    let Some(obj) = s.as_object() else {
        return Err(schema_error(path, "must be a JSON Schema object"));
    };
    for (key, v) in obj {
        let at = format!("{path}.{key}");
        let problem = match key.as_str() {
            "type" => {
                let ok = match v {
                    Value::String(t) => SCHEMA_TYPES.contains(&t.as_str()),
                    Value::Array(ts) => {
                        !ts.is_empty()
                            && ts
                                .iter()
                                .all(|t| t.as_str().is_some_and(|t| SCHEMA_TYPES.contains(&t)))
                    }
                    _ => false,
                };
                (!ok).then_some(
                    "must be one of object, array, string, number, integer, boolean, null",
                )
            }
            "properties" | "patternProperties" | "$defs" | "definitions" => match v.as_object() {
                Some(props) => {
                    for (name, sub) in props {
                        schema(sub, &format!("{at}.{name}"), depth + 1)?;
                    }
                    None
                }
                None => Some("must be an object"),
            },
            "items"
            | "additionalProperties"
            | "not"
            | "contains"
            | "propertyNames"
            | "additionalItems" => {
                schema(v, &at, depth + 1)?;
                None
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                match v.as_array().filter(|l| !l.is_empty()) {
                    Some(list) => {
                        for (i, sub) in list.iter().enumerate() {
                            schema(sub, &format!("{at}[{i}]"), depth + 1)?;
                        }
                        None
                    }
                    None => Some("must be a non-empty array of schemas"),
                }
            }
            "required" => match v.as_array() {
                Some(list) => {
                    let props = obj.get("properties").and_then(Value::as_object);
                    for (i, r) in list.iter().enumerate() {
                        let at = format!("{at}[{i}]");
                        match r.as_str() {
                            None => return Err(schema_error(&at, "must be a string")),
                            Some(name) if props.is_some_and(|p| !p.contains_key(name)) => {
                                return Err(schema_error(
                                    &at,
                                    &format!("names `{name}`, which is not in properties"),
                                ));
                            }
                            Some(_) => {}
                        }
                    }
                    None
                }
                None => Some("must be an array of property names"),
            },
            "enum" => v
                .as_array()
                .is_none_or(|l| l.is_empty())
                .then_some("must be a non-empty array"),
            "description" | "title" | "format" | "pattern" | "$ref" | "$schema" | "$id"
            | "$comment" => (!v.is_string()).then_some("must be a string"),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
                (!v.is_number()).then_some("must be a number")
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
            | "maxProperties" => v
                .as_u64()
                .is_none()
                .then_some("must be a non-negative integer"),
            "uniqueItems" | "nullable" | "deprecated" | "readOnly" | "writeOnly" => {
                (!v.is_boolean()).then_some("must be a boolean")
            }
            // Annotations and keywords passed through unchecked.
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(schema_error(&at, problem));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(v: Value) -> String {
        match tools(&v) {
            Err(ApiError::BadRequest {
                details: Some(d), ..
            }) => d["path"].as_str().unwrap_or("").to_string(),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_typical_function() {
        let t = json!([{"name": "search_kb", "description": "Search", "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": ["integer", "null"], "minimum": 1}},
            "required": ["query"]
        }}]);
        assert!(tools(&t).is_ok());
        assert!(tools(&json!([{"name": "ping"}])).is_ok());
    }

    #[test]
    fn names_the_path_of_the_problem() {
        assert_eq!(path_of(json!({})), "tools");
        assert_eq!(path_of(json!([{"name": "bad name"}])), "tools[0].name");
        assert_eq!(
            path_of(json!([{"name": "a"}, {"name": "a"}])),
            "tools[1].name"
        );
        assert_eq!(
            path_of(json!([{"name": "a", "parameters": {"type": "string"}}])),
            "tools[0].parameters.type"
        );
        assert_eq!(
            path_of(
                json!([{"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": "text"}}}}])
            ),
            "tools[0].parameters.properties.x.type"
        );
        assert_eq!(
            path_of(
                json!([{"name": "a", "parameters": {"type": "object", "properties": {}, "required": ["y"]}}])
            ),
            "tools[0].parameters.required[0]"
        );
        assert_eq!(
            path_of(json!([{"name": "a", "parameters": {"type": "object", "properties": 3}}])),
            "tools[0].parameters.properties"
        );
    }
}

/// A JSON body that may be left out: `None` only when the request has no
/// body at all. A body that is there must be valid JSON of the right shape
/// (with a JSON content type), exactly as for `web::Json` — a malformed one is
/// a 400, never silently taken for "no body".
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T> OptionalJson<T> {
    /// The body, or `T::default()` when there was none.
    pub fn or_default(self) -> T
    where
        T: Default,
    {
        self.0.unwrap_or_default()
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
        let headers = req.headers();
        let has_body = match headers.get(CONTENT_LENGTH) {
            Some(len) => len.as_bytes() != b"0",
            None => headers.contains_key(TRANSFER_ENCODING),
        };
        if !has_body {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        let json = actix_web::web::Json::<T>::from_request(req, payload);
        Box::pin(async move { Ok(OptionalJson(Some(json.await?.into_inner()))) })
    }
}
