//! [`KeyMaterial`]: the private bytes of one key, generated or loaded,
//! which never show in `Debug`.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

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

/// The key id of an HMAC secret: a truncated SHA-256 of a domain-separated
/// input, which names the key without revealing it.
fn hmac_kid(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"tessera hmac key id\0");
    h.update(secret);
    URL_SAFE_NO_PAD.encode(&h.finalize()[..16])
}
