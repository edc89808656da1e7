//! What survives a restart and a crash.

use super::harness::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn tokens_survive_a_restart_and_blacklisted_ones_stay_refused() {
    let s = Server::start("algorithm = \"ES256\"").await;
    let (access, refresh) = s.user("alice").await;
    let (_, blacklisted) = s.login("alice").await;
    assert_eq!(
        s.post("/api/token/blacklist/", json!({"refresh": blacklisted}))
            .await
            .status,
        200
    );
    let jwks_before = s.get("/.well-known/jwks.json").await.body;

    let s = s.restart().await;
    assert_eq!(
        s.get("/.well-known/jwks.json").await.body,
        jwks_before,
        "the key and its kid persist"
    );
    assert_eq!(s.me(&access).await.status, 200);
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": blacklisted}))
            .await,
    );
    assert_token_not_valid(
        &s.post("/api/token/verify/", json!({"token": blacklisted}))
            .await,
    );
}

#[tokio::test]
async fn revoked_families_stay_revoked_after_a_restart() {
    let s = Server::start("rotate_refresh_tokens = true\nblacklist_after_rotation = true").await;
    let (access, old) = s.user("alice").await;
    let r = s.post("/api/token/refresh/", json!({"refresh": old})).await;
    let new = r.body["refresh"].as_str().unwrap().to_owned();
    assert_token_not_valid(&s.post("/api/token/refresh/", json!({"refresh": old})).await);
    let s = s.restart().await;
    assert_refused(&s.me(&access).await, "revoked");
    assert_token_not_valid(&s.post("/api/token/refresh/", json!({"refresh": new})).await);
}

#[tokio::test]
async fn every_acknowledged_signup_survives_sigkill_during_a_burst() {
    let mut s = Server::start_process("").await;
    let client = s.http.clone();
    let url = s.url("/api/auth/signup");
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (client, url, acknowledged, in_flight) = (
            client.clone(),
            url.clone(),
            acknowledged.clone(),
            in_flight.clone(),
        );
        tasks.spawn(async move {
            let _permit = in_flight.acquire().await.unwrap();
            let username = format!("durable{i}");
            let sent = client
                .post(&url)
                .json(&json!({"username": username, "password": PASSWORD}))
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            if let Ok(response) = sent
                && response.status().as_u16() == 201
            {
                acknowledged.lock().unwrap().push(username);
            }
        });
    }
    // Kill once the burst is well under way, with requests still in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.kill().await;
    while tasks.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 20,
        "only {} signups before the kill",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() < 200,
        "the kill came after the burst; it proves nothing"
    );
    eprintln!(
        "{} of 200 signups acknowledged before SIGKILL",
        acknowledged.len()
    );

    let s = s.restart().await;
    // Every acknowledged account is in the database, whole...
    let store = s.store().await;
    let stored: std::collections::HashMap<String, String> = store
        .all_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.username, u.password_hash))
        .collect();
    for username in &acknowledged {
        let hash = stored.get(username);
        assert!(
            hash.is_some_and(|h| h.starts_with("$argon2id$")),
            "{username} was acknowledged but is not stored: {hash:?}"
        );
    }
    // ...and the first and the last acknowledged log in.
    for username in [&acknowledged[0], &acknowledged[acknowledged.len() - 1]] {
        s.login(username).await;
    }
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_blacklisted_token_stays_refused_through_the_leeway_across_a_restart() {
    // Past its exp but within the leeway, a token still passes the time
    // checks: its blacklist marker must still be there after a restart.
    let s =
        Server::start("leeway = \"30s\"\nrefresh_token_lifetime = \"1s\"\nreuse_detection = false")
            .await;
    let (_, refresh) = s.user("alice").await;
    let (_, other) = s.login("alice").await;
    assert_eq!(
        s.post("/api/token/blacklist/", json!({"refresh": refresh}))
            .await
            .status,
        200
    );
    s.advance(Duration::from_secs(2));
    let s = s.restart().await;
    // The control: an expired-but-within-leeway token that was not blacklisted still works.
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": other}))
            .await
            .status,
        200
    );
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
}
