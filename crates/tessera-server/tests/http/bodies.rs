//! Request bodies (docs/API.md): JSON or a form, at most 64 KiB, field
//! errors by name; 400, 413 and 415 with their bodies, never a 5xx.

use super::app::*;
use serde_json::json;

/// Asserts the application still answers and the user made before the abuse can still log in.
async fn still_whole(s: &App) {
    s.assert_healthy().await;
    let (access, _) = s.login("alice").await;
    assert_eq!(s.me(&access).await.status, 200);
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_detail() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
    let very_deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    for body in [
        "{",
        "{\"username\": }",
        "[1, 2]",
        "\"string\"",
        "null",
        "{} {}",
        "{\"username\":\"alice\"} trailing",
        deep.as_str(),
        very_deep.as_str(),
        "\u{0}",
        "{\"username\":\"\\ud800\"}",
    ] {
        for path in ["/api/token/", "/api/auth/signup", "/api/token/refresh/"] {
            let r = s.post_raw(path, "application/json", body.to_owned()).await;
            assert_eq!(r.status, 400, "{path} {body:.40}: {}", r.text);
            assert!(r.body["detail"].is_string(), "{}", r.text);
        }
    }
    let r = s
        .post_raw("/api/token/", "application/json", vec![0xff, 0xfe, 0x00])
        .await;
    assert_eq!(r.status, 400);
    still_whole(&s).await;
}

#[tokio::test]
async fn missing_and_mistyped_fields_are_named() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    let r = s.post("/api/token/", json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );
    let r = s
        .post(
            "/api/token/",
            json!({"username": ["alice"], "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.body, json!({"username": ["Not a valid string."]}));
    let r = s
        .post(
            "/api/token/",
            json!({"username": {"$ne": null}, "password": true}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"username": ["Not a valid string."], "password": ["Not a valid string."]})
    );
    // An empty body needs no Content-Type and is simply missing everything.
    let r = s.send(s.http.post(s.url("/api/token/"))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["username"], json!(["This field is required."]));
    // Unknown fields are ignored.
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD, "extra": [1, 2]}),
        )
        .await;
    assert_eq!(r.status, 200);
    still_whole(&s).await;
}

#[tokio::test]
async fn other_content_types_are_a_415() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    for content_type in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "",
    ] {
        let r = s
            .post_raw("/api/token/", content_type, "username=alice")
            .await;
        assert_eq!(r.status, 415, "{content_type}");
        assert!(r.body["detail"].is_string());
    }
    let r = s
        .post_raw(
            "/api/token/",
            "application/json; charset=utf-8",
            format!("{{\"username\":\"alice\",\"password\":\"{PASSWORD}\"}}"),
        )
        .await;
    assert_eq!(r.status, 200);
    still_whole(&s).await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_a_413_before_anything_else() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    let big = format!("{{\"username\":\"{}\"}}", "a".repeat(70_000));
    // By Content-Length, even with a content type we would refuse and invalid JSON.
    for content_type in ["application/json", "text/plain"] {
        let r = s.post_raw("/api/token/", content_type, big.clone()).await;
        assert_eq!(r.status, 413, "{content_type}");
    }
    // Chunked, with no Content-Length: the limit holds on what arrives.
    let request = s
        .http
        .post(s.url("/api/auth/signup"))
        .header("Content-Type", "application/json");
    let r = s.send_chunked(request, &[b' '; 4096], 20).await;
    assert_eq!(r.status, 413, "{}", r.text);
    // Exactly 65,536 bytes is allowed.
    let mut exact = format!("{{\"username\":\"alice\",\"password\":\"{PASSWORD}\",\"pad\":\"");
    let pad = 65_536 - exact.len() - 2;
    exact.push_str(&"p".repeat(pad));
    exact.push_str("\"}");
    assert_eq!(exact.len(), 65_536);
    let r = s.post_raw("/api/token/", "application/json", exact).await;
    assert_eq!(r.status, 200);
    still_whole(&s).await;
}

#[tokio::test]
async fn a_storm_of_garbage_leaves_the_server_whole() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "application/json",
            b"{\"username\": \"\x00\x01\x02\"}".to_vec(),
        ),
        ("application/json", vec![b'{'; 5000]),
        ("application/json", vec![b'['; 60_000]),
        (
            "application/x-www-form-urlencoded",
            b"username=%ZZ&password=%00".to_vec(),
        ),
        ("application/x-www-form-urlencoded", b"&&&===&&".to_vec()),
        (
            "application/json",
            "{\"refresh\": \"\u{202e}\u{0}\"}".as_bytes().to_vec(),
        ),
    ];
    for path in [
        "/api/token/",
        "/api/token/refresh/",
        "/api/token/verify/",
        "/api/token/blacklist/",
        "/api/auth/signup",
    ] {
        for (content_type, body) in &bodies {
            let r = s.post_raw(path, content_type, body.clone()).await;
            assert!(
                (400..500).contains(&r.status),
                "{path}: {} {}",
                r.status,
                r.text
            );
            assert_ne!(r.status, 422);
        }
    }
    still_whole(&s).await;
}

