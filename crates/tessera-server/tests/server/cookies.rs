//! Token locations, cookie mode with CSRF, and CORS (docs/CONFIGURATION.md and docs/API.md).

use super::harness::*;
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

async fn cookie_login(s: &Server, username: &str) -> (Reply, HashMap<String, Cookie<'static>>) {
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
async fn the_query_string_location() {
    let s = Server::start("token_locations = [\"query_string\"]").await;
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
    let s = Server::start("token_locations = [\"json\"]").await;
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
    let s = Server::start("token_locations = [\"cookies\", \"headers\"]").await;
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
    let s = Server::start("token_locations = [\"headers\", \"cookies\"]").await;
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
async fn cookie_login_sets_four_cookies_with_the_spec_attributes() {
    let s = Server::start(COOKIE_MODE).await;
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
    let s = Server::start(&format!(
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
    let s = Server::start("").await;
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
    let s = Server::start(COOKIE_MODE).await;
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
    let s = Server::start(COOKIE_MODE).await;
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
    let s = Server::start(COOKIE_MODE).await;
    let (access, _) = s.user("alice").await;
    let r = s
        .send(s.http.post(s.url("/api/auth/logout")).bearer_auth(&access))
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn refresh_through_the_refresh_cookie() {
    let s = Server::start(&format!(
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

#[tokio::test]
async fn cors_allows_exactly_the_listed_origins_with_credentials() {
    let s = Server::start("cors_allowed_origins = [\"http://app.example\"]").await;
    let preflight = |origin: &str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/api/token/"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,x-csrf-token",
            )
    };
    let r = s.send(preflight("http://app.example")).await;
    assert!(r.status < 300, "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("x-csrf-token") && allowed.contains("content-type"),
        "{allowed}"
    );
    let r = s.send(preflight("http://evil.example")).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = s
        .send(
            s.http
                .get(s.url("/healthz"))
                .header("Origin", "http://app.example"),
        )
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    let r = s
        .send(
            s.http
                .get(s.url("/healthz"))
                .header("Origin", "http://app.example.evil"),
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn no_cors_at_all_when_no_origin_is_listed() {
    let s = Server::start("").await;
    let r = s
        .send(
            s.http
                .request(reqwest::Method::OPTIONS, s.url("/api/token/"))
                .header("Origin", "http://app.example")
                .header("Access-Control-Request-Method", "POST"),
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = s
        .send(
            s.http
                .get(s.url("/healthz"))
                .header("Origin", "http://app.example"),
        )
        .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

/// A preflight from `origin` for a POST to the token endpoint asking for
/// `headers`, as Swagger UI's password flow ("Authorize") sends it.
fn preflight(s: &Server, origin: Option<&str>, headers: &str) -> reqwest::RequestBuilder {
    let request = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/api/token/"))
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", headers);
    match origin {
        Some(origin) => request.header("Origin", origin),
        None => request,
    }
}

#[tokio::test]
async fn cors_preflight_allows_x_requested_with() {
    let s = Server::start("cors_allowed_origins = [\"http://app.example\"]").await;
    let r = s
        .send(preflight(
            &s,
            Some("http://app.example"),
            "x-requested-with, content-type",
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization,content-type,x-csrf-token,x-token-transport,x-requested-with")
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,HEAD,POST,PATCH,DELETE")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
}

#[tokio::test]
async fn options_from_an_unlisted_origin_is_refused_without_cors_headers() {
    let s = Server::start("cors_allowed_origins = [\"http://app.example\"]").await;
    for origin in ["http://evil.example", "http://app.example.evil", "null"] {
        let r = s
            .send(preflight(
                &s,
                Some(origin),
                "x-requested-with, content-type",
            ))
            .await;
        assert_eq!(r.status, 403, "{origin}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"detail": "Cross-origin requests from this origin are not allowed."})
        );
        let cors: Vec<_> = r
            .headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{origin}: {cors:?}");
        assert_eq!(r.header("vary"), Some("origin"));
    }
    // An OPTIONS without an Origin is no CORS request: the routes answer it
    // as they do with CORS off, a 405 naming the methods they allow.
    let r = s.send(preflight(&s, None, "content-type")).await;
    assert_eq!(r.status, 405, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.body, json!({"detail": "Method \"OPTIONS\" not allowed."}));
    let unknown = s
        .send(
            s.http
                .request(reqwest::Method::OPTIONS, s.url("/no/such/path")),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.header("access-control-allow-origin"), None);
    let off = Server::start("").await;
    let r_off = off.send(preflight(&off, None, "content-type")).await;
    assert_eq!((r_off.status, r_off.body), (r.status, r.body));
}
