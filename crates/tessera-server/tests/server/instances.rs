//! Several instances on one database: started at once on an empty one, the
//! migrations run once and exactly one signing key comes out of it; and what
//! one decides about a refresh token holds on the other at once.

use super::harness::*;
use serde_json::json;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Starts `count` servers on the configuration at `config` all at once and
/// returns their addresses once every one listens (the processes are killed
/// when the returned children are dropped).
async fn start_together(
    config: &std::path::Path,
    count: usize,
) -> Vec<(tokio::process::Child, String)> {
    let mut children: Vec<tokio::process::Child> = (0..count)
        .map(|_| {
            tokio::process::Command::new(binary())
                .arg("--config")
                .arg(config)
                .arg("serve")
                .env("TESSERA_LOG", "warn")
                .envs(hashing_env())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn tessera")
        })
        .collect();
    let mut started = Vec::new();
    for mut child in children.drain(..) {
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let listening = tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    return Some(addr.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(addr) = listening else {
            let out = child.wait_with_output().await.expect("output");
            panic!(
                "a server started with others did not come up: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        started.push((child, addr));
    }
    started
}

async fn one_key_among(config_text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(&config, config_text).unwrap();
    let servers = start_together(&config, 3).await;
    let http = reqwest::Client::new();
    let mut kids = Vec::new();
    for (_, addr) in &servers {
        let jwks: serde_json::Value = http
            .get(format!("http://{addr}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{jwks}");
        kids.push(keys[0]["kid"].clone());
    }
    assert!(kids.windows(2).all(|w| w[0] == w[1]), "{kids:?}");
    drop(servers);
    let settings = tessera_server::config::Settings::load(Some(&config), Vec::new()).unwrap();
    let store = tessera_server::server::open_store(&settings).await.unwrap();
    assert_eq!(
        store.signing_keys().await.unwrap().len(),
        1,
        "exactly one key stored"
    );
}

#[tokio::test]
async fn three_servers_started_at_once_on_a_fresh_sqlite_file_share_one_key() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("shared.db");
        one_key_among(&format!(
            "bind = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{}\"\nalgorithm = \"ES256\"\n",
            db.display()
        ))
        .await;
    }
}

#[tokio::test]
async fn three_servers_started_at_once_on_a_fresh_postgresql_database_share_one_key() {
    let Ok(admin) = std::env::var("TESSERA_TEST_POSTGRES_URL") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: PostgreSQL tests (TESSERA_TEST_POSTGRES_URL is not set)"
        );
        return;
    };
    for _ in 0..2 {
        let db = tessera_store::scratch::ScratchDatabase::create(&admin)
            .await
            .unwrap();
        one_key_among(&format!(
            "bind = \"127.0.0.1:0\"\ndatabase_url = \"{}\"\nalgorithm = \"ES256\"\n",
            db.url
        ))
        .await;
        db.drop_now().await.unwrap();
    }
}

async fn refresh(s: &Server, token: &str) -> Reply {
    s.post("/api/token/refresh/", json!({"refresh": token}))
        .await
}

#[tokio::test]
async fn what_one_instance_decides_about_a_refresh_token_holds_on_the_other_at_once() {
    let a = Server::start("rotate_refresh_tokens = true\nblacklist_after_rotation = true").await;
    let b = a.start_beside().await;
    a.create_user("alice", false).await;
    // Blacklisted on A: refused by the very next request on B.
    let (_, token) = a.login("alice").await;
    assert_eq!(
        a.post("/api/token/blacklist/", json!({"refresh": token}))
            .await
            .status,
        200
    );
    assert_token_not_valid(&refresh(&b, &token).await);
    // Rotated on A: within the grace period B answers the old token with
    // the successor A rotated it into; after it the old token is a reuse on
    // B, which ends the session: the new one is refused on A too.
    let (_, token) = a.login("alice").await;
    let rotated = refresh(&a, &token).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new = rotated.body["refresh"].as_str().unwrap().to_owned();
    let again = refresh(&b, &token).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["refresh"], new.as_str());
    for s in [&a, &b] {
        s.advance(std::time::Duration::from_secs(11));
    }
    assert_token_not_valid(&refresh(&b, &token).await);
    assert_token_not_valid(&refresh(&a, &new).await);
    // Logged out on A: refused on B.
    let (access, token) = a.login("alice").await;
    let r = a.logout(&access).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_token_not_valid(&refresh(&b, &token).await);
    // A password change on A: older refresh tokens refused on B.
    let (access, token) = a.login("alice").await;
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
    assert_token_not_valid(&refresh(&b, &token).await);
    // And a live token refreshes on either.
    let r = a
        .post(
            "/api/token/",
            json!({"username": "alice", "password": "amber-falcon-river-2031!"}),
        )
        .await;
    let token = r.body["refresh"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&b, &token).await.status, 200);
}

