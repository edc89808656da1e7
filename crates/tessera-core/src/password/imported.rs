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
/// The most memory one scrypt hash may take (Django's takes 16 MiB).
const MAX_SCRYPT_BYTES: u128 = 256 << 20;
/// The most Argon2 passes accepted (Django uses 2, Tessera 2, argon2-cffi 3).
const MAX_ARGON2_PASSES: u32 = 16;

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

/// Why a stored hash cannot serve a password login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashProblem {
    /// No password was ever set: Django's unusable password (`!...`) or an
    /// empty string.
    NoPassword,
    /// Not a format this module knows; holds the scheme it seems to name
    /// (the text before the first `$`, at most 20 characters).
    UnknownScheme(String),
    /// A known scheme, but not a well-formed hash of it.
    Malformed(&'static str),
    /// Well-formed, with a cost past what one login may spend; says which.
    TooCostly(String),
}

impl std::fmt::Display for HashProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoPassword => f.write_str("no usable password"),
            Self::UnknownScheme(scheme) => write!(f, "unknown password hash scheme `{scheme}`"),
            Self::Malformed(scheme) => write!(f, "malformed {scheme} password hash"),
            Self::TooCostly(what) => write!(f, "password hash too costly to check: {what}"),
        }
    }
}

/// Reads `encoded` as one of the formats this module knows. `None` for an
/// unusable Django password (`!...`), an empty string, an unknown format or
/// parameters past the bounds: a user with such a hash cannot log in with a
/// password until one is set. [`read`] says which.
pub fn parse(encoded: &str) -> Option<ImportedHash> {
    read(encoded).ok()
}

/// [`parse`], saying why when the hash cannot be used.
pub fn read(encoded: &str) -> Result<ImportedHash, HashProblem> {
    if encoded.is_empty() || encoded.starts_with('!') {
        return Err(HashProblem::NoPassword);
    }
    if encoded.starts_with("$argon2") {
        return argon2_phc(encoded);
    }
    if is_bcrypt(encoded) {
        return bcrypt_hash(encoded, false, "bcrypt");
    }
    if let Some(rest) = encoded.strip_prefix("$pbkdf2-sha256$") {
        return passlib_pbkdf2(rest);
    }
    let Some((algorithm, rest)) = encoded.split_once('$') else {
        return Err(unknown(encoded));
    };
    match algorithm {
        "pbkdf2_sha256" => django_pbkdf2(Pbkdf2Digest::Sha256, rest, "pbkdf2_sha256"),
        "pbkdf2_sha1" => django_pbkdf2(Pbkdf2Digest::Sha1, rest, "pbkdf2_sha1"),
        // Django stores "argon2" followed by the PHC string, whose own "$"
        // the split above took.
        "argon2" if rest.starts_with("argon2") => argon2_phc(&format!("${rest}")),
        "argon2" => Err(HashProblem::Malformed("argon2")),
        "bcrypt_sha256" => bcrypt_hash(rest, true, "bcrypt_sha256"),
        "bcrypt" => bcrypt_hash(rest, false, "bcrypt"),
        "scrypt" => django_scrypt(rest),
        _ => Err(unknown(encoded)),
    }
}

/// The scheme `encoded` seems to name, for a message: what precedes its
/// first `$` (or its first field of a `$`-led string), never the hash.
fn unknown(encoded: &str) -> HashProblem {
    let scheme = encoded
        .trim_start_matches('$')
        .split('$')
        .next()
        .unwrap_or("");
    let scheme = if scheme.len() == encoded.len() {
        // No `$` at all: perhaps a password in clear; name no part of it.
        "(none)".to_owned()
    } else {
        scheme.chars().take(20).collect()
    };
    HashProblem::UnknownScheme(scheme)
}

fn is_bcrypt(encoded: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| encoded.starts_with(prefix))
}

/// An Argon2 PHC string, its memory and passes bounded.
fn argon2_phc(phc: &str) -> Result<ImportedHash, HashProblem> {
    use argon2::password_hash::PasswordHash;
    let parsed = PasswordHash::new(phc).map_err(|_| HashProblem::Malformed("argon2"))?;
    let params = argon2::Params::try_from(&parsed).map_err(|_| HashProblem::Malformed("argon2"))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(HashProblem::Malformed("argon2"));
    }
    if params.m_cost() > super::MAX_VERIFY_KIB {
        return Err(HashProblem::TooCostly(format!(
            "argon2 memory {} KiB (at most {})",
            params.m_cost(),
            super::MAX_VERIFY_KIB
        )));
    }
    if params.t_cost() > MAX_ARGON2_PASSES {
        return Err(HashProblem::TooCostly(format!(
            "argon2 passes {} (at most {MAX_ARGON2_PASSES})",
            params.t_cost()
        )));
    }
    Ok(ImportedHash::Argon2 {
        phc: phc.to_owned(),
    })
}

