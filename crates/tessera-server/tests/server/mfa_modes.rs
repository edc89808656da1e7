//! Second factors around the login (docs/API.md, "Second factors"): the
//! step-up a password change needs once a factor is enrolled, a staff
//! user's reset of a user's factors (a lost device), and the `mfa`
//! setting's three modes with the enrolment token they answer with.

use super::harness::*;
use super::mfa::*;
use serde_json::json;
use std::time::Duration;

const NEW_PASSWORD: &str = "quiet-harbor-lantern-2024?";

async fn change_password(s: &Server, access: &str, old: &str, new: &str) -> Reply {
    post_with(
        s,
        "/api/auth/password",
        access,
        json!({"old_password": old, "new_password": new}),
    )
    .await
}

async fn reset(s: &Server, access: &str, id: i64) -> Reply {
    let path = format!("/api/admin/users/{id}/mfa");
    s.send(s.http.delete(s.url(&path)).bearer_auth(access))
        .await
}

fn assert_forbidden(r: &Reply) {
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "You do not have permission to perform this action.", "code": "permission_denied"})
    );
}

#[tokio::test]
async fn a_password_change_needs_a_token_from_a_login_that_used_the_factor() {
    let s = Server::start(ROOMY).await;
    let (before, _) = s.user("alice").await;
    let a = enrol(&s, &before).await;
    // Fresh, but from the password alone: refused, the password unchanged.
    let r = change_password(&s, &before, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Fresh token required", "code": "fresh_token_required"})
    );
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer realm=\"api\"")
    );
    mfa_token_of(
        &s.post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await,
    );
    // From a login with the code: changed.
    s.advance(Duration::from_secs(30));
    let token = first_step(&s, "alice").await;
    let r = verify(&s, &token, "code", &code(&a.secret, s.now())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.body["access"].as_str().unwrap().to_owned();
    assert_eq!(amr(&access), json!(["pwd", "otp", "mfa"]));
    let r = change_password(&s, &access, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // The factor stays: the new password asks for it.
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": NEW_PASSWORD}),
        )
        .await;
    mfa_token_of(&r);
    // A user without a factor changes it with the password's token.
    let (bob, _) = s.user("bob").await;
    let r = change_password(&s, &bob, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 204, "{}", r.text);
}

