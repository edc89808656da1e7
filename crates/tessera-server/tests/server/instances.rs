//! Several `tessera serve` processes started at once on one empty database:
//! the migrations run once and exactly one signing key comes out of it.

use crate::harness::*;
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
