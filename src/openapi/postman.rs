//! The Postman collection: workflows a person follows, generated from the
//! document. Each step is a documented operation; ids created by one step
//! are captured into collection variables by its test script and used by
//! the next; every request tests its status and key fields and carries a
//! saved example response (built from the document's schema). The
//! environment file names what a user fills in.

use serde_json::{Value, json};

/// Who a request authenticates as.
#[derive(Clone, Copy)]
enum As {
    /// The project API key (the collection's auth).
    Key,
    /// The signed-in account (`{{access_token}}`).
    Account,
    /// No credentials.
    Nobody,
}

/// One request of a workflow.
struct Step {
    name: &'static str,
    method: &'static str,
    /// The documented path (with `{param}` templates).
    path: &'static str,
    /// Path parameters: template name → `{{variable}}` or a literal.
    params: &'static [(&'static str, &'static str)],
    /// Query string.
    query: &'static [(&'static str, &'static str)],
    body: Option<&'static str>,
    auth: As,
    status: u16,
    /// Expressions over `body` that must be true (JavaScript).
    checks: &'static [&'static str],
    /// Collection variables captured from `body` (name, JavaScript expression).
    capture: &'static [(&'static str, &'static str)],
}

const fn step(name: &'static str, method: &'static str, path: &'static str) -> Step {
    Step {
        name,
        method,
        path,
        params: &[],
        query: &[],
        body: None,
        auth: As::Key,
        status: 200,
        checks: &[],
        capture: &[],
    }
}

