//! OAuth2 (RFC 6749 password and refresh_token grants, RFC 7009, RFC 7662) and discovery.

use super::harness::*;
use serde_json::{Value, json};

fn assert_token_shape(r: &Reply) {
    assert_eq!(r.status, 200, "{}", r.text);
    let mut keys: Vec<_> = r.body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "refresh_token", "token_type"]
    );
    assert_eq!(r.body["token_type"], "bearer");
    assert!(r.body["expires_in"].is_i64());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
}

fn assert_oauth_error(r: &Reply, error: &str) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"], error, "{}", r.text);
    assert!(r.body["error_description"].is_string());
    assert_eq!(r.body.as_object().unwrap().len(), 2);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn the_password_grant_issues_tokens() {
    let s = Server::start("").await;
    s.create_user("alice", false).await;
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
    assert_token_shape(&r);
    assert_eq!(r.body["expires_in"], 300);
    let access = r.body["access_token"].as_str().unwrap();
    let claims = segment(access, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(claims["fresh"], true);
    assert_eq!(s.me(access).await.status, 200);
}

#[tokio::test]
async fn the_refresh_token_grant_returns_the_same_refresh_token_without_rotation() {
    let s = Server::start("").await;
    let (_, refresh) = s.user("alice").await;
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_token_shape(&r);
    assert_eq!(r.body["refresh_token"], refresh.as_str());
    assert_eq!(
        segment(r.body["access_token"].as_str().unwrap(), 1)["fresh"],
        false
    );
}

#[tokio::test]
async fn the_refresh_token_grant_rotates_when_configured() {
    let s = Server::start("rotate_refresh_tokens = true\nblacklist_after_rotation = true").await;
    let (_, refresh) = s.user("alice").await;
    let r = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_token_shape(&r);
    let rotated = r.body["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, refresh);
    // Within the grace period the same token yields the same successor;
    // after it, the grant is refused.
    let within = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_token_shape(&within);
    assert_eq!(within.body["refresh_token"], rotated);
    s.advance(std::time::Duration::from_secs(11));
    let again = s
        .post_form(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_oauth_error(&again, "invalid_grant");
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let s = Server::start("").await;
    let (access, _) = s.user("alice").await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "invalid_request"),
        (vec![("grant_type", "")], "invalid_request"),
        (
            vec![("grant_type", "password"), ("username", "alice")],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", ""),
                ("password", PASSWORD),
            ],
            "invalid_request",
        ),
        (vec![("grant_type", "refresh_token")], "invalid_request"),
        (vec![("grant_type", "implicit")], "unsupported_grant_type"),
        (
            vec![("grant_type", "authorization_code"), ("code", "x")],
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "wrong-one-here"),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", PASSWORD),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "garbage"),
            ],
            "invalid_grant",
        ),
        (
            vec![("grant_type", "refresh_token"), ("refresh_token", &access)],
            "invalid_grant",
        ),
    ];
    for (form, error) in cases {
        let r = s.post_form("/oauth/token", &form).await;
        assert_oauth_error(&r, error);
    }
    let r = s
        .post_raw("/oauth/token", "application/json", "{oops")
        .await;
    assert_oauth_error(&r, "invalid_request");
    let r = s.post("/oauth/token", json!({"grant_type": 5})).await;
    assert_oauth_error(&r, "invalid_request");
    s.assert_healthy().await;
}

