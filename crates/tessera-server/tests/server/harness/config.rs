//! The servers' settings files, and the tools and files tests need.

use super::*;
use std::path::{Path, PathBuf};

/// Whether the files a test needs (a browser, nginx) are here; see [`available`].
pub fn tools_present(what: &str, paths: &[&Path]) -> bool {
    let missing: Vec<String> = paths
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    available(
        &format!("{what} ({})", missing.join(", ")),
        missing.is_empty(),
    )
}

/// Tests never install software: when what a test needs is missing, the
/// test is skipped with a message saying what installs it, except where
/// `TESSERA_TEST_REQUIRE_TOOLS` is set (by `.ci/run`, after installing
/// everything), where its absence is a failure.
pub fn available(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let message = format!("{what} not found; `.ci/install-test-tools` installs it");
    if std::env::var_os("TESSERA_TEST_REQUIRE_TOOLS").is_some() {
        panic!("{message} (TESSERA_TEST_REQUIRE_TOOLS is set: .ci/run installed it)");
    }
    // Past the test harness's capture, so that a skip is seen without --nocapture.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {message}");
    false
}

/// This package's directory (crates/tessera-server), as cargo gives it to
/// the running test: the path compiled in may name another clone whose build
/// cargo reused (clones sharing one target directory), since deleted.
pub fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

impl Server {
    /// Writes the place's config file: these settings on its database.
    pub(super) fn write_config(place: &Place, config: &str) -> PathBuf {
        let dir = place.dir.path();
        // Tests sign up many users from one address; the signup limit has tests of its own.
        let signup_limit = if config.contains("signup_rate_limit") {
            ""
        } else {
            "signup_rate_limit = \"off\"\n"
        };
        // A test may bring its own database.
        let database = if config.contains("database_url") {
            String::new()
        } else {
            format!("database_url = \"{}\"\n", place.database_url())
        };
        let text = format!("bind = \"127.0.0.1:0\"\n{database}{signup_limit}{config}\n");
        let config_path = dir.join("tessera.toml");
        std::fs::write(&config_path, text).expect("write config");
        config_path
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("tessera.toml")
    }
}
