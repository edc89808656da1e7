//! Second factors around the login (docs/API.md, "Second factors"): the
//! step-up a password change needs once a factor is enrolled, and a staff
//! user's reset of a user's factors (a lost device).

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
