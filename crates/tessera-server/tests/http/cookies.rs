//! Cookie mode (docs/CONFIGURATION.md and docs/API.md): the four cookies and
//! their attributes, the CSRF header on unsafe requests, refreshing through
//! the refresh cookie.

use super::app::*;
use cookie::{Cookie, SameSite};
use serde_json::json;
use std::collections::HashMap;

fn set_cookies(r: &Reply) -> HashMap<String, Cookie<'static>> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
        .map(|c| (c.name().to_owned(), c))
        .collect()
}

const COOKIE_MODE: &str = "token_locations = [\"cookies\", \"headers\"]";

async fn cookie_login(s: &App, username: &str) -> (Reply, HashMap<String, Cookie<'static>>) {
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("X-Token-Transport", "cookie")
                .json(&json!({"username": username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let cookies = set_cookies(&r);
    (r, cookies)
}

fn cookie_header(cookies: &HashMap<String, Cookie<'static>>, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n}={}", cookies[*n].value()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn cookie_login_sets_four_cookies_with_the_spec_attributes() {
    let s = App::start(COOKIE_MODE).await;
    s.create_user("alice", false).await;
    let (r, cookies) = cookie_login(&s, "alice").await;
    assert_eq!(cookies.len(), 4, "{cookies:?}");
    for (name, path, http_only) in [
        ("access_token_cookie", "/", true),
        ("refresh_token_cookie", "/api/token/refresh", true),
        ("csrf_access_token", "/", false),
        ("csrf_refresh_token", "/", false),
    ] {
        let c = &cookies[name];
        assert_eq!(c.path(), Some(path), "{name}");
        assert_eq!(
            c.http_only(),
            Some(http_only).filter(|h| *h),
            "{name} HttpOnly"
        );
        assert_eq!(c.secure(), Some(true), "{name} Secure");
        assert_eq!(c.same_site(), Some(SameSite::Lax), "{name}");
        assert_eq!(c.domain(), None, "{name}");
    }
    // The body shows the access token's claims, not the token.
    assert!(r.body.get("access").is_none() && r.body.get("refresh").is_none());
    assert_eq!(r.body["claims"]["username"], "alice");
    assert_eq!(r.body["header"]["typ"], "JWT");
    assert_eq!(
        r.body["claims"]["csrf"],
        cookies["csrf_access_token"].value()
    );
    assert_eq!(
        segment(cookies["access_token_cookie"].value(), 1)["csrf"],
        cookies["csrf_access_token"].value()
    );
    assert_eq!(
        segment(cookies["refresh_token_cookie"].value(), 1)["csrf"],
        cookies["csrf_refresh_token"].value()
    );
}

#[tokio::test]
async fn cookie_attributes_follow_the_settings() {
    let s = App::start(&format!(
        "{COOKIE_MODE}\ncookie_secure = false\ncookie_samesite = \"Strict\""
    ))
    .await;
    s.create_user("alice", false).await;
    let (_, cookies) = cookie_login(&s, "alice").await;
    for c in cookies.values() {
        assert_eq!(c.secure(), None, "{}", c.name());
        assert_eq!(c.same_site(), Some(SameSite::Strict));
    }
    // Without cookies among the locations, the header asks in vain.
    let s = App::start("").await;
    s.create_user("alice", false).await;
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/"))
                .header("X-Token-Transport", "cookie")
                .json(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert!(r.headers.get("set-cookie").is_none());
    assert!(r.body["access"].is_string());
}

#[tokio::test]
async fn unsafe_cookie_requests_need_the_csrf_header() {
    let s = App::start(COOKIE_MODE).await;
    s.create_user("alice", false).await;
    let (_, cookies) = cookie_login(&s, "alice").await;
    let jar = cookie_header(&cookies, &["access_token_cookie", "csrf_access_token"]);
    // Safe methods need none.
    let r = s
        .send(s.http.get(s.url("/api/auth/me")).header("Cookie", &jar))
        .await;
    assert_eq!(r.status, 200);
    for csrf in [
        None,
        Some("wrong"),
        Some(cookies["csrf_refresh_token"].value()),
    ] {
        let mut req = s
            .http
            .post(s.url("/api/auth/logout"))
            .header("Cookie", &jar);
        if let Some(csrf) = csrf {
            req = req.header("X-CSRF-TOKEN", csrf);
        }
        let r = s.send(req).await;
        assert_eq!(r.status, 401, "{csrf:?}");
        assert_eq!(
            r.body,
            json!({"detail": "CSRF token missing or incorrect.", "code": "csrf_failed"})
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
    }
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/logout"))
                .header("Cookie", &jar)
                .header("X-CSRF-TOKEN", cookies["csrf_access_token"].value()),
        )
        .await;
    assert_eq!(r.status, 204);
    let cleared = set_cookies(&r);
    for (name, path) in [
        ("access_token_cookie", "/"),
        ("refresh_token_cookie", "/api/token/refresh"),
        ("csrf_access_token", "/"),
        ("csrf_refresh_token", "/"),
    ] {
        let c = &cleared[name];
        assert_eq!(c.value(), "");
        assert_eq!(c.max_age(), Some(cookie::time::Duration::ZERO), "{name}");
        assert_eq!(c.path(), Some(path));
    }
    // The session is over, though the refresh cookie never went to the logout path.
    let refresh_jar = cookie_header(&cookies, &["refresh_token_cookie"]);
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/refresh/"))
                .header("Cookie", &refresh_jar)
                .header("X-CSRF-TOKEN", cookies["csrf_refresh_token"].value()),
        )
        .await;
    assert_token_not_valid(&r);
}

#[tokio::test]
async fn the_check_asks_for_the_csrf_header_when_the_original_method_is_unsafe() {
    let s = App::start(COOKIE_MODE).await;
    s.create_user("alice", false).await;
    let (_, cookies) = cookie_login(&s, "alice").await;
    let jar = cookie_header(&cookies, &["access_token_cookie", "csrf_access_token"]);
    let csrf = cookies["csrf_access_token"].value().to_owned();
    let check = |original: Option<&str>, with_csrf: bool| {
        let mut request = s.http.get(s.url("/api/auth/check")).header("Cookie", &jar);
        if let Some(method) = original {
            request = request.header("X-Original-Method", method);
        }
        if with_csrf {
            request = request.header("X-CSRF-TOKEN", &csrf);
        }
        s.send(request)
    };
    for (original, with_csrf, status) in [
        (None, false, 204),
        (Some("GET"), false, 204),
        (Some("HEAD"), false, 204),
        (Some("POST"), false, 401),
        (Some("DELETE"), false, 401),
        (Some("P\u{c3}ST"), false, 401),
        (Some("POST"), true, 204),
    ] {
        let r = check(original, with_csrf).await;
        assert_eq!(r.status, status, "{original:?} {with_csrf}: {}", r.text);
        if status == 401 {
            assert_eq!(r.body["code"], "csrf_failed");
        }
    }
}

#[tokio::test]
async fn header_authenticated_requests_need_no_csrf_even_in_cookie_mode() {
    let s = App::start(COOKIE_MODE).await;
    let (access, _) = s.user("alice").await;
    let r = s
        .send(s.http.post(s.url("/api/auth/logout")).bearer_auth(&access))
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn refresh_through_the_refresh_cookie() {
    let s = App::start(&format!(
        "{COOKIE_MODE}\nrotate_refresh_tokens = true\nblacklist_after_rotation = true"
    ))
    .await;
    s.create_user("alice", false).await;
    let (_, cookies) = cookie_login(&s, "alice").await;
    let jar = cookie_header(&cookies, &["refresh_token_cookie"]);
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/refresh/"))
                .header("Cookie", &jar),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "csrf_failed");
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/refresh/"))
                .header("Cookie", &jar)
                .header("X-CSRF-TOKEN", cookies["csrf_refresh_token"].value()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let fresh = set_cookies(&r);
    for name in [
        "access_token_cookie",
        "csrf_access_token",
        "refresh_token_cookie",
        "csrf_refresh_token",
    ] {
        assert!(
            fresh.contains_key(name),
            "{name} not set on refresh with rotation"
        );
    }
    assert_ne!(
        fresh["access_token_cookie"].value(),
        cookies["access_token_cookie"].value()
    );
    assert_eq!(r.body["claims"]["fresh"], false);
    let r = s
        .send(s.http.get(s.url("/api/auth/me")).header(
            "Cookie",
            format!(
                "access_token_cookie={}",
                fresh["access_token_cookie"].value()
            ),
        ))
        .await;
    assert_eq!(r.status, 200);
    // Presented again within the grace period (another tab), the rotated
    // refresh cookie gets the same successor: the same refresh cookie and
    // CSRF value, a new access cookie.
    let again = s
        .send(
            s.http
                .post(s.url("/api/token/refresh/"))
                .header("Cookie", &jar)
                .header("X-CSRF-TOKEN", cookies["csrf_refresh_token"].value()),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let second = set_cookies(&again);
    for name in ["refresh_token_cookie", "csrf_refresh_token"] {
        assert_eq!(second[name].value(), fresh[name].value(), "{name}");
    }
    assert_ne!(
        second["access_token_cookie"].value(),
        fresh["access_token_cookie"].value()
    );
    // After the grace period it is a reuse.
    s.advance(std::time::Duration::from_secs(11));
    let r = s
        .send(
            s.http
                .post(s.url("/api/token/refresh/"))
                .header("Cookie", &jar)
                .header("X-CSRF-TOKEN", cookies["csrf_refresh_token"].value()),
        )
        .await;
    assert_token_not_valid(&r);
}
