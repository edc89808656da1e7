//! Signing keys: generation, loading, key ids, and the public JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
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
    /// Key generation failed.
    #[error("could not generate a {0} key")]
    Generation(&'static str),
}

/// Private key material for one algorithm: an HMAC secret or a PKCS#8 PEM.
///
/// Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct KeyMaterial {
    alg: Algorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("alg", &self.alg)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl KeyMaterial {
    /// Generates a new key for `alg`: 64 random bytes for HMAC, RSA 2048,
    /// P-256, P-384 or Ed25519.
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let name = algorithm_name(alg);
        let failed = |_| KeyError::Generation(name);
        let secret = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let mut bytes = vec![0u8; 64];
                rand::RngCore::fill_bytes(&mut OsRng, &mut bytes);
                bytes
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => {
                let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048)
                    .map_err(|_| KeyError::Generation(name))?;
                key.to_pkcs8_pem(LineEnding::LF)
                    .map_err(failed)?
                    .as_bytes()
                    .to_vec()
            }
            Algorithm::ES256 => p256::SecretKey::random(&mut OsRng)
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(failed)?
                .as_bytes()
                .to_vec(),
            Algorithm::ES384 => p384::SecretKey::random(&mut OsRng)
                .to_pkcs8_pem(LineEnding::LF)
                .map_err(failed)?
                .as_bytes()
                .to_vec(),
            Algorithm::EdDSA => ed25519_v1_pem(&ed25519_dalek::SigningKey::generate(&mut OsRng))
                .ok_or(KeyError::Generation(name))?,
            _ => return Err(KeyError::Generation(name)),
        };
        Ok(Self { alg, secret })
    }

    /// Key material from stored or configured bytes: the secret itself for
    /// HMAC (refused when shorter than the hash output), a PEM private key otherwise.
    pub fn from_bytes(alg: Algorithm, bytes: Vec<u8>) -> Result<Self, KeyError> {
        let bytes = if alg == Algorithm::EdDSA {
            // jsonwebtoken derives the public key only from PKCS#8 v1 (private
            // key alone); OpenSSL writes v1, other tools v2. Accept both.
            use ed25519_dalek::pkcs8::DecodePrivateKey;
            let text = std::str::from_utf8(&bytes).unwrap_or("");
            ed25519_dalek::SigningKey::from_pkcs8_pem(text)
                .ok()
                .and_then(|key| ed25519_v1_pem(&key))
                .ok_or_else(|| KeyError::BadPem {
                    alg: "EdDSA",
                    reason: "not a PKCS#8 Ed25519 private key".into(),
                })?
        } else {
            bytes
        };
        let material = Self { alg, secret: bytes };
        // Parse once now so that a bad key stops the start, not the first login.
        material.encoding_key()?;
        Ok(material)
    }

    /// The algorithm this key is for.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The bytes to persist: the HMAC secret or the PEM text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.secret
    }

    fn encoding_key(&self) -> Result<EncodingKey, KeyError> {
        let alg = self.alg;
        let bad = |e: jsonwebtoken::errors::Error| KeyError::BadPem {
            alg: algorithm_name(alg),
            reason: e.to_string(),
        };
        match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let min = min_hmac_secret_len(alg);
                if self.secret.len() < min {
                    return Err(KeyError::SecretTooShort {
                        alg: algorithm_name(alg),
                        min,
                        got: self.secret.len(),
                    });
                }
                Ok(EncodingKey::from_secret(&self.secret))
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                EncodingKey::from_ec_pem(&self.secret).map_err(bad)
            }
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&self.secret).map_err(bad),
            _ => EncodingKey::from_rsa_pem(&self.secret).map_err(bad),
        }
    }

    /// Prepares the key for use: signing half, verifying half and key id.
    pub fn into_key(self) -> Result<Key, KeyError> {
        let encoding = self.encoding_key()?;
        let alg = self.alg;
        let bad = |e: jsonwebtoken::errors::Error| KeyError::BadPem {
            alg: algorithm_name(alg),
            reason: e.to_string(),
        };
        let (kid, decoding, jwk) = if is_hmac(alg) {
            (
                hmac_kid(&self.secret),
                DecodingKey::from_secret(&self.secret),
                None,
            )
        } else {
            let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(bad)?;
            // A key from another curve than the algorithm names would sign tokens
            // nobody can verify; the JWK conversion is where that shows.
            let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(bad)?;
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(key_algorithm(alg));
            let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
            (kid, decoding, Some(jwk))
        };
        Ok(Key {
            alg,
            kid,
            encoding: Some(encoding),
            decoding,
            jwk,
        })
    }
}

