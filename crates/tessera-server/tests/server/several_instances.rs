//! Two `tessera serve` processes started at once on one fresh database, as
//! a deployment behind a load balancer runs them: on a SQLite file, on
//! PostgreSQL, and on PostgreSQL with Redis. Every promise of the several
//! instances contract is checked on each: one key, decisions on refresh
//! tokens exact at once, access tokens and keys within a second or so, and a
//! killed instance that comes back knowing what happened while it was down.
//!
//! These tests choose their databases themselves, so they run in the
//! `server` binary only.

use super::harness::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SETTINGS: &str = "algorithm = \"ES256\"\nrotate_refresh_tokens = true\nblacklist_after_rotation = true\n\
                        user_rate_limit = \"off\"\nlogin_rate_limit = \"off\"\n\
                        refresh_grace_period = \"4s\"\n";

/// Past the grace period of [`SETTINGS`] (these processes run on the wall
/// clock, so the test waits it out once).
const PAST_GRACE: Duration = Duration::from_millis(4_500);

/// How long an access-token revocation may take to reach the other
/// instance: the contract's second.
const WITHIN: Duration = Duration::from_secs(1);

async fn refresh(s: &Server, token: &str) -> Reply {
    s.post("/api/token/refresh/", json!({"refresh": token}))
        .await
}

