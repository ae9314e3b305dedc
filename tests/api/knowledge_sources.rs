//! Web sources against a local site: same-site crawling within depth and
//! page limits, robots.txt, the SSRF guard on redirects (loopback allowed in
//! tests, private addresses not), conditional refreshes that re-embed only
//! changed pages, per-page status and errors, and the sources API.

use crate::common::website::{SitePage, Website};
use crate::common::{TestApp, expect_error, json};
use crate::knowledge::{all_chunks, create_kb};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

fn page(title: &str, body: &str, links: &[&str]) -> String {
    let links: String = links
        .iter()
        .map(|l| format!("<a href=\"{l}\">{l}</a> "))
        .collect();
    format!(
        "<html><head><title>{title}</title></head><body><nav>{links}</nav>\
         <main><h1>{title}</h1><p>{body}</p></main></body></html>"
    )
}

async fn add_source(app: &TestApp, kb: i64, body: Value) -> Value {
    let (status, got) = json(
        app.post_json(&format!("/api/v1/knowledge-bases/{kb}/sources"), &body)
            .await,
    )
    .await;
    assert_eq!(status, 202, "{got}");
    got["source"].clone()
}

/// Waits until a crawl after `after` (a `last_crawled_at`) has finished.
async fn crawled(app: &TestApp, kb: i64, id: i64, after: &Value) -> Value {
    for _ in 0..300 {
        let (_, body) = json(
            app.get(&format!("/api/v1/knowledge-bases/{kb}/sources/{id}"))
                .await,
        )
        .await;
        let s = body["source"].clone();
        if matches!(s["status"].as_str(), Some("ready" | "error"))
            && !s["last_crawled_at"].is_null()
            && s["last_crawled_at"] != *after
        {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("source {id} was never crawled");
}

async fn pages(app: &TestApp, kb: i64, id: i64) -> BTreeMap<String, Value> {
    let (status, body) = json(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/sources/{id}/pages"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["url"].as_str().unwrap().to_owned(), p.clone()))
        .collect()
}

/// Chunk ids of a source name.
async fn chunk_ids(app: &TestApp, kb: i64, source: &str) -> Vec<i64> {
    all_chunks(app, kb)
        .await
        .iter()
        .filter(|c| c["source"] == source)
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_crawl_stays_on_the_site_within_its_limits_and_honours_robots() {
    let site = Website::start();
    site.set(
        "/robots.txt",
        SitePage::text("User-agent: *\nDisallow: /private\n"),
    );
    site.set(
        "/",
        SitePage::html(&page(
            "Help centre",
            "Welcome to the help centre of the Orbit coffee grinder.",
            &[
                "/a",
                "/a#top",
                "/b",
                "/private/secret",
                "https://example.com/x",
                "/broken",
                "/logo",
            ],
        )),
    );
    site.set(
        "/a",
        SitePage::html(&page(
            "Burr cleaning",
            "Brush the burrs every two weeks and run a tablet of grinder cleaner monthly.",
            &["/c"],
        )),
    );
    site.set(
        "/b",
        SitePage::html(&page(
            "Grind size",
            "Espresso needs the finest setting, 1 to 5.",
            &[],
        )),
    );
    site.set(
        "/c",
        SitePage::html(&page("Deep page", "Too deep to crawl.", &[])),
    );
    site.set(
        "/private/secret",
        SitePage::html(&page("Secret", "Internal notes.", &[])),
    );
    site.set("/broken", SitePage::status(500));
    site.set(
        "/logo",
        SitePage {
            content_type: "image/png".into(),
            ..SitePage::html("PNG")
        },
    );
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Help"})).await;
    let source = add_source(
        &app,
        kb,
        json!({"url": site.url("/"), "mode": "crawl", "max_depth": 1, "max_pages": 10}),
    )
    .await;
    assert_eq!(source["status"], "pending");
    assert_eq!(source["refresh_hours"], 24);
    let id = source["id"].as_i64().unwrap();
    let done = crawled(&app, kb, id, &Value::Null).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["last_error"], "1 of 5 pages failed", "{done}");
    let pages = pages(&app, kb, id).await;
    let status = |p: &str| pages[&site.url(p)]["status"].as_str().unwrap().to_owned();
    assert_eq!(status("/"), "indexed");
    assert_eq!(status("/a"), "indexed");
    assert_eq!(status("/b"), "indexed");
    assert_eq!(status("/private/secret"), "blocked");
    assert_eq!(
        pages[&site.url("/private/secret")]["last_error"],
        "disallowed by robots.txt"
    );
    assert_eq!(status("/broken"), "error");
    assert_eq!(pages[&site.url("/broken")]["last_error"], "HTTP 500");
    assert_eq!(pages[&site.url("/broken")]["http_status"], 500);
    assert_eq!(status("/logo"), "skipped");
    assert!(
        pages[&site.url("/logo")]["last_error"]
            .as_str()
            .unwrap()
            .contains("image/png")
    );
    assert_eq!(pages.len(), 6, "not /c (depth 2) nor off-site: {pages:?}");
    assert_eq!(pages[&site.url("/a")]["title"], "Burr cleaning");
    assert_eq!(done["pages"]["indexed"], 3);
    assert_eq!(done["pages"]["blocked"], 1);
    let hits = site.hits();
    assert!(
        hits.iter()
            .all(|h| h.path != "/private/secret" && h.path != "/c")
    );
    assert!(hits.iter().all(|h| {
        h.user_agent
            .as_deref()
            .is_some_and(|u| u.contains("VoxplaneBot"))
    }));
    assert_eq!(
        hits.iter().filter(|h| h.path == "/a").count(),
        1,
        "fragments dropped"
    );

    // Crawled pages are documents, and their hits cite the URL.
    let (_, body) = json(
        app.post_json(
            "/api/v1/knowledge/search",
            &json!({"knowledge_base_id": kb, "query": "how often should the burrs be cleaned", "top_k": 1}),
        )
        .await,
    )
    .await;
    let hit = &body["results"][0];
    assert_eq!(hit["citation"]["url"], site.url("/a"), "{body}");
    assert_eq!(hit["citation"]["document"], site.url("/a"));
    assert_eq!(hit["citation"]["heading_path"], json!(["Burr cleaning"]));
    let (_, docs) = json(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/documents"))
            .await,
    )
    .await;
    let web: Vec<&Value> = docs["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["origin"] == "web")
        .collect();
    assert_eq!(web.len(), 3);
    assert!(
        web.iter()
            .all(|d| d["source_id"] == id && d["kind"] == "html")
    );

    // Deleting the source deletes its pages' documents and chunks.
    let (status, _) = json(
        app.delete(&format!("/api/v1/knowledge-bases/{kb}/sources/{id}"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(all_chunks(&app, kb).await.is_empty());
    let (_, docs) = json(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/documents"))
            .await,
    )
    .await;
    assert_eq!(docs["total"], 0);
    expect_error(
        app.get(&format!("/api/v1/knowledge-bases/{kb}/sources/{id}"))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn redirects_to_private_addresses_are_refused_though_loopback_is_allowed() {
    let site = Website::start();
    site.set("/", SitePage::redirect(302, "http://10.0.0.1/internal"));
    site.set(
        "/meta",
        SitePage::redirect(301, "http://169.254.169.254/latest/meta-data/"),
    );
    site.set("/hop", SitePage::redirect(307, "/meta"));
    let app = TestApp::spawn().await;
    assert!(app.state.settings.webhook_allow_loopback);
    let kb = create_kb(&app, json!({"name": "Guarded"})).await;
    for (path, address) in [("/", "10.0.0.1"), ("/hop", "169.254.169.254")] {
        let source = add_source(&app, kb, json!({"url": site.url(path)})).await;
        let id = source["id"].as_i64().unwrap();
        let done = crawled(&app, kb, id, &Value::Null).await;
        assert_eq!(done["status"], "error", "{done}");
        let error = done["last_error"].as_str().unwrap();
        assert!(
            error.contains("refused by the SSRF guard") && error.contains(address),
            "{error}"
        );
        let pages = pages(&app, kb, id).await;
        let p = &pages[&site.url(path)];
        assert_eq!(p["status"], "error");
        assert_eq!(p["last_error"], error);
    }
    assert!(all_chunks(&app, kb).await.is_empty());
    // A private address given directly is refused at once.
    for url in [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let body = expect_error(
            app.post_json(
                &format!("/api/v1/knowledge-bases/{kb}/sources"),
                &json!({ "url": url }),
            )
            .await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(body["details"]["field"], "url", "{body}");
    }
}

#[tokio::test]
async fn a_refresh_re_embeds_only_the_pages_that_changed() {
    let site = Website::start();
    site.set(
        "/",
        SitePage::html(&page(
            "Orbit",
            "The Orbit grinder has forty settings.",
            &["/a", "/b"],
        ))
        .with_etag("\"root-v1\""),
    );
    // No validators: only the content hash tells it is unchanged.
    site.set(
        "/a",
        SitePage::html(&page(
            "Warranty",
            "The warranty lasts two years from purchase.",
            &[],
        )),
    );
    site.set(
        "/b",
        SitePage::html(&page(
            "Returns",
            "Returns are accepted within 30 days.",
            &[],
        ))
        .with_etag("\"b-v1\""),
    );
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Refresh"})).await;
    let source = add_source(
        &app,
        kb,
        json!({"url": site.url("/"), "mode": "crawl", "refresh_hours": 6}),
    )
    .await;
    let id = source["id"].as_i64().unwrap();
    let first = crawled(&app, kb, id, &Value::Null).await;
    assert_eq!(first["status"], "ready", "{first}");
    let at =
        |s: &Value, k: &str| chrono::DateTime::parse_from_rfc3339(s[k].as_str().unwrap()).unwrap();
    let period = at(&first, "next_crawl_at") - at(&first, "last_crawled_at");
    assert!((period.num_minutes() - 360).abs() <= 1, "{first}");
    let before = pages(&app, kb, id).await;
    let ids_before: Vec<Vec<i64>> = {
        let mut v = Vec::new();
        for p in ["/", "/a", "/b"] {
            v.push(chunk_ids(&app, kb, &site.url(p)).await);
        }
        v
    };
    assert!(ids_before.iter().all(|ids| !ids.is_empty()));

    site.set(
        "/b",
        SitePage::html(&page(
            "Returns",
            "Returns are now accepted within 60 days.",
            &[],
        ))
        .with_etag("\"b-v2\""),
    );
    site.clear_hits();
    let (status, body) = json(
        app.req(
            reqwest::Method::POST,
            &format!("/api/v1/knowledge-bases/{kb}/sources/{id}/refresh"),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let second = crawled(&app, kb, id, &first["last_crawled_at"]).await;
    assert_eq!(second["status"], "ready", "{second}");
    let after = pages(&app, kb, id).await;
    let hits = site.hits();
    let root = hits.iter().find(|h| h.path == "/").expect("root fetched");
    assert_eq!(root.if_none_match.as_deref(), Some("\"root-v1\""));
    assert_eq!(root.status, 304);
    let (r, a, b) = (site.url("/"), site.url("/a"), site.url("/b"));
    assert_eq!(after[&r]["status"], "unchanged");
    assert_eq!(after[&r]["http_status"], 304);
    assert_eq!(after[&a]["status"], "unchanged");
    assert_eq!(after[&a]["http_status"], 200);
    assert_eq!(after[&b]["status"], "indexed");
    // Unchanged pages keep their chunks (same rows) and their indexed_at.
    assert_eq!(chunk_ids(&app, kb, &r).await, ids_before[0]);
    assert_eq!(chunk_ids(&app, kb, &a).await, ids_before[1]);
    assert_ne!(chunk_ids(&app, kb, &b).await, ids_before[2]);
    assert_eq!(after[&a]["indexed_at"], before[&a]["indexed_at"]);
    assert_ne!(after[&a]["fetched_at"], before[&a]["fetched_at"]);
    assert_ne!(after[&b]["indexed_at"], before[&b]["indexed_at"]);
    let chunks = all_chunks(&app, kb).await;
    assert!(
        chunks
            .iter()
            .any(|c| c["content"].as_str().unwrap().contains("60 days"))
    );
    assert!(
        !chunks
            .iter()
            .any(|c| c["content"].as_str().unwrap().contains("30 days"))
    );

    // A page that is gone loses its chunks.
    site.remove("/a");
    app.req(
        reqwest::Method::POST,
        &format!("/api/v1/knowledge-bases/{kb}/sources/{id}/refresh"),
    )
    .send()
    .await
    .unwrap();
    let third = crawled(&app, kb, id, &second["last_crawled_at"]).await;
    let after = pages(&app, kb, id).await;
    assert_eq!(after[&a]["status"], "gone", "{third}");
    assert_eq!(after[&a]["http_status"], 404);
    assert!(chunk_ids(&app, kb, &a).await.is_empty());
}

#[tokio::test]
async fn sources_are_validated_listed_and_isolated() {
    let site = Website::start();
    site.set(
        "/",
        SitePage::html(&page("Home", "Hello there, this is the home page.", &[])),
    );
    let app = TestApp::spawn().await;
    let kb = create_kb(&app, json!({"name": "Sources"})).await;
    let path = format!("/api/v1/knowledge-bases/{kb}/sources");
    let url = site.url("/");
    let cases = [
        (json!({"url": "ftp://example.com/"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": format!("{url}\u{0}")}), "url"),
        (json!({"url": url, "mode": "spider"}), "mode"),
        (
            json!({"url": url, "mode": "crawl", "max_depth": 9}),
            "max_depth",
        ),
        (
            json!({"url": url, "mode": "crawl", "max_pages": 0}),
            "max_pages",
        ),
        (json!({"url": url, "max_pages": 5}), "max_pages"),
        (json!({"url": url, "use_sitemap": true}), "use_sitemap"),
        (json!({"url": url, "refresh_hours": -1}), "refresh_hours"),
        (json!({"url": url, "refresh_hours": 9000}), "refresh_hours"),
    ];
    for (body, field) in cases {
        let err = expect_error(app.post_json(&path, &body).await, 400, "INVALID_REQUEST").await;
        assert_eq!(err["details"]["field"], field, "{body}: {err}");
    }
    let source = add_source(&app, kb, json!({"url": url, "refresh_hours": 0})).await;
    assert!(source["refresh_hours"].is_null());
    expect_error(
        app.post_json(&path, &json!({ "url": url })).await,
        409,
        "CONFLICT",
    )
    .await;
    let id = source["id"].as_i64().unwrap();
    let done = crawled(&app, kb, id, &Value::Null).await;
    assert!(done["next_crawl_at"].is_null(), "never refreshed: {done}");
    let (_, list) = json(app.get(&path).await).await;
    assert_eq!(list["sources"].as_array().unwrap().len(), 1);
    assert_eq!(list["sources"][0]["pages"]["total"], 1);

    let other = app
        .create_project(voxplane::limits::plans::Plan::Professional)
        .await;
    let get = app
        .req_as(&other.key, reqwest::Method::GET, &format!("{path}/{id}"))
        .send()
        .await
        .unwrap();
    expect_error(get, 404, "NOT_FOUND").await;
    expect_error(app.get(&format!("{path}/999999")).await, 404, "NOT_FOUND").await;
    expect_error(
        app.get(&format!("{path}/{id}/pages?per_page=0")).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn a_sitemap_adds_pages_no_link_reaches_and_an_unreachable_robots_blocks_all() {
    let site = Website::start();
    site.set("/robots.txt", SitePage::text("Sitemap: /sitemap.xml\n"));
    site.set(
        "/",
        SitePage::html(&page("Start", "The start page links nowhere.", &[])),
    );
    site.set(
        "/hidden",
        SitePage::html(&page(
            "Hidden",
            "Only the sitemap lists this page about lanterns.",
            &[],
        )),
    );
    site.set(
        "/sitemap.xml",
        SitePage {
            content_type: "application/xml".into(),
            ..SitePage::html(&format!(
                "<?xml version=\"1.0\"?><urlset><url><loc>{}</loc></url>\
                 <url><loc>https://elsewhere.example/x</loc></url></urlset>",
                site.url("/hidden")
            ))
        },
    );
    // Pages are queued for the background indexer (as large ones are).
    let app = TestApp::spawn_with(|s| s.kb_inline_index_max_bytes = 16).await;
    let kb = create_kb(&app, json!({"name": "Sitemap"})).await;
    let source = add_source(
        &app,
        kb,
        json!({"url": site.url("/"), "mode": "crawl", "use_sitemap": true}),
    )
    .await;
    let id = source["id"].as_i64().unwrap();
    let done = crawled(&app, kb, id, &Value::Null).await;
    assert_eq!(done["status"], "ready", "{done}");
    let got = pages(&app, kb, id).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[&site.url("/hidden")]["status"], "indexed");
    assert_eq!(got[&site.url("/hidden")]["depth"], 1);
    crate::knowledge::wait_ready(&app, kb).await;
    let (_, body) = json(
        app.post_json(
            "/api/v1/knowledge/search",
            &json!({"knowledge_base_id": kb, "query": "lanterns", "top_k": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(
        body["results"][0]["citation"]["url"],
        site.url("/hidden"),
        "{body}"
    );

    // robots.txt answering 503: nothing is fetched, every page says why.
    let down = Website::start();
    down.set("/robots.txt", SitePage::status(503));
    down.set("/", SitePage::html(&page("Down", "Never fetched.", &[])));
    let source = add_source(&app, kb, json!({"url": down.url("/")})).await;
    let id = source["id"].as_i64().unwrap();
    let done = crawled(&app, kb, id, &Value::Null).await;
    assert_eq!(done["status"], "error", "{done}");
    assert!(
        done["last_error"]
            .as_str()
            .unwrap()
            .contains("robots.txt answered HTTP 503"),
        "{done}"
    );
    assert!(down.hits().iter().all(|h| h.path == "/robots.txt"));
}
