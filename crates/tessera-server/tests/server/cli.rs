//! The `tessera` command line (the README).

use super::harness::*;
use std::process::{Command, Stdio};

fn tessera(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    run(Command::new(binary()), dir, args, env, stdin)
}

/// Runs `command` (the binary, or a wrapper whose last argument is it) with
/// `args` in `dir`; its exit code, standard output and standard error.
fn run(
    mut command: Command,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (i32, String, String) {
    command
        .args(args)
        .envs(hashing_env())
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

/// Asserts that a failed start said one thing, on one line, and did not panic.
fn assert_one_clear_line(code: i32, err: &str, expected: &[&str]) {
    assert_ne!(code, 0, "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("tessera: "), "{err}");
    for part in expected {
        assert!(lines[0].contains(part), "`{part}` missing from: {err}");
    }
}

#[test]
fn a_config_file_that_does_not_exist_is_named_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = tessera(dir.path(), &["--config", "nope.toml", "serve"], &[], None);
    assert_eq!(code, 2, "{err}");
    assert_one_clear_line(code, &err, &["nope.toml", "No such file"]);
    assert!(!dir.path().join("tessera.db").exists());
}

#[test]
fn a_config_file_that_is_not_toml_gives_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        "bind = \"127.0.0.1:0\"\nthis is not toml\n",
    )
    .unwrap();
    let (code, _, err) = tessera(dir.path(), &["serve", "--config", "t.toml"], &[], None);
    assert_eq!(code, 2, "{err}");
    assert_one_clear_line(code, &err, &["t.toml", "not TOML", "line 2, column"]);
    // Not UTF-8 at all.
    std::fs::write(dir.path().join("b.toml"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let (code, _, err) = tessera(dir.path(), &["serve", "--config", "b.toml"], &[], None);
    assert_one_clear_line(code, &err, &["b.toml"]);
    assert!(!dir.path().join("tessera.db").exists());
}

#[test]
fn an_unknown_key_in_the_config_file_is_named_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), "acess_token_lifetime = \"5m\"\n").unwrap();
    let (code, _, err) = tessera(dir.path(), &["serve", "--config", "t.toml"], &[], None);
    assert_eq!(code, 2, "{err}");
    assert_one_clear_line(
        code,
        &err,
        &[
            "unknown setting `acess_token_lifetime`",
            "access_token_lifetime",
        ],
    );
}

#[test]
fn a_bind_address_in_use_is_named_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = tessera(
        dir.path(),
        &["serve"],
        &[("TESSERA_BIND", &addr), ("TESSERA_LOG", "warn")],
        None,
    );
    assert_one_clear_line(code, &err, &["cannot listen on", &addr, "already in use"]);
    // The database it opened before trying to listen is intact and usable.
    let (code, out, err) = tessera(dir.path(), &["users", "list"], &[], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("username"), "{out}");
}

#[test]
fn a_database_directory_that_does_not_exist_is_named_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = tessera(
        dir.path(),
        &["serve"],
        &[
            ("TESSERA_DATABASE_URL", "sqlite://no/such/dir/tessera.db"),
            ("TESSERA_BIND", "127.0.0.1:0"),
        ],
        None,
    );
    assert_one_clear_line(
        code,
        &err,
        &[
            "sqlite://no/such/dir/tessera.db",
            "the directory no/such/dir does not exist",
        ],
    );
    assert!(!dir.path().join("no").exists());
}

