//! Roles on every project route and on the project API reached with an
//! access token and `X-Project-Id`: viewer reads, member manages resources,
//! admin also keys and members, owner everything.

use super::*;
use crate::common::expect_error;

const ROLES: [&str; 4] = ["viewer", "member", "admin", "owner"];

struct Team {
    project: i64,
    by_role: Vec<Session>,
    extra: Session,
}

async fn team(app: &TestApp, smtp: &crate::common::smtp::SmtpServer) -> Team {
    let owner = signup(app, smtp, "owner@example.com").await;
    let project = create_project(app, &owner, "Acme").await;
    let mut by_role = Vec::new();
    for role in &ROLES[..3] {
        let s = signup(app, smtp, &format!("{role}@example.com")).await;
        add_member(app, smtp, &owner, project, &s, role).await;
        by_role.push(s);
    }
    by_role.push(owner);
    let extra = signup(app, smtp, "extra@example.com").await;
    add_member(app, smtp, &by_role[3], project, &extra, "viewer").await;
    Team {
        project,
        by_role,
        extra,
    }
}

async fn call(
    app: &TestApp,
    s: &Session,
    method: &Method,
    path: &str,
    body: &Option<Value>,
    project: Option<i64>,
) -> Response {
    let mut req = bearer(app, &s.access, method.clone(), path);
    if let Some(p) = project {
        req = req.header("X-Project-Id", p);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_project_route_checks_the_role() {
    let (app, smtp) = spawn_with(|s| s.plans.free.team_members = 10).await;
    let t = team(&app, &smtp).await;
    let owner = &t.by_role[3];
    let p = |rest: &str| format!("/api/v1/projects/{}{rest}", t.project);
    let (_, key) = json(
        call(
            &app,
            owner,
            &Method::POST,
            &p("/keys"),
            &Some(json!({"name": "k"})),
            None,
        )
        .await,
    )
    .await;
    let key_id = key["key"]["id"].as_i64().unwrap();
    let (_, inv) = json(
        call(
            &app,
            owner,
            &Method::POST,
            &p("/members"),
            &Some(json!({"email": "later@example.com"})),
            None,
        )
        .await,
    )
    .await;
    let inv_id = inv["invitation"]["id"].as_i64().unwrap();
    let member_id = t.by_role[1].id;
    // (method, path, body, least role, status for that role)
    let routes: Vec<(Method, String, Option<Value>, usize, u16)> = vec![
        (Method::GET, p(""), None, 0, 200),
        (Method::GET, p("/members"), None, 0, 200),
        (
            Method::POST,
            p("/test-token"),
            Some(json!({"room": "r", "identity": "i"})),
            1,
            200,
        ),
        (Method::GET, p("/keys"), None, 2, 200),
        (
            Method::POST,
            p("/keys"),
            Some(json!({"name": "new"})),
            2,
            201,
        ),
        (Method::DELETE, p(&format!("/keys/{key_id}")), None, 2, 204),
        (Method::GET, p("/invitations"), None, 2, 200),
        (
            Method::POST,
            p("/members"),
            Some(json!({"email": "new@example.com", "role": "viewer"})),
            2,
            201,
        ),
        (
            Method::DELETE,
            p(&format!("/invitations/{inv_id}")),
            None,
            2,
            204,
        ),
        (
            Method::PATCH,
            p(&format!("/members/{member_id}")),
            Some(json!({"role": "member"})),
            2,
            200,
        ),
        (
            Method::DELETE,
            p(&format!("/members/{}", t.extra.id)),
            None,
            2,
            204,
        ),
        (
            Method::PATCH,
            p(""),
            Some(json!({"name": "Renamed"})),
            2,
            200,
        ),
        (
            Method::POST,
            p("/members"),
            Some(json!({"email": "boss@example.com", "role": "owner"})),
            3,
            201,
        ),
        (Method::DELETE, p(""), None, 3, 204),
    ];
    for (method, path, body, least, ok) in &routes {
        for (i, s) in t.by_role.iter().enumerate().take(*least) {
            let res = call(&app, s, method, path, body, None).await;
            let err = expect_error(res, 403, "FORBIDDEN").await;
            let msg = err["error"].as_str().unwrap();
            assert!(
                msg.starts_with("This action needs the")
                    && msg.ends_with(&format!("(you are {})", ROLES[i])),
                "{} {method} {path}: {err}",
                ROLES[i]
            );
        }
        let res = call(&app, &t.by_role[*least], method, path, body, None).await;
        assert_eq!(
            res.status().as_u16(),
            *ok,
            "{} {method} {path}: {}",
            ROLES[*least],
            res.text().await.unwrap()
        );
    }
}

#[tokio::test]
async fn the_project_api_takes_an_access_token_with_the_member_role() {
    let (app, smtp) = spawn_with(|s| s.plans.free.team_members = 10).await;
    let t = team(&app, &smtp).await;
    let (viewer, member) = (&t.by_role[0], &t.by_role[1]);
    let agent = Some(json!({"name": "Support"}));
    for s in &t.by_role {
        let (status, body) = json(
            call(
                &app,
                s,
                &Method::GET,
                "/api/v1/project",
                &None,
                Some(t.project),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, body["project"]["id"].as_i64()),
            (200, Some(t.project))
        );
        assert!(
            call(
                &app,
                s,
                &Method::GET,
                "/api/v1/agents",
                &None,
                Some(t.project)
            )
            .await
            .status()
            .is_success()
        );
    }
    let res = call(
        &app,
        viewer,
        &Method::POST,
        "/api/v1/agents",
        &agent,
        Some(t.project),
    )
    .await;
    expect_error(res, 403, "FORBIDDEN").await;
    let (status, body) = json(
        call(
            &app,
            member,
            &Method::POST,
            "/api/v1/agents",
            &agent,
            Some(t.project),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let agent_id = body["agent"]["id"].as_i64().unwrap();
    let res = call(
        &app,
        viewer,
        &Method::DELETE,
        &format!("/api/v1/agents/{agent_id}"),
        &None,
        Some(t.project),
    )
    .await;
    expect_error(res, 403, "FORBIDDEN").await;
    let token = Some(json!({"identity": "u1", "room": "r1", "no_agent": true}));
    assert_eq!(
        call(
            &app,
            member,
            &Method::POST,
            "/api/v1/token",
            &token,
            Some(t.project)
        )
        .await
        .status(),
        200
    );

    // A role change applies at once.
    let owner = &t.by_role[3];
    let path = format!("/api/v1/projects/{}/members/{}", t.project, viewer.id);
    let res = call(
        &app,
        owner,
        &Method::PATCH,
        &path,
        &Some(json!({"role": "member"})),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = call(
        &app,
        viewer,
        &Method::DELETE,
        &format!("/api/v1/agents/{agent_id}"),
        &None,
        Some(t.project),
    )
    .await;
    assert!(res.status().is_success(), "{}", res.status());
    // Removed members lose access at once.
    let res = call(&app, owner, &Method::DELETE, &path, &None, None).await;
    assert_eq!(res.status(), 204);
    let res = call(
        &app,
        viewer,
        &Method::GET,
        "/api/v1/project",
        &None,
        Some(t.project),
    )
    .await;
    expect_error(res, 404, "NOT_FOUND").await;

    // Header problems.
    let res = call(&app, member, &Method::GET, "/api/v1/project", &None, None).await;
    let body = expect_error(res, 400, "INVALID_REQUEST").await;
    assert_eq!(body["details"]["field"], "X-Project-Id");
    let res = bearer(&app, &member.access, Method::GET, "/api/v1/project")
        .header("X-Project-Id", "abc")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "INVALID_REQUEST").await;
    let res = bearer(&app, "garbage", Method::GET, "/api/v1/project")
        .header("X-Project-Id", t.project)
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 401, "UNAUTHORIZED").await;
    assert_eq!(body["error"], "Invalid or expired access token");
    // Rate-limit headers are there for dashboards too.
    let res = call(
        &app,
        member,
        &Method::GET,
        "/api/v1/project",
        &None,
        Some(t.project),
    )
    .await;
    assert!(res.headers().contains_key("x-ratelimit-limit"));
}
