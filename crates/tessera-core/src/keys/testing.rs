//! Keys for unit tests, cheaper than generating each one.

use super::*;

/// Key material for `alg` in unit tests. The six RSA algorithms share one
/// generated 2048-bit key (the generator is the same for all six; each RSA
/// generation costs a few hundred milliseconds).
pub(crate) fn test_material(alg: Algorithm) -> KeyMaterial {
    static RSA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            let pem = RSA.get_or_init(|| {
                KeyMaterial::generate(Algorithm::RS256)
                    .unwrap()
                    .as_bytes()
                    .to_vec()
            });
            KeyMaterial::from_bytes(alg, pem.clone()).unwrap()
        }
        _ => KeyMaterial::generate(alg).unwrap(),
    }
}
