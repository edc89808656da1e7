//! Following other processes' writes through the change log: supervised,
//! reported by `/readyz`, and never silently stopped.

use super::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Polls `/readyz` until `ok` holds for its reply, or fails after `within`.
async fn readyz_until(s: &Server, within: Duration, ok: impl Fn(&Reply) -> bool) -> Reply {
    let deadline = Instant::now() + within;
    loop {
        let r = s.get("/readyz").await;
        if ok(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {} {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failing_sync_is_retried_and_readyz_reports_it_meanwhile() {
    let s = Server::start("").await;
    let (access, _) = s.user("alice").await;
    let r = s.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "ready");
    assert!(r.body["applied_change"].is_i64(), "{}", r.text);

    // Another process breaks the change log: the sync fails from now on.
    s.sql("ALTER TABLE changes RENAME TO changes_away").await;
    let r = readyz_until(&s, Duration::from_secs(10), |r| r.status == 503).await;
    assert_eq!(r.body, json!({"status": "unavailable", "reason": "sync"}));
    // Verification goes on from memory meanwhile.
    assert_eq!(s.get_with_token("/api/auth/me", &access).await.status, 200);

    // Repaired: the sync resumes by itself (within its longest backoff).
    s.sql("ALTER TABLE changes_away RENAME TO changes").await;
    readyz_until(&s, Duration::from_secs(15), |r| r.status == 200).await;

    // And it follows other processes again: a deactivation by the CLI is
    // applied, and alice's token refused, within a second or so.
    let config = s.config_path();
    let out = std::process::Command::new(binary())
        .args([
            "--config",
            config.to_str().unwrap(),
            "users",
            "deactivate",
            "alice",
        ])
        .current_dir(s.dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = s.get_with_token("/api/auth/me", &access).await;
        if r.status == 401 {
            assert_eq!(r.body["reason"], "revoked");
            break;
        }
        assert!(Instant::now() < deadline, "the deactivation never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn change_ids_rolled_back_make_no_instance_reload_its_state() {
    // On PostgreSQL a request cut short after its change id was drawn rolls
    // back and leaves a gap in the ids (SQLite gives the id back; there the
    // same gap is made by an entry written and deleted in one transaction).
    // Each such gap made every instance reload all users and markers.
    let s = Server::start_process("").await;
    s.create_user("alice", false).await;
    let insert =
        "INSERT INTO changes (kind, subject, expires_at, created_at) VALUES ('user', '0', NULL, 0)";
    let gap = if on_postgres() {
        format!("BEGIN; {insert}; ROLLBACK;")
    } else {
        format!(
            "BEGIN; {insert}; DELETE FROM changes WHERE id = (SELECT MAX(id) FROM changes); COMMIT;"
        )
    };
    for _ in 0..5 {
        let (access, _) = s.login("alice").await;
        s.sql_script(&gap).await;
        assert_eq!(s.logout(&access).await.status, 204);
        s.caught_up().await;
        assert_refused(&s.me(&access).await, "revoked");
    }
    let log = s.log();
    assert!(!log.contains("the change log has a gap"), "{log}");
}
