//! Rotation, blacklisting after rotation, concurrent refreshes, the grace
//! period and reuse detection.

use super::harness::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const ROTATING: &str = "rotate_refresh_tokens = true\nblacklist_after_rotation = true";
/// Rotation without a grace period: a rotated token is spent at once.
const NO_GRACE: &str =
    "rotate_refresh_tokens = true\nblacklist_after_rotation = true\nrefresh_grace_period = \"0s\"";
/// Past the default grace period (10 s).
const PAST_GRACE: Duration = Duration::from_secs(11);

async fn refresh(s: &Server, token: &str) -> Reply {
    s.post("/api/token/refresh/", json!({"refresh": token}))
        .await
}

fn field(r: &Reply, name: &str) -> String {
    r.body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name}: {}", r.text))
        .to_owned()
}

/// `n` refreshes of `token` let go at once (a barrier), their replies.
async fn race(s: &Arc<Server>, token: &str, n: usize) -> Vec<Reply> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let racers: Vec<_> = (0..n)
        .map(|_| {
            let (s, token, barrier) = (s.clone(), token.to_owned(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                refresh(&s, &token).await
            })
        })
        .collect();
    let mut replies = Vec::new();
    for racer in racers {
        replies.push(racer.await.unwrap());
    }
    replies
}

#[tokio::test]
async fn five_concurrent_refreshes_within_the_grace_period_share_one_successor() {
    let s = Arc::new(Server::start(ROTATING).await);
    let (_, first) = s.user("alice").await;
    // Repeated trials: each round races the token the last one rotated into.
    let mut token = first;
    for round in 0..5 {
        let replies = race(&s, &token, 5).await;
        for r in &replies {
            assert_eq!(r.status, 200, "round {round}: {}", r.text);
        }
        let successors: std::collections::BTreeSet<String> =
            replies.iter().map(|r| field(r, "refresh")).collect();
        assert_eq!(successors.len(), 1, "round {round}: {successors:?}");
        // Every access token given out works: the session survived.
        for r in &replies {
            assert_eq!(s.me(&field(r, "access")).await.status, 200, "round {round}");
        }
        let successor = successors.into_iter().next().unwrap();
        assert_ne!(successor, token);
        token = successor;
    }
    // The database holds one refresh token per rotation (the first, then
    // one per round), one live session, and no family revoked.
    assert_eq!(s.sql_number("SELECT COUNT(*) FROM refresh_tokens").await, 6);
    assert_eq!(
        s.sql_number("SELECT COUNT(*) FROM revoked_families").await,
        0
    );
    assert_eq!(
        s.sql_number("SELECT COUNT(*) FROM refresh_tokens WHERE blacklisted_at IS NULL")
            .await,
        1
    );
    assert_eq!(refresh(&s, &token).await.status, 200);
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_rotated_token_presented_within_the_grace_period_gets_the_newest_token() {
    let s = Server::start(ROTATING).await;
    let (_, r0) = s.user("alice").await;
    let first = refresh(&s, &r0).await;
    let r1 = field(&first, "refresh");
    // The same successor again, with a new access token.
    let again = refresh(&s, &r0).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(field(&again, "refresh"), r1);
    assert_ne!(field(&again, "access"), field(&first, "access"));
    assert_eq!(s.me(&field(&again, "access")).await.status, 200);
    // The winner refreshed again (R1 into R2): a late tab presenting R0 gets
    // R2, the session's newest token, not R1, which would be a reuse later.
    let second = refresh(&s, &r1).await;
    let r2 = field(&second, "refresh");
    let late = refresh(&s, &r0).await;
    assert_eq!(late.status, 200, "{}", late.text);
    assert_eq!(field(&late, "refresh"), r2);
    // Past both grace periods the rotated tokens are spent; R2 lives on
    // until one of them is presented.
    s.advance(PAST_GRACE);
    assert_eq!(refresh(&s, &r2).await.status, 200);
}

#[tokio::test]
async fn a_rotated_token_presented_after_the_grace_period_is_a_reuse() {
    let s = Server::start(ROTATING).await;
    let (access, old) = s.user("alice").await;
    let r = refresh(&s, &old).await;
    let (new_access, new_refresh) = (field(&r, "access"), field(&r, "refresh"));
    s.advance(PAST_GRACE);
    assert_token_not_valid(&refresh(&s, &old).await);
    // A reuse: the whole login is revoked.
    assert_token_not_valid(&refresh(&s, &new_refresh).await);
    assert_refused(&s.me(&new_access).await, "revoked");
    assert_refused(&s.me(&access).await, "revoked");
    assert_eq!(
        s.sql_number("SELECT COUNT(*) FROM revoked_families").await,
        1
    );
}

#[tokio::test]
async fn the_grace_period_ends_with_the_session() {
    let s = Server::start(ROTATING).await;
    let (_, old) = s.user("alice").await;
    let r = refresh(&s, &old).await;
    assert_eq!(s.logout(&field(&r, "access")).await.status, 204);
    assert_token_not_valid(&refresh(&s, &old).await);
    // A password change ends it too.
    let (access, old) = s.login("alice").await;
    assert_eq!(refresh(&s, &old).await.status, 200);
    let change = s
        .send(
            s.http
                .post(s.url("/api/auth/password"))
                .bearer_auth(&access)
                .json(
                    &json!({"old_password": PASSWORD, "new_password": "amber-falcon-river-2031!"}),
                ),
        )
        .await;
    assert!(change.status < 300, "{}", change.text);
    assert_token_not_valid(&refresh(&s, &old).await);
}

#[tokio::test]
async fn the_database_keeps_the_successor_sealed_and_only_for_the_grace_period() {
    let s = Server::start(ROTATING).await;
    let (_, old) = s.user("alice").await;
    let new = field(&refresh(&s, &old).await, "refresh");
    assert_eq!(
        s.sql_number("SELECT COUNT(*) FROM refresh_successors")
            .await,
        1
    );
    // Neither the token nor any of its three parts is in the row.
    for part in std::iter::once(new.as_str()).chain(new.split('.')) {
        let hex: String = part.bytes().map(|b| format!("{b:02x}")).collect();
        let found = s
            .sql_number(&format!(
                "SELECT COUNT(*) FROM refresh_successors WHERE {}",
                if s.database_url().starts_with("postgres") {
                    format!("position(decode('{hex}', 'hex') in sealed) > 0")
                } else {
                    format!("instr(sealed, x'{hex}') > 0")
                }
            ))
            .await;
        assert_eq!(found, 0, "{part} is stored in clear");
    }
    // Pruning takes it once the period is over (the refresh tokens stay).
    s.advance(PAST_GRACE);
    let pruned = s.store().await.prune(s.now(), 0).await.unwrap();
    assert!(pruned >= 1);
    assert_eq!(
        s.sql_number("SELECT COUNT(*) FROM refresh_successors")
            .await,
        0
    );
    assert_eq!(s.sql_number("SELECT COUNT(*) FROM refresh_tokens").await, 2);
}

#[tokio::test]
async fn with_no_grace_period_twenty_concurrent_refreshes_of_one_token_give_exactly_one_200() {
    let s = Arc::new(Server::start(NO_GRACE).await);
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
async fn with_no_grace_period_a_rotated_token_presented_again_revokes_its_whole_family() {
    let s = Server::start(NO_GRACE).await;
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
    let s = Server::start(&format!("{NO_GRACE}\nreuse_detection = false")).await;
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
