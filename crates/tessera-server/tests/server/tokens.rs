//! simplejwt's token endpoints (docs/API.md, "Tokens") and the claims of docs/API.md.

use super::harness::*;
use serde_json::json;

#[tokio::test]
async fn login_returns_an_access_and_a_refresh_token_with_the_spec_claims() {
    let s = Server::start("").await;
    let signup = s.signup("alice").await;
    let id = signup.body["id"].as_i64().unwrap();
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200);
    let keys: Vec<_> = r.body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["access", "refresh"]);
    assert_eq!(r.header("cache-control"), Some("no-store"));

    let access = r.body["access"].as_str().unwrap();
    let refresh = r.body["refresh"].as_str().unwrap();
    let header = segment(access, 0);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["typ"], "JWT");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(header.as_object().unwrap().len(), 3);

    let a = segment(access, 1);
    assert_eq!(a["token_type"], "access");
    assert_eq!(a["user_id"], json!(id));
    assert_eq!(a["sub"], json!(id.to_string()));
    assert_eq!(a["username"], "alice");
    assert_eq!(a["fresh"], true);
    assert_eq!(a["ver"], 0);
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 300);
    let jti = a["jti"].as_str().unwrap();
    assert!(
        jti.len() == 32
            && jti
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(a.get("password").is_none() && a.get("email").is_none());

    let f = segment(refresh, 1);
    assert_eq!(f["token_type"], "refresh");
    assert_eq!(f["fid"], a["fid"]);
    assert_ne!(f["jti"], a["jti"]);
    assert_eq!(
        f["exp"].as_i64().unwrap() - f["iat"].as_i64().unwrap(),
        86_400
    );
    assert!(f.get("username").is_none() && f.get("fresh").is_none());
}

#[tokio::test]
async fn login_failures_answer_the_same_for_unknown_user_and_wrong_password() {
    let s = Server::start("").await;
    s.create_user("alice", false).await;
    for body in [
        json!({"username": "alice", "password": "wrong-password-here"}),
        json!({"username": "nobody", "password": PASSWORD}),
        json!({"username": "x".repeat(10_000), "password": PASSWORD}),
        json!({"username": "al\u{0}ice", "password": PASSWORD}),
    ] {
        let r = s.post("/api/token/", body).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.body,
            json!({"detail": "No active account found with the given credentials", "code": "no_active_account"})
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    }
    s.assert_healthy().await;
}

#[tokio::test]
async fn login_normalises_the_username_like_django() {
    let s = Server::start("").await;
    s.create_user("admin", false).await;
    let r = s
        .post(
            "/api/token/",
            json!({"username": "ａｄｍｉｎ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn form_encoded_bodies_work_like_json() {
    let s = Server::start("").await;
    s.create_user("alice", false).await;
    let r = s
        .post_form(
            "/api/token/",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 200);
    let refresh = r.body["refresh"].as_str().unwrap();
    let r = s
        .post_form("/api/token/refresh/", &[("refresh", refresh)])
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn refresh_without_rotation_returns_only_an_access_token() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200);
    let keys: Vec<_> = r.body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["access"]);
    let new = r.body["access"].as_str().unwrap();
    let claims = segment(new, 1);
    assert_eq!(claims["fresh"], false);
    assert_eq!(claims["fid"], segment(&access, 1)["fid"]);
    assert_eq!(s.me(new).await.status, 200);
    // Without rotation the same refresh token keeps working.
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn refresh_with_rotation_returns_a_new_refresh_token() {
    let s = Server::start("rotate_refresh_tokens = true").await;
    let (_, refresh) = s.user("alice").await;
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200);
    let new = r.body["refresh"].as_str().unwrap();
    assert_ne!(new, refresh);
    assert_eq!(segment(new, 1)["fid"], segment(&refresh, 1)["fid"]);
    // Rotation without blacklisting (simplejwt's default): the old one still works.
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": new}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn refresh_refuses_access_tokens_and_garbage() {
    let s = Server::start("").await;
    let (access, _) = s.user("alice").await;
    for token in [access.as_str(), "garbage", "a.b.c"] {
        let r = s
            .post("/api/token/refresh/", json!({"refresh": token}))
            .await;
        assert_token_not_valid(&r);
    }
    let r = s.post("/api/token/refresh/", json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"refresh": ["This field is required."]}));
}

#[tokio::test]
async fn verify_accepts_both_types_and_refuses_bad_tokens() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    for token in [&access, &refresh] {
        let r = s.post("/api/token/verify/", json!({"token": token})).await;
        assert_eq!((r.status, r.body.clone()), (200, json!({})));
    }
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    assert_token_not_valid(
        &s.post("/api/token/verify/", json!({"token": tampered}))
            .await,
    );
    assert_token_not_valid(&s.post("/api/token/verify/", json!({"token": "x"})).await);
    let r = s.post("/api/token/verify/", json!({"token": 5})).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (400, json!({"token": ["Not a valid string."]}))
    );
}

