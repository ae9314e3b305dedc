//! The web dashboard in a real browser: `tests/browser/dashboard.mjs`
//! (playwright-core driving Debian's Chromium, both installed by
//! `make setup`) against a real server, following the links of the `.eml`
//! files the server writes. The script asks for simulator actions on its
//! stdout (`@@ connect <room> <token>`) and reads the answer on stdin.
//! Screenshots of every page go to `.local/screenshots/`. `make test` runs
//! it in its own step (`make browser-test`), after the other tests.

use crate::common::{TestApp, root};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One `@@` request of the script: `ok …` or `error …`.
async fn answer(app: &TestApp, command: &str) -> String {
    let parts: Vec<&str> = command.split_whitespace().collect();
    match parts.as_slice() {
        ["connect", room, token] => match app.sim().connect(room, token).await {
            Ok(p) => format!("ok {}", p.identity),
            Err(e) => format!("error {e}"),
        },
        ["data", room] => {
            let sent: Vec<String> = app
                .sim()
                .data_packets()
                .into_iter()
                .filter(|d| d.room.ends_with(room))
                .map(|d| String::from_utf8_lossy(&d.data).into_owned())
                .collect();
            format!("ok {}", sent.join(" | "))
        }
        _ => format!("error unknown command {command}"),
    }
}

