//! Rotation, blacklisting after rotation, concurrent refreshes and reuse detection.

use super::harness::*;
use serde_json::json;
use std::sync::Arc;

const ROTATING: &str = "rotate_refresh_tokens = true\nblacklist_after_rotation = true";

#[tokio::test]
async fn twenty_concurrent_refreshes_of_one_token_give_exactly_one_200() {
    let s = Arc::new(Server::start(ROTATING).await);
    let (_, refresh) = s.user("alice").await;
    let mut tasks = tokio::task::JoinSet::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    for _ in 0..20 {
        let (s, refresh, barrier) = (s.clone(), refresh.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            s.post("/api/token/refresh/", json!({"refresh": refresh}))
                .await
        });
    }
    let mut ok = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        match reply.status {
            200 => ok += 1,
            401 => assert_token_not_valid(&reply),
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!(ok, 1);
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_rotated_token_presented_again_revokes_its_whole_family() {
    let s = Server::start(ROTATING).await;
    let (first_access, old) = s.user("alice").await;
    let r = s.post("/api/token/refresh/", json!({"refresh": old})).await;
    assert_eq!(r.status, 200);
    let new_refresh = r.body["refresh"].as_str().unwrap().to_owned();
    let new_access = r.body["access"].as_str().unwrap().to_owned();
    assert_eq!(s.me(&new_access).await.status, 200);

    // The thief (or a confused client) presents the rotated token again.
    assert_token_not_valid(&s.post("/api/token/refresh/", json!({"refresh": old})).await);

    // Every token of that login is now refused: the new refresh token and both access tokens.
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": new_refresh}))
            .await,
    );
    assert_refused(&s.me(&new_access).await, "revoked");
    assert_refused(&s.me(&first_access).await, "revoked");

    // Another login of the same user is another family, untouched.
    let (other_access, other_refresh) = s.login("alice").await;
    assert_eq!(s.me(&other_access).await.status, 200);
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": other_refresh}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn without_reuse_detection_a_rotated_token_is_refused_but_the_family_lives() {
    let s = Server::start(&format!("{ROTATING}\nreuse_detection = false")).await;
    let (_, old) = s.user("alice").await;
    let r = s.post("/api/token/refresh/", json!({"refresh": old})).await;
    let new_refresh = r.body["refresh"].as_str().unwrap().to_owned();
    assert_token_not_valid(&s.post("/api/token/refresh/", json!({"refresh": old})).await);
    assert_eq!(
        s.post("/api/token/refresh/", json!({"refresh": new_refresh}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_chain_of_rotations_keeps_working() {
    let s = Server::start(ROTATING).await;
    let (_, mut refresh) = s.user("alice").await;
    for _ in 0..5 {
        let r = s
            .post("/api/token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let access = r.body["access"].as_str().unwrap();
        assert_eq!(s.me(access).await.status, 200);
        refresh = r.body["refresh"].as_str().unwrap().to_owned();
    }
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let s = Server::start("refresh_token_lifetime = \"1s\"").await;
    let (_, refresh) = s.user("alice").await;
    s.advance(std::time::Duration::from_secs(2));
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );
}
