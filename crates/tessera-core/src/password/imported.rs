//! Password hashes made elsewhere, as users imported from another stack
//! bring them: Django's hashers (`pbkdf2_sha256`, `pbkdf2_sha1`, `argon2`,
//! `bcrypt_sha256`, `bcrypt`, `scrypt`), Argon2 PHC strings, bcrypt's own
//! `$2a$`/`$2b$`/`$2y$` strings, passlib's `$pbkdf2-sha256$` and
//! Werkzeug's `scrypt:N:r:p$` and `pbkdf2:DIGEST:ITERATIONS$` (Flask's;
//! see [`werkzeug`]). Each is
//! checked with the maintained crate of its algorithm, the comparison in
//! constant time. After one successful login the caller replaces the hash
//! with Tessera's own ([`super::hash_with`]).
//!
//! Costs are bounded: an imported row is data, and a hash asking for a
//! billion PBKDF2 iterations or a gigabyte of scrypt memory would turn each
//! login into a denial of service. The bound is on the total work of one
//! check ([`ImportedHash::work`]), whichever parameters carry it: a bound
//! on each parameter alone let a PBKDF2 hash with few iterations but a
//! 256 KiB key pin a core for minutes (issue 29, item 7). Such a hash, and
//! one with salt or key lengths no hasher writes, matches nothing.

mod schemes;
mod werkzeug;

use schemes::*;

use super::HashMemory;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The work of one login of Tessera's own (Argon2id, 19 MiB, 2 passes), in
/// the unit [`ImportedHash::work`] counts in: one Argon2 block (1 KiB)
/// computed once. Always the production cost, also in a test build that
/// hashes its own passwords cheaper, so that what is imported does not
/// depend on the build.
pub const NATIVE_WORK: u64 = super::M_COST_KIB as u64 * super::T_COST as u64;

/// The most work one check of an imported hash may take, in native logins:
/// room for Django's default costs, of which bcrypt's cost 12 and scrypt
/// are the dearest (about 17 native logins each), and not for twice that.
pub const MAX_WORK_IN_NATIVE_LOGINS: u64 = 20;

/// [`MAX_WORK_IN_NATIVE_LOGINS`] in the unit of [`ImportedHash::work`].
pub const MAX_WORK: u64 = NATIVE_WORK * MAX_WORK_IN_NATIVE_LOGINS;

// How the other algorithms' parameters convert to that unit: each checked
// in the server, against its native login, with Django's default costs on
// an AMD EPYC with SHA instructions (docs/SECURITY.md has the times). The
// estimates are within about a factor of 2 of what was measured; they
// bound a check's cost to that, not to the millisecond.

/// PBKDF2-HMAC iterations of one output block per unit of work (an
/// iteration is two compressions of SHA-256 or SHA-1): measured at 2 to 3,
/// fewer on a CPU without SHA instructions. An iteration of SHA-512 counts
/// twice ([`Pbkdf2Digest::iteration_weight`]).
const PBKDF2_ITERATIONS_PER_UNIT: u128 = 2;
/// Units of work per bcrypt round (cost c runs 2^c of them, each two key
/// expansions of 521 Blowfish encryptions): measured at 150 to 200.
const BCRYPT_UNITS_PER_ROUND: u128 = 160;
/// scrypt's N × r × p per unit of work (scrypt mixes 2N blocks of
/// 128 × r bytes, p times over, and allocates them anew): measured at
/// about 1.
const SCRYPT_NRP_PER_UNIT: u128 = 1;
/// The most bytes of a password plain bcrypt reads.
const BCRYPT_MAX_BYTES: usize = 72;
/// The most memory one scrypt hash may take (Django's takes 16 MiB).
const MAX_SCRYPT_BYTES: u128 = 256 << 20;
/// The longest salt accepted, in bytes (Django writes 22, passlib 16 and
/// allows 1,024): longer is no hasher's, only a way to make each check dearer.
const MAX_SALT_BYTES: usize = 1024;
/// The key lengths accepted, in bytes (Django's PBKDF2 writes 32 with
/// SHA-256 and 20 with SHA-1, its scrypt 64): a shorter key would let a
/// wrong password match by chance (one in 2^32 with 4 bytes), and a longer
/// one only costs more.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 16..=64;

