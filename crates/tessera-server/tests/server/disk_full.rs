//! A full disk, then freed: while it is full, every write the server cannot
//! make is a 503 with `Retry-After` (never a 500) and `/readyz` says so;
//! once there is room again, every kind of write works within seconds,
//! without a restart (docs/SECURITY.md). On SQLite: PostgreSQL's disk is the
//! shared server's, which no test may fill.

use super::harness::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs of its own, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it); `None`,
    /// saying so, where this machine does not let the tests mount one.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .is_ok_and(|out| out.status.success());
        if mounted {
            return Some(SmallDisk { dir });
        }
        let message = "cannot mount a tmpfs (the test needs root, as CI runs it)";
        // .ci/run runs as root on a machine that allows it: there, a skip would hide a failure.
        assert!(
            std::env::var_os("TESSERA_TEST_REQUIRE_TOOLS").is_none(),
            "{message}"
        );
        eprintln!("skipped: {message}");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes zeros until the disk refuses another byte.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        // What is left is smaller than a chunk: take it byte by byte.
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A 2xx, or a 503 with `Retry-After` and the usual body: never anything
/// else, whatever the disk does.
fn assert_done_or_retry(what: &str, r: &Reply) -> bool {
    if (200..300).contains(&r.status) {
        return true;
    }
    assert_eq!(r.status, 503, "{what}: {}", r.text);
    assert_eq!(r.header("retry-after"), Some("1"), "{what}");
    assert_eq!(
        r.body,
        json!({"detail": "Service temporarily unavailable, try again later."}),
        "{what}"
    );
    false
}

/// One of each kind of write a client or an admin makes; how many were
/// refused (each as [`assert_done_or_retry`] allows).
async fn every_kind_of_write(s: &Server, round: usize, admin: &str, bob: i64) -> usize {
    let mut refused = 0;
    let name = format!("u{round}");
    let mut note = |what: &str, r: &Reply| refused += usize::from(!assert_done_or_retry(what, r));
    let r = s
        .post(
            "/api/auth/signup",
            json!({"username": name, "password": PASSWORD}),
        )
        .await;
    note("signup", &r);
    let r = s
        .post(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    note("login", &r);
    if r.status == 200 {
        let access = r.body["access"].as_str().unwrap().to_owned();
        let refresh = r.body["refresh"].as_str().unwrap().to_owned();
        let r = s
            .post("/api/token/refresh/", json!({"refresh": refresh}))
            .await;
        note("refresh", &r);
        if r.status == 200 {
            let rotated = r.body["refresh"].as_str().unwrap().to_owned();
            let r = s
                .post("/api/token/blacklist/", json!({"refresh": rotated}))
                .await;
            note("blacklist", &r);
        }
        let r = s.logout(&access).await;
        note("logout", &r);
    }
    let r = s
        .send(
            s.http
                .post(s.url(&format!("/api/admin/users/{bob}/revoke")))
                .bearer_auth(admin),
        )
        .await;
    note("admin revoke", &r);
    let r = s
        .send(
            s.http
                .patch(s.url(&format!("/api/admin/users/{bob}")))
                .bearer_auth(admin)
                .json(&json!({"is_active": round % 2 == 1})),
        )
        .await;
    note("deactivation", &r);
    refused
}

async fn readyz(s: &Server) -> (u16, Value) {
    let r = s.get("/readyz").await;
    (r.status, r.body)
}

#[tokio::test]
async fn after_a_full_disk_is_freed_every_write_works_again_without_a_restart() {
    if on_postgres() {
        return;
    }
    let Some(disk) = SmallDisk::mount("8m") else {
        return;
    };
    let database = disk.path().join("tessera.db");
    // The blacklist and the logout of each round are of one login: a
    // blacklist that ended the session would leave the logout nothing to do.
    let s = Server::start_process(&format!(
        "database_url = \"sqlite://{}\"\nlogin_rate_limit = \"off\"\nuser_rate_limit = \"off\"\n\
         rotate_refresh_tokens = true\nblacklist_after_rotation = true\nblacklist_ends_session = false",
        database.display()
    ))
    .await;
    s.create_user("alice", false).await;
    let (bob, _) = s.user("bob").await;
    let bob = s.me(&bob).await.body["id"].as_i64().unwrap();
    let (admin, _) = s.superuser("root").await;
    assert_eq!(every_kind_of_write(&s, 0, &admin, bob).await, 0);

    disk.fill();
    // Enough writes that the free pages SQLite still had run out too.
    let mut refused = 0;
    for round in 1..=20 {
        refused += every_kind_of_write(&s, round, &admin, bob).await;
    }
    assert!(
        refused > 0,
        "the disk was full and every write went through"
    );
    let (status, body) = readyz(&s).await;
    assert_eq!(
        (status, body),
        (503, json!({"status": "unavailable", "reason": "database"}))
    );

    disk.free();
    // Within seconds every kind of write works again, and readyz says ready.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut round = 100;
    loop {
        round += 1;
        let refused = every_kind_of_write(&s, round, &admin, bob).await;
        let (status, _) = readyz(&s).await;
        if refused == 0 && status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "15 s after the disk was freed: {refused} writes refused, readyz {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And go on working: many refreshes through the batched writer.
    for _ in 0..20 {
        let (_, refresh) = s.login("alice").await;
        let r = s
            .post("/api/token/refresh/", json!({"refresh": refresh}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(!s.log().contains("database is locked"), "{}", s.log());
    s.assert_healthy().await;
}
