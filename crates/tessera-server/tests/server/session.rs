//! Password change, logout and the nginx `auth_request` check (docs/API.md, "Accounts").

use super::harness::*;
use serde_json::json;

const NEW_PASSWORD: &str = "quiet-harbor-lantern-2024?";

async fn change(s: &Server, token: &str, old: &str, new: &str) -> Reply {
    s.send(
        s.http
            .post(s.url("/api/auth/password"))
            .bearer_auth(token)
            .json(&json!({"old_password": old, "new_password": new})),
    )
    .await
}

#[tokio::test]
async fn a_password_change_needs_a_fresh_token_and_the_old_password() {
    let s = Server::start("").await;
    let (fresh, refresh) = s.user("alice").await;
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    let stale = r.body["access"].as_str().unwrap().to_owned();

    let r = change(&s, &stale, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.body,
        json!({"detail": "Fresh token required", "code": "fresh_token_required"})
    );
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer realm=\"api\"")
    );

    let r = change(&s, &fresh, "not-my-password", NEW_PASSWORD).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"old_password": ["Your old password was entered incorrectly. Please enter it again."]})
    );
    let r = change(&s, &fresh, PASSWORD, "alice123").await;
    assert_eq!(r.status, 400);
    assert!(r.body["new_password"].is_array(), "{}", r.text);
    assert_eq!(r.body.as_object().unwrap().len(), 1);
    let r = change(&s, &fresh, PASSWORD, "").await;
    assert_eq!(
        r.body,
        json!({"new_password": ["This field may not be blank."]})
    );
    assert_not_authenticated(&s.post("/api/auth/password", json!({})).await);
}

#[tokio::test]
async fn after_a_password_change_every_earlier_token_is_refused() {
    let s = Server::start("").await;
    let (fresh, refresh) = s.user("alice").await;
    let (other_access, other_refresh) = s.login("alice").await;
    let r = change(&s, &fresh, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    // The caller's own token included, however close in time.
    for token in [&fresh, &other_access] {
        assert_refused(&s.me(token).await, "revoked");
    }
    for token in [&refresh, &other_refresh] {
        assert_token_not_valid(
            &s.post("/api/token/refresh/", json!({"refresh": token}))
                .await,
        );
    }
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200);
    let access = r.body["access"].as_str().unwrap();
    assert_eq!(s.me(access).await.status, 200);
}

#[tokio::test]
async fn logout_ends_that_session_only() {
    let s = Server::start("").await;
    let (access_a, refresh_a) = s.user("alice").await;
    let (access_b, refresh_b) = s.login("alice").await;
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/logout"))
                .bearer_auth(&access_a)
                .json(&json!({"refresh": refresh_a})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    assert_refused(&s.me(&access_a).await, "revoked");
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh_a}))
            .await,
    );
    assert_eq!(s.me(&access_b).await.status, 200);
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": refresh_b}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn logout_without_a_refresh_token_still_ends_the_family() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    let r = s
        .send(s.http.post(s.url("/api/auth/logout")).bearer_auth(&access))
        .await;
    assert_eq!(r.status, 204);
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    assert_not_authenticated(&s.send(s.http.post(s.url("/api/auth/logout"))).await);
}

#[tokio::test]
async fn check_answers_nginx_with_204_and_the_user_or_401() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::HEAD,
        reqwest::Method::POST,
    ] {
        let r = s
            .send(
                s.http
                    .request(method.clone(), s.url("/api/auth/check"))
                    .bearer_auth(&access),
            )
            .await;
        assert_eq!(r.status, 204, "{method}");
        assert_eq!(r.header("x-auth-user-id"), Some("1"));
        assert_eq!(r.header("x-auth-username"), Some("alice"));
        assert!(r.text.is_empty());
    }
    assert_not_authenticated(&s.get("/api/auth/check").await);
    assert_refused(
        &s.get_with_token("/api/auth/check", &refresh).await,
        "wrong_type",
    );
    assert_refused(
        &s.get_with_token("/api/auth/check", "nope").await,
        "invalid",
    );
}

#[tokio::test]
async fn wrong_old_passwords_count_as_failed_logins_and_are_throttled() {
    let s = Server::start("").await;
    let (fresh, _) = s.user("alice").await;
    for i in 0..10 {
        let r = change(&s, &fresh, &format!("guess-{i}"), NEW_PASSWORD).await;
        assert_eq!(r.status, 400, "guess {i}: {}", r.text);
    }
    // The eleventh is refused before any check, even with the right password.
    let r = change(&s, &fresh, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.body["code"], "throttled");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // They were failed logins of alice: her login waits too.
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    // A minute later the change goes through, and the old password is gone.
    s.advance(std::time::Duration::from_secs(61));
    assert_eq!(change(&s, &fresh, PASSWORD, NEW_PASSWORD).await.status, 204);
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}
