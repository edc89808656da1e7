//! [`Key`]: one usable key, its signing and verifying halves, kid and
//! public JWK.

use super::*;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};

/// A usable key: verifies (and, with its private half, signs) tokens of one
/// algorithm under one kid.
pub struct Key {
    // Visible to `material`, which builds keys from their private bytes.
    pub(super) alg: Algorithm,
    pub(super) kid: String,
    pub(super) encoding: Option<EncodingKey>,
    pub(super) decoding: DecodingKey,
    pub(super) jwk: Option<Jwk>,
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
        let bad = |reason: String| KeyError::BadPublicKey {
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
        let bad = |e: jsonwebtoken::errors::Error| KeyError::BadPublicKey {
            alg: algorithm_name(alg),
            reason: e.to_string(),
        };
        let decoding = match alg {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                return Err(KeyError::BadPublicKey {
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
