//! The refresh interceptor of the Vue + axios tutorials, run by Node with
//! the real axios against Tessera with rotation and blacklisting on: five
//! calls that find the access token expired fire five refreshes of one
//! refresh token, and the grace period keeps every call and the session
//! alive. With the grace period off, the same client loses its session.

use super::harness::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const SETTINGS: &str = "rotate_refresh_tokens = true\nblacklist_after_rotation = true\n\
                        access_token_lifetime = \"3s\"";

/// Where `.ci/install-test-tools` installs axios.
fn node_modules() -> Option<PathBuf> {
    let dir = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/tessera-node/node_modules");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let axios = dir.join("axios/package.json").exists();
    available(
        &format!("node and axios in {}", dir.display()),
        node && axios,
    )
    .then_some(dir)
}

/// Runs the tutorial's client against `s`: login, the access token left to
/// expire, five calls at once, one more, and a refresh with the refresh
/// token it ends with. Its summary.
async fn run_tutorial_client(s: &Server) -> Option<Value> {
    let modules = node_modules()?;
    // ES modules resolve imports next to the script: run a copy of it beside
    // a link to the installed packages.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("naive_interceptor.mjs");
    std::fs::copy(
        package_dir().join("tests/fixtures/axios/naive_interceptor.mjs"),
        &script,
    )
    .unwrap();
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    s.create_user("alice", false).await;
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .args([&s.url(""), "alice", PASSWORD, "3500"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), output)
        .await
        .expect("the client finished within 30 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_str(stdout.trim()).unwrap())
}

/// Whether two of the client's refreshes presented the same refresh token
/// (on a loaded machine the five 401s may come back far enough apart that
/// each refresh already holds the previous one's successor: no race).
fn raced(summary: &Value) -> bool {
    let presented: Vec<&str> = summary["refreshes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["presented"].as_str())
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = presented.iter().collect();
    distinct.len() < presented.len()
}

/// Runs the client on fresh servers with `settings` until its refreshes
/// raced (at most three tries), checking each run with `check`.
async fn until_raced(settings: &str, check: impl Fn(&Value, i64)) {
    for _ in 0..3 {
        let s = Server::start(settings).await;
        let Some(summary) = run_tutorial_client(&s).await else {
            return;
        };
        let revoked = s.sql_number("SELECT COUNT(*) FROM revoked_families").await;
        if raced(&summary) {
            check(&summary, revoked);
            s.assert_healthy().await;
            return;
        }
    }
    panic!("in three runs the client's refreshes never presented one token twice");
}

#[tokio::test]
async fn the_tutorials_naive_interceptor_keeps_its_session_within_the_grace_period() {
    if on_postgres() {
        return;
    }
    until_raced(SETTINGS, |summary, revoked| {
        // One refresh per call, each 200; refreshes of one token got one
        // and the same successor.
        let refreshes = summary["refreshes"].as_array().unwrap();
        assert_eq!(refreshes.len(), 5, "{summary}");
        assert!(refreshes.iter().all(|r| r["status"] == 200), "{summary}");
        let mut successor_of = std::collections::BTreeMap::new();
        for r in refreshes {
            let (presented, got) = (r["presented"].as_str(), r["refresh"].as_str());
            assert_eq!(
                *successor_of.entry(presented).or_insert(got),
                got,
                "{summary}"
            );
        }
        // All five calls succeed, and the session lives on.
        assert_eq!(
            summary["calls"],
            serde_json::json!([200, 200, 200, 200, 200])
        );
        assert_eq!(summary["after"], 200, "{summary}");
        assert_eq!(summary["refreshAfter"], 200, "{summary}");
        assert_eq!(revoked, 0);
    })
    .await;
}

#[tokio::test]
async fn without_a_grace_period_the_same_client_loses_its_session() {
    if on_postgres() {
        return;
    }
    until_raced(
        &format!("{SETTINGS}\nrefresh_grace_period = \"0s\""),
        |summary, revoked| {
            // The token presented twice was a reuse that ended the login,
            // the winner's new tokens included. (A refused refresh is
            // itself a 401 the client refreshes for, with whatever token it
            // holds by then; the script bounds the loop that follows.)
            let refreshes = summary["refreshes"].as_array().unwrap();
            assert!(
                refreshes.iter().any(|r| r["status"] == 401)
                    && refreshes
                        .iter()
                        .all(|r| r["status"] == 200 || r["status"] == 401),
                "{summary}"
            );
            let calls = summary["calls"].as_array().unwrap();
            assert!(calls.iter().any(|c| *c == 401), "{summary}");
            assert_eq!(summary["after"], 401, "{summary}");
            assert_eq!(summary["refreshAfter"], 401, "{summary}");
            assert_eq!(revoked, 1);
        },
    )
    .await;
}