#[tokio::test]
async fn blacklisted_refresh_tokens_are_refused_everywhere() {
    let s = Server::start("reuse_detection = false\nblacklist_ends_session = false").await;
    let (access, refresh) = s.user("alice").await;
    let r = s
        .post("/api/token/blacklist/", json!({"refresh": refresh}))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!({})));
    assert_token_not_valid(
        &s.post("/api/token/blacklist/", json!({"refresh": refresh}))
            .await,
    );
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    assert_token_not_valid(
        &s.post("/api/token/verify/", json!({"token": refresh}))
            .await,
    );
    // An access token is not a refresh token.
    assert_token_not_valid(
        &s.post("/api/token/blacklist/", json!({"refresh": access}))
            .await,
    );
    // Neither the blacklist nor reuse detection ends the session: the access
    // token of that login lives on until it expires.
    assert_eq!(s.me(&access).await.status, 200);
}

/// simplejwt's tutorial logs out by blacklisting the refresh token: that
/// ends the session as `/api/auth/logout` does (`blacklist_ends_session`,
/// on by default), and nothing else.
#[tokio::test]
async fn blacklisting_a_refresh_token_ends_its_session_and_no_other() {
    let s = Server::start("").await;
    let (access, refresh) = s.user("alice").await;
    let (other_access, other_refresh) = s.login("alice").await;
    // Bad input answers as it always did, and ends nothing.
    let r = s.post("/api/token/blacklist/", json!({})).await;
    assert_eq!(
        (r.status, r.body.clone()),
        (400, json!({"refresh": ["This field is required."]}))
    );
    for token in ["garbage", "a.b.c", access.as_str()] {
        assert_token_not_valid(
            &s.post("/api/token/blacklist/", json!({"refresh": token}))
                .await,
        );
    }
    assert_eq!(s.me(&access).await.status, 200);

    let r = s
        .post("/api/token/blacklist/", json!({"refresh": refresh}))
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!({})));
    let at = std::time::Instant::now();
    assert_refused(&s.me(&access).await, "revoked");
    assert!(at.elapsed() < std::time::Duration::from_secs(1));
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
    assert_token_not_valid(
        &s.post("/api/token/blacklist/", json!({"refresh": refresh}))
            .await,
    );
    // The user's other session is untouched.
    assert_eq!(s.me(&other_access).await.status, 200);
    let r = s
        .post("/api/token/refresh/", json!({"refresh": other_refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn extra_claims_and_the_user_id_claim_follow_the_settings() {
    let s =
        Server::start("extra_claims = [\"email\", \"is_staff\"]\nuser_id_claim = \"uid\"").await;
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let (access, refresh) = s.login("alice").await;
    let claims = segment(&access, 1);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["is_staff"], false);
    assert_eq!(claims["uid"], r.body["id"]);
    assert!(claims.get("user_id").is_none());
    assert!(segment(&refresh, 1).get("email").is_none());
    assert_eq!(s.me(&access).await.status, 200);
}

/// The simplejwt tutorial's claims (its `get_token` override adds
/// `user_name`, `email` and `is_admin`), by settings.
pub const TUTORIAL_CLAIMS: &str = "extra_claims = [\"email\", \"is_staff\", \"is_superuser\"]\n\
     claim_names = { username = \"user_name\", is_staff = \"is_admin\" }";

#[tokio::test]
async fn renamed_claims_are_written_under_their_names_and_the_server_reads_them() {
    // With `subject = "username"` the server's own check of `sub` reads the
    // username under its new name: the case where a missed rename shows.
    for subject in ["id", "username"] {
        let s = Server::start(&format!(
            "{TUTORIAL_CLAIMS}\nsubject = \"{subject}\"\nrotate_refresh_tokens = true"
        ))
        .await;
        let r = s
            .post(
                "/api/auth/signup",
                json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let (access, refresh) = s.login("alice").await;
        let claims = segment(&access, 1);
        assert_eq!(
            (&claims["user_name"], &claims["email"], &claims["is_admin"]),
            (&json!("alice"), &json!("alice@example.com"), &json!(false)),
            "{subject}"
        );
        assert_eq!(claims["is_superuser"], false);
        for gone in ["username", "is_staff"] {
            assert!(claims.get(gone).is_none(), "{subject}: {gone} in {claims}");
        }
        let me = s.me(&access).await;
        assert_eq!(me.status, 200, "{subject}: {}", me.text);
        assert_eq!(me.body["username"], "alice");
        let sessions = s.get_with_token("/api/auth/sessions", &access).await;
        assert_eq!(sessions.status, 200, "{subject}: {}", sessions.text);
        // The refresh (rotated) gives tokens under the same names, which work.
        let r = s
            .post("/api/token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_eq!(r.status, 200, "{subject}: {}", r.text);
        let renewed = r.body["access"].as_str().unwrap();
        assert_eq!(segment(renewed, 1)["user_name"], "alice");
        assert_eq!(s.me(renewed).await.status, 200);
        let verify = s
            .post("/api/token/verify/", json!({"token": renewed}))
            .await;
        assert_eq!((verify.status, &verify.body), (200, &json!({})));
        // A superuser's token says so, apart from `is_admin` (staff).
        let (root, _) = s.superuser("root").await;
        let claims = segment(&root, 1);
        assert_eq!(
            (
                &claims["user_name"],
                &claims["is_admin"],
                &claims["is_superuser"]
            ),
            (&json!("root"), &json!(true), &json!(true))
        );
        let users = s.get_with_token("/api/admin/users", &root).await;
        assert_eq!(users.status, 200, "{subject}: {}", users.text);
        // Discovery names the username claim as tokens carry it.
        let discovery = s.get("/.well-known/openid-configuration").await;
        let supported = discovery.body["claims_supported"].as_array().unwrap();
        assert!(supported.contains(&json!("user_name")), "{supported:?}");
        assert!(!supported.contains(&json!("username")), "{supported:?}");
        let check = s.get_with_token("/api/auth/check", renewed).await;
        assert_eq!(check.status, 204, "{subject}: {}", check.text);
        assert_eq!(check.header("x-auth-username"), Some("alice"));
        assert_eq!(s.logout(renewed).await.status, 204);
    }
}

#[tokio::test]
async fn every_algorithm_family_signs_verifiable_tokens_and_publishes_its_key() {
    for alg in ["ES256", "EdDSA", "RS256", "PS384", "ES384", "HS512"] {
        let s = Server::start(&format!("algorithm = \"{alg}\"")).await;
        let (access, _) = s.user("alice").await;
        let header = segment(&access, 0);
        assert_eq!(header["alg"], alg);
        assert_eq!(s.me(&access).await.status, 200, "{alg}");
        let jwks = s.get("/.well-known/jwks.json").await;
        assert_eq!(jwks.status, 200);
        let keys = jwks.body["keys"].as_array().unwrap();
        if alg.starts_with("HS") {
            assert!(keys.is_empty());
        } else {
            assert_eq!(keys.len(), 1, "{alg}");
            assert_eq!(keys[0]["kid"], header["kid"]);
            assert_eq!(keys[0]["alg"], alg);
            assert_eq!(keys[0]["use"], "sig");
            assert!(keys[0].get("d").is_none() && keys[0].get("p").is_none());
        }
    }
}

#[tokio::test]
async fn issuer_and_audience_are_set_and_required() {
    let s = Server::start("issuer = \"https://auth.example\"\naudience = \"orders\"").await;
    let (access, refresh) = s.user("alice").await;
    for token in [&access, &refresh] {
        let claims = segment(token, 1);
        assert_eq!(claims["iss"], "https://auth.example");
        assert_eq!(claims["aud"], "orders");
    }
    assert_eq!(s.me(&access).await.status, 200);
}

/// Verified tokens are cached (their signature is not checked again), so
/// every way a token stops being good is tried on a token that was just
/// accepted, and so cached: each is refused all the same.
#[tokio::test]
async fn a_cached_token_is_refused_once_revoked_expired_or_its_user_changed() {
    let s = Server::start("algorithm = \"ES256\"").await;
    let (root, _) = s.superuser("root").await;
    let me_twice = async |token: &str| {
        assert_eq!(s.me(token).await.status, 200);
        assert_eq!(s.me(token).await.status, 200);
    };

    // Logged out: its family is ended.
    let (access, _) = s.user("alice").await;
    me_twice(&access).await;
    assert_eq!(s.logout(&access).await.status, 204);
    assert_refused(&s.me(&access).await, "revoked");

    // The user's tokens revoked by an administrator (its version rises).
    let (access, _) = s.user("bob").await;
    me_twice(&access).await;
    let bob = s.me(&access).await.body["id"].as_i64().unwrap();
    let r = s
        .send(
            s.http
                .post(s.url(&format!("/api/admin/users/{bob}/revoke")))
                .bearer_auth(&root),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    assert_refused(&s.me(&access).await, "revoked");

    // The user deactivated.
    let (access, _) = s.user("carol").await;
    me_twice(&access).await;
    let carol = s.me(&access).await.body["id"].as_i64().unwrap();
    let r = s
        .send(
            s.http
                .patch(s.url(&format!("/api/admin/users/{carol}")))
                .bearer_auth(&root)
                .json(&json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_refused(&s.me(&access).await, "revoked");

    // Expired (the access lifetime is 5 minutes).
    let (access, _) = s.user("dave").await;
    me_twice(&access).await;
    s.advance(std::time::Duration::from_secs(301));
    assert_refused(&s.me(&access).await, "expired");
}
