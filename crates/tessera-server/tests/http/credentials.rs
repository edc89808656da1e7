//! Credentials on protected endpoints (docs/API.md): where a token is
//! looked for, the 401 bodies and `WWW-Authenticate` of each refusal, 400
//! for two `Authorization` headers, 403 for non-staff users.

use super::app::*;
use serde_json::json;

#[tokio::test]
async fn missing_or_foreign_credentials_are_not_authenticated() {
    let s = App::start("").await;
    let (access, _) = s.user("alice").await;
    assert_not_authenticated(&s.get("/api/auth/me").await);
    for value in [
        format!("Basic {access}"),
        format!("Bearer  {access}"),
        format!("bearer {access}"),
        "Bearer".to_owned(),
        format!("Token {access}"),
    ] {
        let r = s
            .send(
                s.http
                    .get(s.url("/api/auth/me"))
                    .header("Authorization", value.clone()),
            )
            .await;
        assert_not_authenticated(&r);
    }
}

#[tokio::test]
async fn auth_header_types_are_configurable() {
    let s = App::start("auth_header_types = [\"Bearer\", \"JWT\"]").await;
    let (access, _) = s.user("alice").await;
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .header("Authorization", format!("JWT {access}")),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn refused_tokens_say_why() {
    let s = App::start("access_token_lifetime = \"1s\"").await;
    let (access, refresh) = s.user("alice").await;
    // wrong_type: a refresh token where an access token is expected.
    assert_refused(&s.me(&refresh).await, "wrong_type");
    // invalid: garbage, wrong segment counts, bytes outside visible ASCII.
    for token in [
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        "eyJhbGciOiJIUzI1NiJ9.e30.x",
    ] {
        assert_refused(&s.me(token).await, "invalid");
    }
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .header("Authorization", b"Bearer a\xe9b".as_slice()),
        )
        .await;
    assert_refused(&r, "invalid");
    // expired: past the one-second lifetime.
    s.advance(std::time::Duration::from_secs(2));
    assert_refused(&s.me(&access).await, "expired");
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let s = App::start("").await;
    let (access, _) = s.user("alice").await;
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .header("Authorization", format!("Bearer {access}"))
                .header("Authorization", format!("Bearer {access}")),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].is_string());
}

#[tokio::test]
async fn the_query_string_location() {
    let s = App::start("token_locations = [\"query_string\"]").await;
    let (access, _) = s.user("alice").await;
    assert_eq!(
        s.get(&format!("/api/auth/me?access_token={access}"))
            .await
            .status,
        200
    );
    // A location that is not configured counts as no credentials.
    assert_not_authenticated(&s.me(&access).await);
    assert_refused(&s.get("/api/auth/me?access_token=nope").await, "invalid");
}

