//! `GET /api/v1/quota`.

use crate::common::{TestApp, json};
use reqwest::Method;
use voxplane::limits::plans::Plan;

#[tokio::test]
async fn quota_has_the_contract_shape_and_plan_limits() {
    let app = TestApp::spawn().await;
    let (status, body) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(status, 200);
    assert_eq!(body["plan"], "professional");
    assert_eq!(body["plan_display"], "Professional");
    let quotas = body["quotas"].as_object().unwrap();
    let names: Vec<&str> = quotas.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "projects",
            "agents",
            "knowledge_bases",
            "sip_configs",
            "webhook_configs",
            "team_members",
            "rooms",
            "sessions",
            "recordings"
        ]
    );
    for (name, line) in quotas {
        let (limit, used, remaining) = (
            line["limit"].as_i64().unwrap(),
            line["used"].as_i64().unwrap(),
            line["remaining"].as_i64().unwrap(),
        );
        assert_eq!(remaining, limit - used, "{name}");
        assert_eq!(line.as_object().unwrap().len(), 3, "{name}: {line}");
    }
    // The contract's professional example.
    assert_eq!(body["quotas"]["projects"]["limit"], 10);
    assert_eq!(body["quotas"]["projects"]["used"], 1);
    assert_eq!(body["quotas"]["agents"]["limit"], 50);
    assert_eq!(body["quotas"]["knowledge_bases"]["limit"], 20);
    assert_eq!(body["quotas"]["sip_configs"]["limit"], 10);
    assert_eq!(body["quotas"]["webhook_configs"]["limit"], 10);
    assert_eq!(body["quotas"]["team_members"]["limit"], 10);

    let free = app.create_project(Plan::Free).await;
    let (_, body) = json(
        app.req_as(&free.key, Method::GET, "/api/v1/quota")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["plan"], "free");
    assert_eq!(body["plan_display"], "Free");
    assert_eq!(body["quotas"]["agents"]["limit"], 3);
}

#[tokio::test]
async fn plan_limits_are_configurable() {
    let app = TestApp::spawn_with(|s| s.plans.professional.agents = 7).await;
    let (_, body) = json(app.get("/api/v1/quota").await).await;
    assert_eq!(body["quotas"]["agents"]["limit"], 7);
}
