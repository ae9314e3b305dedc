//! OpenAPI links from the operations that create a resource to the ones
//! that read, change or delete it by id: a client (and schemathesis'
//! stateful phase) follows the id from the create response.

use serde_json::{Map, Value, json};

/// (method, path of the create operation, status, JSON pointer of the new
/// id in its body, path parameter it fills, the operations it leads to).
type Link = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const LINKS: &[Link] = &[
    (
        "post",
        "/api/v1/agents",
        "201",
        "/agent/id",
        "agent_id",
        &[
            ("get", "/api/v1/agents/{agent_id}"),
            ("patch", "/api/v1/agents/{agent_id}"),
            ("delete", "/api/v1/agents/{agent_id}"),
            ("get", "/api/v1/agents/{agent_id}/tools"),
        ],
    ),
    (
        "post",
        "/api/v1/knowledge-bases",
        "201",
        "/knowledge_base/id",
        "kb_id",
        &[
            ("get", "/api/v1/knowledge-bases/{kb_id}"),
            ("delete", "/api/v1/knowledge-bases/{kb_id}"),
            ("get", "/api/v1/knowledge-bases/{kb_id}/documents"),
            ("get", "/api/v1/knowledge-bases/{kb_id}/chunks"),
            ("post", "/api/v1/knowledge-bases/{kb_id}/ingest"),
            ("get", "/api/v1/knowledge-bases/{kb_id}/sources"),
        ],
    ),
    (
        "post",
        "/api/v1/webhooks",
        "201",
        "/webhook/id",
        "id",
        &[
            ("get", "/api/v1/webhooks/{id}"),
            ("patch", "/api/v1/webhooks/{id}"),
            ("delete", "/api/v1/webhooks/{id}"),
            ("post", "/api/v1/webhooks/{id}/rotate-secret"),
            ("get", "/api/v1/webhooks/{id}/deliveries"),
        ],
    ),
    (
        "post",
        "/api/v1/sip/trunks",
        "201",
        "/trunk/id",
        "id",
        &[
            ("patch", "/api/v1/sip/trunks/{id}"),
            ("delete", "/api/v1/sip/trunks/{id}"),
        ],
    ),
    (
        "post",
        "/api/v1/sip/configs",
        "201",
        "/config/id",
        "id",
        &[
            ("patch", "/api/v1/sip/configs/{id}"),
            ("delete", "/api/v1/sip/configs/{id}"),
        ],
    ),
    (
        "post",
        "/api/v1/rooms",
        "201",
        "/room/name",
        "roomName",
        &[
            ("get", "/api/v1/rooms/{roomName}"),
            ("get", "/api/v1/rooms/{roomName}/participants"),
            ("delete", "/api/v1/rooms/{roomName}"),
        ],
    ),
    (
        "post",
        "/api/v1/sessions",
        "201",
        "/session/id",
        "session_id",
        &[
            ("get", "/api/v1/sessions/{session_id}/detail"),
            ("patch", "/api/v1/sessions/{session_id}"),
        ],
    ),
    (
        "post",
        "/api/v1/sessions",
        "201",
        "/session/id",
        "session",
        &[("get", "/api/v1/sessions/{session}/transcript")],
    ),
    (
        "post",
        "/api/v1/projects",
        "201",
        "/project/id",
        "project_id",
        &[
            ("get", "/api/v1/projects/{project_id}"),
            ("patch", "/api/v1/projects/{project_id}"),
            ("get", "/api/v1/projects/{project_id}/keys"),
            ("get", "/api/v1/projects/{project_id}/members"),
            ("delete", "/api/v1/projects/{project_id}"),
        ],
    ),
];

/// The link name: `GetAgentsAgentId`-like, from the target operation.
fn link_name(method: &str, path: &str) -> String {
    let mut name = String::new();
    let mut upper = |s: &str| {
        let mut c = s.chars();
        if let Some(f) = c.next() {
            name.extend(f.to_uppercase());
            name.push_str(c.as_str());
        }
    };
    upper(method);
    for seg in path.trim_start_matches("/api/v1/").split('/') {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        for part in seg.split(['-', '_']) {
            upper(part);
        }
    }
    name
}

/// Adds the links to the create operations' responses.
pub fn apply(doc: &mut Value) {
    for (method, path, status, pointer, param, targets) in LINKS {
        let mut links = Map::new();
        for (t_method, t_path) in *targets {
            if doc["paths"][*t_path][*t_method].is_null() {
                continue;
            }
            let op_ref = format!(
                "#/paths/{}/{}",
                t_path.replace('~', "~0").replace('/', "~1"),
                t_method
            );
            let mut parameters = Map::new();
            parameters.insert(
                (*param).to_string(),
                json!(format!("$response.body#{pointer}")),
            );
            // Path parameters the create operation shares with the target.
            for p in path.split('/').filter_map(|s| s.strip_prefix('{')) {
                let p = p.trim_end_matches('}');
                parameters.insert(p.to_string(), json!(format!("$request.path.{p}")));
            }
            links.insert(
                link_name(t_method, t_path),
                json!({"operationRef": op_ref, "parameters": parameters}),
            );
        }
        let response = &mut doc["paths"][*path][*method]["responses"][*status];
        if response.is_object() && !links.is_empty() {
            let existing = response["links"].as_object().cloned().unwrap_or_default();
            let mut all = existing;
            all.extend(links);
            response["links"] = Value::Object(all);
        }
    }
}
