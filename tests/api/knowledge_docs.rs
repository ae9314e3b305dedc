//! Knowledge-base documents: every file type, re-upload, limits, encodings,
//! ingest, chunk pages, edits, reindex and background indexing.

use crate::common::{TestApp, expect_error, json};
use crate::knowledge::{all_chunks, create_kb, upload, wait_merged, wait_ready};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn every_file_type_is_chunked_its_own_way() {
    let app = TestApp::spawn().await;
    let kb = create_kb(
        &app,
        json!({"name": "Docs", "chunk_size": 200, "chunk_overlap": 20}),
    )
    .await;

    let md = "# Billing\nWe bill on the first of the month.\n\n## Refunds\nRefunds take five business days.\n";
    let (status, body) = json(upload(&app, kb, "faq.md", md.as_bytes()).await).await;
    assert_eq!(status, 201, "{body}");
    let doc = body["document"].clone();
    let mut rest = body.clone();
    rest.as_object_mut().unwrap().remove("document");
    assert_eq!(
        rest,
        json!({"success": true, "chunks_created": 2, "source_file": "faq.md", "indexing_status": "ready"})
    );
    assert_eq!(
        (&doc["name"], &doc["kind"], &doc["origin"], &doc["status"]),
        (
            &json!("faq.md"),
            &json!("md"),
            &json!("document"),
            &json!("ready")
        )
    );
    assert_eq!(doc["chunk_count"], 2);

    let mut csv = String::from("question,answer\n");
    for i in 0..12 {
        csv.push_str(&format!(
            "\"What is plan {i}?\",\"Plan {i} costs {i}0 dollars, billed monthly\"\n"
        ));
    }
    let (status, body) = json(upload(&app, kb, "plans.csv", csv.as_bytes()).await).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["chunks_created"].as_u64().unwrap() > 1);

    let doc =
        json!({"company": {"name": "Nimbus", "founded": 2020}, "offices": ["Berlin", "Austin"]});
    let (status, body) =
        json(upload(&app, kb, "company.JSON", doc.to_string().as_bytes()).await).await;
    assert_eq!(
        (status, &body["chunks_created"]),
        (201, &json!(1)),
        "{body}"
    );

    let txt = "First paragraph. It has two sentences.\n\nSecond paragraph is here.";
    assert_eq!(
        upload(&app, kb, "notes.txt", txt.as_bytes()).await.status(),
        201
    );

    let chunks = all_chunks(&app, kb).await;
    let of = |src: &str| {
        chunks
            .iter()
            .filter(|c| c["source"] == src)
            .map(|c| c["content"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("faq.md"),
        vec![
            "# Billing\nWe bill on the first of the month.",
            "## Refunds\nRefunds take five business days."
        ]
    );
    let rows = of("plans.csv");
    for (i, c) in rows.iter().enumerate() {
        assert!(
            c.starts_with("question,answer\n"),
            "chunk {i} keeps the header: {c}"
        );
        assert_eq!(
            c.lines().count() - 1,
            c.matches("billed monthly").count(),
            "rows stay whole: {c}"
        );
    }
    assert_eq!(
        of("company.JSON"),
        vec!["company.name: Nimbus\ncompany.founded: 2020\noffices[0]: Berlin\noffices[1]: Austin"]
    );
    assert_eq!(of("notes.txt"), vec![txt]);
    let indexes: Vec<i64> = chunks
        .iter()
        .filter(|c| c["source"] == "plans.csv")
        .map(|c| c["chunk_index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, (0..indexes.len() as i64).collect::<Vec<_>>());

    // Re-uploading a file name replaces its chunks.
    let (_, body) = json(
        upload(
            &app,
            kb,
            "faq.md",
            b"# Billing\nInvoices are sent by e-mail.\n",
        )
        .await,
    )
    .await;
    assert_eq!(body["chunks_created"], 1);
    let chunks = all_chunks(&app, kb).await;
    let faq: Vec<_> = chunks.iter().filter(|c| c["source"] == "faq.md").collect();
    assert_eq!(faq.len(), 1);
    assert_eq!(faq[0]["chunk_index"], 0);
    assert!(faq[0]["content"].as_str().unwrap().contains("e-mail"));

    let mut conn = app.conn().await;
    #[derive(diesel::QueryableByName)]
    struct E {
        #[diesel(sql_type = diesel::sql_types::Text)]
        event_type: String,
    }
    let events: Vec<E> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT event_type FROM events WHERE event_type LIKE 'knowledge.%'"),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "knowledge.document_uploaded")
            .count(),
        5
    );
}

#[tokio::test]
async fn bad_documents_are_refused_in_the_envelope() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Docs"})).await;
    let cases: [(&str, &[u8]); 5] = [
        ("report.pdf", b"%PDF-1.7"),
        ("latin1.txt", b"caf\xe9 cr\xe8me"),
        ("broken.json", b"{\"a\": "),
        ("empty.md", b"  \n\n "),
        ("nul.txt", b"a\0b"),
    ];
    for (name, bytes) in cases {
        let err = expect_error(upload(&app, kb, name, bytes).await, 400, "INVALID_REQUEST").await;
        assert_eq!(err["details"]["field"], "file", "{name}: {err}");
    }
    // Exactly 10 MB of text would be accepted; one byte more is 413.
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    let err = expect_error(
        upload(&app, kb, "big.txt", &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(err["details"]["limit_bytes"], 10 * 1024 * 1024);
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/knowledge-bases/{kb}/documents"),
        )
        .json(&json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/knowledge-bases/{kb}/documents"),
        )
        .header("content-type", "multipart/form-data; boundary=zz")
        .body("--zz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--zz--\r\n")
        .send()
        .await
        .unwrap();
    let err = expect_error(r, 400, "INVALID_REQUEST").await;
    assert_eq!(err["details"]["field"], "file");
    let r = app
        .post_json(
            &format!("/api/v1/knowledge-bases/{kb}/ingest"),
            &json!({"content": "x".repeat(10 * 1024 * 1024 + 1)}),
        )
        .await;
    expect_error(r, 413, "PAYLOAD_TOO_LARGE").await;
    for (body, field) in [
        (json!({"content": " "}), "content"),
        (json!({"content": "a", "source_name": ""}), "source_name"),
    ] {
        let err = expect_error(
            app.post_json(&format!("/api/v1/knowledge-bases/{kb}/ingest"), &body)
                .await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(err["details"]["field"], field);
    }
    expect_error(
        app.post_json(
            &format!("/api/v1/knowledge-bases/{kb}/ingest"),
            &json!({"text": "a"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let (_, body) = json(app.get(&format!("/api/v1/knowledge-bases/{kb}")).await).await;
    assert_eq!(body["knowledge_base"]["chunk_count"], 0);
}

#[tokio::test]
async fn ingest_pages_edits_deletes_and_reindexes_chunks() {
    let app = TestApp::spawn().await;
    let kb = create_kb(
        &app,
        json!({"name": "Pages", "chunk_size": 100, "chunk_overlap": 0}),
    )
    .await;
    let text: String = (0..45)
        .map(|i| format!("Sentence number {i} talks about topic {i} at some length here. "))
        .collect();
    let (status, body) = json(
        app.post_json(
            &format!("/api/v1/knowledge-bases/{kb}/ingest"),
            &json!({"content": text}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["source_name"], "api_ingest");
    let n = body["chunks_created"].as_i64().unwrap();
    assert!(n >= 40, "{body}");

    let (status, page2) = json(
        app.get(&format!(
            "/api/v1/knowledge-bases/{kb}/chunks?page=2&per_page=10"
        ))
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page2["total"], n);
    assert_eq!(page2["page"], 2);
    assert_eq!(page2["total_pages"], (n + 9) / 10);
    assert_eq!(page2["chunks"].as_array().unwrap().len(), 10);
    assert_eq!(page2["chunks"][0]["chunk_index"], 10);
    let (_, body) = json(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/chunks"))
            .await,
    )
    .await;
    assert_eq!(
        body["chunks"].as_array().unwrap().len(),
        20,
        "per_page defaults to 20"
    );
    let (_, body) = json(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/chunks?page=99"))
            .await,
    )
    .await;
    assert_eq!(body["chunks"], json!([]));
    for q in [
        "page=0",
        "per_page=0",
        "per_page=101",
        "page=x",
        "is_active=maybe",
        "sort=id",
    ] {
        expect_error(
            app.get(&format!("/api/v1/knowledge-bases/{kb}/chunks?{q}"))
                .await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }

    // Long content is cut to 200 characters in lists.
    let long = "word ".repeat(100);
    let r = app
        .post_json(
            &format!("/api/v1/knowledge-bases/{kb}/ingest"),
            &json!({"content": long, "source_name": "long"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let chunks = all_chunks(&app, kb).await;
    assert!(
        chunks
            .iter()
            .all(|c| c["content"].as_str().unwrap().chars().count() <= 200)
    );

    // Edit: the new text is found, the old one no longer.
    let id = chunks[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/knowledge-bases/{kb}/chunks/{id}");
    let r = app
        .put_json(
            &path,
            &json!({"content": "Parking is free for visitors in the underground garage."}),
        )
        .await;
    let (status, body) = json(r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["chunk"]["content"],
        "Parking is free for visitors in the underground garage."
    );
    let search = async |q: &str| {
        let body = json!({"knowledge_base_id": kb, "query": q, "mode": "vector", "top_k": 1});
        app.post_json("/api/v1/knowledge/search", &body).await
    };
    let (_, body) = json(search("Where can guests leave their car?").await).await;
    assert_eq!(body["results"][0]["id"], id, "{body}");
    let (_, body) = json(search("Sentence number 0 talks about topic 0").await).await;
    assert_ne!(body["results"][0]["id"], id, "the old text is gone: {body}");

    // Deactivated chunks are never returned by search, and filter the list.
    let r = app.put_json(&path, &json!({"is_active": false})).await;
    assert_eq!(r.status(), 200);
    let (_, body) = json(search("Where can guests leave their car?").await).await;
    assert_ne!(body["results"][0]["id"], id);
    let (_, body) = json(
        app.get(&format!(
            "/api/v1/knowledge-bases/{kb}/chunks?is_active=false"
        ))
        .await,
    )
    .await;
    assert_eq!(
        (body["total"].as_i64(), &body["chunks"][0]["id"]),
        (Some(1), &json!(id))
    );
    for bad in [
        json!({}),
        json!({"content": ""}),
        json!({"content": "a", "extra": 1}),
    ] {
        expect_error(app.put_json(&path, &bad).await, 400, "INVALID_REQUEST").await;
    }
    let missing = format!("/api/v1/knowledge-bases/{kb}/chunks/999999");
    expect_error(
        app.put_json(&missing, &json!({"content": "x"})).await,
        404,
        "NOT_FOUND",
    )
    .await;

    let (status, body) = json(app.delete(&path).await).await;
    assert_eq!((status, &body["success"]), (200, &json!(true)));
    expect_error(app.delete(&path).await, 404, "NOT_FOUND").await;

    let (status, body) = json(
        app.post_json(&format!("/api/v1/knowledge-bases/{kb}/reindex"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let total = all_chunks(&app, kb).await.len() as i64;
    assert_eq!(body, json!({"success": true, "chunks_reindexed": total}));
    let (_, body) = json(app.get(&format!("/api/v1/knowledge-bases/{kb}")).await).await;
    assert_eq!(body["knowledge_base"]["indexing_status"], "ready");
    // The re-index is in the outbox with what it did.
    #[derive(diesel::QueryableByName)]
    struct Data {
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        data: serde_json::Value,
    }
    let mut conn = app.conn().await;
    let events: Vec<Data> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT data FROM events WHERE project_id = $1 AND event_type = 'knowledge.reindexed'",
        )
        .bind::<diesel::sql_types::Int8, _>(app.project.id),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].data,
        json!({"knowledge_base_id": kb, "chunks_reindexed": total})
    );
}

#[tokio::test]
async fn large_documents_index_in_the_background_and_survive_a_restart() {
    let mut app = TestApp::spawn_with(|s| s.kb_inline_index_max_bytes = 2048).await;
    let kb = create_kb(&app, json!({"name": "Big"})).await;
    let text: String = (0..80)
        .map(|i| format!("Fact {i}: the office plant number {i} needs water on day {i}. "))
        .collect();
    let (status, body) = json(
        app.post_json(
            &format!("/api/v1/knowledge-bases/{kb}/ingest"),
            &json!({"content": text, "source_name": "plants"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["indexing_status"], "indexing");
    assert_eq!(body["chunks_created"], 0);
    let detail = wait_ready(&app, kb).await;
    assert!(detail["chunk_count"].as_i64().unwrap() > 5, "{detail}");
    // Stored beside the HNSW graph, then moved in by the indexer.
    wait_merged(&mut app.conn().await, kb).await;

    // A job left behind by a process that died is picked up by the next one.
    let kb2 = create_kb(&app, json!({"name": "Resumed"})).await;
    app.stop();
    let mut conn = app.conn().await;
    let content: String = (0..40)
        .map(|i| format!("Resumed fact {i} is about the garden. "))
        .collect();
    let sql = format!(
        "INSERT INTO kb_index_jobs (project_id, knowledge_base_id, source, kind, origin, content) \
         VALUES ({}, {kb2}, 'garden.txt', 'txt', 'document', '{content}'); \
         UPDATE knowledge_bases SET indexing_status = 'indexing' WHERE id = {kb2}",
        app.project.id
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &sql)
        .await
        .unwrap();
    let node = app.another_node(|_| {}).await;
    let detail = wait_ready(&node, kb2).await;
    assert!(detail["chunk_count"].as_i64().unwrap() >= 2, "{detail}");
    let chunks = all_chunks(&node, kb2).await;
    assert!(chunks.iter().all(|c| c["source"] == "garden.txt"));
}

#[tokio::test]
async fn a_newer_small_upload_supersedes_a_queued_one_and_dead_reindexes_heal() {
    let mut app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Order"})).await;
    // An older upload of `faq.txt` waits in the queue (due later)…
    let mut conn = app.conn().await;
    let sql = format!(
        "INSERT INTO kb_index_jobs (project_id, knowledge_base_id, source, kind, origin, content, run_after) \
         VALUES ({}, {kb}, 'faq.txt', 'txt', 'document', 'The old answer about parking.', now() + interval '1 second'); \
         UPDATE knowledge_bases SET indexing_status = 'indexing' WHERE id = {kb}",
        app.project.id
    );
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &sql)
        .await
        .unwrap();
    // …when a newer, small one is indexed at once: the queued one is dropped.
    let (status, body) = json(
        upload(
            &app,
            kb,
            "faq.txt",
            b"The new answer: parking is free on weekends.",
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["indexing_status"], "ready");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let chunks = all_chunks(&app, kb).await;
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    assert!(
        chunks[0]["content"]
            .as_str()
            .unwrap()
            .contains("new answer")
    );

    // A re-index whose process died left the status `indexing`, with nothing
    // queued: the next process to start heals it.
    app.stop();
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        &format!(
            "UPDATE knowledge_bases SET indexing_status = 'indexing', \
             updated_at = now() - interval '10 minutes' WHERE id = {kb}"
        ),
    )
    .await
    .unwrap();
    let node = app.another_node(|_| {}).await;
    let detail = wait_ready(&node, kb).await;
    assert_eq!(detail["chunk_count"], 1);
}

#[tokio::test]
async fn ingested_text_may_be_larger_than_other_json_bodies() {
    // Ingest takes documents up to 10 MB; other JSON bodies stop at
    // `json_body_limit` (here its least, 1 KB) with 413.
    let app = TestApp::spawn_with(|s| s.json_body_limit = 1024).await;
    let kb = create_kb(&app, json!({"name": "Big"})).await;
    let text = "Our office opens at nine in the morning. ".repeat(100);
    let (status, body) = json(
        app.post_json(
            &format!("/api/v1/knowledge-bases/{kb}/ingest"),
            &json!({"content": text}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let err = expect_error(
        app.post_json(
            "/api/v1/agents",
            &json!({"name": "A", "instructions": text}),
        )
        .await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(err["details"]["limit_bytes"], 1024);
}
