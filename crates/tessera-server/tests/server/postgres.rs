//! The server and its CLI on PostgreSQL (`database_url = postgres://...`),
//! on a scratch database of the machine's server named by
//! `TESSERA_TEST_POSTGRES_URL` (skipped, saying so, when it is not set;
//! .ci/run sets it).

use super::harness::*;
use serde_json::json;
use tessera_store::scratch::ScratchDatabase;

/// A fresh database, or `None` (skipped) without `TESSERA_TEST_POSTGRES_URL`.
async fn scratch() -> Option<ScratchDatabase> {
    let Ok(admin) = std::env::var("TESSERA_TEST_POSTGRES_URL") else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: PostgreSQL tests (TESSERA_TEST_POSTGRES_URL is not set)"
        );
        return None;
    };
    Some(
        ScratchDatabase::create(&admin)
            .await
            .expect("a scratch database"),
    )
}

#[tokio::test]
async fn serve_and_every_cli_command_work_on_postgresql() {
    let Some(db) = scratch().await else { return };
    let config = format!("database_url = \"{}\"\nalgorithm = \"ES256\"", db.url);
    let s = Server::start_process(&config).await;
    let (code, out, err) = s.cli(&["migrate"], None).await;
    assert_eq!(code, 0, "{out} {err}");
    let (code, _, err) = s
        .cli(
            &["createsuperuser", "--username", "root", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    s.caught_up().await;
    let (root, _) = s.login("root").await;
    assert_eq!(segment(&root, 0)["alg"], "ES256");
    assert_eq!(s.me(&root).await.body["username"], "root");

    // Signup, login, refresh and blacklist through the server.
    s.signup("alice").await;
    let (access, refresh) = s.login("alice").await;
    assert_eq!(s.me(&access).await.status, 200);
    let r = s
        .post("/api/token/refresh/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .post("/api/token/blacklist/", json!({"refresh": refresh}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_token_not_valid(
        &s.post("/api/token/refresh/", json!({"refresh": refresh}))
            .await,
    );

    // The CLI on the same database: users, keys, tokens.
    let (code, out, _) = s.cli(&["users", "list"], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("alice") && out.contains("root"), "{out}");
    let (code, out, err) = s
        .cli(&["token", "issue", "--username", "alice"], None)
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.me(out.trim()).await.status, 200);
    let (code, _, err) = s.cli(&["users", "deactivate", "alice"], None).await;
    assert_eq!(code, 0, "{err}");
    s.caught_up().await;
    assert_refused(&s.me(&access).await, "revoked");
    let (code, out, err) = s.cli(&["keys", "rotate", "--now"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("New signing key"), "{out}");
    let (code, out, _) = s.cli(&["keys", "list"], None).await;
    assert_eq!(code, 0);
    assert_eq!(out.matches("ES256").count(), 2, "{out}");
    s.caught_up().await;
    let (after, _) = s.login("root").await;
    assert_ne!(segment(&after, 0)["kid"], segment(&root, 0)["kid"]);
    assert_eq!(s.me(&root).await.status, 200, "the old key still verifies");
    s.assert_healthy().await;
    drop(s);
    db.drop_now().await.expect("drop the scratch database");
}

#[tokio::test]
async fn a_database_that_does_not_exist_stops_the_start_with_one_line() {
    let Some(db) = scratch().await else { return };
    let missing = format!(
        "{}_missing",
        db.url.rsplit_once('?').map_or(db.url.as_str(), |(u, _)| u)
    );
    let out = std::process::Command::new(binary())
        .arg("migrate")
        .env("TESSERA_DATABASE_URL", &missing)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    db.drop_now().await.expect("drop the scratch database");
}

/// `tessera migrate` with this database URL: exit code and stderr.
fn migrate_with(url: &str) -> (Option<i32>, String) {
    let out = std::process::Command::new(binary())
        .arg("migrate")
        .env("TESSERA_DATABASE_URL", url)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_malformed_refused_or_unreachable_postgresql_url_stops_the_start_with_one_line() {
    if postgres_admin_url().is_none() {
        return;
    }
    let cases = [
        // Malformed.
        (
            "postgres://postgres@127.0.0.1:notaport/x",
            "invalid port number",
        ),
        ("postgres://postgres@[::1/x", "invalid IPv6 address"),
        // A role the server refuses (its password is never logged).
        (
            "postgres://nosuchrole:hunter2-secret@127.0.0.1:5432/postgres",
            "role \"nosuchrole\" does not exist",
        ),
        // Nothing listens: said at once, not after the pool's timeout.
        (
            "postgres://postgres@127.0.0.1:1/postgres",
            "Connection refused",
        ),
    ];
    for (url, cause) in cases {
        let started = std::time::Instant::now();
        let (code, err) = migrate_with(url);
        assert_eq!(code, Some(1), "{url}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{url}: {err}");
        assert!(err.contains(cause), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "{url}: took {:?}",
            started.elapsed()
        );
    }
}
