//! Uploads of PDF, DOCX and HTML: structure kept (pages, headings), chrome
//! dropped, citations on search hits; and the hostile files — a scan, an
//! encrypted PDF, corrupt files, zip bombs named `.docx`, too many pages,
//! too many bytes — each a clear answer in the envelope, never a 500.

use crate::common::files::{
    docx, docx_bomb, docx_with_entries, encrypted_pdf, html, pdf, pdf_pages, scanned_pdf,
};
use crate::common::{TestApp, expect_error, json};
use crate::knowledge::{all_chunks, create_kb, upload};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECTIONS: &[(&str, &str)] = &[
    (
        "Charging the scooter",
        "Plug the charger into the port under the deck. A full charge takes about four hours.\n\nThe battery light turns green when charging is complete.",
    ),
    (
        "Folding for transport",
        "Press the latch near the handlebar stem and fold the stem onto the rear fender until it clicks.",
    ),
    (
        "Tyre pressure",
        "Keep both tyres at 50 psi. Under-inflated tyres wear quickly and reduce range by up to a fifth.",
    ),
];

async fn search(app: &TestApp, kb: i64, q: &str) -> Value {
    let (status, body) = json(
        app.post_json(
            "/api/v1/knowledge/search",
            &json!({"knowledge_base_id": kb, "query": q, "top_k": 3}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn documents(app: &TestApp, kb: i64) -> Vec<Value> {
    let (status, body) = json(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/documents"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["documents"].as_array().unwrap().clone()
}

#[tokio::test]
async fn pdf_docx_and_html_keep_their_structure_and_hits_cite_it() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Manuals", "chunk_size": 400})).await;

    let (status, body) = json(
        upload(
            &app,
            kb,
            "scooter.pdf",
            &pdf("Scooter manual", SECTIONS, true),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["chunks_created"], 3, "one chunk per section: {body}");
    assert_eq!(body["document"]["kind"], "pdf");
    assert_eq!(body["document"]["page_count"], 3);
    assert_eq!(body["document"]["status"], "ready");

    let (status, body) =
        json(upload(&app, kb, "scooter.docx", &docx("Scooter manual", SECTIONS)).await).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["chunks_created"], 3, "{body}");

    let page = html("Scooter manual", SECTIONS);
    let (status, body) = json(upload(&app, kb, "scooter.html", page.as_bytes()).await).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["chunks_created"], 3, "{body}");

    let chunks = all_chunks(&app, kb).await;
    for source in ["scooter.pdf", "scooter.docx", "scooter.html"] {
        let of: Vec<&str> = chunks
            .iter()
            .filter(|c| c["source"] == source)
            .map(|c| c["content"].as_str().unwrap())
            .collect();
        assert_eq!(of.len(), 3, "{source}: {of:?}");
        assert!(
            of[0].starts_with("Charging the scooter\nPlug the charger"),
            "{source}: {of:?}"
        );
        assert!(of[2].starts_with("Tyre pressure\n"), "{source}: {of:?}");
    }
    // Scripts, navigation, asides and footers of the page are not text.
    for c in &chunks {
        let text = c["content"].as_str().unwrap();
        for noise in ["navigationSecret", "Careers", "newsletter", "Copyright"] {
            assert!(!text.contains(noise), "{noise} in {text}");
        }
    }

    let body = search(
        &app,
        kb,
        "how long does it take to charge the battery fully",
    )
    .await;
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty());
    let pdf_hit = results
        .iter()
        .find(|r| r["source"] == "scooter.pdf")
        .unwrap_or_else(|| panic!("a PDF hit in {body}"));
    let citation = &pdf_hit["citation"];
    assert_eq!(citation["document"], "scooter.pdf");
    assert_eq!(citation["page"], 1, "{citation}");
    assert_eq!(
        citation["heading_path"],
        json!(["Scooter manual", "Charging the scooter"])
    );
    assert!(citation["url"].is_null());
    let snippet = citation["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>charge</mark>"), "{snippet}");
    let docx_hit = results.iter().find(|r| r["source"] == "scooter.docx");
    if let Some(hit) = docx_hit {
        assert!(hit["citation"]["page"].is_null());
        assert_eq!(
            hit["citation"]["heading_path"],
            json!(["Scooter manual", "Charging the scooter"])
        );
    }
    // Pages follow the sections: the third section is on page 3.
    let body = search(&app, kb, "what inflation should the tyres have").await;
    let tyre = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] == "scooter.pdf")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(tyre["citation"]["page"], 3, "{body}");

    // The documents list shows each with its kind, status and counts.
    let docs = documents(&app, kb).await;
    let kinds: Vec<(&str, &str, i64)> = docs
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap(),
                d["kind"].as_str().unwrap(),
                d["chunk_count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("scooter.pdf", "pdf", 3),
            ("scooter.docx", "docx", 3),
            ("scooter.html", "html", 3)
        ]
    );
    // Deleting a document removes its chunks.
    let id = docs[1]["id"].as_i64().unwrap();
    let (status, _) = json(
        app.delete(&format!("/api/v1/knowledge-bases/{kb}/documents/{id}"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        all_chunks(&app, kb)
            .await
            .iter()
            .all(|c| c["source"] != "scooter.docx")
    );
    expect_error(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/documents/{id}"))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn a_scanned_pdf_is_recorded_with_no_text_layer() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Scans"})).await;
    // A text version first: re-uploading the scan under its name replaces it.
    let text = pdf("Invoice", &[("Total", "The total due is 120 EUR.")], false);
    assert_eq!(upload(&app, kb, "invoice.pdf", &text).await.status(), 201);
    let (status, body) = json(upload(&app, kb, "invoice.pdf", &scanned_pdf(2)).await).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["indexing_status"], "no_text_layer", "{body}");
    assert_eq!(body["chunks_created"], 0);
    let doc = &body["document"];
    assert_eq!(doc["status"], "no_text_layer");
    assert_eq!(doc["page_count"], 2);
    assert!(
        doc["error"].as_str().unwrap().contains("no text layer"),
        "{doc}"
    );
    let id = doc["id"].as_i64().unwrap();
    let (_, got) = json(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/documents/{id}"))
            .await,
    )
    .await;
    assert_eq!(got["document"]["status"], "no_text_layer");
    assert_eq!(got["document"]["chunk_count"], 0);
    assert!(
        all_chunks(&app, kb).await.is_empty(),
        "the old text is gone"
    );
    let (_, listed) = json(
        app.get(&format!(
            "/api/v1/knowledge-bases/{kb}/documents?status=no_text_layer"
        ))
        .await,
    )
    .await;
    assert_eq!(listed["total"], 1);
}