/// Run alone by `make test` (its `browser-test` step, after the other
/// tests): Chromium takes a core, which would slow the timing-sensitive
/// tests running beside it.
#[tokio::test]
#[ignore = "run by `make browser-test` (part of `make test`), alone"]
async fn the_dashboard_works_in_a_real_browser() {
    let mail = root()
        .join(".local/test-mail")
        .join(format!("dashboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&mail);
    let dir = mail.clone();
    let app = TestApp::spawn_with(move |s| {
        s.smtp_url = None;
        s.mail_dir = Some(dir);
        // One attempt: a failed test delivery is `failed` at once, for the
        // redeliver step.
        s.webhook_retry_schedule_secs = vec![0];
    })
    .await;
    let script = root().join("tests/browser/dashboard.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .env("VOXPLANE_URL", &app.base)
        .env("MAIL_DIR", &mail)
        .env("SCREENSHOTS", root().join(".local/screenshots"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs tests/browser/dashboard.mjs (make setup installs its drivers)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(command) = line.strip_prefix("@@ ") {
                let reply = answer(&app, command).await;
                output.push(format!("{line} -> {reply}"));
                stdin
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .unwrap();
            } else {
                output.push(line);
            }
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(300), run).await;
    let log = output.join("\n");
    println!("{log}");
    let status = status.unwrap_or_else(|_| panic!("the browser tests timed out:\n{log}"));
    assert!(status.success(), "the browser tests failed:\n{log}");
    assert!(
        log.lines().filter(|l| l.starts_with("ok ")).count() >= 12,
        "every browser test ran:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&mail);
}

/// The `Set-Cookie` headers of a response.
fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value a `Set-Cookie` list gives a cookie.
fn cookie_value(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

#[tokio::test]
async fn pages_are_served_from_the_binary_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let res = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/dashboard");
    for page in [
        "/dashboard",
        "/dashboard/keys",
        "/verify-email?token=abc",
        "/confirm-email?token=abc",
        "/reset-password?token=abc",
        "/accept-invitation?token=abc",
        "/sign-in",
    ] {
        let res = client.get(app.url(page)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{page}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(res.headers()["referrer-policy"], "no-referrer");
        let csrf = set_cookies(&res);
        assert!(csrf[0].starts_with("vp_csrf=") && csrf[0].contains("SameSite=Strict"));
        let html = res.text().await.unwrap();
        assert!(html.contains(r#"<script type="module" src="/dashboard/assets/app.js">"#));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no CDN"
        );
    }
    let js = client
        .get(app.url("/dashboard/assets/pages/keys.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    // Every file of the assets directory is embedded (a page module left
    // out would stop the whole application from loading).
    for dir in ["", "pages/"] {
        for entry in std::fs::read_dir(root().join("src/dashboard/assets").join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let name = format!("{dir}{}", entry.file_name().to_string_lossy());
                if name == "index.html" {
                    continue;
                }
                let res = client
                    .get(app.url(&format!("/dashboard/assets/{name}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200, "{name} is embedded");
            }
        }
    }
    let missing = client
        .get(app.url("/dashboard/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_session_lives_in_http_only_cookies_and_writes_need_the_csrf_token() {
    use crate::accounts::{PASSWORD, signup, spawn};
    let (app, smtp) = spawn().await;
    signup(&app, &smtp, "cookie@example.com").await;
    let csrf = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
    let login = |with_csrf: bool| {
        let mut r = app
            .anon(reqwest::Method::POST, "/dashboard/session/login")
            .header("cookie", format!("vp_csrf={csrf}"))
            .json(&serde_json::json!({"email": "cookie@example.com", "password": PASSWORD}));
        if with_csrf {
            r = r.header("x-csrf-token", csrf);
        }
        r.send()
    };
    let res = login(false).await.unwrap();
    crate::common::expect_error(res, 403, "FORBIDDEN").await;
    let res = login(true).await.unwrap();
    assert_eq!(res.status(), 200);
    let cookies = set_cookies(&res);
    let access = cookie_value(&cookies, "vp_session");
    let refresh = cookie_value(&cookies, "vp_refresh");
    for c in &cookies {
        // public_base_url is https:// in these tests: Secure too.
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"),
            "{c}"
        );
    }
    assert!(
        cookies
            .iter()
            .any(|c| c.contains("Path=/dashboard/session"))
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["account"]["email"], "cookie@example.com");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    // The cookie authenticates reads; writes also need the CSRF header.
    let jar = format!("vp_session={access}; vp_csrf={csrf}");
    let me = app
        .anon(reqwest::Method::GET, "/api/v1/auth/me")
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let create = |token: Option<&str>| {
        let mut r = app
            .anon(reqwest::Method::POST, "/api/v1/projects")
            .header("cookie", &jar)
            .json(&serde_json::json!({"name": "From the browser"}));
        if let Some(t) = token {
            r = r.header("x-csrf-token", t);
        }
        r.send()
    };
    crate::common::expect_error(create(None).await.unwrap(), 403, "FORBIDDEN").await;
    crate::common::expect_error(
        create(Some("0123456789abcdefghijklmnopqrstuvwxyzABCDEFX"))
            .await
            .unwrap(),
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(create(Some(csrf)).await.unwrap().status(), 201);
    // Refresh rotates the refresh cookie; the old one is then spent.
    let refreshed = app
        .anon(reqwest::Method::POST, "/dashboard/session/refresh")
        .header("cookie", format!("vp_refresh={refresh}; vp_csrf={csrf}"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    assert_ne!(
        cookie_value(&set_cookies(&refreshed), "vp_refresh"),
        refresh
    );
    let logout = app
        .anon(reqwest::Method::POST, "/dashboard/session/logout")
        .header("cookie", format!("vp_csrf={csrf}"))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert!(set_cookies(&logout).iter().all(|c| c.contains("Max-Age=0")));
}

#[tokio::test]
async fn the_monitor_takes_the_session_cookie_only_from_the_same_origin() {
    use crate::accounts::{create_project, signup, spawn};
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (app, smtp) = spawn().await;
    let s = signup(&app, &smtp, "watcher@example.com").await;
    let project = create_project(&app, &s, "Watched").await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let open = |origin: String, project: i64| {
        let mut req = format!("ws://{host}/ws/monitor?project_id={project}")
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "cookie",
            format!("vp_session={}", s.access).parse().unwrap(),
        );
        req.headers_mut().insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    // Another site's page: refused (4001), as is a project of someone else.
    for (origin, pid) in [
        ("https://evil.example".to_owned(), project),
        (format!("http://{host}"), app.project.id),
    ] {
        let (mut ws, _) = open(origin, pid).await.unwrap();
        match ws.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                assert_eq!(u16::from(f.code), 4001)
            }
            other => panic!("expected a 4001 close, got {other:?}"),
        }
    }
    let (mut ws, _) = open(format!("http://{host}"), project).await.unwrap();
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        r#"{"action":"subscribe","channel":"rooms"}"#.into(),
    ))
    .await
    .unwrap();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|t: &String| t.contains(r#""type":"subscribed""#))
    {
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no subscribed reply: {seen:?}"))
            .unwrap()
            .unwrap();
        seen.push(reply.into_text().unwrap().to_string());
    }
    assert!(seen[0].contains(r#""type":"connected""#), "{seen:?}");
}

#[tokio::test]
async fn dashboard_logins_count_against_the_anonymous_rate_limit() {
    let app = TestApp::spawn_with(|s| s.rate_limits.anonymous = 2).await;
    let csrf = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = app
            .anon(reqwest::Method::POST, "/dashboard/session/login")
            .header("cookie", format!("vp_csrf={csrf}"))
            .header("x-csrf-token", csrf)
            .json(
                &serde_json::json!({"email": "nobody@example.com", "password": "not-the-password"}),
            )
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
    }
    // Two wrong passwords, then the limit (the address's lockout is at 5).
    assert_eq!(statuses, [401, 401, 429]);
}

/// Opens `/ws/monitor` as the dashboard does (session cookie, same origin)
/// and waits for its `subscribed` reply to `rooms`.
async fn dashboard_socket(
    app: &TestApp,
    access: &str,
    project: i64,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut req = format!("ws://{host}/ws/monitor?project_id={project}")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert("cookie", format!("vp_session={access}").parse().unwrap());
    h.insert("origin", format!("http://{host}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(
        r#"{"action":"subscribe","channel":"rooms"}"#.into(),
    ))
    .await
    .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a reply")
            .expect("open")
            .expect("a message");
        if m.to_text().unwrap_or_default().contains(r#""subscribed""#) {
            return ws;
        }
    }
}

/// The close frame a socket receives within `within` (skipping messages).
async fn closed_within(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    within: Duration,
) -> Option<(u16, String)> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                return Some((u16::from(f.code), f.reason.to_string()));
            }
            Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                return Some((0, String::new()));
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[tokio::test]
async fn signing_out_closes_the_dashboards_monitor_sockets() {
    use crate::accounts::{PASSWORD, bearer, create_project, login, signup, spawn};
    let (app, smtp) = spawn().await;
    let first = signup(&app, &smtp, "leaver@example.com").await;
    let project = create_project(&app, &first, "Watched").await;
    let second = login(&app, "leaver@example.com", PASSWORD).await;
    let mut ws_first = dashboard_socket(&app, &first.access, project).await;
    let mut ws_second = dashboard_socket(&app, &second.access, project).await;

    // Signing out closes the socket of that session (4001), not the other's.
    let res = bearer(
        &app,
        &first.access,
        reqwest::Method::POST,
        "/api/v1/auth/logout",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        closed_within(&mut ws_first, Duration::from_secs(3)).await,
        Some((4001, "Signed out".to_owned())),
        "the signed-out session's socket closes"
    );
    assert_eq!(
        closed_within(&mut ws_second, Duration::from_secs(3)).await,
        None,
        "another session's socket stays open"
    );

    // Signing out everywhere (from a third session) closes it too, through
    // the periodic check (as on another node).
    let third = login(&app, "leaver@example.com", PASSWORD).await;
    let res = bearer(
        &app,
        &third.access,
        reqwest::Method::POST,
        "/api/v1/auth/logout-all",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        closed_within(&mut ws_second, Duration::from_secs(5)).await,
        Some((4001, "Signed out".to_owned())),
        "sign-out everywhere closes every socket of the account"
    );
}
