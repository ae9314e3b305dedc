//! The OpenAPI document, the docs page and the Postman collection.

use crate::common::{TestApp, root};
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn served_openapi_matches_the_committed_file() {
    let app = TestApp::spawn().await;
    let res = app.anon(Method::GET, "/openapi.json").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let served = res.text().await.unwrap();
    let committed =
        std::fs::read_to_string(root().join("openapi/openapi.json")).unwrap_or_default();
    assert!(
        served == committed,
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert!(doc["paths"]["/api/v1/quota"]["get"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}

#[test]
fn postman_collection_matches_the_committed_file() {
    let generated = voxplane::openapi::postman_json();
    let committed =
        std::fs::read_to_string(root().join("postman/voxplane.postman_collection.json"))
            .unwrap_or_default();
    assert!(
        generated == committed,
        "the Postman collection is stale: run `make openapi` and commit the result"
    );
    let environment =
        std::fs::read_to_string(root().join("postman/voxplane.postman_environment.json"))
            .unwrap_or_default();
    assert!(
        voxplane::openapi::postman_environment_json() == environment,
        "the Postman environment is stale: run `make openapi` and commit the result"
    );
    let env: Value = serde_json::from_str(&environment).unwrap();
    let keys: Vec<&str> = env["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["base_url", "api_key", "email", "password"]);
    let c: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        c["info"]["schema"],
        "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    );
    assert_eq!(c["auth"]["type"], "apikey");
    assert_eq!(c["auth"]["apikey"][0]["value"], "X-API-Key");
    let folders: Vec<&str> = c["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        folders,
        [
            "Dashboard",
            "Quick start",
            "Knowledge",
            "Webhooks",
            "Recordings & SIP",
            "Cleanup"
        ]
    );
    // Every request: a documented operation, a test of its status, a saved
    // example response; ids flow through collection variables.
    for folder in c["item"].as_array().unwrap() {
        for item in folder["item"].as_array().unwrap() {
            let name = item["name"].as_str().unwrap();
            assert!(
                item["request"]["url"]["raw"]
                    .as_str()
                    .unwrap()
                    .starts_with("{{base_url}}/"),
                "{name}"
            );
            let script = item["event"][0]["script"]["exec"].to_string();
            assert!(script.contains("pm.response.to.have.status("), "{name}");
            let example = &item["response"][0];
            assert!(example["code"].as_u64().is_some(), "{name}");
        }
    }
    assert!(committed.contains("pm.collectionVariables.set('agent_id'"));
    assert!(committed.contains("{{agent_id}}"));
}

#[tokio::test]
async fn docs_page_works_offline() {
    let app = TestApp::spawn().await;
    let res = app.anon(Method::GET, "/docs").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("/openapi.json"));
    for external in ["src=\"http", "href=\"http", "src='http", "@import", "cdn"] {
        assert!(
            !html.to_lowercase().contains(external),
            "external asset: {external}"
        );
    }
}

/// `/docs` is Swagger UI served from the binary: the page loads its bundle
/// and stylesheet from this server, and they are the pinned npm files
/// (checksums in vendor/swagger-ui/VERSION).
#[tokio::test]
async fn docs_page_is_swagger_ui_from_the_pinned_bundle() {
    use sha2::{Digest, Sha256};
    let app = TestApp::spawn().await;
    let html = app
        .anon(Method::GET, "/docs")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("SwaggerUIBundle"), "{html}");
    let pinned = std::fs::read_to_string(root().join("vendor/swagger-ui/VERSION")).unwrap();
    for (asset, kind) in [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
    ] {
        assert!(
            html.contains(&format!("\"/docs/{asset}\"")),
            "{asset} not linked"
        );
        let res = app
            .anon(Method::GET, &format!("/docs/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains(kind)
        );
        let bytes = res.bytes().await.unwrap();
        let sum = format!("{:x}", Sha256::digest(&bytes));
        assert!(
            pinned.contains(&format!("{sum}  {asset}")),
            "{asset} served with sha256 {sum}, not the pinned one"
        );
    }
}
