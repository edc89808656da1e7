//! The `tessera` command line (SPEC section 1).

use crate::harness::*;
use std::process::{Command, Stdio};

fn tessera(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let mut command = Command::new(binary());
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_configuration_stops_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = tessera(
        dir.path(),
        &["serve"],
        &[("TESSERA_ALGORITHM", "hs256")],
        None,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("`algorithm`") && err.contains("HS256") && err.contains("EdDSA"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        "acess_token_lifetime = \"5m\"\n",
    )
    .unwrap();
    let (code, _, err) = tessera(dir.path(), &["serve", "--config", "bad.toml"], &[], None);
    assert_ne!(code, 0);
    assert!(err.contains("acess_token_lifetime"), "{err}");
    let (code, _, err) = tessera(dir.path(), &["--config", "bad.toml", "migrate"], &[], None);
    assert_ne!(code, 0, "{err}");
    let (code, _, err) = tessera(
        dir.path(),
        &["serve"],
        &[("TESSERA_SIGNING_KEY", "short")],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("signing_key") && err.contains("32"), "{err}");
    assert!(!dir.path().join("tessera.db").exists() || code != 0);
}

#[test]
fn migrate_creates_the_database_and_createsuperuser_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = tessera(dir.path(), &["migrate"], &[], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Migrations applied"));
    assert!(dir.path().join("tessera.db").exists());
    let args = ["createsuperuser", "--username", "root", "--password-stdin"];
    let (code, out, err) = tessera(dir.path(), &args, &[], Some(&format!("{PASSWORD}\n")));
    assert_eq!(code, 0, "{out} {err}");
    let (code, _, err) = tessera(dir.path(), &args, &[], Some(&format!("{PASSWORD}\n")));
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    let args = ["createsuperuser", "--username", "weak", "--password-stdin"];
    let (code, _, err) = tessera(dir.path(), &args, &[], Some("password\n"));
    assert_ne!(code, 0);
    assert!(err.contains("too common"), "{err}");
}

#[tokio::test]
async fn token_decode_shows_claims_and_whether_the_token_verifies() {
    let s = Server::start("").await;
    let (access, _) = s.user("alice").await;
    let config = s.config_path();
    let config = config.to_str().unwrap();
    let (code, out, err) = tessera(
        s.dir(),
        &["token", "decode", &access, "--config", config],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"username\": \"alice\"") && out.contains("\"alg\": \"HS256\""),
        "{out}"
    );
    assert!(out.contains("verifies: yes"), "{out}");
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    let (code, out, _) = tessera(
        s.dir(),
        &["--config", config, "token", "decode", &tampered],
        &[],
        None,
    );
    assert_ne!(code, 0);
    assert!(out.contains("verifies: no (invalid)"), "{out}");
    let (code, out, _) = tessera(
        s.dir(),
        &["--config", config, "token", "decode", "garbage"],
        &[],
        None,
    );
    assert_ne!(code, 0);
    assert!(out.contains("not a JWT"), "{out}");
}
