//! Knowledge bases: CRUD, quota, documents of every type, limits, encodings,
//! chunks, reindex, isolation, background indexing and the missing model.

use crate::common::{TestApp, expect_error, json};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::time::Duration;
use voxplane::limits::plans::Plan;

/// A multipart body with one field `file`: (content type, body).
pub fn multipart(file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "voxplaneBoundary7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads a file to a knowledge base with a key.
pub async fn upload_as(app: &TestApp, key: &str, kb: i64, name: &str, bytes: &[u8]) -> Response {
    let (ct, body) = multipart(name, bytes);
    app.req_as(
        key,
        Method::POST,
        &format!("/api/v1/knowledge-bases/{kb}/documents"),
    )
    .header("content-type", ct)
    .body(body)
    .send()
    .await
    .unwrap()
}

/// Uploads with the test project's key.
pub async fn upload(app: &TestApp, kb: i64, name: &str, bytes: &[u8]) -> Response {
    upload_as(app, &app.project.key, kb, name, bytes).await
}

/// Creates a knowledge base; returns its id.
pub async fn create_kb(app: &TestApp, body: Value) -> i64 {
    let (status, body) = json(app.post_json("/api/v1/knowledge-bases", &body).await).await;
    assert_eq!(status, 201, "{body}");
    body["knowledge_base"]["id"].as_i64().unwrap()
}

/// Every chunk of a knowledge base (full pages of 100).
pub async fn all_chunks(app: &TestApp, kb: i64) -> Vec<Value> {
    let (status, body) = json(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/chunks?per_page=100"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["chunks"].as_array().unwrap().clone()
}

/// Polls the detail until `indexing_status` is `ready` (or fails after 60 s).
pub async fn wait_ready(app: &TestApp, kb: i64) -> Value {
    for _ in 0..240 {
        let (_, body) = json(app.get(&format!("/api/v1/knowledge-bases/{kb}")).await).await;
        let status = body["knowledge_base"]["indexing_status"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert_ne!(status, "error", "{body}");
        if status == "ready" {
            return body["knowledge_base"].clone();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("knowledge base {kb} never became ready");
}

/// How many of a knowledge base's chunks wait outside the HNSW graph.
pub async fn waiting_outside_the_graph(conn: &mut diesel_async::AsyncPgConnection, kb: i64) -> i64 {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!(
        "SELECT count(*) AS n FROM kb_chunks WHERE knowledge_base_id = {kb} AND hnsw_pending"
    ))
    .get_result::<N>(conn)
    .await
    .unwrap()
    .n
}

/// Waits (20 s at most) until the indexer has moved every chunk of a
/// knowledge base into the HNSW graph.
pub async fn wait_merged(conn: &mut diesel_async::AsyncPgConnection, kb: i64) {
    let merged = async {
        while waiting_outside_the_graph(conn, kb).await > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), merged)
        .await
        .expect("the indexer merges the waiting chunks");
}

#[tokio::test]
async fn create_list_get_delete_and_quota() {
    let app = TestApp::spawn().await;
    let (status, body) = json(
        app.post_json(
            "/api/v1/knowledge-bases",
            &json!({"name": "FAQ", "description": "Support FAQs"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let kb = &body["knowledge_base"];
    assert_eq!(kb["chunk_size"], 500);
    assert_eq!(kb["chunk_overlap"], 50);
    assert_eq!(kb["chunk_count"], 0);
    assert_eq!(kb["total_chars"], 0);
    assert_eq!(kb["indexing_status"], "pending");
    assert_eq!(kb["last_indexed_at"], Value::Null);
    let id = kb["id"].as_i64().unwrap();

    let r = app
        .post_json(
            &format!("/api/v1/knowledge-bases/{id}/ingest"),
            &json!({"content": "We open at nine. We close at five."}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let (status, body) = json(app.get("/api/v1/knowledge-bases").await).await;
    assert_eq!(status, 200);
    let listed = &body["knowledge_bases"][0];
    assert_eq!(listed["id"], id);
    assert_eq!(listed["name"], "FAQ");
    assert_eq!(listed["description"], "Support FAQs");
    assert_eq!(listed["chunk_count"], 1);
    assert!(listed["created_at"].is_string());

    let (_, body) = json(app.get(&format!("/api/v1/knowledge-bases/{id}")).await).await;
    let kb = &body["knowledge_base"];
    assert_eq!(kb["indexing_status"], "ready");
    assert_eq!(kb["total_chars"], 34);
    assert!(kb["last_indexed_at"].is_string());

    let (status, body) = json(app.delete(&format!("/api/v1/knowledge-bases/{id}")).await).await;
    assert_eq!((status, &body["success"]), (200, &json!(true)));
    expect_error(
        app.get(&format!("/api/v1/knowledge-bases/{id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.delete(&format!("/api/v1/knowledge-bases/{id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let mut conn = app.conn().await;
    let left = diesel_async::RunQueryDsl::get_result::<Count>(
        diesel::sql_query("SELECT count(*) AS n FROM kb_chunks"),
        &mut conn,
    )
    .await
    .unwrap()
    .n;
    assert_eq!(left, 0, "chunks are deleted with their knowledge base");

    // Free plan: 2 knowledge bases.
    let free = app.create_project(Plan::Free).await;
    for i in 0..2 {
        let r = app
            .req_as(&free.key, Method::POST, "/api/v1/knowledge-bases")
            .json(&json!({"name": format!("kb{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = app
        .req_as(&free.key, Method::POST, "/api/v1/knowledge-bases")
        .json(&json!({"name": "third"}))
        .send()
        .await
        .unwrap();
    let err = expect_error(r, 429, "QUOTA_EXCEEDED").await;
    assert_eq!(err["details"]["resource"], "knowledge_bases");
    assert_eq!(err["details"]["limit"], 2);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn invalid_knowledge_bases_are_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "a", "chunk_size": 99}), "chunk_size"),
        (json!({"name": "a", "chunk_size": 4001}), "chunk_size"),
        (json!({"name": "a", "chunk_overlap": -1}), "chunk_overlap"),
        (
            json!({"name": "a", "chunk_size": 500, "chunk_overlap": 250}),
            "chunk_overlap",
        ),
        (
            json!({"name": "a", "chunk_size": 100, "chunk_overlap": 50}),
            "chunk_overlap",
        ),
    ];
    for (body, field) in cases {
        let err = expect_error(
            app.post_json("/api/v1/knowledge-bases", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], field, "{body}");
    }
    for body in [
        json!({"name": "a", "chunks": 1}),
        json!({"description": "no name"}),
        json!({"name": "a", "chunk_size": "big"}),
    ] {
        expect_error(
            app.post_json("/api/v1/knowledge-bases", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
    let ok = json!({"name": "edge", "chunk_size": 100, "chunk_overlap": 49});
    assert_eq!(
        app.post_json("/api/v1/knowledge-bases", &ok).await.status(),
        201
    );
    expect_error(
        app.get("/api/v1/knowledge-bases/abc").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get("/api/v1/knowledge-bases/999999").await,
        404,
        "NOT_FOUND",
    )
    .await;
    let r = app
        .req(Method::PATCH, "/api/v1/knowledge-bases")
        .send()
        .await
        .unwrap();
    expect_error(r, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn isolation_between_projects() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Private"})).await;
    let r = app
        .post_json(
            &format!("/api/v1/knowledge-bases/{kb}/ingest"),
            &json!({"content": "Secret launch date is May 4."}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let chunk = all_chunks(&app, kb).await[0]["id"].as_i64().unwrap();
    let other = app.create_project(Plan::Professional).await;
    let k = other.key.as_str();
    let send = |m: Method, p: String, body: Option<Value>| {
        let mut r = app.req_as(k, m, &p);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    let base = format!("/api/v1/knowledge-bases/{kb}");
    let cases = [
        (Method::GET, base.clone(), None),
        (Method::DELETE, base.clone(), None),
        (Method::GET, format!("{base}/chunks"), None),
        (
            Method::POST,
            format!("{base}/ingest"),
            Some(json!({"content": "mine now"})),
        ),
        (Method::POST, format!("{base}/reindex"), None),
        (
            Method::PUT,
            format!("{base}/chunks/{chunk}"),
            Some(json!({"content": "x"})),
        ),
        (Method::DELETE, format!("{base}/chunks/{chunk}"), None),
        (
            Method::POST,
            "/api/v1/knowledge/search".into(),
            Some(json!({"knowledge_base_id": kb, "query": "launch date"})),
        ),
    ];
    for (m, p, b) in cases {
        let label = format!("{m} {p}");
        let body = expect_error(send(m, p, b).await.unwrap(), 404, "NOT_FOUND").await;
        assert!(
            body["error"].as_str().unwrap().contains("not found"),
            "{label}: {body}"
        );
    }
    expect_error(
        upload_as(&app, k, kb, "x.txt", b"hello").await,
        404,
        "NOT_FOUND",
    )
    .await;
    let (_, body) = json(
        app.req_as(k, Method::GET, "/api/v1/knowledge-bases")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["knowledge_bases"], json!([]));
    // Nothing changed for the owner.
    let chunks = all_chunks(&app, kb).await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["content"], "Secret launch date is May 4.");
}

#[tokio::test]
async fn agents_reference_only_their_projects_knowledge_bases() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Docs"})).await;
    let (status, body) = json(
        app.post_json(
            "/api/v1/agents",
            &json!({"name": "A", "knowledge_base_ids": [kb, kb]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["agent"]["knowledge_base_ids"], json!([kb]));
    let agent = body["agent"]["id"].as_i64().unwrap();
    let err = expect_error(
        app.post_json(
            "/api/v1/agents",
            &json!({"name": "B", "knowledge_base_ids": [kb, 987654]}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(err["details"]["field"], "knowledge_base_ids");
    assert_eq!(err["details"]["unknown"], json!([987654]));
    let other = app.create_project(Plan::Professional).await;
    let r = app
        .req_as(&other.key, Method::POST, "/api/v1/agents")
        .json(&json!({"name": "C", "knowledge_base_ids": [kb]}))
        .send()
        .await
        .unwrap();
    let err = expect_error(r, 400, "INVALID_REQUEST").await;
    assert_eq!(err["details"]["unknown"], json!([kb]));
    let err = expect_error(
        app.patch_json(
            &format!("/api/v1/agents/{agent}"),
            &json!({"knowledge_base_ids": [1234567]}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(err["details"]["field"], "knowledge_base_ids");
    assert_eq!(
        app.delete(&format!("/api/v1/knowledge-bases/{kb}"))
            .await
            .status(),
        200
    );
    let (_, body) = json(app.get(&format!("/api/v1/agents/{agent}")).await).await;
    assert_eq!(body["agent"]["knowledge_base_ids"], json!([]));
}

#[tokio::test]
async fn without_the_model_writes_and_search_answer_503_naming_make_setup() {
    let empty =
        crate::common::root().join(format!(".local/test-empty-model-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let dir = empty.clone();
    let app = TestApp::spawn_with(move |s| s.embedding_model_dir = dir).await;
    let kb = create_kb(&app, json!({"name": "No model"})).await;
    let (status, _) = json(app.get(&format!("/api/v1/knowledge-bases/{kb}")).await).await;
    assert_eq!(status, 200);
    assert_eq!(app.get("/api/v1/knowledge-bases").await.status(), 200);
    assert_eq!(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/chunks"))
            .await
            .status(),
        200
    );
    let responses = [
        upload(&app, kb, "a.txt", b"hello").await,
        app.post_json(
            &format!("/api/v1/knowledge-bases/{kb}/ingest"),
            &json!({"content": "hello"}),
        )
        .await,
        app.post_json(&format!("/api/v1/knowledge-bases/{kb}/reindex"), &json!({}))
            .await,
        app.post_json(
            "/api/v1/knowledge/search",
            &json!({"knowledge_base_id": kb, "query": "hello"}),
        )
        .await,
    ];
    for r in responses {
        assert_eq!(
            r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
            Some("5")
        );
        let body = expect_error(r, 503, "SERVICE_UNAVAILABLE").await;
        assert!(
            body["error"].as_str().unwrap().contains("make setup"),
            "{body}"
        );
    }
    // Keyword search needs no model; other endpoints are unaffected.
    let r = app
        .post_json(
            "/api/v1/knowledge/search",
            &json!({"knowledge_base_id": kb, "query": "hello", "mode": "keyword"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/api/v1/agents").await.status(), 200);
    let (status, body) = json(app.anon(Method::GET, "/ready").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["checks"]["embedding_model"]
            .as_str()
            .unwrap()
            .contains("make setup"),
        "{body}"
    );
    let _ = std::fs::remove_dir_all(empty);

    let healthy = TestApp::spawn().await;
    let (_, body) = json(healthy.anon(Method::GET, "/ready").send().await.unwrap()).await;
    assert_eq!(body["checks"]["embedding_model"], "ok");
}