/// Runs `tessera` without the capability that lets root write anywhere, so
/// that a read-only directory is read-only for it too.
fn tessera_without_root_override(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<(i32, String, String)> {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !root {
        return Some(tessera(dir, args, env, None));
    }
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    if !tools_present(
        "setpriv (util-linux), to run as root without its override",
        &[setpriv],
    ) {
        return None;
    }
    let mut command = Command::new(setpriv);
    command.args([
        "--bounding-set",
        "-dac_override,-dac_read_search",
        "--inh-caps",
        "-dac_override,-dac_read_search",
        binary(),
    ]);
    Some(run(command, dir, args, env, None))
}

#[test]
fn a_read_only_database_directory_is_named_on_one_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let env = [
        ("TESSERA_DATABASE_URL", "sqlite://ro/tessera.db"),
        ("TESSERA_BIND", "127.0.0.1:0"),
    ];
    let Some((code, _, err)) = tessera_without_root_override(dir.path(), &["serve"], &env) else {
        return;
    };
    assert_one_clear_line(
        code,
        &err,
        &[
            "sqlite://ro/tessera.db",
            "cannot create ro/tessera.db",
            "the directory ro is not writable",
        ],
    );
    // `migrate` says the same.
    let (code, _, err) = tessera_without_root_override(dir.path(), &["migrate"], &env).unwrap();
    assert_one_clear_line(code, &err, &["the directory ro is not writable"]);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_database_file_that_is_not_sqlite_is_named_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "these are somebody's notes, not a database\n".repeat(100);
    std::fs::write(dir.path().join("tessera.db"), &text).unwrap();
    // Private, as Tessera would have made it (a wider mode adds a warning line).
    std::fs::set_permissions(
        dir.path().join("tessera.db"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    for args in [&["serve"][..], &["migrate"], &["users", "list"]] {
        let (code, _, err) = tessera(dir.path(), args, &[("TESSERA_BIND", "127.0.0.1:0")], None);
        assert_one_clear_line(code, &err, &["tessera.db is not a SQLite database"]);
    }
    // Nothing was written over it.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tessera.db")).unwrap(),
        text
    );
}

#[test]
fn config_prints_the_effective_settings_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-very-secret-hmac-key-0123456789-abcdef";
    let (code, out, err) = tessera(
        dir.path(),
        &["config"],
        &[
            ("TESSERA_SIGNING_KEY", secret),
            ("TESSERA_ROTATE_REFRESH_TOKENS", "true"),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rotate_refresh_tokens = true\n"), "{out}");
    assert!(out.contains("signing_key = \"********\"\n"), "{out}");
    assert!(out.contains("bind = \"127.0.0.1:8000\"\n"), "{out}");
    assert!(!out.contains(secret) && !err.contains(secret));
    // It reads nothing else: no database was created.
    assert!(!dir.path().join("tessera.db").exists());
}

#[test]
fn config_defaults_prints_a_file_that_loads_and_works_even_with_a_broken_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (code, defaults, err) = tessera(
        dir.path(),
        &["config", "--defaults"],
        &[("TESSERA_ALGORITHM", "broken")],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(defaults.contains("algorithm = \"HS256\"\n"), "{defaults}");
    std::fs::write(dir.path().join("defaults.toml"), &defaults).unwrap();
    let (code, effective, err) = tessera(
        dir.path(),
        &["--config", "defaults.toml", "config"],
        &[],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let (_, plain, _) = tessera(dir.path(), &["config"], &[], None);
    assert_eq!(effective, plain);
}

#[test]
fn claim_names_that_would_make_two_claims_one_stop_the_start_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (claim_names, expected) in [
        (
            "is_staff=is_admin,is_superuser=is_admin",
            "`is_staff` and `is_superuser` are both renamed `is_admin`",
        ),
        (
            "username=exp",
            "`username` cannot be renamed `exp`, a claim Tessera writes itself",
        ),
        (
            "username=uid",
            "`username` cannot be renamed `uid`, the claim of the user id (`user_id_claim`)",
        ),
    ] {
        let env = [
            ("TESSERA_BIND", "127.0.0.1:0"),
            ("TESSERA_USER_ID_CLAIM", "uid"),
            ("TESSERA_EXTRA_CLAIMS", "is_staff,is_superuser"),
            ("TESSERA_CLAIM_NAMES", claim_names),
        ];
        for args in [&["serve"][..], &["config"]] {
            let (code, _, err) = tessera(dir.path(), args, &env, None);
            assert_one_clear_line(
                code,
                &err,
                &[&format!(
                    "tessera: invalid configuration: invalid value for setting `claim_names`: \
                     {expected}"
                )],
            );
        }
    }
    // Nothing was started.
    assert!(!dir.path().join("tessera.db").exists());
    // The tutorial's names start, and `tessera config` shows them.
    let (code, out, err) = tessera(
        dir.path(),
        &["config"],
        &[
            ("TESSERA_EXTRA_CLAIMS", "email,is_staff"),
            (
                "TESSERA_CLAIM_NAMES",
                "username=user_name,is_staff=is_admin",
            ),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("claim_names = { is_staff = \"is_admin\", username = \"user_name\" }\n"),
        "{out}"
    );
}

#[test]
fn version_names_the_release() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = tessera(dir.path(), &["--version"], &[], None);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("tessera {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_database_and_its_wal_files_are_private_whatever_the_umask() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    for umask in ["022", "000"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("sh")
            .args([
                "-c",
                &format!("umask {umask} && exec \"$0\" serve"),
                binary(),
            ])
            .current_dir(dir.path())
            .env("TESSERA_BIND", "127.0.0.1:0")
            .env("TESSERA_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let listening = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("listening on"));
        assert!(listening, "the server did not start");
        for file in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap_or_else(|e| panic!("{file}: {e}"))
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} under umask {umask}: {mode:o}");
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn a_database_others_can_write_is_refused_and_one_they_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = tessera(dir.path(), &["migrate"], &[], None);
    assert_eq!(code, 0, "{err}");
    let db = dir.path().join("tessera.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, _, err) = tessera(
        dir.path(),
        &["serve"],
        &[("TESSERA_BIND", "127.0.0.1:0")],
        None,
    );
    assert_one_clear_line(
        code,
        &err,
        &["tessera.db is writable by every user", "chmod 600"],
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = tessera(dir.path(), &["migrate"], &[], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("open to other users") && err.contains("chmod 600"),
        "{err}"
    );
}

#[tokio::test]
async fn the_cli_says_why_it_cannot_verify_when_the_key_is_only_in_the_servers_configuration() {
    let s = Server::start(&format!("signing_key = \"{HS_SECRET}\"")).await;
    let (access, _) = s.user("alice").await;
    // This shell's settings: the server's, but for its signing_key.
    let server_config = std::fs::read_to_string(s.config_path()).unwrap();
    let shell_config: String = server_config
        .lines()
        .filter(|l| !l.trim_start().starts_with("signing_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(shell_config, server_config);
    std::fs::write(s.dir().join("shell.toml"), &shell_config).unwrap();
    let shell = ["--config", "shell.toml"];
    let kid = access_kid(&access);

    let decode = [&shell[..], &["token", "decode", &access]].concat();
    let (code, out, err) = tessera(s.dir(), &decode, &[], None);
    assert_eq!(code, 1, "{err}");
    assert!(!out.contains("verifies: no"), "{out}");
    assert!(
        out.contains(&format!(
            "verifies: unknown (no key of this deployment in this shell has kid {kid}: \
             is signing_key set where the server runs? set TESSERA_SIGNING_KEY here too)"
        )),
        "{out}"
    );
    let (code, out, err) = tessera(
        s.dir(),
        &decode,
        &[(
            "TESSERA_SIGNING_KEY",
            "another-secret-0123456789-abcdefghijklmn",
        )],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains(&format!("verifies: unknown (no key here has kid {kid}: the signing_key set in this shell is another key")),
        "{out}"
    );
    let (code, out, err) = tessera(
        s.dir(),
        &decode,
        &[("TESSERA_SIGNING_KEY", HS_SECRET)],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verifies: yes"), "{out}");

    let list = [&shell[..], &["keys", "list"]].concat();
    let (code, out, err) = tessera(s.dir(), &list, &[], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "No keys stored. A server started with signing_key set (TESSERA_SIGNING_KEY) signs with \
         that key, which is never stored; one started without it stores a key on its first start.\n"
    );
    let (code, out, err) = tessera(s.dir(), &list, &[("TESSERA_SIGNING_KEY", HS_SECRET)], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "No keys stored: the signing_key of the configuration signs, and it is never stored.\n"
    );
}

/// The `kid` in the header of `token`.
fn access_kid(token: &str) -> String {
    use base64::Engine;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn users_deactivate_says_which_services_refuse_the_tokens_and_when() {
    let s = Server::start("access_token_lifetime = \"10m\"").await;
    s.create_user("bob", false).await;
    let (code, out, err) = s.cli(&["users", "deactivate", "bob"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "deactivated: Tessera refuses their logins and tokens at once, and so do services \
             following its revocation feed within a second; other services that verify tokens \
             themselves accept their access tokens until these expire (access_token_lifetime, 10m)."
        ),
        "{out}"
    );
}

#[tokio::test]
async fn a_command_whose_output_pipe_is_closed_ends_quietly_not_in_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let s = Server::start("").await;
    s.create_user("bob", false).await;
    for args in [
        &["clients", "add", "piped", "--scope", "revocations"][..],
        &["users", "list"][..],
    ] {
        // `tessera ... | head -0`, without the race: the reading end is
        // closed before the command writes a byte.
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = Command::new(binary())
            .arg("--config")
            .arg(s.config_path())
            .args(args)
            .envs(hashing_env())
            .current_dir(s.dir())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run tessera");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // Ended by SIGPIPE, as `ls | head -0` ends ls.
        assert_eq!(
            out.status.signal(),
            Some(13),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}