/// Maps a JWK's `alg` to the algorithm, for the ones Tessera accepts.
fn algorithm_of(alg: KeyAlgorithm) -> Option<Algorithm> {
    parse_algorithm(&format!("{alg:?}")).or(match alg {
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    })
}

/// An Ed25519 key as a PKCS#8 v1 PEM (private key only).
fn ed25519_v1_pem(key: &ed25519_dalek::SigningKey) -> Option<Vec<u8>> {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
    let pair = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let pem = pair.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).ok()?;
    Some(pem.as_bytes().to_vec())
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

/// The key id of an HMAC secret: a truncated SHA-256 of a domain-separated
/// input, which names the key without revealing it.
fn hmac_kid(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"tessera hmac key id\0");
    h.update(secret);
    URL_SAFE_NO_PAD.encode(&h.finalize()[..16])
}

/// A usable key: verifies (and, with its private half, signs) tokens of one
/// algorithm under one kid.
pub struct Key {
    alg: Algorithm,
    kid: String,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    jwk: Option<Jwk>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
    /// The key id carried in the `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// The signing half; `None` for a key known only by its public half.
    pub fn encoding(&self) -> Option<&EncodingKey> {
        self.encoding.as_ref()
    }

    /// A verifying key from a published JWK. The algorithm is the JWK's
    /// `alg` unless `alg` is given (then the two must agree); the kid is the
    /// JWK's, or its RFC 7638 thumbprint.
    pub fn from_jwk(jwk: &Jwk, alg: Option<Algorithm>) -> Result<Self, KeyError> {
        let bad = |reason: String| KeyError::BadPem {
            alg: alg.map_or("unknown", algorithm_name),
            reason,
        };
        let declared = jwk.common.key_algorithm.and_then(algorithm_of);
        let alg = match (declared, alg) {
            (Some(d), Some(a)) if d != a => {
                return Err(bad(format!("the JWK says {}", algorithm_name(d))));
            }
            (Some(d), _) => d,
            (None, Some(a)) => a,
            (None, None) => return Err(bad("the JWK names no algorithm".into())),
        };
        if is_hmac(alg) {
            return Err(bad("a published key cannot be an HMAC secret".into()));
        }
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
        let kid = match &jwk.common.key_id {
            Some(kid) => kid.clone(),
            None => jwk
                .thumbprint(ThumbprintHash::SHA256)
                .map_err(|e| bad(e.to_string()))?,
        };
        Ok(Key {
            alg,
            kid,
            encoding: None,
            decoding,
            jwk: Some(jwk.clone()),
        })
    }

    /// A verifying key from a PEM public key (SPKI); its kid is the RFC 7638
    /// thumbprint, as the server computes it.
    pub fn from_public_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let bad = |e: jsonwebtoken::errors::Error| KeyError::BadPem {
            alg: algorithm_name(alg),
            reason: e.to_string(),
        };
        let decoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                return Err(KeyError::BadPem {
                    alg: algorithm_name(alg),
                    reason: "an HMAC algorithm takes a secret, not a PEM".into(),
                });
            }
            _ => DecodingKey::from_rsa_pem(pem),
        }
        .map_err(bad)?;
        let mut jwk = Jwk::from_decoding_key(&decoding, Some(alg)).map_err(bad)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(bad)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        // Check the key and algorithm agree (a P-384 key for ES256 and the like).
        let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
        Ok(Key {
            alg,
            kid,
            encoding: None,
            decoding,
            jwk: Some(jwk),
        })
    }
    /// The verifying half.
    pub fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
    /// The public JWK (with kid, alg and `use: sig`); `None` for HMAC keys,
    /// whose secret must never be published.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.jwk.as_ref()
    }
}

/// The keys a server holds: the one that signs new tokens at each moment, and
/// every key whose tokens are still accepted, by kid. A retired key verifies
/// until the last token it could have signed has expired, then drops out
/// (JWKS included). A key can be published ahead of signing: it verifies and
/// is in the JWKS at once, and takes over signing at its moment, without the
/// ring being built again (every process of a deployment switches then).
#[derive(Debug)]
pub struct KeyRing {
    /// Who signs when: kids, each from its moment (seconds since the epoch)
    /// until the next one's, ordered by those moments.
    signers: Vec<(i64, String)>,
    keys: HashMap<String, (Key, Option<i64>)>,
    generation: u64,
}