/// `ITERATIONS$SALT$BASE64_HASH`, the salt taken as its text.
fn django_pbkdf2(
    digest: Pbkdf2Digest,
    rest: &str,
    scheme: &'static str,
) -> Result<ImportedHash, HashProblem> {
    let malformed = HashProblem::Malformed(scheme);
    let mut fields = rest.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(malformed);
    };
    if salt.is_empty() {
        return Err(malformed);
    }
    let iterations = bounded_iterations(iterations, scheme)?;
    let expected = STANDARD
        .decode(hash)
        .ok()
        .filter(|h| !h.is_empty())
        .ok_or(malformed)?;
    Ok(ImportedHash::Pbkdf2 {
        digest,
        iterations,
        salt: salt.as_bytes().to_vec(),
        expected,
    })
}

/// passlib's `ROUNDS$SALT$HASH`, salt and hash in its "adapted base64"
/// (`.` for `+`, no padding).
fn passlib_pbkdf2(rest: &str) -> Result<ImportedHash, HashProblem> {
    const SCHEME: &str = "pbkdf2-sha256";
    let mut fields = rest.split('$');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(HashProblem::Malformed(SCHEME));
    };
    let ab64 = |text: &str| STANDARD_NO_PAD.decode(text.replace('.', "+")).ok();
    let iterations = bounded_iterations(iterations, SCHEME)?;
    let (Some(salt), Some(expected)) = (ab64(salt), ab64(hash).filter(|h| !h.is_empty())) else {
        return Err(HashProblem::Malformed(SCHEME));
    };
    Ok(ImportedHash::Pbkdf2 {
        digest: Pbkdf2Digest::Sha256,
        iterations,
        salt,
        expected,
    })
}

fn bounded_iterations(text: &str, scheme: &'static str) -> Result<u32, HashProblem> {
    let Ok(n) = text.parse::<u64>() else {
        return Err(HashProblem::Malformed(scheme));
    };
    if n == 0 {
        return Err(HashProblem::Malformed(scheme));
    }
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_PBKDF2_ITERATIONS)
        .ok_or_else(|| {
            HashProblem::TooCostly(format!(
                "{scheme} iterations {n} (at most {MAX_PBKDF2_ITERATIONS})"
            ))
        })
}

fn bcrypt_hash(
    bcrypt: &str,
    sha256_first: bool,
    scheme: &'static str,
) -> Result<ImportedHash, HashProblem> {
    let malformed = HashProblem::Malformed(scheme);
    if !is_bcrypt(bcrypt) {
        return Err(malformed);
    }
    // `$2b$12$` followed by 53 characters of salt and hash.
    let Some(cost) = bcrypt.get(4..6).and_then(|c| c.parse::<u32>().ok()) else {
        return Err(malformed);
    };
    if bcrypt.len() != 60 || bcrypt.get(6..7) != Some("$") || !(4..=31).contains(&cost) {
        return Err(malformed);
    }
    if cost > MAX_BCRYPT_COST {
        return Err(HashProblem::TooCostly(format!(
            "{scheme} cost {cost} (at most {MAX_BCRYPT_COST})"
        )));
    }
    Ok(ImportedHash::Bcrypt {
        sha256_first,
        bcrypt: bcrypt.to_owned(),
    })
}

/// `N$SALT$R$P$BASE64_HASH`, the salt taken as its text.
fn django_scrypt(rest: &str) -> Result<ImportedHash, HashProblem> {
    let malformed = HashProblem::Malformed("scrypt");
    let fields: Vec<&str> = rest.split('$').collect();
    let [n, salt, r, p, hash] = fields[..] else {
        return Err(malformed);
    };
    if salt.is_empty() {
        return Err(malformed);
    }
    let (Ok(n), Ok(r), Ok(p)) = (n.parse::<u128>(), r.parse::<u32>(), p.parse::<u32>()) else {
        return Err(malformed);
    };
    if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 {
        return Err(malformed);
    }
    let log_n = n.trailing_zeros();
    // scrypt takes 128 * r * N bytes, p times over.
    let memory = 128 * u128::from(r) * n;
    if log_n > u32::from(MAX_SCRYPT_LOG_N)
        || r > MAX_SCRYPT_R
        || p > MAX_SCRYPT_P
        || memory > MAX_SCRYPT_BYTES
        || memory * u128::from(p) > 4 * MAX_SCRYPT_BYTES
    {
        return Err(HashProblem::TooCostly(format!(
            "scrypt N=2^{log_n}, r={r}, p={p} (at most N=2^{MAX_SCRYPT_LOG_N}, r={MAX_SCRYPT_R}, p={MAX_SCRYPT_P}, 256 MiB)"
        )));
    }
    let expected = STANDARD
        .decode(hash)
        .ok()
        .filter(|h| !h.is_empty())
        .ok_or(malformed)?;
    Ok(ImportedHash::Scrypt {
        log_n: log_n as u8,
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