/// A recognised password hash, parsed; see [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportedHash {
    /// PBKDF2-HMAC over the password's UTF-8 bytes and the salt's.
    Pbkdf2 {
        /// SHA-1, SHA-256 or SHA-512.
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
    /// Without it, a password over 72 bytes or holding a NUL byte matches
    /// nothing: bcrypt cannot tell it from others.
    Bcrypt {
        /// Whether the password is pre-hashed.
        sha256_first: bool,
        /// The cost (log2 of the rounds), as the string says.
        cost: u32,
        /// The bcrypt string itself.
        bcrypt: String,
    },
    /// An Argon2 PHC string (`$argon2id$v=19$...`), any variant.
    Argon2 {
        /// The PHC string.
        phc: String,
        /// Its memory, KiB.
        memory_kib: u32,
        /// Its passes over that memory.
        passes: u32,
    },
    /// scrypt over the password and salt (Django's `scrypt`, Werkzeug's).
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
    /// HMAC-SHA-512 (Werkzeug's `pbkdf2:sha512`).
    Sha512,
}

/// Why a stored hash cannot serve a password login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashProblem {
    /// No password was ever set: Django's unusable password (`!...`) or an
    /// empty string.
    NoPassword,
    /// Not a format this module knows; holds the scheme it seems to name:
    /// the text before the first `$`, whole (Werkzeug's methods run to 25
    /// characters), only a text past 64 characters cut, ending in `…`.
    UnknownScheme(String),
    /// A known scheme, but not a well-formed hash of it.
    Malformed(&'static str),
    /// Well-formed, with a cost past what one login may spend; says which.
    TooCostly(String),
}

impl std::fmt::Display for HashProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoPassword => {
                f.write_str("none was set (an empty hash, or an unusable one: `!...`)")
            }
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
    if werkzeug::is_werkzeug(algorithm, rest) {
        return werkzeug::read(algorithm, rest);
    }
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

impl Pbkdf2Digest {
    /// The digest's output, bytes: one PBKDF2 output block.
    fn output_bytes(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The cost of one iteration relative to SHA-256's. SHA-512's
    /// compression has no instruction of its own on most CPUs: an
    /// iteration took 2.3 times SHA-256's (OpenSSL, through Python's
    /// hashlib, on a CPU with SHA-256 instructions: 1,000,000 in 1.0 s
    /// against 0.43 s); 2 is within the estimates' factor of 2.
    fn iteration_weight(self) -> u128 {
        match self {
            Self::Sha1 | Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }
}

impl ImportedHash {
    /// The estimated work of one [`verify`](Self::verify), in Argon2 blocks
    /// computed (a native login is [`NATIVE_WORK`]). For a hash that
    /// [`read`] returns it is at most [`MAX_WORK`]. An estimate, from
    /// measured ratios between the algorithms: within about a factor of 2
    /// of the time taken, on the machines measured.
    pub fn work(&self) -> u64 {
        let work = match self {
            Self::Pbkdf2 {
                digest,
                iterations,
                expected,
                ..
            } => pbkdf2_work(*digest, u64::from(*iterations), expected.len()),
            Self::Bcrypt { cost, .. } => bcrypt_work(*cost),
            Self::Argon2 {
                memory_kib, passes, ..
            } => u128::from(*memory_kib) * u128::from(*passes),
            Self::Scrypt { log_n, r, p, .. } => scrypt_work(u32::from(*log_n), *r, *p),
        };
        u64::try_from(work).unwrap_or(u64::MAX)
    }

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
                    Pbkdf2Digest::Sha512 => pbkdf2::pbkdf2::<hmac::Hmac<Sha512>>,
                };
                derive(password.as_bytes(), salt, *iterations, &mut derived).is_ok()
                    && bool::from(derived.ct_eq(expected))
            }
            Self::Bcrypt {
                sha256_first,
                bcrypt,
                ..
            } => {
                let verified = if *sha256_first {
                    let hexed = hex::encode(Sha256::digest(password.as_bytes()));
                    bcrypt::verify(hexed, bcrypt)
                } else {
                    // bcrypt reads at most 72 bytes, and the key it reads
                    // (the password and a NUL) repeats through them: every
                    // password sharing the first 72 bytes, or holding a
                    // NUL ("abc\0abc" is bcrypt's "abc"), is one to it. Such
                    // a password logged in and was rehashed as typed, after
                    // which the owner's own was refused (issue 29, item 12):
                    // it is refused, after the same work as any other, so
                    // that its owner sets a new one. 72 bytes or fewer
                    // without a NUL, bcrypt tells every password apart.
                    let bytes = password.as_bytes();
                    let told_apart = bytes.len() <= BCRYPT_MAX_BYTES && !bytes.contains(&0);
                    bcrypt::verify(&bytes[..bytes.len().min(BCRYPT_MAX_BYTES)], bcrypt)
                        .map(|matches| matches && told_apart)
                };
                verified.unwrap_or(false)
            }
            Self::Argon2 { phc, .. } => super::verify_with(password, phc, memory),
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
