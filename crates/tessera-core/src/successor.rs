//! The successor of a rotated refresh token, sealed so that only whoever
//! holds the rotated token can read it.
//!
//! Within `refresh_grace_period` a refresh token presented again after its
//! rotation is answered with the token it rotated into (several tabs, or a
//! client that refreshes on every 401, racing one another), so the database
//! keeps that successor for the period. Kept in clear it would be a live
//! refresh token for anyone who reads the table; kept sealed under a key
//! derived from the rotated token itself, it is readable only by someone who
//! presents that token, who could have refreshed with it anyway.
//!
//! The key is HKDF-SHA256 of the rotated token's compact form (its signature
//! makes it unguessable), the cipher AES-256-GCM with a random nonce, both
//! from aws-lc-rs, which already signs and verifies the tokens.

use crate::token::IssuedToken;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Separates these keys from any other use of the same bytes.
const SALT: &[u8] = b"tessera refresh successor";
const INFO: &[u8] = b"AES-256-GCM v1";

/// The key sealing the successor of `rotated` (a compact JWS).
fn key_of(rotated: &str) -> Option<LessSafeKey> {
    let prk = Salt::new(HKDF_SHA256, SALT).extract(rotated.as_bytes());
    let okm = prk.expand(&[INFO], &AES_256_GCM).ok()?;
    Some(LessSafeKey::new(UnboundKey::from(okm)))
}

/// `successor` sealed under a key derived from `rotated`: the nonce, then
/// the ciphertext and its tag. `None` only if the system's random source or
/// the cipher fails (the caller then keeps no successor: no grace period for
/// this rotation, never a successor in clear).
pub fn seal(rotated: &str, successor: &IssuedToken) -> Option<Vec<u8>> {
    let key = key_of(rotated)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).ok()?;
    let mut sealed = serde_json::to_vec(successor).ok()?;
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::empty(),
        &mut sealed,
    )
    .ok()?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Some(out)
}

/// The successor sealed by [`seal`] under `rotated`; `None` for any other
/// token, or bytes that were not sealed so (tampered, truncated).
pub fn open(rotated: &str, sealed: &[u8]) -> Option<IssuedToken> {
    let key = key_of(rotated)?;
    let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut in_out = ciphertext.to_vec();
    let plain = key.open_in_place(nonce, Aad::empty(), &mut in_out).ok()?;
    serde_json::from_slice(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{FamilyId, Jti};

    fn token(name: &str) -> IssuedToken {
        let jti = Jti::random();
        IssuedToken {
            token: format!("header.{name}.signature"),
            jti,
            fid: FamilyId::random(),
            iat: 1_000,
            exp: 2_000,
            csrf: Some("csrf-value".into()),
        }
    }

    #[test]
    fn only_the_rotated_token_opens_its_successor() {
        let successor = token("next");
        let sealed = seal("a.rotated.token", &successor).expect("sealed");
        assert_eq!(open("a.rotated.token", &sealed), Some(successor.clone()));
        assert_eq!(open("a.rotated.tokem", &sealed), None);
        assert_eq!(open("", &sealed), None);
        // Not in clear: the successor's token is nowhere in the bytes kept.
        let clear = successor.token.as_bytes();
        assert!(!sealed.windows(clear.len()).any(|w| w == clear));
    }

    #[test]
    fn tampered_or_truncated_bytes_open_to_nothing() {
        let sealed = seal("a.rotated.token", &token("next")).expect("sealed");
        for i in [0, NONCE_LEN, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(open("a.rotated.token", &bad), None, "byte {i} flipped");
        }
        for len in [0, NONCE_LEN - 1, NONCE_LEN, sealed.len() - 1] {
            assert_eq!(open("a.rotated.token", &sealed[..len]), None, "{len} bytes");
        }
    }

    #[test]
    fn each_seal_draws_its_own_nonce() {
        let a = seal("a.rotated.token", &token("next")).expect("sealed");
        let b = seal("a.rotated.token", &token("next")).expect("sealed");
        assert_ne!(a, b);
    }
}
