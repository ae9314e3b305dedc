//! Per-key rate limits: exact under concurrency, with the contract's headers and body.

use crate::common::{TestApp, expect_error, json};
use futures_util::future::join_all;
use reqwest::Method;
use voxplane::limits::plans::Plan;

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn sixty_one_concurrent_requests_on_a_free_key_let_exactly_sixty_through() {
    let app = TestApp::spawn().await;
    let free = app.create_project(Plan::Free).await;
    let responses =
        join_all((0..61).map(|_| app.req_as(&free.key, Method::GET, "/api/v1/project").send()))
            .await;
    let mut ok = 0;
    let mut limited = Vec::new();
    for r in responses {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => limited.push(r),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, limited.len()), (60, 1));
    let res = limited.pop().unwrap();
    let retry_after: u64 = header(&res, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(header(&res, "x-ratelimit-remaining"), "0");
    let (_, body) = json(res).await;
    assert_eq!(
        body,
        serde_json::json!({
            "error": "Rate limit exceeded", "code": "RATE_LIMITED",
            "limit": 60, "remaining": 0, "retry_after": retry_after
        })
    );
}

#[tokio::test]
async fn headers_count_down_and_name_the_reset_time() {
    let app = TestApp::spawn().await;
    let free = app.create_project(Plan::Free).await;
    let now = chrono::Utc::now().timestamp() as u64;
    for expected in [59, 58, 57] {
        let res = app
            .req_as(&free.key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&res, "x-ratelimit-limit"), "60");
        assert_eq!(header(&res, "x-ratelimit-remaining"), expected.to_string());
        let reset: u64 = header(&res, "x-ratelimit-reset").parse().unwrap();
        assert!(
            reset >= now && reset <= now + 61,
            "reset {reset} vs now {now}"
        );
        assert_eq!(header(&res, "ratelimit-policy"), "\"per-minute\";q=60;w=60");
        assert!(header(&res, "ratelimit").starts_with(&format!("\"per-minute\";r={expected};t=")));
    }
    // Errors carry the headers too.
    let res = app
        .req_as(&free.key, Method::GET, "/api/v1/nothing")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-ratelimit-remaining"), "56");
}

#[tokio::test]
async fn limits_follow_the_plan_and_the_project_override() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/project").await;
    assert_eq!(header(&res, "x-ratelimit-limit"), "300");
    let ent = app.create_project(Plan::Enterprise).await;
    let res = app
        .req_as(&ent.key, Method::GET, "/api/v1/project")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&res, "x-ratelimit-limit"), "1000");

    let mut conn = app.conn().await;
    voxplane::db::projects::set_rate_limit(&mut conn, ent.id, Some(5))
        .await
        .unwrap();
    app.state.keys.evict_project(ent.id);
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            let res = app
                .req_as(&ent.key, Method::GET, "/api/v1/project")
                .send()
                .await
                .unwrap();
            assert_eq!(header(&res, "x-ratelimit-limit"), "5");
            v.push(res.status().as_u16());
        }
        v
    };
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429]);
}

#[tokio::test]
async fn keys_are_limited_independently_and_anonymous_callers_per_address() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.free = 3;
        s.rate_limits.anonymous = 2;
    })
    .await;
    let a = app.create_project(Plan::Free).await;
    let b = app.create_project(Plan::Free).await;
    for _ in 0..3 {
        assert_eq!(
            app.req_as(&a.key, Method::GET, "/api/v1/project")
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    expect_error(
        app.req_as(&a.key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap(),
        429,
        "RATE_LIMITED",
    )
    .await;
    assert_eq!(
        app.req_as(&b.key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Without a valid key: 401 while under the per-address limit, then 429.
    for _ in 0..2 {
        let res = app
            .req_as("pk_guess", Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&res, "x-ratelimit-limit"), "2");
        expect_error(res, 401, "UNAUTHORIZED").await;
    }
    expect_error(
        app.req_as("pk_guess", Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap(),
        429,
        "RATE_LIMITED",
    )
    .await;
}

/// Without any credentials a protected route answers 401 however many such
/// requests came before (the answer costs no lookup); the work an anonymous
/// flood can cause — guessed keys, the open routes — is still cut off per
/// address with 429.
#[tokio::test]
async fn missing_credentials_get_401_while_a_flood_from_the_address_gets_429() {
    let app = TestApp::spawn_with(|s| s.rate_limits.anonymous = 3).await;
    let login = || {
        app.anon(Method::POST, "/api/v1/auth/login")
            .json(&serde_json::json!({"email": "nobody@example.com", "password": "not the password 1"}))
            .send()
    };
    for _ in 0..3 {
        expect_error(login().await.unwrap(), 401, "UNAUTHORIZED").await;
    }
    // The flood is cut off: the open route and guessed keys get 429.
    let res = login().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    expect_error(res, 429, "RATE_LIMITED").await;
    expect_error(
        app.req_as("pk_guess", Method::GET, "/api/v1/rooms")
            .send()
            .await
            .unwrap(),
        429,
        "RATE_LIMITED",
    )
    .await;
    // A client without a key is still told what is wrong, every time.
    for path in ["/api/v1/project", "/api/v1/rooms", "/api/v1/projects"] {
        for _ in 0..5 {
            let res = app.anon(Method::GET, path).send().await.unwrap();
            expect_error(res, 401, "UNAUTHORIZED").await;
        }
    }
    // A valid key is not affected by the address's spent allowance.
    let res = app
        .req_as(&app.project.key, Method::GET, "/api/v1/project")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