#[tokio::test]
async fn staff_reset_a_lost_device_and_the_password_alone_logs_in() {
    let s = Server::start(ROOMY).await;
    let (root, _) = s.superuser("root").await; // 1
    let (alice, _) = s.user("alice").await; // 2
    let (bob, _) = s.user("bob").await; // 3
    let (carol, _) = s.superuser("carol").await; // 4
    let r = s
        .send(
            s.http
                .patch(s.url("/api/admin/users/3"))
                .bearer_auth(&root)
                .json(&json!({"is_staff": true})),
        )
        .await;
    assert_eq!((r.status, r.body["is_staff"].clone()), (200, json!(true)));
    enrol(&s, &alice).await;
    let c = enrol(&s, &carol).await;
    let waiting = first_step(&s, "alice").await;
    // Not staff: refused, whoever's factors (their own included).
    assert_forbidden(&reset(&s, &alice, 2).await);
    // Staff, not superuser: a superuser's factors are not theirs to reset.
    assert_forbidden(&reset(&s, &bob, 4).await);
    let r = reset(&s, &bob, 99).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (404, json!({"detail": "Not found."}))
    );
    let r = reset(&s, &bob, 2).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "{}", r.text);
    // The factor, its codes and the login waiting for it are gone.
    let r = verify(&s, &waiting, "code", "123456").await;
    assert_mfa_token_invalid(&r);
    let (access, _) = s.login("alice").await;
    assert_eq!(amr(&access), json!(["pwd"]));
    for table in ["mfa_totp", "mfa_recovery_codes", "mfa_challenges"] {
        let n = s
            .sql_number(&format!("SELECT COUNT(*) FROM {table} WHERE user_id = 2"))
            .await;
        assert_eq!(n, 0, "{table}");
    }
    // Nothing left: still 204.
    assert_eq!(reset(&s, &bob, 2).await.status, 204);
    // A superuser resets a superuser's.
    mfa_token_of(
        &s.post(
            "/api/token/",
            json!({"username": "carol", "password": PASSWORD}),
        )
        .await,
    );
    assert_eq!(reset(&s, &root, 4).await.status, 204);
    let (access, _) = s.login("carol").await;
    assert_eq!(amr(&access), json!(["pwd"]));
    // The old codes are nothing now: enrolling again gives new ones.
    let again = enrol(&s, &access).await;
    assert!(
        again
            .recovery_codes
            .iter()
            .all(|code| !c.recovery_codes.contains(code))
    );
    // Audited with the actor.
    let events = audited(&s, "mfa_reset", 3).await;
    let mut seen: Vec<_> = events
        .iter()
        .map(|e| (e.user_id, e.actor_id, e.detail.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (Some(2), Some(3), r#"{"removed":false}"#.to_owned()),
            (Some(2), Some(3), r#"{"removed":true}"#.to_owned()),
            (Some(4), Some(1), r#"{"removed":true}"#.to_owned()),
        ]
    );
}

/// The `enrolment_token` of a login's 401 `mfa_enrolment_required`, its
/// other fields and headers checked.
fn enrolment_token_of(r: &Reply) -> String {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body["detail"],
        "A second factor is required: enrol one with the enrolment_token, then log in again."
    );
    assert_eq!(r.body["code"], "mfa_enrolment_required");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.headers.get("set-cookie").is_none(), "{:?}", r.headers);
    let token = r.body["enrolment_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "{token}");
    assert!(!token.contains('.'), "{token}");
    token
}

/// The fields of a body, sorted.
fn fields(r: &Reply) -> Vec<String> {
    let mut fields: Vec<_> = r.body.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    fields
}

async fn password_login(s: &Server, username: &str) -> Reply {
    s.post(
        "/api/token/",
        json!({"username": username, "password": PASSWORD}),
    )
    .await
}

#[tokio::test]
async fn optional_asks_nobody_to_enrol() {
    let s = Server::start("").await;
    s.create_user("root", true).await;
    s.create_user("alice", false).await;
    for name in ["root", "alice"] {
        let (access, _) = s.login(name).await;
        assert_eq!(amr(&access), json!(["pwd"]));
    }
}

#[tokio::test]
async fn required_for_staff_asks_staff_without_a_factor_to_enrol_and_lets_others_in() {
    let s = Server::start(&format!("{ROOMY}\nmfa = \"required_for_staff\"")).await;
    s.create_user("root", true).await;
    s.create_user("alice", false).await;
    s.create_user("bob", false).await;
    s.sql("UPDATE users SET is_staff = TRUE WHERE username = 'bob'")
        .await;
    // Not staff: the password alone.
    let (access, _) = s.login("alice").await;
    assert_eq!(amr(&access), json!(["pwd"]));
    // A superuser and a staff user without a factor: asked to enrol.
    let r = password_login(&s, "root").await;
    let token = enrolment_token_of(&r);
    assert_eq!(fields(&r), ["code", "detail", "enrolment_token"]);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    let bob_token = enrolment_token_of(&password_login(&s, "bob").await);
    // The enrolment token enrols.
    let r = post_with(&s, "/api/auth/mfa/totp", &token, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fields(&r), ["otpauth_uri", "qr_svg", "secret"]);
    let secret = secret_of(r.body["secret"].as_str().unwrap());
    let r = post_with(
        &s,
        "/api/auth/mfa/totp/confirm",
        &token,
        json!({"code": code(&secret, s.now())}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["recovery_codes"].as_array().unwrap().len(), 10);
    // Then the password and a code log in.
    s.advance(Duration::from_secs(30));
    let mfa_token = first_step(&s, "root").await;
    let r = verify(&s, &mfa_token, "code", &code(&secret, s.now())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        amr(r.body["access"].as_str().unwrap()),
        json!(["pwd", "otp", "mfa"])
    );
    // An enrolment token lives ten minutes.
    s.advance(Duration::from_secs(601));
    let r = post_with(&s, "/api/auth/mfa/totp", &bob_token, json!({})).await;
    assert_eq!((r.status, r.body.clone()), (401, s.me("x.y.z").await.body));
    let events = audited(&s, "mfa_enrolment_required", 2).await;
    assert!(
        events
            .iter()
            .all(|e| e.detail == r#"{"method":"password"}"#),
        "{events:?}"
    );
}

#[tokio::test]
async fn required_asks_everyone_on_every_login_route_and_the_token_opens_only_enrolment() {
    let s = Server::start(&format!(
        "{ROOMY}\nmfa = \"required\"\ntoken_locations = [\"headers\", \"cookies\"]\ncompat = [\"flask_jwt_extended\", \"fastapi\"]"
    ))
    .await;
    s.create_user("alice", false).await;
    let token = enrolment_token_of(&password_login(&s, "alice").await);
    // Cookie transport: no cookie.
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("X-Token-Transport", "cookie")
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    enrolment_token_of(&r);
    // OAuth2's password grant: its error shape beside the fields.
    let r = s
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    enrolment_token_of(&r);
    assert_eq!(r.body["error"], "mfa_enrolment_required");
    assert_eq!(r.body["error_description"], r.body["detail"]);
    // Flask-JWT-Extended's: `msg` beside them.
    let r = s
        .post("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    enrolment_token_of(&r);
    assert_eq!(r.body["msg"], r.body["detail"]);
    // FastAPI's.
    let r = s
        .post_form("/token", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    enrolment_token_of(&r);

    // Every other route refuses the enrolment token as it refuses any
    // token that is not one of its own.
    let invalid = s.me("x.y.z").await;
    assert_eq!(invalid.status, 401);
    let bearer = |method: reqwest::Method, path: &str| {
        s.http
            .request(method, s.url(path))
            .bearer_auth(&token)
            .json(&json!({"code": "123456", "old_password": PASSWORD, "new_password": "x"}))
    };
    use reqwest::Method;
    for (method, path) in [
        (Method::GET, "/api/auth/me"),
        (Method::GET, "/api/auth/sessions"),
        (Method::POST, "/api/auth/sessions/end-others"),
        (Method::POST, "/api/auth/password"),
        (Method::POST, "/api/auth/logout"),
        (Method::GET, "/api/auth/check"),
        (Method::POST, "/api/auth/mfa/recovery-codes"),
        (Method::DELETE, "/api/auth/mfa/totp"),
        (Method::POST, "/api/auth/email/verify/request"),
        (Method::GET, "/api/admin/users"),
        (Method::GET, "/api/admin/audit"),
    ] {
        let r = s.send(bearer(method.clone(), path)).await;
        assert_eq!(
            (r.status, &r.body),
            (401, &invalid.body),
            "{method} {path}: {}",
            r.text
        );
    }
    for (path, body) in [
        ("/api/token/refresh/", json!({"refresh": token})),
        ("/api/token/verify/", json!({"token": token})),
    ] {
        let r = s.post(path, body).await;
        assert_eq!(
            (r.status, r.body.clone()),
            (
                401,
                json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
            ),
            "{path}"
        );
    }
    // Nor is it an `mfa_token`.
    assert_mfa_token_invalid(&verify(&s, &token, "code", "123456").await);

    // It enrols; then the password and a code log in, on every route.
    let r = post_with(&s, "/api/auth/mfa/totp", &token, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let secret = secret_of(r.body["secret"].as_str().unwrap());
    let r = post_with(
        &s,
        "/api/auth/mfa/totp/confirm",
        &token,
        json!({"code": code(&secret, s.now())}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Enrolled: the token has nothing left to do.
    let r = post_with(&s, "/api/auth/mfa/totp", &token, json!({})).await;
    assert_eq!(r.status, 409, "{}", r.text);
    s.advance(Duration::from_secs(30));
    let mfa_token = first_step(&s, "alice").await;
    let r = verify(&s, &mfa_token, "code", &code(&secret, s.now())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access = r.body["access"].as_str().unwrap();
    assert_eq!(amr(access), json!(["pwd", "otp", "mfa"]));
    assert_eq!(s.me(access).await.status, 200);
    let r = s
        .post("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    mfa_token_of(&r);
}

#[tokio::test]
async fn the_cli_resets_a_users_factors() {
    let s = Server::start(ROOMY).await;
    let (access, _) = s.user("alice").await;
    enrol(&s, &access).await;
    let waiting = first_step(&s, "alice").await;
    let (code, out, err) = s.cli(&["users", "mfa-reset", "alice"], None).await;
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "Second factors of alice (id 1) removed: their password alone logs them in, unless \
             the mfa setting requires a factor of them (their next login then asks them to \
             enrol).\n"
        ),
        "{err}"
    );
    assert_mfa_token_invalid(&verify(&s, &waiting, "code", "123456").await);
    let (access, _) = s.login("alice").await;
    assert_eq!(amr(&access), json!(["pwd"]));
    let events = audited(&s, "mfa_reset", 1).await;
    assert_eq!(
        (
            events[0].user_id,
            events[0].actor_id,
            events[0].detail.as_str()
        ),
        (Some(1), None, r#"{"removed":true}"#)
    );
    let (code, out, err) = s.cli(&["users", "mfa-reset", "nobody"], None).await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "", "tessera: no user `nobody`\n")
    );
}