/// One key of a ring built by [`KeyRing::scheduled`]: when it signs and
/// until when it verifies.
#[derive(Debug)]
pub struct RingEntry {
    /// The key.
    pub key: Key,
    /// From when it signs (seconds since the epoch; `i64::MIN` for "already
    /// signing"), until the moment of a key that signs after it; `None`: it
    /// signs nothing (it only verifies).
    pub signs_from: Option<i64>,
    /// Until when it verifies (exclusive); `None`: no limit.
    pub verifies_until: Option<i64>,
}

/// Tells rings apart: no two rings made by this process share a generation.
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl KeyRing {
    /// A ring with one key that both signs and verifies, from any time on.
    pub fn single(key: Key) -> Self {
        Self::scheduled([RingEntry {
            key,
            signs_from: Some(i64::MIN),
            verifies_until: None,
        }])
    }

    /// A ring that only verifies (a service checking another's tokens).
    pub fn verifying(keys: impl IntoIterator<Item = Key>) -> Self {
        Self::scheduled(keys.into_iter().map(|key| RingEntry {
            key,
            signs_from: None,
            verifies_until: None,
        }))
    }

    /// A ring where `signing` signs and each of `previous` verifies until its
    /// time (seconds since the epoch; `None` for no limit).
    pub fn with_previous(
        signing: Key,
        previous: impl IntoIterator<Item = (Key, Option<i64>)>,
    ) -> Self {
        let signing = RingEntry {
            key: signing,
            signs_from: Some(i64::MIN),
            verifies_until: None,
        };
        Self::scheduled(
            std::iter::once(signing).chain(previous.into_iter().map(|(key, until)| RingEntry {
                key,
                signs_from: None,
                verifies_until: until,
            })),
        )
    }

    /// A ring of `entries`: each verifies until its time, and at any moment
    /// the entry with the latest `signs_from` not after it signs (of equal
    /// moments, the one that comes last). Of two entries with one kid the
    /// first counts.
    pub fn scheduled(entries: impl IntoIterator<Item = RingEntry>) -> Self {
        let mut signers = Vec::new();
        let mut keys = HashMap::new();
        for entry in entries {
            let kid = entry.key.kid.clone();
            if keys.contains_key(&kid) {
                continue;
            }
            if let Some(from) = entry.signs_from {
                signers.push((from, kid.clone()));
            }
            keys.insert(kid, (entry.key, entry.verifies_until));
        }
        // Stable: of equal moments, the later entry stays later, and signs.
        signers.sort_by_key(|(from, _)| *from);
        Self {
            signers,
            keys,
            generation: next_generation(),
        }
    }

    /// This ring's identity: different for every ring this process makes, so
    /// that what was verified against one ring is never taken as verified
    /// against another (see [`crate::verified`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The key that signs new tokens at `now`; `None` for a verifying ring
    /// (or before the first key's moment).
    pub fn signing_key(&self, now: i64) -> Option<&Key> {
        self.signers
            .iter()
            .rev()
            .find(|(from, _)| *from <= now)
            .and_then(|(_, kid)| self.key(kid))
    }

    /// The keys published ahead of signing at `now`, with the moment each
    /// starts signing, soonest first.
    pub fn upcoming(&self, now: i64) -> impl Iterator<Item = (&Key, i64)> {
        self.signers
            .iter()
            .filter(move |(from, _)| *from > now)
            .filter_map(|(from, kid)| Some((self.key(kid)?, *from)))
    }

    fn key(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid).map(|(key, _)| key)
    }

    /// The key with this kid, if the ring holds it and it still verifies at `now`.
    pub fn get(&self, kid: &str, now: i64) -> Option<&Key> {
        match self.keys.get(kid) {
            Some((key, until)) if until.is_none_or(|u| now < u) => Some(key),
            _ => None,
        }
    }

    /// Every key that still verifies at `now`.
    pub fn keys(&self, now: i64) -> impl Iterator<Item = &Key> {
        self.keys
            .values()
            .filter(move |(_, until)| until.is_none_or(|u| now < u))
            .map(|(key, _)| key)
    }

    /// The public JWK Set (RFC 7517) at `now`: every asymmetric key that still
    /// verifies, ordered by kid; empty for HMAC keys.
    pub fn jwks(&self, now: i64) -> serde_json::Value {
        let mut jwks: Vec<&Jwk> = self.keys(now).filter_map(Key::public_jwk).collect();
        jwks.sort_by(|a, b| a.common.key_id.cmp(&b.common.key_id));
        serde_json::json!({ "keys": jwks })
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