#[tokio::test]
async fn revocation_answers_200_and_revokes_either_type() {
    let s = Server::start("reuse_detection = false\nblacklist_ends_session = false").await;
    let (access, refresh) = s.user("alice").await;
    let r = s
        .post_form(
            "/oauth/revoke",
            &[("token", &refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    // The access token of the same login still works: only the named token is revoked.
    assert_eq!(s.me(&access).await.status, 200);
    let r = s.post_form("/oauth/revoke", &[("token", &access)]).await;
    assert_eq!(r.status, 200);
    assert_refused(&s.me(&access).await, "revoked");
    for token in ["garbage", "a.b.c", &refresh] {
        let r = s
            .post_form(
                "/oauth/revoke",
                &[("token", token), ("token_type_hint", "whatever")],
            )
            .await;
        assert_eq!(r.status, 200, "{token:.20}");
    }
    assert_oauth_error(&s.post_form("/oauth/revoke", &[]).await, "invalid_request");
}

/// Revoking a refresh token (RFC 7009 2.1: and the grant it came from) ends
/// its session as a logout does, with `blacklist_ends_session` on (the
/// default); the user's other sessions live on.
#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    let (other_access, other_refresh) = s.login("alice").await;
    // Nothing to revoke: 200, and nothing ended.
    for token in ["garbage", "a.b.c"] {
        let r = s.post_form("/oauth/revoke", &[("token", token)]).await;
        assert_eq!(r.status, 200, "{token}");
    }
    assert_oauth_error(&s.post_form("/oauth/revoke", &[]).await, "invalid_request");
    assert_eq!(s.me(&access).await.status, 200);

    let r = s
        .post_form(
            "/oauth/revoke",
            &[("token", &refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_refused(&s.me(&access).await, "revoked");
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    let r = s
        .post_form("/oauth/introspect", &[("token", &access)])
        .await;
    assert_eq!(r.body, json!({"active": false}));
    assert_eq!(s.me(&other_access).await.status, 200);
    let r = s
        .post("/api/token/refresh/", json!({"refresh": other_refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // An access token revoked is that token alone, as before: its session's
    // refresh token still works.
    let (access, refresh) = s.login("alice").await;
    let r = s.post_form("/oauth/revoke", &[("token", &access)]).await;
    assert_eq!(r.status, 200);
    assert_refused(&s.me(&access).await, "revoked");
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn introspection_returns_every_claim_or_exactly_inactive() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    for token in [&access, &refresh] {
        let r = s.post_form("/oauth/introspect", &[("token", token)]).await;
        assert_eq!(r.status, 200);
        let mut expected = segment(token, 1);
        expected["active"] = json!(true);
        assert_eq!(r.body, expected);
    }
    s.post("/api/token/blacklist/", json!({"refresh": refresh}))
        .await;
    for token in [refresh.as_str(), "garbage", "a.b.c"] {
        let r = s.post_form("/oauth/introspect", &[("token", token)]).await;
        assert_eq!((r.status, r.body.clone()), (200, json!({"active": false})));
    }
    assert_oauth_error(
        &s.post_form("/oauth/introspect", &[]).await,
        "invalid_request",
    );
}

#[tokio::test]
async fn discovery_points_at_the_real_routes() {
    let s = Server::start("algorithm = \"EdDSA\"").await;
    let r = s.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status, 200);
    let d = &r.body;
    let base = s.base.clone();
    assert_eq!(d["issuer"], base.as_str());
    assert_eq!(
        d["jwks_uri"],
        format!("{base}/.well-known/jwks.json").as_str()
    );
    assert_eq!(d["token_endpoint"], format!("{base}/oauth/token").as_str());
    assert_eq!(
        d["revocation_endpoint"],
        format!("{base}/oauth/revoke").as_str()
    );
    assert_eq!(
        d["introspection_endpoint"],
        format!("{base}/oauth/introspect").as_str()
    );
    let grants: Vec<&Value> = d["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(grants.contains(&&json!("password")) && grants.contains(&&json!("refresh_token")));
    assert!(grants.contains(&&json!("client_credentials")));
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!(["none", "client_secret_basic", "client_secret_post"])
    );
    // Every URL it names answers.
    assert_eq!(
        s.get("/.well-known/jwks.json").await.body["keys"][0]["alg"],
        "EdDSA"
    );
    s.create_user("alice", false).await;
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
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn discovery_uses_the_configured_issuer() {
    let s = Server::start("issuer = \"https://auth.example.com\"").await;
    let d = s.get("/.well-known/openid-configuration").await.body;
    assert_eq!(d["issuer"], "https://auth.example.com");
    assert_eq!(d["token_endpoint"], "https://auth.example.com/oauth/token");
}

#[tokio::test]
async fn discovery_never_takes_its_urls_from_the_host_header() {
    let s = Server::start("").await;
    let answer = s
        .raw(b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: evil.example:1\r\nConnection: close\r\n\r\n")
        .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("evil.example"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["issuer"], s.base.as_str());
    assert_eq!(
        body["token_endpoint"],
        format!("{}/oauth/token", s.base).as_str()
    );
}

#[tokio::test]
async fn discovery_uses_public_url_when_no_issuer_is_set() {
    let s = Server::start("public_url = \"https://auth.example.com/\"").await;
    let d = s.get("/.well-known/openid-configuration").await.body;
    assert_eq!(d["issuer"], "https://auth.example.com");
    assert_eq!(
        d["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        d["introspection_endpoint"],
        "https://auth.example.com/oauth/introspect"
    );
}
