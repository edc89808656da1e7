//! `tessera revocations follow` against a stand-in for a Tessera's feed
//! endpoints: the snapshot line, each event's line, and resumption after a
//! dropped stream with the last event's id.

use super::harness::binary;
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const CLIENT_ID: &str = "tc_0123456789abcdef01234567";
const SECRET: &str = "cli-secret-0123456789";

/// Serves a snapshot at cursor 3, then streams that each end after one
/// event (4 for the first, 5 for a stream resumed after 4), as a server
/// dropping its followers would; records each stream's `Last-Event-ID`.
async fn stand_in(resumed: Arc<Mutex<Vec<String>>>) -> String {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{SECRET}"))
    );
    let app = Router::new()
        .route(
            "/oauth/token",
            post(move |headers: HeaderMap| async move {
                if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(&basic) {
                    return (StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#).into_response();
                }
                axum::Json(serde_json::json!({
                    "access_token": "client-token", "token_type": "bearer",
                    "expires_in": 300, "scope": "revocations"
                }))
                .into_response()
            }),
        )
        .route(
            "/api/revocations",
            get(|| async {
                axum::Json(serde_json::json!({
                    "cursor": "3", "window": 900, "families": [], "users": [],
                    "tokens": [], "clients": []
                }))
            }),
        )
        .route(
            "/api/revocations/stream",
            get(move |headers: HeaderMap| async move {
                let after = headers
                    .get("last-event-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                resumed.lock().unwrap().push(after.clone());
                let body = if after == "3" {
                    ": heartbeat\n\nid: 4\nevent: token_revoked\ndata: {\"jti\":\"0123456789abcdef0123456789abcdef\",\"exp\":1900000000}\n\n"
                } else {
                    "id: 5\nevent: keys_changed\ndata: {}\n\n"
                };
                ([(header::CONTENT_TYPE, "text/event-stream")], body)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test]
async fn follow_prints_the_snapshot_then_each_event_and_resumes_after_a_drop() {
    let resumed = Arc::new(Mutex::new(Vec::new()));
    let origin = stand_in(resumed.clone()).await;
    let mut child = tokio::process::Command::new(binary())
        .args([
            "revocations",
            "follow",
            "--url",
            &origin,
            "--client-id",
            CLIENT_ID,
        ])
        .env("TESSERA_CLIENT_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while printed.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("a line within 10 s")
            .unwrap()
            .expect("still running");
        printed.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
    }
    child.kill().await.unwrap();
    assert_eq!(
        printed,
        vec![
            serde_json::json!({"id": "3", "event": "snapshot", "data": {
                "cursor": "3", "window": 900, "families": [], "users": [], "tokens": [], "clients": []}}),
            serde_json::json!({"id": "4", "event": "token_revoked", "data": {
                "jti": "0123456789abcdef0123456789abcdef", "exp": 1900000000}}),
            serde_json::json!({"id": "5", "event": "keys_changed", "data": {}}),
        ]
    );
    assert_eq!(
        resumed.lock().unwrap()[..2],
        ["3".to_owned(), "4".to_owned()]
    );
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("revocation feed"), "{stderr}");
    assert!(!stderr.contains(SECRET));
}

#[test]
fn follow_wants_the_secret_from_a_file_or_the_environment() {
    let out = std::process::Command::new(binary())
        .args([
            "revocations",
            "follow",
            "--url",
            "http://127.0.0.1:1",
            "--client-id",
            CLIENT_ID,
        ])
        .env_remove("TESSERA_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tessera: give --client-secret-file PATH or set TESSERA_CLIENT_SECRET\n"
    );
    let flag = std::process::Command::new(binary())
        .args([
            "revocations",
            "follow",
            "--url",
            "x",
            "--client-id",
            "y",
            "--client-secret",
            "z",
        ])
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(2), "no such flag");
}
