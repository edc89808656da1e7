//! The example's binary as an operator runs it. (Also what makes `cargo test
//! --workspace` build the binary, which Tessera's own tests start as a
//! following service: cargo builds a package's binaries for its integration
//! tests.)

use std::process::Command;

#[test]
fn without_a_key_source_it_says_what_to_set_and_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_resource-server"))
        .env_remove("TESSERA_JWKS_URL")
        .output()
        .expect("run the example");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("set TESSERA_JWKS_URL"), "{err}");
}
