//! Bad input of every kind: a clear 4xx, never a 5xx, and nothing lost.

use super::harness::*;
use serde_json::json;

/// Asserts the server still answers and the user made before the abuse can still log in.
async fn still_whole(s: &Server) {
    s.assert_healthy().await;
    let (access, _) = s.login("alice").await;
    assert_eq!(s.me(&access).await.status, 200);
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_detail() {
    let s = Server::start("").await;
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
    let s = Server::start("").await;
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
    let s = Server::start("").await;
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
    let s = Server::start("").await;
    s.create_user("alice", false).await;
    let big = format!("{{\"username\":\"{}\"}}", "a".repeat(70_000));
    // By Content-Length, even with a content type we would refuse and invalid JSON.
    for content_type in ["application/json", "text/plain"] {
        let r = s.post_raw("/api/token/", content_type, big.clone()).await;
        assert_eq!(r.status, 413, "{content_type}");
    }
    // Chunked, with no Content-Length: the limit holds on what arrives.
    let mut request = String::from(
        "POST /api/auth/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..20 {
        request.push_str(&format!("1000\r\n{}\r\n", " ".repeat(4096)));
    }
    request.push_str("0\r\n\r\n");
    let answer = s.raw(request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.80}");
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
async fn bad_tokens_in_the_header_are_401_never_431_or_500() {
    let s = Server::start("").await;
    s.create_user("alice", false).await;
    let huge = "a".repeat(12 * 1024);
    let nul = "eyJh\u{0}bGc.e30.x".to_owned();
    for token in [
        huge.as_str(),
        "e30.e30.e30",
        "====.====.====",
        "a..b",
        "...",
        ".",
        "eyJhbGciOiJub25lIn0.e30.",
        nul.as_str(),
    ] {
        let request = format!(
            "GET /api/auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        let answer = s.raw(request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 401") || answer.starts_with("HTTP/1.1 400"),
            "{token:.20}: {answer:.80}"
        );
    }
    assert_refused(&s.me(&huge).await, "invalid");
    still_whole(&s).await;
}

#[tokio::test]
async fn a_storm_of_garbage_leaves_the_server_whole() {
    let s = Server::start("").await;
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
    let s = Server::start("").await;
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
    let mut request = format!(
        "POST /api/auth/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {access}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for _ in 0..20 {
        request.push_str(&format!("1000\r\n{}\r\n", "x".repeat(4096)));
    }
    request.push_str("0\r\n\r\n");
    let answer = s.raw(request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.80}");
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