#[tokio::test]
async fn with_no_grace_period_concurrent_rotations_of_one_token_across_two_instances_give_one_200()
{
    let a = Server::start(
        "rotate_refresh_tokens = true\nblacklist_after_rotation = true\nuser_rate_limit = \"off\"\n\
         refresh_grace_period = \"0s\"",
    )
    .await;
    let b = std::sync::Arc::new(a.start_beside().await);
    let a = std::sync::Arc::new(a);
    a.create_user("alice", false).await;
    for round in 0..3 {
        let (_, token) = a.login("alice").await;
        let gate = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..20 {
            let (s, gate, token) = (
                if i % 2 == 0 { a.clone() } else { b.clone() },
                gate.clone(),
                token.clone(),
            );
            calls.spawn(async move {
                gate.wait().await;
                refresh(&s, &token).await.status
            });
        }
        let mut statuses = Vec::new();
        while let Some(status) = calls.join_next().await {
            statuses.push(status.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "{statuses:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_refreshes_across_two_instances_within_the_grace_period_share_one_successor() {
    let a = Server::start(
        "rotate_refresh_tokens = true\nblacklist_after_rotation = true\nuser_rate_limit = \"off\"",
    )
    .await;
    let b = std::sync::Arc::new(a.start_beside().await);
    let a = std::sync::Arc::new(a);
    a.create_user("alice", false).await;
    let (_, mut token) = a.login("alice").await;
    for round in 0..3 {
        let gate = std::sync::Arc::new(tokio::sync::Barrier::new(5));
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..5 {
            let (s, gate, token) = (
                if i % 2 == 0 { a.clone() } else { b.clone() },
                gate.clone(),
                token.clone(),
            );
            calls.spawn(async move {
                gate.wait().await;
                refresh(&s, &token).await
            });
        }
        let mut successors = std::collections::BTreeSet::new();
        while let Some(r) = calls.join_next().await {
            let r = r.unwrap();
            assert_eq!(r.status, 200, "round {round}: {}", r.text);
            let access = r.body["access"].as_str().unwrap();
            assert_eq!(a.me(access).await.status, 200, "round {round}");
            assert_eq!(b.me(access).await.status, 200, "round {round}");
            successors.insert(r.body["refresh"].as_str().unwrap().to_owned());
        }
        assert_eq!(successors.len(), 1, "round {round}: {successors:?}");
        token = successors.pop_first().unwrap();
    }
    // The session lives on, on both.
    assert_eq!(refresh(&b, &token).await.status, 200);
    assert_eq!(
        a.sql_number("SELECT COUNT(*) FROM revoked_families").await,
        0
    );
}

/// A refresh is minted from what the instance holds in memory and confirmed
/// by its write: when the other instance changed the user a moment ago (its
/// memory not synced yet), the write finds the database disagreeing and the
/// refresh is decided on the database instead: a role given on A is in the
/// token B mints at once, and a user deactivated on A is refused by B at
/// once. Repeated, so that B's sync never happens to come first every time.
#[tokio::test]
async fn a_refresh_on_an_instance_not_yet_synced_is_decided_on_the_database() {
    let a = Server::start(
        "rotate_refresh_tokens = true\nblacklist_after_rotation = true\nuser_rate_limit = \"off\"\n\
         login_rate_limit = \"off\"\nextra_claims = [\"roles\"]",
    )
    .await;
    let b = a.start_beside().await;
    let (root, _) = a.superuser("root").await;
    for round in 0..5 {
        let name = format!("user{round}");
        let (access, token) = b.user(&name).await;
        let id = segment(&access, 1)["user_id"].clone();
        let role = format!("role{round}");
        let r = a
            .send(
                a.http
                    .put(a.url(&format!("/api/admin/users/{id}/roles")))
                    .bearer_auth(&root)
                    .json(&json!({ "roles": [role] })),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = b
            .post("/api/token/refresh/", json!({"refresh": token}))
            .await;
        assert_eq!(r.status, 200, "round {round}: {}", r.text);
        let access = r.body["access"].as_str().unwrap();
        assert_eq!(segment(access, 1)["roles"], json!([role]), "round {round}");
        let token = r.body["refresh"].as_str().unwrap().to_owned();
        let r = a
            .send(
                a.http
                    .patch(a.url(&format!("/api/admin/users/{id}")))
                    .bearer_auth(&root)
                    .json(&json!({"is_active": false})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = b
            .post("/api/token/refresh/", json!({"refresh": token}))
            .await;
        assert_token_not_valid(&r);
    }
}
