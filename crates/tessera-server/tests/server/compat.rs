//! The drop-in routes of `compat` (docs/API.md section 11a), driven as a
//! Flask-JWT-Extended front end and a FastAPI tutorial client would, every
//! error they document, and the `type`, `nbf` and `subject` claims.

use super::harness::*;
use serde_json::{Value, json};
use std::time::Duration;

const BOTH: &str = "compat = [\"flask_jwt_extended\", \"fastapi\"]\nlogin_rate_limit = \"off\"";

/// A JSON login at `/login`.
async fn flask_login(s: &Server, username: &str, password: &str) -> Reply {
    s.post(
        "/login",
        json!({"username": username, "password": password}),
    )
    .await
}

/// `POST /refresh` with these `Authorization` header values.
async fn flask_refresh(s: &Server, authorization: &[&str]) -> Reply {
    let mut request = s.http.post(s.url("/refresh"));
    for value in authorization {
        request = request.header("Authorization", *value);
    }
    s.send(request).await
}

fn assert_msg(r: &Reply, status: u16, msg: &str) {
    assert_eq!(
        (r.status, &r.body),
        (status, &json!({"msg": msg})),
        "{}",
        r.text
    );
}

fn keys(body: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn a_flask_jwt_extended_front_end_logs_in_and_refreshes_unchanged() {
    let s = Server::start(BOTH).await;
    s.create_user("alice", false).await;
    let r = flask_login(&s, "alice", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(keys(&r.body), ["access_token", "refresh_token"]);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(s.me(&access).await.body["username"], "alice");
    // The tokens say their type as Flask-JWT-Extended reads it.
    assert_eq!(segment(&access, 1)["type"], "access");
    assert_eq!(segment(&refresh, 1)["type"], "refresh");
    let r = flask_refresh(&s, &[&format!("Bearer {refresh}")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        ["access_token"],
        "no rotation: no new refresh token"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let refreshed = r.body["access_token"].as_str().unwrap();
    assert_eq!(s.me(refreshed).await.status, 200);
    // A trailing slash is the same route, as everywhere.
    assert_eq!(
        s.post(
            "/login/",
            json!({"username": "alice", "password": PASSWORD})
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn with_rotation_the_flask_refresh_answers_a_new_refresh_token() {
    let s = Server::start(&format!(
        "{BOTH}\nrotate_refresh_tokens = true\nblacklist_after_rotation = true"
    ))
    .await;
    s.create_user("alice", false).await;
    let login = flask_login(&s, "alice", PASSWORD).await;
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let r = flask_refresh(&s, &[&format!("Bearer {refresh}")]).await;
    assert_eq!(
        keys(&r.body),
        ["access_token", "refresh_token"],
        "{}",
        r.text
    );
    assert_ne!(r.body["refresh_token"], refresh.as_str());
    // The rotated-away token, past the grace period, is refused as
    // Flask-JWT-Extended says revoked.
    s.advance(std::time::Duration::from_secs(11));
    let again = flask_refresh(&s, &[&format!("Bearer {refresh}")]).await;
    assert_msg(&again, 401, "Token has been revoked");
}

#[tokio::test]
async fn every_flask_error_is_in_its_shape_and_status() {
    let s = Server::start(BOTH).await;
    s.create_user("alice", false).await;
    let login = flask_login(&s, "alice", PASSWORD).await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();

    let bad = "Bad username or password";
    assert_msg(&flask_login(&s, "alice", "wrong").await, 401, bad);
    assert_msg(&flask_login(&s, "nobody", PASSWORD).await, 401, bad);
    assert_msg(
        &s.post("/login", json!({"username": "alice"})).await,
        401,
        bad,
    );
    assert_msg(
        &s.post("/login", json!({"username": 5, "password": PASSWORD}))
            .await,
        401,
        bad,
    );
    assert_msg(
        &s.post("/login", json!({"username": "alice", "password": ["x"]}))
            .await,
        401,
        bad,
    );
    let r = s.post("/login", json!(["alice", PASSWORD])).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.body["msg"]
            .as_str()
            .unwrap()
            .contains("Expected a dictionary"),
        "{}",
        r.text
    );
    let r = s
        .post_raw("/login", "application/json", "{\"username\": ")
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.body["msg"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error"),
        "{}",
        r.text
    );
    let not_json = "Did not attempt to load JSON data because the request Content-Type was not 'application/json'.";
    let form = s
        .post_form("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_msg(&form, 415, not_json);
    assert_msg(&s.send(s.http.post(s.url("/login"))).await, 415, not_json);

    let missing = "Missing Authorization Header";
    assert_msg(&flask_refresh(&s, &[]).await, 401, missing);
    // simplejwt's habit, the refresh token in the body, is not Flask's.
    let in_body = s.post("/refresh", json!({"refresh": refresh})).await;
    assert_msg(&in_body, 401, missing);
    let bad_header = "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'";
    let bearer = format!("Bearer {refresh}");
    assert_msg(
        &flask_refresh(&s, &[&bearer, &bearer]).await,
        422,
        bad_header,
    );
    assert_msg(
        &flask_refresh(&s, &[&format!("Token {refresh}")]).await,
        422,
        bad_header,
    );
    assert_msg(
        &flask_refresh(&s, &[&format!("Bearer {access}")]).await,
        422,
        "Only refresh tokens are allowed",
    );
    assert_msg(
        &flask_refresh(&s, &["Bearer abc"]).await,
        422,
        "Invalid token",
    );
    let claims = segment(&refresh, 1);
    let foreign = hs256(
        &segment(&refresh, 0),
        &claims,
        b"another-secret-0123456789-abcdefghij",
    );
    assert_msg(
        &flask_refresh(&s, &[&format!("Bearer {foreign}")]).await,
        422,
        "Invalid token",
    );
    // Blacklisted elsewhere: revoked here.
    let other = flask_login(&s, "alice", PASSWORD).await;
    let other = other.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.post("/api/token/blacklist/", json!({"refresh": other}))
            .await
            .status,
        200
    );
    assert_msg(
        &flask_refresh(&s, &[&format!("Bearer {other}")]).await,
        401,
        "Token has been revoked",
    );
    // A day later the first refresh token has expired.
    s.advance(Duration::from_secs(86_400));
    assert_msg(
        &flask_refresh(&s, &[&bearer]).await,
        401,
        "Token has expired",
    );

    // The general rules hold on these routes too.
    let r = s.get("/login").await;
    assert_eq!(r.status, 405, "{}", r.text);
    let big = format!("{{\"username\": \"{}\"}}", "a".repeat(70_000));
    assert_eq!(
        s.post_raw("/login", "application/json", big).await.status,
        413
    );
    assert_eq!(s.post_raw("/refresh", "text/plain", "x").await.status, 415);
    s.assert_healthy().await;
    assert_eq!(flask_login(&s, "alice", PASSWORD).await.status, 200);
}

/// `POST /logout` with these `Authorization` header values.
async fn flask_logout(s: &Server, authorization: &[&str]) -> Reply {
    let mut request = s.http.post(s.url("/logout"));
    for value in authorization {
        request = request.header("Authorization", *value);
    }
    s.send(request).await
}

/// The logout of Flask-JWT-Extended's documentation: `{"msg": "logout
/// successful"}`, the session of the token presented (access or refresh)
/// ended, the user's other sessions not, errors in Flask's shape.
#[tokio::test]
async fn the_flask_logout_ends_the_session_of_the_token_presented() {
    let s = Server::start(BOTH).await;
    s.create_user("alice", false).await;
    let tokens = |r: &Reply| {
        (
            r.body["access_token"].as_str().unwrap().to_owned(),
            r.body["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    let (access, refresh) = tokens(&flask_login(&s, "alice", PASSWORD).await);
    let (other_access, other_refresh) = tokens(&flask_login(&s, "alice", PASSWORD).await);

    // Bad input answers as the other Flask routes do, and ends nothing.
    assert_msg(
        &flask_logout(&s, &[]).await,
        401,
        "Missing Authorization Header",
    );
    assert_msg(
        &flask_logout(&s, &["Bearer abc"]).await,
        422,
        "Invalid token",
    );
    assert_msg(
        &flask_logout(&s, &[&format!("Token {access}")]).await,
        422,
        "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'",
    );
    assert_eq!(s.me(&access).await.status, 200);

    // The access token: its session ends.
    let r = flask_logout(&s, &[&format!("Bearer {access}")]).await;
    assert_msg(&r, 200, "logout successful");
    assert_refused(&s.me(&access).await, "revoked");
    assert_msg(
        &flask_refresh(&s, &[&format!("Bearer {refresh}")]).await,
        401,
        "Token has been revoked",
    );
    assert_msg(
        &flask_logout(&s, &[&format!("Bearer {access}")]).await,
        401,
        "Token has been revoked",
    );
    // The other session is untouched.
    assert_eq!(s.me(&other_access).await.status, 200);
    // A refresh token presented ends its session too.
    let r = flask_logout(&s, &[&format!("Bearer {other_refresh}")]).await;
    assert_msg(&r, 200, "logout successful");
    assert_refused(&s.me(&other_access).await, "revoked");
    assert_msg(
        &flask_refresh(&s, &[&format!("Bearer {other_refresh}")]).await,
        401,
        "Token has been revoked",
    );
    s.assert_healthy().await;
}

/// In cookie mode the access cookie is the credential: the logout needs its
/// CSRF header, as Flask-JWT-Extended's does, and clears the cookies.
#[tokio::test]
async fn the_flask_logout_takes_the_access_cookie_with_its_csrf_header() {
    let s = Server::start(&format!(
        "{BOTH}\ntoken_locations = [\"cookies\", \"headers\"]"
    ))
    .await;
    s.create_user("alice", false).await;
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("X-Token-Transport", "cookie")
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cookie = |name: &str| {
        r.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_owned()
    };
    let access = cookie("access_token_cookie");
    let csrf = cookie("csrf_access_token");
    let by_cookie = || {
        s.http
            .post(s.url("/logout"))
            .header("Cookie", format!("access_token_cookie={access}"))
    };
    let r = s.send(by_cookie()).await;
    assert_msg(&r, 401, "CSRF double submit tokens do not match");
    assert_eq!(s.me(&access).await.status, 200);
    let r = s.send(by_cookie().header("X-CSRF-TOKEN", &csrf)).await;
    assert_msg(&r, 200, "logout successful");
    let cleared = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("access_token_cookie=;") && v.contains("Max-Age=0"));
    assert!(cleared, "{:?}", r.headers);
    assert_refused(&s.me(&access).await, "revoked");
}

#[tokio::test]
async fn the_compat_logins_are_throttled_like_every_login() {
    let s = Server::start(
        "compat = [\"flask_jwt_extended\", \"fastapi\"]\nlogin_rate_limit = \"2/min\"",
    )
    .await;
    s.create_user("alice", false).await;
    for _ in 0..2 {
        assert_eq!(flask_login(&s, "alice", "wrong").await.status, 401);
    }
    let r = flask_login(&s, "alice", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(
        r.body["msg"]
            .as_str()
            .unwrap()
            .starts_with("Too many attempts. Try again in")
    );
    assert!(r.header("retry-after").is_some());
    // The count is the login's, whichever route: /token is throttled too.
    let r = s
        .post_form("/token", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn a_fastapi_tutorial_client_gets_its_token_and_its_errors() {
    let s = Server::start(BOTH).await;
    s.create_user("alice", false).await;
    let r = s
        .post_form("/token", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        ["access_token", "expires_in", "refresh_token", "token_type"]
    );
    assert_eq!(
        (&r.body["token_type"], &r.body["expires_in"]),
        (&json!("bearer"), &json!(300))
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        s.me(r.body["access_token"].as_str().unwrap()).await.status,
        200
    );
    // What OAuth2PasswordRequestForm also takes.
    let full = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
        ("scope", "me items"),
    ];
    assert_eq!(s.post_form("/token", &full).await.status, 200);

    let wrong = s
        .post_form("/token", &[("username", "alice"), ("password", "nope")])
        .await;
    assert_eq!(
        (wrong.status, &wrong.body),
        (401, &json!({"detail": "Incorrect username or password"}))
    );
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    let missing = |field: &str| json!({"type": "missing", "loc": ["body", field], "msg": "Field required", "input": null});
    let r = s.post_form("/token", &[("username", "alice")]).await;
    assert_eq!(
        (r.status, &r.body),
        (422, &json!({"detail": [missing("password")]}))
    );
    // FastAPI reads form fields only: a JSON body has none.
    let r = s
        .post("/token", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (
            422,
            &json!({"detail": [missing("username"), missing("password")]})
        )
    );
    let r = s
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "grant_type"]));
    assert_eq!(r.body["detail"][0]["type"], "string_pattern_mismatch");
    let r = s
        .post_raw(
            "/token",
            "application/x-www-form-urlencoded",
            "username=%ZZ",
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    s.assert_healthy().await;
}

#[tokio::test]
async fn with_subject_username_sub_carries_the_username() {
    let s = Server::start(&format!("{BOTH}\nsubject = \"username\"")).await;
    s.create_user("alice", false).await;
    let r = s
        .post_form("/token", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    let access = r.body["access_token"].as_str().unwrap();
    let refresh = r.body["refresh_token"].as_str().unwrap();
    let claims = segment(access, 1);
    assert_eq!(
        (&claims["sub"], &claims["username"]),
        (&json!("alice"), &json!("alice"))
    );
    assert!(claims["user_id"].is_i64());
    assert_eq!(segment(refresh, 1)["sub"], "alice");
    assert_eq!(claims["nbf"], claims["iat"]);
    // Tessera accepts its own tokens so made, everywhere.
    assert_eq!(s.me(access).await.status, 200);
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let introspected = s.post_form("/oauth/introspect", &[("token", access)]).await;
    assert_eq!(introspected.body["sub"], "alice");
    assert_eq!(introspected.body["type"], "access");
}