fn workflows() -> Vec<(&'static str, &'static str, Vec<Step>)> {
    vec![
        (
            "Dashboard",
            "Sign in with the account in the environment (`email`, `password`): the access \
             token and the project are captured, then API keys are created, listed and \
             revoked and the members listed.",
            vec![
                Step {
                    body: Some(r#"{"email": "{{email}}", "password": "{{password}}"}"#),
                    auth: As::Nobody,
                    checks: &[
                        "typeof body.access_token === 'string'",
                        "body.token_type === 'Bearer'",
                    ],
                    capture: &[("access_token", "body.access_token")],
                    ..step("Log in", "post", "/api/v1/auth/login")
                },
                Step {
                    auth: As::Account,
                    checks: &["Array.isArray(body.projects) && body.projects.length > 0"],
                    capture: &[("project_id", "body.projects[0].id")],
                    ..step("My projects", "get", "/api/v1/projects")
                },
                Step {
                    params: &[("project_id", "{{project_id}}")],
                    body: Some(r#"{"name": "postman-{{run}}"}"#),
                    auth: As::Account,
                    status: 201,
                    checks: &["body.key.key.startsWith('pk_')"],
                    capture: &[("key_id", "body.key.id")],
                    ..step(
                        "Create an API key",
                        "post",
                        "/api/v1/projects/{project_id}/keys",
                    )
                },
                Step {
                    params: &[("project_id", "{{project_id}}")],
                    auth: As::Account,
                    checks: &["body.keys.some(k => k.id == pm.collectionVariables.get('key_id'))"],
                    ..step("List API keys", "get", "/api/v1/projects/{project_id}/keys")
                },
                Step {
                    params: &[("project_id", "{{project_id}}"), ("key_id", "{{key_id}}")],
                    auth: As::Account,
                    status: 204,
                    ..step(
                        "Revoke the API key",
                        "delete",
                        "/api/v1/projects/{project_id}/keys/{key_id}",
                    )
                },
                Step {
                    params: &[("project_id", "{{project_id}}")],
                    auth: As::Account,
                    checks: &["body.members.length > 0"],
                    ..step(
                        "List members",
                        "get",
                        "/api/v1/projects/{project_id}/members",
                    )
                },
            ],
        ),
        (
            "Quick start",
            "With the project API key: an agent, a room, a LiveKit token that dispatches the \
             agent (which starts the room's call session), a transcript line, the end of the \
             session, and the usage.",
            vec![
                Step {
                    checks: &["typeof body.project.room_prefix === 'string'"],
                    ..step("The project of the key", "get", "/api/v1/project")
                },
                Step {
                    body: Some(
                        r#"{"name": "Quick start agent {{run}}", "instructions": "You are a helpful support agent.", "greeting": "Hi! How can I help?"}"#,
                    ),
                    status: 201,
                    checks: &["body.agent.is_active === true"],
                    capture: &[("agent_id", "body.agent.id")],
                    ..step("Create an agent", "post", "/api/v1/agents")
                },
                Step {
                    body: Some(r#"{"name": "quickstart-{{run}}", "empty_timeout": 600}"#),
                    status: 201,
                    checks: &[
                        "body.room.name === 'quickstart-' + pm.collectionVariables.get('run')",
                    ],
                    capture: &[("room_name", "body.room.name")],
                    ..step("Create a room", "post", "/api/v1/rooms")
                },
                Step {
                    body: Some(
                        r#"{"identity": "caller-1", "room": "{{room_name}}", "agent_config_id": {{agent_id}}}"#,
                    ),
                    checks: &[
                        "typeof body.token === 'string'",
                        "body.agents_dispatched.length === 1",
                    ],
                    ..step(
                        "Mint a token that dispatches the agent",
                        "post",
                        "/api/v1/token",
                    )
                },
                Step {
                    checks: &["Array.isArray(body.rooms)"],
                    ..step("List rooms", "get", "/api/v1/rooms")
                },
                Step {
                    query: &[("status", "active"), ("agent_config_id", "{{agent_id}}")],
                    checks: &["body.sessions.length === 1"],
                    capture: &[("session_id", "body.sessions[0].id")],
                    ..step(
                        "The session the dispatch started",
                        "get",
                        "/api/v1/sessions",
                    )
                },
                Step {
                    params: &[("session", "{{room_name}}")],
                    body: Some(
                        r#"{"speaker": "user", "content": "Hello, I need help", "timestamp_ms": 5200}"#,
                    ),
                    status: 201,
                    checks: &["body.success === true"],
                    ..step(
                        "Add a transcript line",
                        "post",
                        "/api/v1/sessions/{session}/transcript",
                    )
                },
                Step {
                    params: &[("session", "{{session_id}}")],
                    checks: &["body.transcripts.length === 1"],
                    ..step(
                        "Read the transcript",
                        "get",
                        "/api/v1/sessions/{session}/transcript",
                    )
                },
                Step {
                    params: &[("roomName", "{{room_name}}")],
                    body: Some(r#"{"summary": "Customer asked for help"}"#),
                    checks: &["body.session.status === 'completed'"],
                    ..step("End the session", "post", "/api/v1/sessions/{roomName}/end")
                },
                Step {
                    query: &[("period", "today")],
                    checks: &["body.period === 'today'", "typeof body.totals === 'object'"],
                    ..step("Usage today", "get", "/api/v1/usage")
                },
            ],
        ),
        (
            "Knowledge",
            "A knowledge base, text ingested into it (chunked and embedded), a search, the chunks.",
            vec![
                Step {
                    body: Some(
                        r#"{"name": "FAQ {{run}}", "description": "Customer support FAQs"}"#,
                    ),
                    status: 201,
                    capture: &[("kb_id", "body.knowledge_base.id")],
                    ..step("Create a knowledge base", "post", "/api/v1/knowledge-bases")
                },
                Step {
                    params: &[("kb_id", "{{kb_id}}")],
                    body: Some(
                        r#"{"content": "Our support line is open Monday to Friday, 9am to 5pm.", "source_name": "hours"}"#,
                    ),
                    status: 201,
                    checks: &["body.chunks_created >= 1"],
                    ..step(
                        "Ingest text",
                        "post",
                        "/api/v1/knowledge-bases/{kb_id}/ingest",
                    )
                },
                Step {
                    body: Some(
                        r#"{"knowledge_base_id": {{kb_id}}, "query": "When is support open?", "top_k": 3}"#,
                    ),
                    checks: &["body.results.length >= 1"],
                    ..step("Search", "post", "/api/v1/knowledge/search")
                },
                Step {
                    params: &[("kb_id", "{{kb_id}}")],
                    checks: &["body.total >= 1"],
                    ..step(
                        "List chunks",
                        "get",
                        "/api/v1/knowledge-bases/{kb_id}/chunks",
                    )
                },
            ],
        ),
        (
            "Webhooks",
            "An endpoint for every event (here the server's own `/health`, which a local \
             `voxplane dev` may call; use your receiver's URL), a test event, its deliveries.",
            vec![
                Step {
                    body: Some(
                        r#"{"url": "{{base_url}}/health", "description": "Postman {{run}}"}"#,
                    ),
                    status: 201,
                    checks: &["typeof body.webhook.secret === 'string'"],
                    capture: &[("webhook_id", "body.webhook.id")],
                    ..step("Create an endpoint", "post", "/api/v1/webhooks")
                },
                Step {
                    body: Some(r#"{"event_type": "test", "payload": {"hello": "world"}}"#),
                    checks: &[
                        "body.webhook_ids.some(id => id == pm.collectionVariables.get('webhook_id'))",
                    ],
                    ..step("Send a test event", "post", "/api/v1/webhooks/test")
                },
                Step {
                    params: &[("id", "{{webhook_id}}")],
                    checks: &["Array.isArray(body.deliveries)"],
                    ..step(
                        "List its deliveries",
                        "get",
                        "/api/v1/webhooks/{id}/deliveries",
                    )
                },
            ],
        ),
        (
            "Recordings & SIP",
            "A recording of the quick-start room, the recordings, and a SIP trunk.",
            vec![
                Step {
                    params: &[("roomName", "{{room_name}}")],
                    body: Some(r#"{}"#),
                    status: 201,
                    checks: &["body.recording.status === 'recording'"],
                    ..step(
                        "Start recording the room",
                        "post",
                        "/api/v1/rooms/{roomName}/recordings/start",
                    )
                },
                Step {
                    checks: &["body.total >= 1"],
                    ..step("List recordings", "get", "/api/v1/recordings")
                },
                Step {
                    body: Some(
                        r#"{"name": "Trunk {{run}}", "phone_number": "+18005550199", "address": "sip.provider.example"}"#,
                    ),
                    status: 201,
                    capture: &[("trunk_id", "body.trunk.id")],
                    ..step("Create a SIP trunk", "post", "/api/v1/sip/trunks")
                },
                Step {
                    checks: &["body.trunks.length >= 1"],
                    ..step("List SIP trunks", "get", "/api/v1/sip/trunks")
                },
            ],
        ),
        (
            "Cleanup",
            "Deletes what the workflows created.",
            vec![
                Step {
                    params: &[("id", "{{trunk_id}}")],
                    checks: &["body.success === true"],
                    ..step("Delete the SIP trunk", "delete", "/api/v1/sip/trunks/{id}")
                },
                Step {
                    params: &[("kb_id", "{{kb_id}}")],
                    checks: &["body.success === true"],
                    ..step(
                        "Delete the knowledge base",
                        "delete",
                        "/api/v1/knowledge-bases/{kb_id}",
                    )
                },
                Step {
                    params: &[("roomName", "{{room_name}}")],
                    checks: &["body.success === true"],
                    ..step("Close the room", "delete", "/api/v1/rooms/{roomName}")
                },
                Step {
                    params: &[("agent_id", "{{agent_id}}")],
                    checks: &["body.success === true"],
                    ..step("Delete the agent", "delete", "/api/v1/agents/{agent_id}")
                },
            ],
        ),
    ]
}

/// The Postman v2.1 collection: one folder per workflow.
pub fn collection(doc: &Value) -> Value {
    let folders: Vec<Value> = workflows()
        .into_iter()
        .map(|(name, description, steps)| {
            json!({
                "name": name,
                "description": description,
                "item": steps.iter().map(|s| item(doc, s)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "info": {
            "name": "Voxplane API",
            "description": format!(
                "{}\n\nRun the folders in order (Collection Runner or `newman run … -e \
                 voxplane.postman_environment.json`): each captures the ids the next requests use.",
                doc["info"]["description"].as_str().unwrap_or_default()
            ),
            "version": doc["info"]["version"],
            "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
        },
        "auth": {
            "type": "apikey",
            "apikey": [
                {"key": "key", "value": "X-API-Key", "type": "string"},
                {"key": "value", "value": "{{api_key}}", "type": "string"},
                {"key": "in", "value": "header", "type": "string"}
            ]
        },
        "event": [{
            "listen": "prerequest",
            "script": {"type": "text/javascript", "exec": [
                "// A suffix that keeps names of this run apart from earlier runs.",
                "if (!pm.collectionVariables.get('run')) {",
                "    pm.collectionVariables.set('run', Date.now().toString(36));",
                "}"
            ]}
        }],
        "variable": [
            {"key": "run", "value": "", "type": "string"},
            {"key": "access_token", "value": "", "type": "string"},
            {"key": "project_id", "value": "", "type": "string"}
        ],
        "item": folders
    })
}

/// The environment a user fills in (values for a local `voxplane dev`).
pub fn environment() -> Value {
    json!({
        "name": "Voxplane (local)",
        "values": [
            {"key": "base_url", "value": "http://127.0.0.1:8080", "type": "default", "enabled": true},
            {"key": "api_key", "value": "pk_your_project_api_key", "type": "secret", "enabled": true},
            {"key": "email", "value": "demo@example.com", "type": "default", "enabled": true},
            {"key": "password", "value": "your-password", "type": "secret", "enabled": true}
        ],
        "_postman_variable_scope": "environment"
    })
}

fn item(doc: &Value, s: &Step) -> Value {
    let op = &doc["paths"][s.path][s.method];
    let mut path = s.path.to_string();
    for (name, value) in s.params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let query: Vec<Value> = s
        .query
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let qs: Vec<String> = s.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let raw = if qs.is_empty() {
        format!("{{{{base_url}}}}{path}")
    } else {
        format!("{{{{base_url}}}}{path}?{}", qs.join("&"))
    };
    let mut url = json!({"raw": raw, "host": ["{{base_url}}"], "path": segments});
    if !query.is_empty() {
        url["query"] = Value::Array(query);
    }
    let mut request = json!({
        "method": s.method.to_uppercase(),
        "header": [],
        "url": url,
        "description": op["description"]
            .as_str()
            .or(op["summary"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("`{} {}`", s.method.to_uppercase(), s.path)),
    });
    if let Some(body) = s.body {
        request["header"] = json!([{"key": "Content-Type", "value": "application/json"}]);
        request["body"] =
            json!({"mode": "raw", "raw": body, "options": {"raw": {"language": "json"}}});
    }
    match s.auth {
        As::Key => {}
        As::Account => {
            request["auth"] = json!({"type": "bearer", "bearer": [
                {"key": "token", "value": "{{access_token}}", "type": "string"}
            ]});
        }
        As::Nobody => request["auth"] = json!({"type": "noauth"}),
    }
    json!({
        "name": s.name,
        "event": [{"listen": "test", "script": {"type": "text/javascript", "exec": test_script(s)}}],
        "request": request,
        "response": [saved_example(doc, op, s, &request)]
    })
}

fn test_script(s: &Step) -> Vec<String> {
    let mut lines = vec![format!(
        "pm.test('{} {}', () => pm.response.to.have.status({}));",
        s.status,
        reason(s.status),
        s.status
    )];
    if s.status == 204 {
        return lines;
    }
    lines.push("const body = pm.response.json();".into());
    for check in s.checks {
        lines.push(format!(
            "pm.test({}, () => pm.expect({check}).to.be.true);",
            serde_json::to_string(check).unwrap_or_default()
        ));
    }
    for (var, expr) in s.capture {
        lines.push(format!(
            "pm.test('captures {var}', () => pm.expect({expr}).to.exist);"
        ));
        lines.push(format!("pm.collectionVariables.set('{var}', {expr});"));
    }
    lines
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        _ => "",
    }
}

/// The documented response of the step's status, as an example.
fn saved_example(doc: &Value, op: &Value, s: &Step, request: &Value) -> Value {
    let response = &op["responses"][s.status.to_string()];
    let content = &response["content"]["application/json"];
    let body = match content.get("example") {
        Some(e) => e.clone(),
        None => super::example_for(doc, &content["schema"], 0),
    };
    let mut out = json!({
        "name": format!("{} {}", s.status, reason(s.status)),
        "originalRequest": request,
        "status": reason(s.status),
        "code": s.status,
        "header": [],
        "body": "",
    });
    if s.status != 204 {
        out["header"] = json!([{"key": "Content-Type", "value": "application/json"}]);
        out["_postman_previewlanguage"] = json!("json");
        out["body"] = json!(serde_json::to_string_pretty(&body).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_is_a_documented_operation_with_its_status() {
        let doc: Value = serde_json::from_str(super::super::document_json()).unwrap();
        for (folder, _, steps) in workflows() {
            for s in steps {
                let op = &doc["paths"][s.path][s.method];
                assert!(
                    op.is_object(),
                    "{folder} / {}: {} {} is not documented",
                    s.name,
                    s.method,
                    s.path
                );
                assert!(
                    op["responses"][s.status.to_string()].is_object(),
                    "{folder} / {}: status {} is not documented",
                    s.name,
                    s.status
                );
            }
        }
    }
}
