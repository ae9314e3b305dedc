//! Agents: the contract's list and tools endpoints plus CRUD, isolation, quota.

use crate::common::{TestApp, expect_error, json};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use voxplane::limits::plans::Plan;

fn support_agent() -> Value {
    json!({
        "name": "Support Agent",
        "llm_provider": "openai",
        "llm_model": "gpt-4o",
        "instructions": "Be helpful.",
        "tools": [{"name": "search_kb", "description": "Search the knowledge base",
                   "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]
    })
}

#[tokio::test]
async fn create_list_get_tools_update_delete() {
    let app = TestApp::spawn().await;
    let (status, body) = json(app.post_json("/api/v1/agents", &support_agent()).await).await;
    assert_eq!(status, 201, "{body}");
    let agent = &body["agent"];
    let id = agent["id"].as_i64().unwrap();
    assert_eq!(agent["agent_type"], "voice");
    assert_eq!(agent["dispatch_name"], "support-agent");
    assert_eq!(agent["is_active"], true);
    assert_eq!(agent["knowledge_base_ids"], json!([]));

    let (status, body) = json(app.get("/api/v1/agents").await).await;
    assert_eq!(status, 200);
    let listed = &body["agents"][0];
    for field in [
        "id",
        "name",
        "agent_type",
        "llm_provider",
        "llm_model",
        "is_active",
    ] {
        assert_eq!(listed[field], agent[field], "{field}");
    }

    let (status, body) = json(app.get(&format!("/api/v1/agents/{id}/tools")).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["tools"][0]["name"], "search_kb");
    assert_eq!(body["tools"][0]["parameters"]["required"], json!(["query"]));

    let (status, body) = json(
        app.patch_json(
            &format!("/api/v1/agents/{id}"),
            &json!({"llm_model": "gpt-4o-mini", "instructions": null}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["agent"]["llm_model"], "gpt-4o-mini");
    assert_eq!(body["agent"]["llm_provider"], "openai");
    assert_eq!(body["agent"]["instructions"], Value::Null);

    let (_, body) = json(app.get(&format!("/api/v1/agents/{id}")).await).await;
    assert_eq!(body["agent"]["llm_model"], "gpt-4o-mini");

    let (status, body) = json(app.delete(&format!("/api/v1/agents/{id}")).await).await;
    assert_eq!(
        (status, body),
        (200, json!({"success": true, "message": "Agent deleted"}))
    );
    expect_error(
        app.get(&format!("/api/v1/agents/{id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.delete(&format!("/api/v1/agents/{id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn invalid_agents_are_400_with_the_path_of_the_problem() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "a", "agent_type": "video"}), "agent_type"),
        (
            json!({"name": "a", "dispatch_name": "has space"}),
            "dispatch_name",
        ),
        (
            json!({"name": "a", "knowledge_base_ids": [99]}),
            "knowledge_base_ids",
        ),
    ];
    for (body, field) in cases {
        let err = expect_error(
            app.post_json("/api/v1/agents", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], field, "{body}");
    }
    let bad_tools = json!({"name": "a", "tools": [{"name": "f", "parameters": {"type": "object", "properties": {"q": {"type": "text"}}}}]});
    let err = expect_error(
        app.post_json("/api/v1/agents", &bad_tools).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(
        err["details"]["path"],
        "tools[0].parameters.properties.q.type"
    );
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("tools[0].parameters.properties.q.type")
    );

    let err = expect_error(
        app.post_json("/api/v1/agents", &json!({"name": "a", "colour": "red"}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert!(err["error"].as_str().unwrap().contains("colour"), "{err}");
    // Nothing was created.
    let (_, body) = json(app.get("/api/v1/agents").await).await;
    assert_eq!(body["agents"], json!([]));
}

#[tokio::test]
async fn names_are_unique_per_project_case_insensitively() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post_json("/api/v1/agents", &json!({"name": "Sales"}))
            .await
            .status(),
        201
    );
    expect_error(
        app.post_json("/api/v1/agents", &json!({"name": "sales"}))
            .await,
        409,
        "CONFLICT",
    )
    .await;
    let other = app.create_project(Plan::Professional).await;
    let res = app
        .req_as(&other.key, Method::POST, "/api/v1/agents")
        .json(&json!({"name": "Sales"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn another_projects_agents_are_invisible() {
    let app = TestApp::spawn().await;
    let (_, body) = json(app.post_json("/api/v1/agents", &support_agent()).await).await;
    let id = body["agent"]["id"].as_i64().unwrap();
    let other = app.create_project(Plan::Professional).await;
    let as_other = |m: Method, p: &str| app.req_as(&other.key, m, p);
    let (_, list) = json(
        as_other(Method::GET, "/api/v1/agents")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list["agents"], json!([]));
    for (m, p) in [
        (Method::GET, format!("/api/v1/agents/{id}")),
        (Method::GET, format!("/api/v1/agents/{id}/tools")),
        (Method::DELETE, format!("/api/v1/agents/{id}")),
    ] {
        expect_error(as_other(m, &p).send().await.unwrap(), 404, "NOT_FOUND").await;
    }
    let res = as_other(Method::PATCH, &format!("/api/v1/agents/{id}"))
        .json(&json!({"name": "Mine"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    // Still there, unchanged, for its owner.
    let (_, body) = json(app.get(&format!("/api/v1/agents/{id}")).await).await;
    assert_eq!(body["agent"]["name"], "Support Agent");
}

#[tokio::test]
async fn the_agent_quota_is_atomic_under_concurrency() {
    let app = TestApp::spawn().await;
    let free = app.create_project(Plan::Free).await; // 3 agents allowed
    for i in 0..2 {
        let res = app
            .req_as(&free.key, Method::POST, "/api/v1/agents")
            .json(&json!({"name": format!("a{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let attempts = join_all((0..20).map(|i| {
        app.req_as(&free.key, Method::POST, "/api/v1/agents")
            .json(&json!({"name": format!("c{i}")}))
            .send()
    }))
    .await;
    let mut created = 0;
    for res in attempts {
        let res = res.unwrap();
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                let body = expect_error(res, 429, "QUOTA_EXCEEDED").await;
                assert_eq!(body["details"]["resource"], "agents");
                assert_eq!(body["details"]["limit"], 3);
                assert_eq!(body["details"]["used"], 3);
                assert!(
                    body["details"]["upgrade_url"]
                        .as_str()
                        .unwrap()
                        .starts_with("http")
                );
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(created, 1);
    let (_, quota) = json(
        app.req_as(&free.key, Method::GET, "/api/v1/quota")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        quota["quotas"]["agents"],
        json!({"limit": 3, "used": 3, "remaining": 0})
    );
}