#[tokio::test]
async fn encrypted_corrupt_and_mislabelled_files_are_clear_400s() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Bad files"})).await;
    let good = pdf("Fine", &[("Part", "Some text here.")], false);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "secret.pdf",
            encrypted_pdf("Confidential salaries"),
            "encrypted",
        ),
        ("cut.pdf", good[..60].to_vec(), "corrupt"),
        (
            "noise.pdf",
            b"%PDF-1.7\n\x00\x01garbage".to_vec(),
            "corrupt",
        ),
        ("photo.pdf", b"\x89PNG\r\n\x1a\n....".to_vec(), "corrupt"),
        (
            "report.docx",
            b"PK\x03\x04 not really a zip".to_vec(),
            "corrupt",
        ),
        ("notes.docx", b"plain text pretending".to_vec(), "corrupt"),
        (
            "locked.docx",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 ole compound file".to_vec(),
            "encrypted",
        ),
        (
            "empty.docx",
            crate::common::files::zip(&[("word/other.xml", b"<x/>")]),
            "corrupt",
        ),
    ];
    for (name, bytes, reason) in cases {
        let body = expect_error(upload(&app, kb, name, &bytes).await, 400, "INVALID_REQUEST").await;
        assert_eq!(body["details"]["field"], "file", "{name}: {body}");
        assert_eq!(body["details"]["reason"], reason, "{name}: {body}");
        if reason == "encrypted" {
            assert!(
                body["error"].as_str().unwrap().contains("password"),
                "{name}: {body}"
            );
        }
    }
    // An HTML page with nothing but chrome has no text.
    let empty = "<html><body><nav>menu</nav><script>x()</script></body></html>";
    expect_error(
        upload(&app, kb, "e.html", empty.as_bytes()).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert!(documents(&app, kb).await.is_empty());
    // The server is still fine.
    assert_eq!(upload(&app, kb, "fine.pdf", &good).await.status(), 201);
}