#[tokio::test]
async fn body_rules_hold_on_every_route_even_those_that_read_no_body() {
    let s = App::start("").await;
    let (access, _) = s.user("alice").await;
    let (root, _) = s.superuser("root").await;
    let big = "x".repeat(200_000);
    // Declared too large, on a route that reads no body: 413 before the handler.
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/check"))
                .bearer_auth(&access)
                .header("Content-Type", "text/plain")
                .body(big.clone()),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    // The same without a declared length (chunked).
    let request = s.http.post(s.url("/api/auth/check")).bearer_auth(&access);
    let r = s.send_chunked(request, &[b'x'; 4096], 20).await;
    assert_eq!(r.status, 413, "{}", r.text);
    // A small body of another type, on a route that acts: 415, and nothing done.
    let r = s
        .send(
            s.http
                .post(s.url("/api/admin/users/1/revoke"))
                .bearer_auth(&root)
                .header("Content-Type", "text/plain")
                .body("please"),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text);
    assert_eq!(
        s.me(&access).await.status,
        200,
        "the revoke must not have run"
    );
    // An empty body needs no type, and the route works as before.
    let r = s
        .send(
            s.http
                .post(s.url("/api/admin/users/1/revoke"))
                .bearer_auth(&root),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(s.me(&access).await.status, 401);
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_413_has_its_detail_and_is_json() {
    let s = App::start("").await;
    let r = s
        .post_raw("/api/token", "application/json", "x".repeat(65_537))
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.text,
        r#"{"detail":"Request body is larger than 65536 bytes."}"#
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn a_415_names_the_media_type() {
    let s = App::start("").await;
    for (content_type, named) in [
        ("text/plain", "text/plain"),
        (
            "application/xml; charset=utf-8",
            "application/xml; charset=utf-8",
        ),
        ("", ""),
    ] {
        let r = s.post_raw("/api/token", content_type, "x=1").await;
        assert_eq!(r.status, 415, "{content_type}");
        assert_eq!(
            r.body,
            json!({"detail": format!("Unsupported media type \"{named}\" in request.")}),
        );
    }
}

#[tokio::test]
async fn a_body_without_a_content_type_is_a_415_but_an_empty_one_is_no_body() {
    let s = App::start("").await;
    let r = s.send(s.http.post(s.url("/api/token")).body("{}")).await;
    assert_eq!(r.status, 415);
    assert_eq!(
        r.body,
        json!({"detail": "Unsupported media type \"\" in request."})
    );
    // No body at all, whatever type it claims: every field is missing.
    let r = s.post_raw("/api/token", "text/plain", "").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );
}

#[tokio::test]
async fn json_that_is_not_an_object_says_what_it_got() {
    let s = App::start("").await;
    for (body, got) in [
        ("[1, 2]", "list"),
        ("\"x\"", "str"),
        ("1", "number"),
        ("true", "bool"),
        ("null", "null"),
    ] {
        let r = s.post_raw("/api/token", "application/json", body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(
            r.body,
            json!({"detail": format!("Invalid data. Expected a dictionary, but got {got}.")}),
            "{body}"
        );
    }
}

#[tokio::test]
async fn json_nested_past_32_levels_is_refused_by_name() {
    let s = App::start("").await;
    let ok = format!("{{\"a\":{}1{}}}", "[".repeat(31), "]".repeat(31));
    let r = s.post_raw("/api/token", "application/json", ok).await;
    assert_eq!(r.status, 400);
    assert!(r.body.get("username").is_some(), "{}", r.text);
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(32), "]".repeat(32));
    let r = s.post_raw("/api/token", "application/json", deep).await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"detail": "JSON parse error - nesting deeper than 32 levels"})
        )
    );
}

#[tokio::test]
async fn json_types_with_a_suffix_and_parameters_are_json() {
    let s = App::start("").await;
    s.create_user("alice", false).await;
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
    ] {
        let r = s
            .post_raw(
                "/api/token",
                content_type,
                format!("{{\"username\":\"alice\",\"password\":\"{PASSWORD}\"}}"),
            )
            .await;
        assert_eq!(r.status, 200, "{content_type}: {}", r.text);
    }
}

#[tokio::test]
async fn a_form_reads_like_json_and_its_field_errors_are_the_same() {
    let s = App::start("").await;
    let r = s.post_form("/api/token", &[("username", "alice")]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"password": ["This field is required."]}));
    let r = s.post_form("/api/token/refresh", &[]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, json!({"refresh": ["This field is required."]}));
}
