//! Registration, verification, login, refresh rotation, logout, password
//! reset and change, e-mail change, brute-force limits, e-mail retries.

use super::*;
use crate::common::expect_error;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::time::{Duration, Instant};

async fn me(app: &TestApp, access: &str) -> Response {
    bearer(app, access, Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn register_verify_login_and_profile() {
    let (app, smtp) = spawn().await;
    let token = register(&app, &smtp, "Ann@Example.com").await;
    let mail = smtp.to("ann@example.com").pop().unwrap();
    assert_eq!(mail.subject(), "Verify your Voxplane e-mail address");
    let raw = mail.decoded();
    assert!(
        raw.contains("multipart/alternative")
            && raw.contains("text/plain")
            && raw.contains("text/html")
    );
    assert!(raw.contains(&format!("{BASE}/verify-email?token={token}")));
    assert!(mail.from.contains("no-reply@"));

    // Unverified accounts cannot log in.
    let res = post(
        &app,
        "/api/v1/auth/login",
        json!({"email": "ann@example.com", "password": PASSWORD}),
    )
    .await;
    expect_error(res, 403, "FORBIDDEN").await;

    let (status, body) =
        json(post(&app, "/api/v1/auth/verify-email", json!({"token": token})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"]["email"], "ann@example.com");
    assert_eq!(body["account"]["email_verified"], true);

    let (status, body) = json(
        post(
            &app,
            "/api/v1/auth/login",
            json!({"email": "ANN@example.com", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let s = session(&body);

    let (status, body) = json(me(&app, &s.access).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["account"]["name"], "Test User");
    assert_eq!(body["account"]["plan"], "free");
    let res = bearer(&app, &s.access, Method::PATCH, "/api/v1/auth/me")
        .json(&json!({"name": "Ann Example"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(
        (status, body["account"]["name"].as_str()),
        (200, Some("Ann Example"))
    );

    // No or bad token on /me.
    expect_error(
        app.anon(Method::GET, "/api/v1/auth/me")
            .send()
            .await
            .unwrap(),
        401,
        "UNAUTHORIZED",
    )
    .await;
    expect_error(me(&app, "not.a.jwt").await, 401, "UNAUTHORIZED").await;
    expect_error(
        me(&app, &format!("{}x", s.access)).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
}

#[tokio::test]
async fn verification_links_are_single_use_and_expire() {
    let (app, smtp) = spawn().await;
    let first = register(&app, &smtp, "bea@example.com").await;
    // Registering again (unverified) sends a new link; each link confirms
    // the registration it was sent for, so both stay usable until one is.
    let second = register(&app, &smtp, "bea@example.com").await;
    assert_ne!(first, second);
    // Expired.
    let mut conn = app.conn().await;
    diesel::sql_query("UPDATE auth_tokens SET expires_at = now() - interval '1 second' WHERE kind = 'verify_email'")
        .execute(&mut conn)
        .await
        .unwrap();
    for token in [&first, &second] {
        let res = post(&app, "/api/v1/auth/verify-email", json!({"token": token})).await;
        expect_error(res, 400, "INVALID_REQUEST").await;
    }
    // A fresh link works once.
    let res = post(
        &app,
        "/api/v1/auth/resend-verification",
        json!({"email": "bea@example.com"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let third = smtp
        .wait_for("bea@example.com", 3)
        .await
        .token("verify-email");
    assert_eq!(
        post(&app, "/api/v1/auth/verify-email", json!({"token": third}))
            .await
            .status(),
        200
    );
    let res = post(&app, "/api/v1/auth/verify-email", json!({"token": third})).await;
    expect_error(res, 400, "INVALID_REQUEST").await;
    for junk in ["", "short", &"x".repeat(43)] {
        let res = post(&app, "/api/v1/auth/verify-email", json!({"token": junk})).await;
        expect_error(res, 400, "INVALID_REQUEST").await;
    }
}

#[tokio::test]
async fn answers_about_addresses_do_not_enumerate_accounts() {
    let (app, smtp) = spawn().await;
    signup(&app, &smtp, "known@example.com").await;
    let timed = async |path: &str, body: Value| {
        let t = Instant::now();
        let (status, body) = json(post(&app, path, body).await).await;
        (status, body, t.elapsed())
    };
    for path in [
        "/api/v1/auth/reset-password-request",
        "/api/v1/auth/resend-verification",
    ] {
        let (s1, b1, t1) = timed(path, json!({"email": "known@example.com"})).await;
        let (s2, b2, t2) = timed(path, json!({"email": "unknown@example.com"})).await;
        assert_eq!((s1, &b1), (s2, &b2), "{path}");
        assert_eq!(s1, 200);
        assert!(
            t1.abs_diff(t2) < Duration::from_millis(250),
            "{path}: {t1:?} vs {t2:?}"
        );
    }
    // Registering a taken address answers like a new one.
    let (s1, b1, _) = timed(
        "/api/v1/auth/register",
        json!({"email": "known@example.com", "password": PASSWORD, "name": "X"}),
    )
    .await;
    let (s2, b2, _) = timed(
        "/api/v1/auth/register",
        json!({"email": "new@example.com", "password": PASSWORD, "name": "X"}),
    )
    .await;
    assert_eq!((s1, b1), (s2, b2));
    // Login: wrong password and unknown address look alike, including timing
    // (both verify an argon2 hash).
    let (s1, b1, t1) = timed(
        "/api/v1/auth/login",
        json!({"email": "known@example.com", "password": "wrong-Password-1"}),
    )
    .await;
    let (s2, b2, t2) = timed(
        "/api/v1/auth/login",
        json!({"email": "nobody@example.com", "password": "wrong-Password-1"}),
    )
    .await;
    assert_eq!((s1, &b1), (s2, &b2));
    assert_eq!(s1, 401);
    assert!(
        t1.abs_diff(t2) < Duration::from_millis(250),
        "{t1:?} vs {t2:?}"
    );
    // Only the known address got a reset link.
    assert_eq!(smtp.to("unknown@example.com").len(), 0);
    smtp.wait_for("known@example.com", 2).await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let (app, smtp) = spawn().await;
    let s = signup(&app, &smtp, "cy@example.com").await;
    let other = login(&app, "cy@example.com", PASSWORD).await;
    let (status, body) = json(
        post(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": s.refresh}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rotated = session(&body);
    assert_ne!(rotated.refresh, s.refresh);
    assert_eq!(me(&app, &rotated.access).await.status(), 200);
    // The old refresh token again: the whole family is revoked.
    let res = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": s.refresh}),
    )
    .await;
    expect_error(res, 401, "UNAUTHORIZED").await;
    let res = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": rotated.refresh}),
    )
    .await;
    expect_error(res, 401, "UNAUTHORIZED").await;
    expect_error(me(&app, &rotated.access).await, 401, "UNAUTHORIZED").await;
    expect_error(me(&app, &s.access).await, 401, "UNAUTHORIZED").await;
    // Another login of the same account is untouched.
    assert_eq!(me(&app, &other.access).await.status(), 200);
    let res = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": other.refresh}),
    )
    .await;
    assert_eq!(res.status(), 200);
    for junk in ["", "nope", &"A".repeat(43)] {
        let res = post(&app, "/api/v1/auth/refresh", json!({"refresh_token": junk})).await;
        expect_error(res, 401, "UNAUTHORIZED").await;
    }
}

#[tokio::test]
async fn logout_ends_one_session_and_logout_all_every_session() {
    let (app, smtp) = spawn().await;
    let a = signup(&app, &smtp, "dee@example.com").await;
    let b = login(&app, "dee@example.com", PASSWORD).await;
    let c = login(&app, "dee@example.com", PASSWORD).await;
    let res = bearer(&app, &a.access, Method::POST, "/api/v1/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    expect_error(me(&app, &a.access).await, 401, "UNAUTHORIZED").await;
    let res = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": a.refresh}),
    )
    .await;
    expect_error(res, 401, "UNAUTHORIZED").await;
    assert_eq!(me(&app, &b.access).await.status(), 200);

    let res = bearer(&app, &b.access, Method::POST, "/api/v1/auth/logout-all")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for s in [&b, &c] {
        expect_error(me(&app, &s.access).await, 401, "UNAUTHORIZED").await;
        let res = post(
            &app,
            "/api/v1/auth/refresh",
            json!({"refresh_token": s.refresh}),
        )
        .await;
        expect_error(res, 401, "UNAUTHORIZED").await;
    }
    let res = app
        .anon(Method::POST, "/api/v1/auth/logout")
        .send()
        .await
        .unwrap();
    expect_error(res, 401, "UNAUTHORIZED").await;
}

#[tokio::test]
async fn password_reset_is_single_use_expires_and_ends_every_session() {
    let (app, smtp) = spawn().await;
    let s = signup(&app, &smtp, "eve@example.com").await;
    let res = post(
        &app,
        "/api/v1/auth/reset-password-request",
        json!({"email": "EVE@example.com"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mail = smtp.wait_for("eve@example.com", 2).await;
    assert_eq!(mail.subject(), "Reset your Voxplane password");
    let token = mail.token("reset-password");
    let res = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "password": "short"}),
    )
    .await;
    expect_error(res, 400, "INVALID_REQUEST").await;
    let res = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "password": "brand-New-Secret-9"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    expect_error(me(&app, &s.access).await, 401, "UNAUTHORIZED").await;
    let res = post(
        &app,
        "/api/v1/auth/refresh",
        json!({"refresh_token": s.refresh}),
    )
    .await;
    expect_error(res, 401, "UNAUTHORIZED").await;
    let res = post(
        &app,
        "/api/v1/auth/login",
        json!({"email": "eve@example.com", "password": PASSWORD}),
    )
    .await;
    expect_error(res, 401, "UNAUTHORIZED").await;
    login(&app, "eve@example.com", "brand-New-Secret-9").await;
    // Reused.
    let res = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "password": "another-Secret-77"}),
    )
    .await;
    expect_error(res, 400, "INVALID_REQUEST").await;
    // Expired (1 hour).
    post(
        &app,
        "/api/v1/auth/reset-password-request",
        json!({"email": "eve@example.com"}),
    )
    .await;
    let token = smtp
        .wait_for("eve@example.com", 3)
        .await
        .token("reset-password");
    let mut conn = app.conn().await;
    diesel::sql_query("UPDATE auth_tokens SET expires_at = now() - interval '1 second' WHERE kind = 'reset_password'")
        .execute(&mut conn)
        .await
        .unwrap();
    let res = post(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "password": "another-Secret-77"}),
    )
    .await;
    expect_error(res, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn change_password_needs_the_current_one_and_ends_other_sessions() {
    let (app, smtp) = spawn().await;
    let s = signup(&app, &smtp, "fay@example.com").await;
    let other = login(&app, "fay@example.com", PASSWORD).await;
    let change = async |current: &str, new: &str| {
        bearer(
            &app,
            &s.access,
            Method::POST,
            "/api/v1/auth/change-password",
        )
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
    };
    expect_error(
        change("wrong-Password-1", "brand-New-Secret-9").await,
        403,
        "FORBIDDEN",
    )
    .await;
    expect_error(change(PASSWORD, "1234567890").await, 400, "INVALID_REQUEST").await;
    assert_eq!(change(PASSWORD, "brand-New-Secret-9").await.status(), 200);
    assert_eq!(me(&app, &s.access).await.status(), 200);
    expect_error(me(&app, &other.access).await, 401, "UNAUTHORIZED").await;
    login(&app, "fay@example.com", "brand-New-Secret-9").await;
}

#[tokio::test]
async fn email_change_goes_through_verification_of_the_new_address() {
    let (app, smtp) = spawn().await;
    let s = signup(&app, &smtp, "gus@example.com").await;
    signup(&app, &smtp, "taken@example.com").await;
    let patch = async |body: Value| {
        bearer(&app, &s.access, Method::PATCH, "/api/v1/auth/me")
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    // An address with an account: the same answer as any other (nothing
    // tells the caller it exists); its owner is told, and no link is sent.
    let (status, body) = json(patch(json!({"email": "taken@example.com"})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"]["pending_email"], "taken@example.com");
    let notice = smtp.wait_for("taken@example.com", 2).await;
    assert_eq!(
        notice.subject(),
        "Someone asked to use your Voxplane e-mail address"
    );
    assert!(!notice.decoded().contains("token="));
    expect_error(
        patch(json!({"email": "not-an-address"})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        patch(json!({"nickname": "x"})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let (status, body) = json(patch(json!({"email": "gus@new.example.com"})).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["account"]["email"], "gus@example.com");
    assert_eq!(body["account"]["pending_email"], "gus@new.example.com");
    let mail = smtp.wait_for("gus@new.example.com", 1).await;
    assert_eq!(mail.subject(), "Confirm your new Voxplane e-mail address");
    login(&app, "gus@example.com", PASSWORD).await;
    let token = mail.token("confirm-email");
    let (status, body) =
        json(post(&app, "/api/v1/auth/verify-email", json!({"token": token})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["account"]["email"], "gus@new.example.com");
    login(&app, "gus@new.example.com", PASSWORD).await;
    let res = post(
        &app,
        "/api/v1/auth/login",
        json!({"email": "gus@example.com", "password": PASSWORD}),
    )
    .await;
    expect_error(res, 401, "UNAUTHORIZED").await;
    let res = post(&app, "/api/v1/auth/verify-email", json!({"token": token})).await;
    expect_error(res, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn repeated_login_failures_are_limited_per_account_and_per_address() {
    let (app, smtp) = spawn_with(|s| {
        s.accounts.max_failures_per_account = 3;
        s.accounts.max_failures_per_ip = 6;
    })
    .await;
    signup(&app, &smtp, "hal@example.com").await;
    let attempt = async |email: &str, password: &str| {
        post(
            &app,
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    };
    for _ in 0..3 {
        expect_error(
            attempt("hal@example.com", "wrong-Password-1").await,
            401,
            "UNAUTHORIZED",
        )
        .await;
    }
    // Locked now, even with the right password.
    let res = attempt("hal@example.com", PASSWORD).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body = expect_error(res, 429, "RATE_LIMITED").await;
    assert_eq!(body["limit"], 3);
    // Unknown addresses are counted the same way (no enumeration).
    for _ in 0..3 {
        expect_error(
            attempt("ghost@example.com", "wrong-Password-1").await,
            401,
            "UNAUTHORIZED",
        )
        .await;
    }
    expect_error(
        attempt("ghost@example.com", "wrong-Password-1").await,
        429,
        "RATE_LIMITED",
    )
    .await;
    // The address has used its 6 failures: every account is refused from it.
    let body = expect_error(
        attempt("someone@example.com", "wrong-Password-1").await,
        429,
        "RATE_LIMITED",
    )
    .await;
    assert_eq!(body["limit"], 6);
}

#[tokio::test]
async fn weak_passwords_and_bad_bodies_are_refused() {
    let (app, _smtp) = spawn().await;
    let reg = async |body: Value| post(&app, "/api/v1/auth/register", body).await;
    for (body, field) in [
        (
            json!({"email": "x@example.com", "password": "short", "name": "X"}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": "aaaaaaaaaaaa", "name": "X"}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": "password123", "name": "X"}),
            "password",
        ),
        (
            json!({"email": "not an address", "password": PASSWORD, "name": "X"}),
            "email",
        ),
        (
            json!({"email": "x@example.com", "password": PASSWORD, "name": "  "}),
            "name",
        ),
    ] {
        let body = expect_error(reg(body).await, 400, "INVALID_REQUEST").await;
        assert_eq!(body["details"]["field"], field, "{body}");
    }
    expect_error(
        reg(json!({"email": "x@example.com"})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        reg(json!({"email": "x@example.com", "password": PASSWORD, "name": "X", "admin": true}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    let res = app
        .anon(Method::GET, "/api/v1/auth/login")
        .send()
        .await
        .unwrap();
    expect_error(res, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn failed_sends_are_retried_in_the_background_and_tokens_stay_hashed() {
    let (app, smtp) = spawn_with(|s| s.mail_retry_base_ms = 100).await;
    smtp.fail_next(2);
    let res = post(
        &app,
        "/api/v1/auth/register",
        json!({"email": "ivy@example.com", "password": PASSWORD, "name": "Ivy"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    // The account exists at once; the message arrives on the third try.
    let token = smtp
        .wait_for("ivy@example.com", 1)
        .await
        .token("verify-email");
    assert_eq!(
        post(&app, "/api/v1/auth/verify-email", json!({"token": token}))
            .await
            .status(),
        200
    );
    let s = login(&app, "ivy@example.com", PASSWORD).await;
    use voxplane::db::schema::outbound_emails as o;
    let mut conn = app.conn().await;
    let (attempts, sent, text): (i32, Option<chrono::DateTime<chrono::Utc>>, Option<String>) =
        o::table
            .select((o::attempts, o::sent_at, o::body_text))
            .first(&mut conn)
            .await
            .unwrap();
    assert_eq!(attempts, 3);
    assert!(
        sent.is_some() && text.is_none(),
        "the body (and its link) is cleared once sent"
    );
    // No table holds a token itself.
    let dump: Vec<String> = diesel::sql_query(
        "SELECT row_to_json(t)::text AS j FROM auth_tokens t UNION ALL SELECT row_to_json(e)::text FROM outbound_emails e",
    )
    .load::<Json>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.j)
    .collect();
    for secret in [&token, &s.refresh] {
        assert!(
            dump.iter().all(|row| !row.contains(secret.as_str())),
            "{secret} stored"
        );
    }
}

#[derive(QueryableByName)]
struct Json {
    #[diesel(sql_type = diesel::sql_types::Text)]
    j: String,
}