#[tokio::test]
async fn zip_bombs_named_docx_are_refused_within_limits() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Bombs"})).await;
    // 200 MB of spaces in a ~200 KB file.
    let bomb = docx_bomb(200);
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
    let started = Instant::now();
    let body = expect_error(
        upload(&app, kb, "bomb.docx", &bomb).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refused after {:?}",
        started.elapsed()
    );
    assert_eq!(body["details"]["reason"], "too_large", "{body}");
    assert_eq!(body["details"]["limit"], 32 * 1024 * 1024, "{body}");
    // Too many entries: refused from the archive's end record.
    let body = expect_error(
        upload(&app, kb, "many.docx", &docx_with_entries(3000)).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(body["details"]["limit"], 2000, "{body}");
    assert!(documents(&app, kb).await.is_empty());
}

#[tokio::test]
async fn too_many_pages_and_too_many_bytes_are_413() {
    let app = TestApp::spawn_with(|s| s.kb_max_document_pages = 5).await;
    let kb = create_kb(&app, json!({"name": "Limits"})).await;
    assert_eq!(
        upload(&app, kb, "five.pdf", &pdf_pages(5)).await.status(),
        201
    );
    let body = expect_error(
        upload(&app, kb, "six.pdf", &pdf_pages(6)).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(
        (&body["details"]["pages"], &body["details"]["limit_pages"]),
        (&json!(6), &json!(5)),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("6 pages"),
        "{body}"
    );
    let mut big = b"%PDF-1.7\n".to_vec();
    big.resize(10 * 1024 * 1024 + 1, b' ');
    let body = expect_error(
        upload(&app, kb, "big.pdf", &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(body["details"]["limit_bytes"], 10 * 1024 * 1024);
    let mut big_docx = b"PK".to_vec();
    big_docx.resize(10 * 1024 * 1024 + 1, 0);
    expect_error(
        upload(&app, kb, "big.docx", &big_docx).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
}

#[tokio::test]
async fn markdown_hits_cite_their_heading_path() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Md"})).await;
    let md = "# Handbook\nIntro.\n\n## Leave\nAnnual leave is 28 days per year.\n\n### Carry over\nUp to 5 unused days carry over into the next year.\n";
    assert_eq!(
        upload(&app, kb, "handbook.md", md.as_bytes())
            .await
            .status(),
        201
    );
    let body = search(&app, kb, "can unused vacation days move to next year").await;
    let top = &body["results"][0];
    assert_eq!(
        top["citation"]["heading_path"],
        json!(["Handbook", "Leave", "Carry over"]),
        "{body}"
    );
    assert!(top["citation"]["page"].is_null());
    assert!(
        top["citation"]["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>unused</mark>"),
        "{body}"
    );
    for field in ["id", "content", "source", "chunk_index", "score"] {
        assert!(!top[field].is_null(), "{field} kept in {top}");
    }
}

#[tokio::test]
async fn a_large_pdf_is_queued_with_its_pages_and_headings() {
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Large"})).await;
    let body: String = (0..60)
        .map(|i| {
            format!("Paragraph {i} explains clause {i} of the service agreement in plain words. ")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let sections: Vec<(String, String)> = (1..=8)
        .map(|i| {
            let text = if i == 8 {
                format!("Either party may end the contract with ninety days of written notice.\n\n{body}")
            } else {
                body.clone()
            };
            (format!("Chapter {i}"), text)
        })
        .collect();
    let refs: Vec<(&str, &str)> = sections
        .iter()
        .map(|(h, t)| (h.as_str(), t.as_str()))
        .collect();
    let file = pdf("Service agreement", &refs, true);
    let (status, got) = json(upload(&app, kb, "agreement.pdf", &file).await).await;
    assert_eq!(status, 202, "over kb_inline_index_max_bytes of text: {got}");
    assert_eq!(got["document"]["status"], "indexing");
    crate::knowledge::wait_ready(&app, kb).await;
    let docs = documents(&app, kb).await;
    assert_eq!(docs[0]["status"], "ready", "{docs:?}");
    assert!(docs[0]["page_count"].as_i64().unwrap() >= 8);
    let body = search(
        &app,
        kb,
        "how much notice is needed to terminate the contract",
    )
    .await;
    let hit = &body["results"][0];
    assert_eq!(hit["source"], "agreement.pdf");
    assert!(hit["citation"]["page"].as_i64().unwrap() >= 8, "{body}");
    assert_eq!(
        hit["citation"]["heading_path"],
        json!(["Service agreement", "Chapter 8"]),
        "{body}"
    );
}
