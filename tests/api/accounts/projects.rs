//! Projects, API keys, invitations and members; cross-project isolation.

use super::*;
use crate::common::expect_error;

fn at(project: i64, rest: &str) -> String {
    format!("/api/v1/projects/{project}{rest}")
}

#[tokio::test]
async fn projects_are_created_listed_renamed_and_deleted_within_the_quota() {
    let (app, smtp) = spawn().await;
    let s = signup(&app, &smtp, "ann@example.com").await;
    let id = create_project(&app, &s, "Acme").await;
    // Free plan: one project per owner.
    let res = bearer(&app, &s.access, Method::POST, "/api/v1/projects")
        .json(&json!({"name": "Second"}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 429, "QUOTA_EXCEEDED").await;
    assert_eq!(body["details"]["resource"], "projects");
    assert_eq!(body["details"]["used"], 1);

    let (status, body) = json(
        bearer(&app, &s.access, Method::GET, "/api/v1/projects")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["projects"].as_array().unwrap().len(), 1);
    assert_eq!(body["projects"][0]["role"], "owner");
    assert_eq!(body["projects"][0]["plan"], "free");
    let res = bearer(&app, &s.access, Method::PATCH, &at(id, ""))
        .json(&json!({"name": "Acme Voice"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(
        (status, body["project"]["name"].as_str()),
        (200, Some("Acme Voice"))
    );

    // The dashboard reaches the project API with X-Project-Id.
    let res = bearer(&app, &s.access, Method::GET, "/api/v1/quota")
        .header("X-Project-Id", id)
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["quotas"]["projects"]["used"], 1);
    assert_eq!(body["quotas"]["team_members"]["used"], 1);

    // Deleting revokes every key at once and frees the quota.
    let (_, key) = json(
        bearer(&app, &s.access, Method::POST, &at(id, "/keys"))
            .json(&json!({"name": "k"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key = key["key"]["key"].as_str().unwrap().to_owned();
    assert_eq!(
        app.req_as(&key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = bearer(&app, &s.access, Method::DELETE, &at(id, ""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    expect_error(
        app.req_as(&key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(
        bearer(&app, &s.access, Method::GET, &at(id, ""))
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    create_project(&app, &s, "Again").await;
    // Not with an API key.
    let res = app
        .req(Method::GET, "/api/v1/projects")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
    expect_error(
        app.anon(Method::GET, "/api/v1/projects")
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn api_keys_are_shown_once_listed_masked_and_revoked_at_once() {
    let (app, smtp) = spawn().await;
    let s = signup(&app, &smtp, "ann@example.com").await;
    let id = create_project(&app, &s, "Acme").await;
    let res = bearer(&app, &s.access, Method::POST, &at(id, "/keys"))
        .json(&json!({"name": "prod", "expires_at": "2099-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 201, "{body}");
    let key = body["key"]["key"].as_str().unwrap().to_owned();
    let key_id = body["key"]["id"].as_i64().unwrap();
    assert!(key.starts_with("pk_") && key.len() == 43);
    let masked = format!("{}…{}", &key[..7], &key[39..]);
    assert_eq!(body["key"]["masked_key"], masked);
    let (status, body) = json(
        app.req_as(&key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["project"]["id"].as_i64()), (200, Some(id)));

    let (_, body) = json(
        bearer(&app, &s.access, Method::GET, &at(id, "/keys"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let k = &body["keys"][0];
    assert_eq!(k["masked_key"], masked);
    assert_eq!(k["name"], "prod");
    assert_eq!(k["created_by"], s.id);
    assert!(k["last_used_at"].is_string(), "{k}");
    assert!(k.get("key").is_none() && !body.to_string().contains(&key[3..]));

    let res = bearer(&app, &s.access, Method::POST, &at(id, "/keys"))
        .json(&json!({"name": "old", "expires_at": "2001-01-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "INVALID_REQUEST").await;
    let res = bearer(
        &app,
        &s.access,
        Method::DELETE,
        &at(id, &format!("/keys/{key_id}")),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 204);
    expect_error(
        app.req_as(&key, Method::GET, "/api/v1/project")
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    let res = bearer(
        &app,
        &s.access,
        Method::DELETE,
        &at(id, &format!("/keys/{key_id}")),
    )
    .send()
    .await
    .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;

    let res = bearer(&app, &s.access, Method::POST, &at(id, "/test-token"))
        .json(&json!({"room": "demo", "identity": "tester"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["room"].as_str().unwrap().ends_with("_demo"));
    assert!(body["wsUrl"].as_str().unwrap().starts_with("ws"));
}

#[tokio::test]
async fn invitations_are_single_use_for_the_invited_address_within_the_quota() {
    let (app, smtp) = spawn().await;
    let owner = signup(&app, &smtp, "owner@example.com").await;
    let bob = signup(&app, &smtp, "bob@example.com").await;
    let eve = signup(&app, &smtp, "eve@example.com").await;
    let id = create_project(&app, &owner, "Acme").await;
    let res = bearer(&app, &owner.access, Method::POST, &at(id, "/members"))
        .json(&json!({"email": "Bob@example.com", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["invitation"]["role"], "viewer");
    let mail = smtp.wait_for("bob@example.com", 2).await;
    assert_eq!(mail.subject(), "Test User invited you to Acme on Voxplane");
    let token = mail.token("accept-invitation");
    // Free plan: 2 team members, counting open invitations.
    let res = bearer(&app, &owner.access, Method::POST, &at(id, "/members"))
        .json(&json!({"email": "carl@example.com"}))
        .send()
        .await
        .unwrap();
    let body = expect_error(res, 429, "QUOTA_EXCEEDED").await;
    assert_eq!(body["details"]["resource"], "team_members");
    let (_, body) = json(
        bearer(&app, &owner.access, Method::GET, &at(id, "/invitations"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["invitations"][0]["email"], "bob@example.com");

    let accept = async |s: &Session, token: &str| {
        bearer(&app, &s.access, Method::POST, "/api/v1/invitations/accept")
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap()
    };
    expect_error(accept(&eve, &token).await, 403, "FORBIDDEN").await;
    let (status, body) = json(accept(&bob, &token).await).await;
    assert_eq!(
        (status, body["project"]["role"].as_str()),
        (200, Some("viewer"))
    );
    expect_error(accept(&bob, &token).await, 400, "INVALID_REQUEST").await;
    let (_, body) = json(
        bearer(&app, &bob.access, Method::GET, &at(id, "/members"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let emails: Vec<&str> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["owner@example.com", "bob@example.com"]);
    let res = bearer(&app, &owner.access, Method::POST, &at(id, "/members"))
        .json(&json!({"email": "bob@example.com"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;

    let (_, body) = json(
        bearer(
            &app,
            &owner.access,
            Method::PATCH,
            &at(id, &format!("/members/{}", bob.id)),
        )
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(body["member"]["role"], "admin");
}

#[tokio::test]
async fn the_last_owner_cannot_leave_or_be_demoted() {
    let (app, smtp) = spawn_with(|s| s.plans.free.team_members = 5).await;
    let owner = signup(&app, &smtp, "owner@example.com").await;
    let admin = signup(&app, &smtp, "admin@example.com").await;
    let id = create_project(&app, &owner, "Acme").await;
    add_member(&app, &smtp, &owner, id, &admin, "admin").await;
    let member_path = |s: &Session| at(id, &format!("/members/{}", s.id));
    let res = bearer(&app, &owner.access, Method::DELETE, &member_path(&owner))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    let res = bearer(&app, &owner.access, Method::PATCH, &member_path(&owner))
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 409, "CONFLICT").await;
    // An admin cannot touch an owner, nor make one.
    let res = bearer(&app, &admin.access, Method::DELETE, &member_path(&owner))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "FORBIDDEN").await;
    let res = bearer(&app, &admin.access, Method::PATCH, &member_path(&admin))
        .json(&json!({"role": "owner"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 403, "FORBIDDEN").await;
    // With a second owner, the first may leave.
    let res = bearer(&app, &owner.access, Method::PATCH, &member_path(&admin))
        .json(&json!({"role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = bearer(&app, &owner.access, Method::DELETE, &member_path(&owner))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    expect_error(
        bearer(&app, &owner.access, Method::GET, &at(id, ""))
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    let res = bearer(&app, &admin.access, Method::PATCH, &member_path(&admin))
        .json(&json!({"role": "superuser"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn projects_of_one_account_are_invisible_to_another() {
    let (app, smtp) = spawn().await;
    let ann = signup(&app, &smtp, "ann@example.com").await;
    let bob = signup(&app, &smtp, "bob@example.com").await;
    let a = create_project(&app, &ann, "Ann's").await;
    let b = create_project(&app, &bob, "Bob's").await;
    let (_, body) = json(
        bearer(&app, &ann.access, Method::POST, &at(a, "/keys"))
            .json(&json!({"name": "k"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ann_key = body["key"]["id"].as_i64().unwrap();
    let name = json!({"name": "x"});
    for (method, path, body) in [
        (Method::GET, at(a, ""), None),
        (Method::PATCH, at(a, ""), Some(&name)),
        (Method::DELETE, at(a, ""), None),
        (Method::GET, at(a, "/members"), None),
        (
            Method::POST,
            at(a, "/members"),
            Some(&json!({"email": "bob@example.com"})),
        ),
        (Method::GET, at(a, "/keys"), None),
        (Method::POST, at(a, "/keys"), Some(&name)),
        (
            Method::POST,
            at(a, "/test-token"),
            Some(&json!({"room": "r", "identity": "i"})),
        ),
        (Method::DELETE, at(a, &format!("/keys/{ann_key}")), None),
        (Method::DELETE, at(a, &format!("/members/{}", ann.id)), None),
    ] {
        let mut req = bearer(&app, &bob.access, method.clone(), &path);
        if let Some(body) = body {
            req = req.json(body);
        }
        expect_error(req.send().await.unwrap(), 404, "NOT_FOUND").await;
    }
    // Ann's key id under Bob's project: not found, and still alive.
    let res = bearer(
        &app,
        &bob.access,
        Method::DELETE,
        &at(b, &format!("/keys/{ann_key}")),
    )
    .send()
    .await
    .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    let (_, body) = json(
        bearer(&app, &ann.access, Method::GET, &at(a, "/keys"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["keys"].as_array().unwrap().len(), 1);
    // The project API with Bob's token and Ann's project id.
    let res = bearer(&app, &bob.access, Method::GET, "/api/v1/project")
        .header("X-Project-Id", a)
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    let (_, body) = json(
        bearer(&app, &bob.access, Method::GET, "/api/v1/project")
            .header("X-Project-Id", b)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["project"]["id"], b);
    // The CLI-made test project has no members.
    let res = bearer(&app, &ann.access, Method::GET, "/api/v1/project")
        .header("X-Project-Id", app.project.id)
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "NOT_FOUND").await;
    let (_, body) = json(
        bearer(&app, &bob.access, Method::GET, "/api/v1/projects")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["projects"].as_array().unwrap().len(), 1);
}
