//! Account takeover, login throttling races, lock-out by address, stale
//! invitations, cross-account idempotent replays.

use crate::accounts::{
    PASSWORD, add_member, bearer, create_project, login, post, signup, spawn, spawn_with,
};
use crate::common::{expect_error, json};
use reqwest::Method;
use serde_json::json;

const ATTACKER_PASSWORD: &str = "mallory-Owns-99-this";

#[tokio::test]
async fn a_pre_registered_address_ends_up_with_the_verifying_owners_password_and_name() {
    let (app, smtp) = spawn().await;
    let victim = "victim@example.com";
    // The attacker registers the victim's address first ...
    let res = post(
        &app,
        "/api/v1/auth/register",
        json!({"email": victim, "password": ATTACKER_PASSWORD, "name": "Mallory"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let attackers_link = smtp.wait_for(victim, 1).await;
    assert!(attackers_link.decoded().contains("Mallory"));
    // ... then the victim registers and follows the link it was sent.
    let res = post(
        &app,
        "/api/v1/auth/register",
        json!({"email": victim, "password": PASSWORD, "name": "Victoria"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let link = smtp.wait_for(victim, 2).await.token("verify-email");
    let (status, body) =
        json(post(&app, "/api/v1/auth/verify-email", json!({"token": link})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"]["name"], "Victoria");
    login(&app, victim, PASSWORD).await;
    let res = post(
        &app,
        "/api/v1/auth/login",
        json!({"email": victim, "password": ATTACKER_PASSWORD}),
    )
    .await;
    expect_error(res, 401, "UNAUTHORIZED").await;
    // The attacker's pending registration died with the verification.
    let first = attackers_link.token("verify-email");
    let res = post(&app, "/api/v1/auth/verify-email", json!({"token": first})).await;
    expect_error(res, 400, "INVALID_REQUEST").await;
    login(&app, victim, PASSWORD).await;
}

#[tokio::test]
async fn parallel_wrong_passwords_are_checked_no_more_than_the_limit() {
    let (app, smtp) = spawn().await;
    signup(&app, &smtp, "target@example.com").await;
    let attempts = (0..40).map(|_| {
        post(
            &app,
            "/api/v1/auth/login",
            json!({"email": "target@example.com", "password": "wrong-Password-1"}),
        )
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, throttled), (5, 35), "{statuses:?}");
    // The limit holds for the right password too while the account is
    // under attack.
    let res = post(
        &app,
        "/api/v1/auth/login",
        json!({"email": "target@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn guesses_from_one_address_never_lock_out_a_correct_password() {
    let (app, smtp) = spawn_with(|s| s.accounts.max_failures_per_ip = 10).await;
    signup(&app, &smtp, "demo@example.com").await;
    for i in 0..30 {
        let res = post(
            &app,
            "/api/v1/auth/login",
            json!({"email": format!("nobody{i}@example.com"), "password": "wrong-Password-1"}),
        )
        .await;
        let status = res.status().as_u16();
        assert!(status == 401 || status == 429, "{status}");
    }
    // Same client address, an account that is not under attack.
    login(&app, "demo@example.com", PASSWORD).await;
}

#[tokio::test]
async fn an_invitation_lapses_when_its_inviter_loses_the_right_to_grant_it() {
    let (app, smtp) = spawn_with(|s| s.plans.free.team_members = 5).await;
    let owner = signup(&app, &smtp, "owner@example.com").await;
    let admin = signup(&app, &smtp, "admin@example.com").await;
    let guest = signup(&app, &smtp, "guest@example.com").await;
    let project = create_project(&app, &owner, "Acme").await;
    add_member(&app, &smtp, &owner, project, &admin, "admin").await;
    // The admin invites someone as admin, then is demoted.
    let res = bearer(
        &app,
        &admin.access,
        Method::POST,
        &format!("/api/v1/projects/{project}/members"),
    )
    .json(&json!({"email": guest.email, "role": "admin"}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let token = smtp
        .wait_for(&guest.email, 2)
        .await
        .token("accept-invitation");
    let res = bearer(
        &app,
        &owner.access,
        Method::PATCH,
        &format!("/api/v1/projects/{project}/members/{}", admin.id),
    )
    .json(&json!({"role": "member"}))
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let accept = async || {
        bearer(
            &app,
            &guest.access,
            Method::POST,
            "/api/v1/invitations/accept",
        )
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap()
    };
    let err = expect_error(accept().await, 409, "CONFLICT").await;
    assert!(err["error"].as_str().unwrap().contains("lapsed"), "{err}");
    // Revoked for good, and the guest is no member.
    expect_error(accept().await, 400, "INVALID_REQUEST").await;
    let res = bearer(
        &app,
        &guest.access,
        Method::GET,
        &format!("/api/v1/projects/{project}"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn one_member_never_replays_anothers_idempotent_response_and_its_secrets() {
    let (app, smtp) = spawn().await;
    let owner = signup(&app, &smtp, "own@example.com").await;
    let other = signup(&app, &smtp, "mem@example.com").await;
    let project = create_project(&app, &owner, "Shared").await;
    add_member(&app, &smtp, &owner, project, &other, "admin").await;
    let create = async |access: &str| {
        bearer(&app, access, Method::POST, "/api/v1/webhooks")
            .header("X-Project-Id", project)
            .header("Idempotency-Key", "same-key")
            .json(&json!({"url": "http://8.8.8.8/in"}))
            .send()
            .await
            .unwrap()
    };
    let first = create(&owner.access).await;
    assert_eq!(first.status(), 201);
    let (_, first) = json(first).await;
    let again = create(&owner.access).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let theirs = create(&other.access).await;
    assert!(theirs.headers().get("idempotent-replayed").is_none());
    let (status, theirs) = json(theirs).await;
    assert_eq!(status, 201, "{theirs}");
    // Their own endpoint, not the owner's signing secret.
    assert_ne!(theirs["webhook"]["id"], first["webhook"]["id"]);
    assert_ne!(theirs["webhook"]["secret"], first["webhook"]["secret"]);
}