#[tokio::test]
async fn the_json_body_location() {
    let s = App::start("token_locations = [\"json\"]").await;
    let (access, refresh) = s.user("alice").await;
    let r = s
        .post(
            "/api/auth/logout",
            json!({"access_token": access, "refresh": refresh}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    assert_not_authenticated(&s.post("/api/auth/logout", json!({})).await);
}

#[tokio::test]
async fn the_cookie_location_and_the_order_of_locations() {
    let s = App::start("token_locations = [\"cookies\", \"headers\"]").await;
    let (access, _) = s.user("alice").await;
    let with = |cookie: &str, bearer: &str| {
        s.http
            .get(s.url("/api/auth/me"))
            .header("Cookie", format!("access_token_cookie={cookie}"))
            .bearer_auth(bearer)
    };
    // The first configured location that carries a token decides.
    assert_eq!(s.send(with(&access, "garbage")).await.status, 200);
    assert_refused(&s.send(with("garbage", &access)).await, "invalid");
    let s = App::start("token_locations = [\"headers\", \"cookies\"]").await;
    let (access, _) = s.user("alice").await;
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .header("Cookie", format!("access_token_cookie={access}"))
                .bearer_auth("garbage"),
        )
        .await;
    assert_refused(&r, "invalid");
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .header("Cookie", format!("access_token_cookie={access}")),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn no_credentials_is_a_401_with_the_plain_challenge_on_every_protected_route() {
    let s = App::start("").await;
    for (method, path) in [
        ("GET", "/api/auth/me"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/password"),
        ("GET", "/api/auth/sessions"),
        ("POST", "/api/auth/sessions/end-others"),
        ("GET", "/api/auth/check"),
        ("GET", "/api/admin/users"),
        ("GET", "/api/admin/audit"),
        ("POST", "/api/admin/users/1/revoke"),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = s.send(s.http.request(m, s.url(path))).await;
        assert_not_authenticated(&r);
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    }
}

#[tokio::test]
async fn a_refused_token_gets_the_invalid_token_challenge() {
    let s = App::start("").await;
    let r = s.me("garbage").await;
    assert_refused(&r, "invalid");
    assert_eq!(r.header("content-type"), Some("application/json"));
    // And on the nginx check, the same.
    let r = s.get_with_token("/api/auth/check", "garbage").await;
    assert_refused(&r, "invalid");
}

#[tokio::test]
async fn a_revoked_token_says_revoked() {
    let s = App::start("").await;
    let (access, _) = s.user("alice").await;
    let r = s
        .send(s.http.post(s.url("/api/auth/logout")).bearer_auth(&access))
        .await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_refused(&s.me(&access).await, "revoked");
}

#[tokio::test]
async fn the_query_string_is_not_a_location_unless_configured() {
    let s = App::start("").await;
    let (access, _) = s.user("alice").await;
    assert_not_authenticated(&s.get(&format!("/api/auth/me?access_token={access}")).await);
    // Nor is a JSON body's access_token.
    let r = s
        .post("/api/auth/logout", json!({"access_token": access}))
        .await;
    assert_not_authenticated(&r);
    // Nor a cookie.
    let r = s
        .send(
            s.http
                .get(s.url("/api/auth/me"))
                .header("Cookie", format!("access_token_cookie={access}")),
        )
        .await;
    assert_not_authenticated(&r);
}

#[tokio::test]
async fn the_first_of_several_query_tokens_counts() {
    let s = App::start("token_locations = [\"query_string\"]").await;
    let (access, _) = s.user("alice").await;
    let r = s
        .get(&format!(
            "/api/auth/me?access_token={access}&access_token=garbage"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .get(&format!(
            "/api/auth/me?access_token=garbage&access_token={access}"
        ))
        .await;
    assert_refused(&r, "invalid");
    // An empty one is a token, refused as invalid.
    assert_refused(&s.get("/api/auth/me?access_token=").await, "invalid");
}

#[tokio::test]
async fn staff_routes_refuse_other_users_with_a_403() {
    let s = App::start("").await;
    let (access, _) = s.user("alice").await;
    for path in [
        "/api/admin/users",
        "/api/admin/audit",
        "/api/admin/users/1/sessions",
    ] {
        let r = s.get_with_token(path, &access).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(
            r.body,
            json!({"detail": "You do not have permission to perform this action.", "code": "permission_denied"}),
            "{path}"
        );
        assert_eq!(r.header("www-authenticate"), None, "{path}");
    }
}

#[tokio::test]
async fn a_page_past_the_last_is_a_404_with_drfs_detail() {
    let s = App::start("").await;
    let (root, _) = s.superuser("root").await;
    for query in ["page=2", "page=0", "page=x"] {
        let r = s
            .get_with_token(&format!("/api/admin/users?{query}"), &root)
            .await;
        assert_eq!(
            (r.status, r.body),
            (404, json!({"detail": "Invalid page."})),
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_password_change_needs_a_fresh_token() {
    let s = App::start("").await;
    let (_, refresh) = s.user("alice").await;
    let r = s
        .post("/api/token/refresh", json!({"refresh": refresh}))
        .await;
    let access = r.body["access"].as_str().unwrap().to_owned();
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/password"))
                .bearer_auth(&access)
                .json(
                    &json!({"old_password": PASSWORD, "new_password": "another-vivid-otter-2024"}),
                ),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Fresh token required", "code": "fresh_token_required"})
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"invalid_token\"")
    );
}

#[tokio::test]
async fn the_token_endpoints_answer_one_body_for_every_refused_token() {
    let s = App::start("").await;
    let (access, refresh) = s.user("alice").await;
    assert_token_not_valid(&s.post("/api/token/refresh", json!({"refresh": "x"})).await);
    assert_token_not_valid(
        &s.post("/api/token/refresh", json!({"refresh": access}))
            .await,
    );
    assert_token_not_valid(&s.post("/api/token/verify", json!({"token": "x"})).await);
    assert_token_not_valid(
        &s.post("/api/token/blacklist", json!({"refresh": access}))
            .await,
    );
    let r = s.post("/api/token/verify", json!({"token": refresh})).await;
    assert_eq!((r.status, r.text.as_str()), (200, "{}"));
}

#[tokio::test]
async fn a_failed_login_is_a_401_with_the_plain_challenge() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    for (username, password) in [("alice", "wrong-password-x"), ("nobody", PASSWORD)] {
        let r = s
            .post(
                "/api/token",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body,
            json!({"detail": "No active account found with the given credentials", "code": "no_active_account"})
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    }
}

#[tokio::test]
async fn tokens_are_never_cached() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    let r = s
        .post(
            "/api/token",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let mut keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access", "refresh"]);
    let refresh = r.body["refresh"].as_str().unwrap();
    let r = s
        .post("/api/token/refresh", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    assert!(r.body.get("refresh").is_none(), "{}", r.text);
}

#[tokio::test]
async fn oauth_errors_follow_rfc_6749_and_are_never_cached() {
    let s = App::start("").await;
    for (form, error, description) in [
        (vec![], "invalid_request", "Missing parameter: grant_type"),
        (
            vec![("grant_type", "authorization_code")],
            "unsupported_grant_type",
            "Unsupported grant_type authorization_code; use password, refresh_token or client_credentials.",
        ),
        (
            vec![("grant_type", "password"), ("username", "alice")],
            "invalid_request",
            "Missing parameter: password",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", "nope")],
            "invalid_grant",
            "The refresh token is invalid, expired or revoked.",
        ),
    ] {
        let r = s.post_form("/oauth/token", &form).await;
        assert_eq!(r.status, 400, "{form:?}: {}", r.text);
        assert_eq!(r.body["error"], error, "{form:?}");
        if !description.is_empty() {
            assert_eq!(r.body["error_description"], description, "{form:?}");
        }
        assert_eq!(r.body.as_object().unwrap().len(), 2, "{}", r.text);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("pragma"), Some("no-cache"));
    }
}

#[tokio::test]
async fn introspection_of_anything_unknown_is_exactly_inactive() {
    let s = App::start("").await;
    for token in ["nope", "a.b.c"] {
        let r = s.post_form("/oauth/introspect", &[("token", token)]).await;
        assert_eq!((r.status, r.text.as_str()), (200, r#"{"active":false}"#));
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    let r = s.post_form("/oauth/introspect", &[]).await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"error": "invalid_request", "error_description": "Missing parameter: token"})
        )
    );
}
