//! The rules every endpoint shares (top of docs/API.md) and the operational endpoints.

use super::harness::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn two_hundred_concurrent_connections_are_served() {
    let s = std::sync::Arc::new(Server::start("").await);
    let mut tasks = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(200));
    for _ in 0..200 {
        let (s, gate) = (s.clone(), gate.clone());
        tasks.spawn(async move {
            gate.wait().await;
            let started = std::time::Instant::now();
            (s.get("/healthz").await.status, started.elapsed())
        });
    }
    let (mut ok, mut slowest) = (0, Duration::ZERO);
    while let Some(done) = tasks.join_next().await {
        let (status, took) = done.unwrap();
        ok += usize::from(status == 200);
        slowest = slowest.max(took);
    }
    assert_eq!(ok, 200);
    // A connection the listen queue had no room for is dropped, and its
    // client waits a full second before it tries again.
    assert!(
        slowest < Duration::from_secs(1),
        "a connection waited {slowest:?}: the listen backlog overflowed"
    );
}

#[tokio::test]
async fn the_log_holds_no_password_token_or_key() {
    let s = Server::start_process(&format!("signing_key = \"{HS_SECRET}\"")).await;
    let (access, refresh) = s.user("alice").await;
    s.me(&access).await;
    s.post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    s.post(
        "/api/token/",
        json!({"username": "alice", "password": "wrong-password-x"}),
    )
    .await;
    // Lines are written by a thread of their own: wait for the last one.
    let log = s.log_until(|log| log.contains("status=401")).await;
    assert!(
        log.contains("response"),
        "the log should record requests: {log}"
    );
    for secret in [
        PASSWORD,
        "wrong-password-x",
        HS_SECRET,
        access.as_str(),
        refresh.as_str(),
        "$argon2id$",
    ] {
        assert!(
            !log.contains(secret),
            "the log contains a secret: {secret:.20}"
        );
    }
}

#[tokio::test]
async fn readyz_reports_ready() {
    let s = Server::start("").await;
    let r = s.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ready");
    // The change log entry of the key generated at first start, at least.
    assert!(
        r.body["applied_change"].as_i64().is_some_and(|n| n >= 0),
        "{}",
        r.text
    );
    assert_eq!(r.body.as_object().unwrap().len(), 2, "{}", r.text);
}

#[tokio::test]
async fn metrics_count_requests_logins_and_tokens_in_prometheus_text() {
    let s = Server::start_process("").await;
    let (access, refresh) = s.user("alice").await;
    s.post(
        "/api/token/",
        json!({"username": "alice", "password": "wrong-password-x"}),
    )
    .await;
    s.post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    s.me(&access).await;
    // The routes the edge answers itself count as the router's do: each
    // status of each route (and their usual statuses from handles kept at hand).
    for _ in 0..2 {
        assert_eq!(s.me("not-a-token").await.status, 401);
        assert_eq!(
            s.get_with_token("/api/auth/check", &access).await.status,
            204
        );
    }
    assert_eq!(s.get_with_token("/api/auth/check", "x").await.status, 401);
    s.get("/nope").await;
    let r = s.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
    let text = r.text;
    for line in [
        "tessera_logins_total{result=\"success\"} 1",
        "tessera_logins_total{result=\"failure\"} 1",
        "tessera_tokens_refreshed_total 1",
        "tessera_tokens_issued_total{type=\"access\"} 2",
        "tessera_tokens_issued_total{type=\"refresh\"} 1",
        "tessera_refresh_reuse_detected_total 0",
        "tessera_rate_limited_total 0",
        "tessera_log_lines_dropped_total 0",
        "tessera_http_requests_total{method=\"POST\",route=\"/api/token\",status=\"401\"} 1",
        "tessera_http_requests_total{method=\"GET\",route=\"/api/auth/me\",status=\"200\"} 1",
        "tessera_http_requests_total{method=\"GET\",route=\"/api/auth/me\",status=\"401\"} 2",
        "tessera_http_requests_total{method=\"GET\",route=\"/api/auth/check\",status=\"204\"} 2",
        "tessera_http_requests_total{method=\"GET\",route=\"/api/auth/check\",status=\"401\"} 1",
        "tessera_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(text.contains("tessera_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/auth/me\",le=\"0.001\"}"), "{text}");
    assert!(text.contains("# TYPE tessera_http_requests_total counter"));
    // The batched writer's batches: the login's session at least.
    let batches = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_count ")))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name}_count in:\n{text}"))
    };
    assert!(batches("tessera_store_batch_writes") >= 1);
    assert!(batches("tessera_store_batch_seconds") >= 1);
    assert!(
        text.contains("tessera_store_batch_writes_bucket{le=\"256\"}"),
        "{text}"
    );
    assert!(
        text.contains("tessera_store_batch_seconds_bucket{le=\"0.001\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn request_logs_name_the_user_but_never_the_token() {
    let s = Server::start_process("").await;
    let (access, _) = s.user("alice").await;
    s.me(&access).await;
    s.get(&format!("/api/auth/me?access_token={access}")).await;
    let log = s
        .log_until(|log| log.matches("path=/api/auth/me").count() >= 2)
        .await;
    assert!(
        log.lines().any(|l| l.contains("path=/api/auth/me")
            && l.contains("user_id=1")
            && l.contains("status=200")),
        "{log}"
    );
    assert!(!log.contains(&access));
}

#[tokio::test]
async fn with_log_format_json_every_log_line_is_a_json_object() {
    let s = Server::start_process("log_format = \"json\"").await;
    let (access, _) = s.user("alice").await;
    assert_eq!(s.me(&access).await.status, 200);
    let log = s
        .log_until(|log| log.contains("/api/auth/me") && log.contains("\"response\""))
        .await;
    let mut responses = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        if event["message"] == "response" {
            responses += 1;
            assert!(event["status"].is_u64(), "{line}");
            assert!(event["latency_us"].is_u64(), "{line}");
            assert!(event["span"]["path"].is_string(), "{line}");
        }
    }
    assert!(responses >= 2, "{log}");
    // A format the setting does not know stops the start, naming it.
    let (code, _, err) = s
        .cli_with_env(&["migrate"], None, &[("TESSERA_LOG_FORMAT", "xml")])
        .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`log_format`") && err.contains("xml"), "{err}");
}
