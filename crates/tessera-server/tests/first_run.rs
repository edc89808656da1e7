//! The README's first command, run as a new user runs it: in a fresh clone of
//! the committed tree, exactly as written, it must serve `/healthz` on an
//! embedded database it creates. A test binary of its own, because it makes a
//! release build, which must not compete with the other tests for the cores.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Long enough for a cold release build on a two-core machine.
const BUILD_AND_START: Duration = Duration::from_secs(30 * 60);

/// Skips (with a message), unless `TESSERA_TEST_REQUIRE_TOOLS` is set (by
/// `.ci/run`), where this test must run.
fn skip(why: &str) {
    if std::env::var_os("TESSERA_TEST_REQUIRE_TOOLS").is_some() {
        panic!("{why} (TESSERA_TEST_REQUIRE_TOOLS is set: this test must run)");
    }
    // Past the test harness's capture, so that a skip is seen without --nocapture.
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// The first `cargo run ... serve` line of the README, as written.
fn first_command(readme: &str) -> Option<String> {
    readme.lines().map(str::trim).find_map(|line| {
        let command = line.split('#').next()?.trim();
        (command.starts_with("cargo run") && command.ends_with("serve")).then(|| command.to_owned())
    })
}

/// The target directory the tests were built in, so that the clone's build
/// reuses every compiled dependency.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // .../target/debug/deps/first_run-HASH
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors().nth(3).expect("target dir").to_owned()
}

fn get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read reply");
    reply
}

fn signal(target: impl std::fmt::Display, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &target.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The child's process group, killed when the test ends however it ends, so
/// that no server or build outlives it.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        signal(format!("-{}", self.0), "-KILL");
    }
}

#[test]
#[ignore = "a release build in a fresh clone (half a minute warm): .ci/run runs it; so does --ignored"]
fn the_readmes_first_command_serves_healthz_in_a_fresh_clone() {
    // The package as cargo runs this test: the path compiled in may be
    // another clone's, when clones share a target directory.
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = package.join("../..");
    if !root.join(".git").exists() {
        return skip("not a git checkout, so there is no commit to clone");
    }
    if Command::new("git").arg("--version").output().is_err() {
        return skip("git is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("repo");
    let cloned = Command::new("git")
        .args(["clone", "-q"])
        .arg(&root)
        .arg(&clone)
        .status()
        .expect("git clone");
    assert!(cloned.success(), "git clone failed");
    let readme = std::fs::read_to_string(clone.join("README.md")).expect("README.md");
    let command = first_command(&readme).expect("the README has a `cargo run ... serve` line");

    let log = dir.path().join("build-and-serve.log");
    // Split as a shell splits a line without quotes, and run without a shell
    // in between: `cargo run` replaces itself with the server (on Unix), so
    // the child is the server and a SIGTERM to it is a clean stop.
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut child = Command::new(words[0])
        .args(&words[1..])
        .process_group(0)
        .current_dir(&clone)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("TESSERA_BIND", "127.0.0.1:0")
        .env("CARGO_TERM_COLOR", "never")
        // Asks for the test suite's cheap password hashing, which a build
        // made as a user makes it must not have (asserted below).
        .env("TESSERA_TEST_INSECURE_HASHING", "1")
        .env_remove("CARGO_MAKEFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("sh");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(BUILD_AND_START);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let group = Group(child.id());
    let Ok(addr) = addr else {
        drop(group);
        panic!("`{command}` did not start a server:\n{}", log_text());
    };
    let reply = get(&addr, "/healthz");
    signal(child.id(), "-TERM");
    let stopped = child.wait().expect("wait");
    drop(group);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}\n{}", log_text());
    assert!(reply.ends_with("{\"status\":\"ok\"}"), "{reply}");
    assert!(
        clone.join("tessera.db").exists(),
        "the server did not create ./tessera.db"
    );
    assert!(
        stopped.success(),
        "the server did not stop cleanly: {stopped}"
    );
    assert!(
        !log_text().contains("insecure test cost"),
        "the release build hashes at the test suite's cost:\n{}",
        log_text()
    );
}

#[test]
fn the_first_command_is_found_as_a_user_reads_it() {
    let readme = "Run it:\n\n    cargo run --release -- serve\n    cargo test --workspace\n";
    assert_eq!(
        first_command(readme).as_deref(),
        Some("cargo run --release -- serve")
    );
    assert_eq!(first_command("cargo build\n"), None);
}
