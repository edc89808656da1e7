//! Token validation on arbitrary input: never a panic, never an acceptance.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera_core::Algorithm;
use tessera_core::keys::{KeyMaterial, KeyRing};
use tessera_core::token::{TokenPolicy, validate};

fn rings() -> &'static [KeyRing] {
    static RINGS: OnceLock<Vec<KeyRing>> = OnceLock::new();
    RINGS.get_or_init(|| {
        [Algorithm::HS256, Algorithm::ES256, Algorithm::EdDSA]
            .into_iter()
            .filter_map(|alg| KeyMaterial::generate(alg).ok()?.into_key().ok())
            .map(KeyRing::single)
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let policy = TokenPolicy::new();
    for ring in rings() {
        // Nothing random can carry a valid signature of a key made this run.
        assert!(validate(&policy, ring, &token, None, 1_800_000_000).is_err());
    }
});
