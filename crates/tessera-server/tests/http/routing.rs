//! Paths and methods: the trailing slash, 404 and 405 bodies (with `Allow`),
//! HEAD, the operational endpoints and the headers every answer carries.

use super::app::*;
use serde_json::json;

#[tokio::test]
async fn every_path_answers_with_or_without_a_trailing_slash() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    for path in ["/api/token", "/api/token/"] {
        let r = s
            .post(path, json!({"username": "alice", "password": PASSWORD}))
            .await;
        assert_eq!(r.status, 200, "{path}");
    }
    let (access, _) = s.login("alice").await;
    for path in ["/api/auth/me", "/api/auth/me/"] {
        assert_eq!(s.get_with_token(path, &access).await.status, 200, "{path}");
    }
    for path in ["/healthz", "/healthz/", "/.well-known/jwks.json"] {
        assert_eq!(s.get(path).await.status, 200, "{path}");
    }
    // No redirect anywhere.
    let r = s
        .send(s.http.post(s.url("/api/auth/signup/")).json(&json!({})))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let s = App::start("").await;
    let r = s.get("/nope").await;
    assert_eq!(
        (r.status, r.body.clone()),
        (404, json!({"detail": "Not found."}))
    );
    let r = s.get("/api/token/").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body, json!({"detail": "Method \"GET\" not allowed."}));
    assert_eq!(r.header("allow"), Some("POST"));
    let r = s.send(s.http.delete(s.url("/api/auth/me"))).await;
    assert_eq!(r.status, 405);
    let r = s.post("/healthz", json!({})).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn healthz_and_jwks() {
    let s = App::start("").await;
    s.assert_healthy().await;
    let r = s.get("/.well-known/jwks.json").await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"keys": []})));
}

#[tokio::test]
async fn a_404_is_json_and_never_sniffed() {
    let s = App::start("").await;
    for path in ["/nope", "/nope/", "/api", "/api/token/extra", "/static"] {
        let r = s.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.text, r#"{"detail":"Not found."}"#, "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("content-security-policy"), None, "{path}");
    }
}

#[tokio::test]
async fn a_405_names_the_method_and_allows_the_routes_methods() {
    let s = App::start("").await;
    for (method, path, allow) in [
        ("POST", "/healthz", "GET,HEAD"),
        ("PUT", "/api/token", "POST"),
        ("DELETE", "/api/auth/me", "GET,HEAD"),
        ("GET", "/api/auth/logout", "POST"),
        ("POST", "/api/admin/users", "GET,HEAD"),
        ("GET", "/oauth/token", "POST"),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = s.send(s.http.request(m, s.url(path))).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(
            r.body,
            json!({"detail": format!("Method \"{method}\" not allowed.")}),
            "{method} {path}"
        );
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
}

#[tokio::test]
async fn a_405_comes_before_the_body_rules_are_answered_for_it() {
    let s = App::start("").await;
    // A wrong method with a body of a type we never read: the body rules
    // run first (a 415), as they do on every request with a body.
    let r = s.post_raw("/healthz", "text/plain", "hello").await;
    assert_eq!(r.status, 415, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Unsupported media type \"text/plain\" in request."})
    );
    // Without a body it is the 405.
    let r = s.send(s.http.post(s.url("/healthz"))).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET,HEAD"));
}

#[tokio::test]
async fn the_trailing_slash_is_trimmed_however_many_and_before_a_query() {
    let s = App::start("").await;
    for path in ["/healthz", "/healthz/", "/healthz//", "/healthz/?probe=1"] {
        let r = s.get(path).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (200, r#"{"status":"ok"}"#),
            "{path}"
        );
        assert_eq!(r.header("location"), None, "{path}");
    }
    // The route's pattern is the trimmed one: a 405 there names its methods.
    let r = s.get("/api/token/refresh/").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn head_answers_what_get_answers_without_a_body() {
    let s = App::start("").await;
    let (access, _) = s.user("alice").await;
    let r = s.send(s.http.head(s.url("/healthz"))).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = s
        .send(s.http.head(s.url("/api/auth/me")).bearer_auth(&access))
        .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let r = s.send(s.http.head(s.url("/api/auth/me"))).await;
    assert_eq!((r.status, r.text.as_str()), (401, ""));
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    let r = s
        .send(s.http.head(s.url("/api/auth/check")).bearer_auth(&access))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-auth-username"), Some("alice"));
    assert_eq!(r.header("x-auth-user-id"), Some("1"));
}

#[tokio::test]
async fn healthz_is_a_constant_json_body() {
    let s = App::start("").await;
    let r = s.get("/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, r#"{"status":"ok"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), None);
}

#[tokio::test]
async fn the_jwks_may_be_cached_five_minutes() {
    let s = App::start("algorithm = \"ES256\"").await;
    let r = s.get("/.well-known/jwks.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let keys = r.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{}", r.text);
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0]["kid"].is_string());
    assert!(keys[0].get("d").is_none(), "a private part published");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = App::start("").await;
    let r = s.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn discovery_is_built_from_the_public_origin() {
    let s = App::start("").await;
    let r = s.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status, 200);
    let base = "http://127.0.0.1:8000";
    assert_eq!(
        r.body,
        json!({
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "jti", "user_id",
                "username", "token_type", "type", "fid", "ver", "fresh", "amr"],
            "grant_types_supported": ["password", "refresh_token", "client_credentials"],
            "introspection_endpoint": format!("{base}/oauth/introspect"),
            "introspection_endpoint_auth_methods_supported": ["none"],
            "issuer": base,
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "response_types_supported": ["token"],
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "revocation_endpoint_auth_methods_supported": ["none"],
            "revocation_feed_endpoint": format!("{base}/api/revocations"),
            "subject_types_supported": ["public"],
            "token_endpoint": format!("{base}/oauth/token"),
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "token_endpoint_auth_signing_alg_values_supported": ["HS256"],
        })
    );
    // Keys in the order serde_json writes an object's: the bytes did not
    // change when the body became a struct.
    assert!(r.text.starts_with("{\"claims_supported\":"), "{}", r.text);
    // A client's Host never changes them.
    let r2 = s
        .send(
            s.http
                .get(s.url("/.well-known/openid-configuration"))
                .header("Host", "evil.example"),
        )
        .await;
    assert_eq!(r2.text, r.text);
}

#[tokio::test]
async fn an_unknown_user_id_in_a_path_is_a_404() {
    let s = App::start("").await;
    let (root, _) = s.superuser("root").await;
    for path in [
        "/api/admin/users/abc/sessions",
        "/api/admin/users/99/sessions",
        "/api/admin/users/-1/sessions",
    ] {
        let r = s.get_with_token(path, &root).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.body, json!({"detail": "Not found."}), "{path}");
    }
    let r = s
        .send(
            s.http
                .post(s.url("/api/admin/users/99999999999999999999/revoke"))
                .bearer_auth(&root),
        )
        .await;
    assert_eq!((r.status, r.body), (404, json!({"detail": "Not found."})));
}
