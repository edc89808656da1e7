//! Password hashes made elsewhere, as users imported from another stack
//! bring them: Django's hashers (`pbkdf2_sha256`, `pbkdf2_sha1`, `argon2`,
//! `bcrypt_sha256`, `bcrypt`, `scrypt`), Argon2 PHC strings, bcrypt's own
//! `$2a$`/`$2b$`/`$2y$` strings and passlib's `$pbkdf2-sha256$`. Each is
//! checked with the maintained crate of its algorithm, the comparison in
//! constant time. After one successful login the caller replaces the hash
//! with Tessera's own ([`super::hash_with`]).
//!
//! Costs are bounded: an imported row is data, and a hash asking for a
//! billion PBKDF2 iterations or a gigabyte of scrypt memory would turn each
//! login into a denial of service. Such a hash matches nothing.

use super::HashMemory;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The most PBKDF2 iterations a hash may ask for (Django 5.2 uses 1,000,000).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The highest bcrypt cost accepted (Django uses 12).
const MAX_BCRYPT_COST: u32 = 16;
/// The largest scrypt log2(N) accepted (Django uses N = 2^14).
const MAX_SCRYPT_LOG_N: u8 = 20;
/// The largest scrypt r and p accepted (Django uses 8 and 1).
const MAX_SCRYPT_R: u32 = 32;
const MAX_SCRYPT_P: u32 = 16;

/// A recognised password hash, parsed; see [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportedHash {
    /// PBKDF2-HMAC over the password's UTF-8 bytes and the salt's.
    Pbkdf2 {
        /// SHA-1 or SHA-256.
        digest: Pbkdf2Digest,
        /// Iterations.
        iterations: u32,
        /// The salt's bytes.
        salt: Vec<u8>,
        /// The derived key to compare with (its length is the one derived).
        expected: Vec<u8>,
    },
    /// A bcrypt string (`$2b$12$...`); with `sha256_first`, the password is
    /// first replaced by the hex of its SHA-256 (Django's `bcrypt_sha256`).
    Bcrypt {
        /// Whether the password is pre-hashed.
        sha256_first: bool,
        /// The bcrypt string itself.
        bcrypt: String,
    },
    /// An Argon2 PHC string (`$argon2id$v=19$...`), any variant.
    Argon2 {
        /// The PHC string.
        phc: String,
    },
    /// scrypt over the password and salt (Django's `scrypt`).
    Scrypt {
        /// log2 of N.
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
        /// The salt's bytes.
        salt: Vec<u8>,
        /// The derived key to compare with.
        expected: Vec<u8>,
    },
}

/// The digest of a PBKDF2 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pbkdf2Digest {
    /// HMAC-SHA-1 (Django's `pbkdf2_sha1`).
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
}

/// Reads `encoded` as one of the formats this module knows. `None` for an
/// unusable Django password (`!...`), an empty string, an unknown format or
/// parameters past the bounds: a user with such a hash cannot log in with a
/// password until one is set.
pub fn parse(encoded: &str) -> Option<ImportedHash> {
    if encoded.starts_with("$argon2") {
        return Some(ImportedHash::Argon2 {
            phc: encoded.to_owned(),
        });
    }
    if is_bcrypt(encoded) {
        return bcrypt_hash(encoded, false);
    }
    if let Some(rest) = encoded.strip_prefix("$pbkdf2-sha256$") {
        return passlib_pbkdf2(rest);
    }
    let (algorithm, rest) = encoded.split_once('$')?;
    match algorithm {
        "pbkdf2_sha256" => django_pbkdf2(Pbkdf2Digest::Sha256, rest),
        "pbkdf2_sha1" => django_pbkdf2(Pbkdf2Digest::Sha1, rest),
        // Django stores "argon2" followed by the PHC string, whose own "$"
        // the split above took.
        "argon2" if rest.starts_with("argon2") => Some(ImportedHash::Argon2 {
            phc: format!("${rest}"),
        }),
        "bcrypt_sha256" => bcrypt_hash(rest, true),
        "bcrypt" => bcrypt_hash(rest, false),
        "scrypt" => django_scrypt(rest),
        _ => None,
    }
}

fn is_bcrypt(encoded: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| encoded.starts_with(prefix))
}

/// `ITERATIONS$SALT$BASE64_HASH`, the salt taken as its text.
fn django_pbkdf2(digest: Pbkdf2Digest, rest: &str) -> Option<ImportedHash> {
    let mut fields = rest.split('$');
    let (iterations, salt, hash) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || salt.is_empty() {
        return None;
    }
    let iterations = bounded_iterations(iterations)?;
    let expected = STANDARD.decode(hash).ok().filter(|h| !h.is_empty())?;
    Some(ImportedHash::Pbkdf2 {
        digest,
        iterations,
        salt: salt.as_bytes().to_vec(),
        expected,
    })
}

