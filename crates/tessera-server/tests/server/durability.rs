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
    let s = Server::start(
        "rotate_refresh_tokens = true\nblacklist_after_rotation = true\nrefresh_grace_period = \"0s\"",
    )
    .await;
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

/// Refresh rotations commit in batches (one transaction for many): a SIGKILL
/// in the middle of a burst must still lose none that was answered. After
/// the restart every acknowledged rotation is in the database whole (its old
/// token blacklisted, its new one recorded), every acknowledged old token is
/// refused, and each chain's last acknowledged token refreshes, unless the
/// request that was in flight with it at the kill had already committed.
#[tokio::test]
async fn a_sigkill_during_a_burst_of_rotations_loses_no_acknowledged_rotation() {
    const CHAINS: usize = 8;
    let mut s = Server::start_process(
        "rotate_refresh_tokens = true\nblacklist_after_rotation = true\nreuse_detection = false\n\
         refresh_grace_period = \"0s\"\nuser_rate_limit = \"off\"\nlogin_rate_limit = \"off\"",
    )
    .await;
    s.create_user("alice", false).await;
    let mut firsts = Vec::new();
    for _ in 0..CHAINS {
        firsts.push(s.login("alice").await.1);
    }
    // (old, new) pairs answered 200, per chain, in order.
    type Chains = Vec<Vec<(String, String)>>;
    let acknowledged: Arc<std::sync::Mutex<Chains>> =
        Arc::new(std::sync::Mutex::new(vec![Vec::new(); CHAINS]));
    let client = reqwest::Client::new();
    let url = s.url("/api/token/refresh/");
    let mut tasks = tokio::task::JoinSet::new();
    for (chain, first) in firsts.into_iter().enumerate() {
        let (client, url, acknowledged) = (client.clone(), url.clone(), acknowledged.clone());
        tasks.spawn(async move {
            let mut token = first;
            for _ in 0..1_000 {
                let sent = client
                    .post(&url)
                    .json(&json!({"refresh": token}))
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                if response.status().as_u16() != 200 {
                    return;
                }
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    return;
                };
                let new = body["refresh"].as_str().unwrap().to_owned();
                acknowledged.lock().unwrap()[chain].push((token, new.clone()));
                token = new;
            }
        });
    }
    let total = |a: &Chains| a.iter().map(Vec::len).sum::<usize>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while total(&acknowledged.lock().unwrap()) < 80 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.kill().await;
    while tasks.join_next().await.is_some() {}
    let acknowledged = acknowledged.lock().unwrap().clone();
    let count = total(&acknowledged);
    assert!(count >= 80, "only {count} rotations before the kill");
    assert!(
        count < CHAINS * 1_000,
        "the kill came after the burst; it proves nothing"
    );
    eprintln!("{count} rotations acknowledged before SIGKILL");

    let s = s.restart().await;
    let jti = |token: &str| segment(token, 1)["jti"].as_str().unwrap().to_owned();
    let blacklisted = async |token: &str| {
        s.sql_number(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE jti = '{}' AND blacklisted_at IS NOT NULL",
            jti(token)
        ))
        .await
            == 1
    };
    let recorded = async |token: &str| {
        s.sql_number(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE jti = '{}'",
            jti(token)
        ))
        .await
            == 1
    };
    for pairs in &acknowledged {
        for (old, new) in pairs {
            assert!(
                blacklisted(old).await,
                "an acknowledged rotation's old token is not blacklisted"
            );
            assert!(
                recorded(new).await,
                "an acknowledged rotation's new token is not recorded"
            );
        }
        let Some((_, last)) = pairs.last() else {
            continue;
        };
        // Unless the request in flight with it at the kill committed, the
        // last acknowledged token is live and refreshes.
        if !blacklisted(last).await {
            let r = s
                .post("/api/token/refresh/", json!({"refresh": last}))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        for (old, _) in pairs.iter().rev().take(3) {
            let r = s.post("/api/token/refresh/", json!({"refresh": old})).await;
            assert_token_not_valid(&r);
        }
    }
    s.assert_healthy().await;
}
