//! Accounts, sessions, projects, members, API keys and e-mail, through the
//! HTTP API with a real SMTP listener in the test process.

mod flows;
mod projects;
mod roles;

use crate::common::smtp::SmtpServer;
use crate::common::{TestApp, json};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use voxplane::config::Settings;

/// Where e-mailed links point in the tests.
pub const BASE: &str = "https://app.test";
/// A password that passes the strength check.
pub const PASSWORD: &str = "tangerine-Orbit-42";

/// An app whose e-mail goes to a fresh SMTP listener.
pub async fn spawn_with(f: impl FnOnce(&mut Settings)) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(move |s| {
        s.smtp_url = Some(url);
        s.public_base_url = BASE.into();
        s.rate_limits.anonymous = 10_000;
        f(s)
    })
    .await;
    (app, smtp)
}

/// [`spawn_with`] and default settings.
pub async fn spawn() -> (TestApp, SmtpServer) {
    spawn_with(|_| {}).await
}

/// POST JSON without credentials.
pub async fn post(app: &TestApp, path: &str, body: Value) -> Response {
    app.anon(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A request with an access token.
pub fn bearer(app: &TestApp, access: &str, method: Method, path: &str) -> RequestBuilder {
    app.anon(method, path).bearer_auth(access)
}

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

/// Registers an account and returns the token of its verification link.
pub async fn register(app: &TestApp, smtp: &SmtpServer, email: &str) -> String {
    let n = smtp.to(email).len();
    let res = post(
        app,
        "/api/v1/auth/register",
        json!({"email": email, "password": PASSWORD, "name": "Test User"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    smtp.wait_for(email, n + 1).await.token("verify-email")
}

/// Logs in; panics unless it works.
pub async fn login(app: &TestApp, email: &str, password: &str) -> Session {
    let (status, body) = json(
        post(
            app,
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    session(&body)
}

/// The session in a login or refresh answer.
pub fn session(body: &Value) -> Session {
    Session {
        id: body["account"]["id"].as_i64().unwrap(),
        email: body["account"]["email"].as_str().unwrap().to_owned(),
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// Registers, verifies and logs in.
pub async fn signup(app: &TestApp, smtp: &SmtpServer, email: &str) -> Session {
    let token = register(app, smtp, email).await;
    let res = post(app, "/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(res.status(), 200);
    login(app, email, PASSWORD).await
}

/// Creates a project owned by `s`; returns its id.
pub async fn create_project(app: &TestApp, s: &Session, name: &str) -> i64 {
    let (status, body) = json(
        bearer(app, &s.access, Method::POST, "/api/v1/projects")
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["project"]["id"].as_i64().unwrap()
}

/// Invites `who` into a project with a role and has them accept.
pub async fn add_member(
    app: &TestApp,
    smtp: &SmtpServer,
    owner: &Session,
    project: i64,
    who: &Session,
    role: &str,
) {
    let n = smtp.to(&who.email).len();
    let res = bearer(
        app,
        &owner.access,
        Method::POST,
        &format!("/api/v1/projects/{project}/members"),
    )
    .json(&json!({"email": who.email, "role": role}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let token = smtp
        .wait_for(&who.email, n + 1)
        .await
        .token("accept-invitation");
    let res = bearer(app, &who.access, Method::POST, "/api/v1/invitations/accept")
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}
