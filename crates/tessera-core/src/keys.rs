//! Signing keys: generation, loading, key ids, and the public JWKS.
//!
//! The algorithms and their names here; `material` holds private key
//! bytes, `key` a usable key (signing and verifying halves, kid, JWK),
//! `ring` the keys a server holds and which one signs when.

use jsonwebtoken::jwk::KeyAlgorithm;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use std::fmt;

/// The algorithm names the `algorithm` setting accepts, case-sensitive.
pub const ALGORITHM_NAMES: [&str; 12] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

/// Parses an algorithm name exactly as docs/CONFIGURATION.md spells it.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The name of an algorithm as it appears in a token header.
pub fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        // jsonwebtoken may add algorithms; none of them is configurable here.
        _ => "unsupported",
    }
}

/// Whether `alg` is an HMAC algorithm (shared secret rather than key pair).
pub fn is_hmac(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The shortest HMAC secret accepted for `alg`: the hash output size (RFC 7518 3.2).
pub fn min_hmac_secret_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// Why key material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// An HMAC secret shorter than the hash output.
    #[error("an {alg} secret must be at least {min} bytes long, got {got}")]
    SecretTooShort {
        /// The algorithm's name.
        alg: &'static str,
        /// The minimum length in bytes.
        min: usize,
        /// The given length in bytes.
        got: usize,
    },
    /// A PEM that is not a private key of the configured algorithm's type.
    #[error("not a PEM private key usable with {alg}: {reason}")]
    BadPem {
        /// The algorithm's name.
        alg: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// A public key (a PEM or a JWK) that is not one of the algorithm's
    /// type, as a verifier is given.
    #[error("not a public key usable with {alg}: {reason}")]
    BadPublicKey {
        /// The algorithm's name.
        alg: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// Key generation failed.
    #[error("could not generate a {0} key")]
    Generation(&'static str),
}

mod key;
mod material;
mod ring;

pub use key::Key;
pub use material::KeyMaterial;
pub use ring::{KeyRing, RingEntry};

/// Maps a JWK's `alg` to the algorithm, for the ones Tessera accepts.
fn algorithm_of(alg: KeyAlgorithm) -> Option<Algorithm> {
    parse_algorithm(&format!("{alg:?}")).or(match alg {
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    })
}

fn key_algorithm(alg: Algorithm) -> KeyAlgorithm {
    match alg {
        Algorithm::HS256 => KeyAlgorithm::HS256,
        Algorithm::HS384 => KeyAlgorithm::HS384,
        Algorithm::HS512 => KeyAlgorithm::HS512,
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::RS384 => KeyAlgorithm::RS384,
        Algorithm::RS512 => KeyAlgorithm::RS512,
        Algorithm::PS256 => KeyAlgorithm::PS256,
        Algorithm::PS384 => KeyAlgorithm::PS384,
        Algorithm::PS512 => KeyAlgorithm::PS512,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::ES384 => KeyAlgorithm::ES384,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        _ => KeyAlgorithm::UNKNOWN_ALGORITHM,
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