/// passlib's `ROUNDS$SALT$HASH`, salt and hash in its "adapted base64"
/// (`.` for `+`, no padding).
fn passlib_pbkdf2(rest: &str) -> Option<ImportedHash> {
    let mut fields = rest.split('$');
    let (iterations, salt, hash) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let ab64 = |text: &str| STANDARD_NO_PAD.decode(text.replace('.', "+")).ok();
    let expected = ab64(hash).filter(|h| !h.is_empty())?;
    Some(ImportedHash::Pbkdf2 {
        digest: Pbkdf2Digest::Sha256,
        iterations: bounded_iterations(iterations)?,
        salt: ab64(salt)?,
        expected,
    })
}

fn bounded_iterations(text: &str) -> Option<u32> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PBKDF2_ITERATIONS).contains(n))
}

fn bcrypt_hash(bcrypt: &str, sha256_first: bool) -> Option<ImportedHash> {
    if !is_bcrypt(bcrypt) {
        return None;
    }
    // `$2b$12$` followed by 53 characters of salt and hash.
    let cost: u32 = bcrypt.get(4..6)?.parse().ok()?;
    if !(4..=MAX_BCRYPT_COST).contains(&cost) || bcrypt.len() != 60 {
        return None;
    }
    Some(ImportedHash::Bcrypt {
        sha256_first,
        bcrypt: bcrypt.to_owned(),
    })
}

/// `N$SALT$R$P$BASE64_HASH`, the salt taken as its text.
fn django_scrypt(rest: &str) -> Option<ImportedHash> {
    let mut fields = rest.split('$');
    let (n, salt, r, p, hash) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if fields.next().is_some() || salt.is_empty() {
        return None;
    }
    let n: u64 = n.parse().ok()?;
    if !n.is_power_of_two() || n < 2 {
        return None;
    }
    let log_n = u8::try_from(n.trailing_zeros()).ok()?;
    let r: u32 = r.parse().ok()?;
    let p: u32 = p.parse().ok()?;
    if log_n > MAX_SCRYPT_LOG_N
        || !(1..=MAX_SCRYPT_R).contains(&r)
        || !(1..=MAX_SCRYPT_P).contains(&p)
    {
        return None;
    }
    let expected = STANDARD.decode(hash).ok().filter(|h| !h.is_empty())?;
    Some(ImportedHash::Scrypt {
        log_n,
        r,
        p,
        salt: salt.as_bytes().to_vec(),
        expected,
    })
}

impl ImportedHash {
    /// Whether `password` is the one this hash was made from. Slow by
    /// design (it runs the hash's own algorithm and cost): call it off the
    /// async runtime, under the same bound as other password checks.
    /// `memory` serves Argon2 hashes.
    pub fn verify(&self, password: &str, memory: &mut HashMemory) -> bool {
        match self {
            Self::Pbkdf2 {
                digest,
                iterations,
                salt,
                expected,
            } => {
                let mut derived = vec![0u8; expected.len()];
                let derive = match digest {
                    Pbkdf2Digest::Sha1 => pbkdf2::pbkdf2::<hmac::Hmac<sha1::Sha1>>,
                    Pbkdf2Digest::Sha256 => pbkdf2::pbkdf2::<hmac::Hmac<Sha256>>,
                };
                derive(password.as_bytes(), salt, *iterations, &mut derived).is_ok()
                    && bool::from(derived.ct_eq(expected))
            }
            Self::Bcrypt {
                sha256_first,
                bcrypt,
            } => {
                let verified = if *sha256_first {
                    let hexed = hex::encode(Sha256::digest(password.as_bytes()));
                    bcrypt::verify(hexed, bcrypt)
                } else {
                    // Django, passlib and bcrypt itself use the first 72
                    // bytes; the crate refuses longer input rather than
                    // truncating it.
                    let bytes = password.as_bytes();
                    bcrypt::verify(&bytes[..bytes.len().min(72)], bcrypt)
                };
                verified.unwrap_or(false)
            }
            Self::Argon2 { phc } => super::verify_with(password, phc, memory),
            Self::Scrypt {
                log_n,
                r,
                p,
                salt,
                expected,
            } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, expected.len()) else {
                    return false;
                };
                let mut derived = vec![0u8; expected.len()];
                scrypt::scrypt(password.as_bytes(), salt, &params, &mut derived).is_ok()
                    && bool::from(derived.ct_eq(expected))
            }
        }
    }
}

#[cfg(test)]
mod tests;
