//! Bad input that needs a connection (headers hyper reads): a clear 4xx,
//! never a 5xx, and nothing lost. The body rules are tested without a
//! socket in the `http` binary.

use super::harness::*;

/// Asserts the server still answers and the user made before the abuse can still log in.
async fn still_whole(s: &Server) {
    s.assert_healthy().await;
    let (access, _) = s.login("alice").await;
    assert_eq!(s.me(&access).await.status, 200);
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