async fn logout(s: &Server, access: &str) {
    let r = s.logout(access).await;
    assert_eq!(r.status, 204, "logout: {}", r.text);
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// The time until `token` is refused on `s`'s /api/auth/me, counted from
/// `since`; fails after a few seconds.
async fn refused_after(s: &Server, token: &str, since: Instant) -> Duration {
    loop {
        let r = s.me(token).await;
        if r.status == 401 {
            assert_refused(&r, "revoked");
            let took = since.elapsed();
            // Seen with --nocapture: how fast the news travels.
            eprintln!("refused on the other instance after {took:?}");
            return took;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the revocation never reached the other instance"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the whole contract on `a` and `b`, two instances started together.
async fn the_contract_holds(mut servers: Vec<Server>) {
    let b = servers.pop().expect("b");
    let a = servers.pop().expect("a");

    // One signing key, the same on both, and one in the database.
    let jwks_a = a.get("/.well-known/jwks.json").await.body;
    let jwks_b = b.get("/.well-known/jwks.json").await.body;
    assert_eq!(kids(&jwks_a).len(), 1, "{jwks_a}");
    assert_eq!(kids(&jwks_a), kids(&jwks_b));
    assert_eq!(a.store().await.signing_keys().await.unwrap().len(), 1);

    // Signup on A, login on B.
    assert_eq!(a.signup("alice").await.status, 201);
    let (_, token) = b.login("alice").await;

    // Blacklisted on A: refused by the very next request on B.
    let r = a
        .post("/api/token/blacklist/", json!({"refresh": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_token_not_valid(&refresh(&b, &token).await);

    // Blacklisted on A, the logout of simplejwt's tutorial: the session
    // ends (blacklist_ends_session), its access token refused on B within
    // a second.
    let (access, token) = b.login("alice").await;
    assert_eq!(b.me(&access).await.status, 200);
    let at = Instant::now();
    let r = a
        .post("/api/token/blacklist/", json!({"refresh": token}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let took = refused_after(&b, &access, at).await;
    assert!(took <= WITHIN, "the blacklist reached B after {took:?}");

    // Rotated on A: within the grace period B answers the old token with
    // the successor A rotated it into; after it the old token is a reuse on
    // B, which ends the session, so the new one is refused on A too.
    let (_, token) = b.login("alice").await;
    let rotated = refresh(&a, &token).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new = rotated.body["refresh"].as_str().unwrap().to_owned();
    let again = refresh(&b, &token).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["refresh"], new.as_str());
    tokio::time::sleep(PAST_GRACE).await;
    assert_token_not_valid(&refresh(&b, &token).await);
    assert_token_not_valid(&refresh(&a, &new).await);

    // Logged out on A: the refresh token is refused by the next request on
    // B, the access token within a second.
    let (access, token) = a.login("alice").await;
    assert_eq!(b.me(&access).await.status, 200);
    let at = Instant::now();
    logout(&a, &access).await;
    // (The access token first: a refresh on B reads the database, and
    // would teach B what the change log is yet to.)
    let took = refused_after(&b, &access, at).await;
    assert!(took <= WITHIN, "logout reached B after {took:?}");
    assert_token_not_valid(&refresh(&b, &token).await);

    // A password change on A: older refresh tokens refused on B at once,
    // older access tokens within a second.
    let (access, token) = a.login("alice").await;
    let (older_access, older_token) = b.login("alice").await;
    let at = Instant::now();
    let r = a
        .send(
            a.http
                .post(a.url("/api/auth/password"))
                .bearer_auth(&access)
                .json(
                    &json!({"old_password": PASSWORD, "new_password": "amber-falcon-river-2031!"}),
                ),
        )
        .await;
    assert!(r.status < 300, "{}", r.text);
    let took = refused_after(&b, &older_access, at).await;
    assert!(
        took <= WITHIN,
        "the password change reached B after {took:?}"
    );
    assert_token_not_valid(&refresh(&b, &token).await);
    assert_token_not_valid(&refresh(&b, &older_token).await);

    // An admin deactivation on A: the same.
    let (root, _) = a.superuser("root").await;
    let (bob_access, bob_token) = {
        a.create_user("bob", false).await;
        b.login("bob").await
    };
    let bob_id = b.me(&bob_access).await.body["id"].as_i64().expect("id");
    let at = Instant::now();
    let r = a
        .send(
            a.http
                .patch(a.url(&format!("/api/admin/users/{bob_id}")))
                .bearer_auth(&root)
                .json(&json!({"is_active": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let took = refused_after(&b, &bob_access, at).await;
    assert!(took <= WITHIN, "the deactivation reached B after {took:?}");
    assert_token_not_valid(&refresh(&b, &bob_token).await);

    // Five concurrent refreshes of one token, spread over both instances,
    // within the grace period: all 200 with one and the same successor, and
    // the session lives on (its successor refreshes, its access tokens work
    // on both).
    a.create_user("carol", false).await;
    let (a, b_shared) = (Arc::new(a), Arc::new(b));
    for round in 0..3 {
        let (_, token) = a.login("carol").await;
        let gate = Arc::new(tokio::sync::Barrier::new(5));
        let racers: Vec<_> = (0..5)
            .map(|i| {
                let server = if i % 2 == 0 {
                    a.clone()
                } else {
                    b_shared.clone()
                };
                let (gate, token) = (gate.clone(), token.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    refresh(&server, &token).await
                })
            })
            .collect();
        let mut successors = std::collections::BTreeSet::new();
        let mut accesses = Vec::new();
        for racer in racers {
            let r = racer.await.unwrap();
            assert_eq!(r.status, 200, "round {round}: {}", r.text);
            successors.insert(r.body["refresh"].as_str().expect("refresh").to_owned());
            accesses.push(r.body["access"].as_str().expect("access").to_owned());
        }
        assert_eq!(successors.len(), 1, "round {round}: {successors:?}");
        for access in &accesses {
            assert_eq!(a.me(access).await.status, 200, "round {round}");
            assert_eq!(b_shared.me(access).await.status, 200, "round {round}");
        }
        let successor = successors.pop_first().expect("one");
        assert_eq!(
            refresh(&b_shared, &successor).await.status,
            200,
            "round {round}"
        );
    }
    let mut b = Arc::into_inner(b_shared).expect("the racers are done");
    let a = Arc::into_inner(a).expect("the racers are done");

    // A key rotation signing at once (the CLI, a third process) reaches
    // both within a few seconds: both publish the new key and sign with it.
    // (With key_publish_lead, see the test after this one.)
    let before = kids(&a.get("/.well-known/jwks.json").await.body);
    let (code, out, err) = a.cli(&["keys", "rotate", "--now"], None).await;
    assert_eq!(code, 0, "{out}{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut new_kids = Vec::new();
    for s in [&a, &b] {
        new_kids.push(loop {
            let now = kids(&s.get("/.well-known/jwks.json").await.body);
            if let Some(kid) = now.iter().find(|k| !before.contains(k)) {
                break kid.clone();
            }
            assert!(Instant::now() < deadline, "the new key never arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
    }
    assert_eq!(new_kids[0], new_kids[1]);
    let new_kid = &new_kids[0];
    for s in [&a, &b] {
        let (access, _) = s.login("carol").await;
        assert_eq!(segment(&access, 0)["kid"], new_kid.as_str());
        assert_eq!(a.me(&access).await.status, 200);
        assert_eq!(b.me(&access).await.status, 200);
    }

    // B killed with SIGKILL; a logout on A meanwhile; B, started again,
    // refuses the session from its first request.
    let (access, token) = a.login("carol").await;
    b.kill().await;
    logout(&a, &access).await;
    let b = b.restart().await;
    assert_refused(&b.me(&access).await, "revoked");
    assert_token_not_valid(&refresh(&b, &token).await);
    b.assert_healthy().await;
    a.assert_healthy().await;
}

/// A key published ahead of signing (key_publish_lead, 4 s here): both
/// instances publish it within a second, and both switch to it at its
/// moment on the database's clock, each by itself (the rotation's one
/// change reached them seconds before). Tokens minted on both, alternately,
/// around the moment: none signed by the new key before it, none by the old
/// key after it; each instance's first token of the new key is of that
/// second or the next (a process rounds the moment up to its own next
/// whole second, never down).
async fn both_switch_at_the_moment(servers: Vec<Server>) {
    let [a, b] = <[Server; 2]>::try_from(servers).unwrap_or_else(|_| panic!("two servers"));
    a.create_user("dave", false).await;
    let (old_access, _) = a.login("dave").await;
    let old_kid = segment(&old_access, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let (code, out, err) = a.cli(&["keys", "rotate"], None).await;
    assert_eq!(code, 0, "{out}{err}");
    let stored = a.store().await.signing_keys().await.expect("keys");
    let new = stored
        .iter()
        .find(|k| k.retired_at.is_none())
        .expect("the new key");
    let (new_kid, signs_from) = (new.kid.clone(), new.signs_from.expect("published ahead"));
    assert!(
        out.contains(&format!("New key {new_kid} (ES256) published")),
        "{out}"
    );
    // Published on both well before it signs.
    for s in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !kids(&s.get("/.well-known/jwks.json").await.body).contains(&new_kid) {
            assert!(Instant::now() < deadline, "the new key was not published");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // One session on each, refreshed (its refresh token rotating) for each
    // token: as many logins would end the oldest sessions past
    // max_sessions_per_user.
    let mut chains = [a.login("dave").await.1, b.login("dave").await.1];
    let mut first_new: [Option<i64>; 2] = [None, None];
    for _ in 0..100 {
        for (i, s) in [&a, &b].into_iter().enumerate() {
            let r = refresh(s, &chains[i]).await;
            assert_eq!(r.status, 200, "{}", r.text);
            chains[i] = r.body["refresh"].as_str().expect("refresh").to_owned();
            let access = r.body["access"].as_str().expect("access").to_owned();
            let kid = segment(&access, 0)["kid"].as_str().expect("kid").to_owned();
            let iat = segment(&access, 1)["iat"].as_i64().expect("iat");
            if kid == old_kid {
                assert!(
                    iat <= signs_from,
                    "the old key signed at {iat}, after {signs_from}"
                );
                assert!(first_new[i].is_none(), "back to the old key at {iat}");
            } else {
                assert_eq!(kid, new_kid);
                assert!(
                    iat >= signs_from,
                    "the new key signed at {iat}, before {signs_from}"
                );
                first_new[i].get_or_insert(iat);
            }
        }
        if first_new.iter().all(Option::is_some) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for first in first_new {
        let first = first.expect("switched to the new key");
        assert!(
            (signs_from..=signs_from + 1).contains(&first),
            "{first} {signs_from}"
        );
    }
    // The old key verifies on, on both.
    for s in [&a, &b] {
        let r = s.me(&old_access).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

#[tokio::test]
async fn two_instances_on_one_sqlite_file_switch_to_a_published_key_at_one_moment() {
    if on_postgres() {
        return;
    }
    let settings = format!("{SETTINGS}key_publish_lead = \"4s\"\n");
    let servers = Server::start_together(Database::Sqlite, &settings, 2).await;
    both_switch_at_the_moment(servers.expect("SQLite is always there")).await;
}

#[tokio::test]
async fn two_instances_on_postgresql_switch_to_a_published_key_at_one_moment() {
    if on_postgres() {
        return;
    }
    let settings = format!("{SETTINGS}key_publish_lead = \"4s\"\n");
    if let Some(servers) = Server::start_together(Database::Postgres, &settings, 2).await {
        both_switch_at_the_moment(servers).await;
    }
}

#[tokio::test]
async fn two_instances_on_one_sqlite_file_keep_the_contract() {
    if on_postgres() {
        return;
    }
    let servers = Server::start_together(Database::Sqlite, SETTINGS, 2).await;
    the_contract_holds(servers.expect("SQLite is always there")).await;
}

#[tokio::test]
async fn two_instances_on_postgresql_keep_the_contract() {
    if on_postgres() {
        return;
    }
    if let Some(servers) = Server::start_together(Database::Postgres, SETTINGS, 2).await {
        the_contract_holds(servers).await;
    }
}

#[tokio::test]
async fn two_instances_on_postgresql_with_redis_keep_the_contract() {
    if on_postgres() {
        return;
    }
    let Some(prefix) = RedisPrefix::new().await else {
        return;
    };
    let settings = prefix.config(SETTINGS);
    if let Some(servers) = Server::start_together(Database::Postgres, &settings, 2).await {
        the_contract_holds(servers).await;
    }
}
