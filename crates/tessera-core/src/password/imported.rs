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

mod werkzeug;

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

/// The scheme `encoded` seems to name, for a message: what precedes its
/// first `$` (or its first field of a `$`-led string), never the hash.
fn unknown(encoded: &str) -> HashProblem {
    let scheme = encoded
        .trim_start_matches('$')
        .split('$')
        .next()
        .unwrap_or("");
    if scheme.len() == encoded.len() {
        // No `$` at all: perhaps a password in clear; name no part of it.
        return HashProblem::UnknownScheme("(none)".to_owned());
    }
    unknown_scheme(scheme)
}

/// The longest scheme named whole in a message, in characters: room for
/// any real one, while a row of megabytes is not repeated.
const MAX_SCHEME_CHARS: usize = 64;

/// [`HashProblem::UnknownScheme`] naming `scheme` whole. A cut would name
/// another scheme (`pbkdf2:sha256:100000` for a 1,000,000-iteration one):
/// only a text too long for any scheme is cut, and says so with `…`.
fn unknown_scheme(scheme: &str) -> HashProblem {
    let mut chars = scheme.chars();
    let mut named: String = chars.by_ref().take(MAX_SCHEME_CHARS).collect();
    if chars.next().is_some() {
        named.push('…');
    }
    HashProblem::UnknownScheme(named)
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
    let params = super::argon2_params(&parsed).ok_or(HashProblem::Malformed("argon2"))?;
    let key_fits = parsed.hash.is_some_and(|h| KEY_BYTES.contains(&h.len()));
    if parsed.salt.is_none() || !key_fits {
        return Err(HashProblem::Malformed("argon2"));
    }
    let (memory_kib, passes) = (params.m_cost(), params.t_cost());
    if memory_kib > super::MAX_VERIFY_KIB {
        return Err(HashProblem::TooCostly(format!(
            "argon2 memory {memory_kib} KiB (at most {})",
            super::MAX_VERIFY_KIB
        )));
    }
    // Lanes share the memory (and this crate computes them one after
    // another): the work is the memory times the passes. (A memory much
    // larger than Tessera's runs each block up to twice as slow, its
    // caches missed: within the estimates' factor of 2.)
    within_budget(u128::from(memory_kib) * u128::from(passes), || {
        format!("argon2 memory {memory_kib} KiB × {passes} passes")
    })?;
    Ok(ImportedHash::Argon2 {
        phc: phc.to_owned(),
        memory_kib,
        passes,
    })
}

/// `Ok` when `work` is within [`MAX_WORK`], else how much it is, for `what`.
fn within_budget(work: u128, what: impl FnOnce() -> String) -> Result<(), HashProblem> {
    if work <= u128::from(MAX_WORK) {
        return Ok(());
    }
    let logins = work.div_ceil(u128::from(NATIVE_WORK));
    Err(HashProblem::TooCostly(format!(
        "{}: the work of {logins} native logins (at most {MAX_WORK_IN_NATIVE_LOGINS})",
        what()
    )))
}

/// The work of `iterations` PBKDF2 iterations deriving `key_bytes` with
/// `digest`: each output block runs every iteration.
fn pbkdf2_work(digest: Pbkdf2Digest, iterations: u64, key_bytes: usize) -> u128 {
    let blocks = key_bytes.div_ceil(digest.output_bytes()).max(1);
    (u128::from(iterations) * blocks as u128 * digest.iteration_weight())
        .div_ceil(PBKDF2_ITERATIONS_PER_UNIT)
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
    if salt.is_empty() || salt.len() > MAX_SALT_BYTES {
        return Err(malformed);
    }
    let iterations = iteration_count(iterations, digest, scheme)?;
    let expected = decoded_key(&STANDARD, hash).ok_or(malformed)?;
    bounded_pbkdf2(
        digest,
        iterations,
        salt.as_bytes().to_vec(),
        expected,
        scheme,
    )
}

/// `text` in `engine`'s base64, if it is a key of a length accepted.
fn decoded_key(engine: &impl Engine, text: &str) -> Option<Vec<u8>> {
    // Decoding a text far too long for any key is not even tried.
    if text.len() > 4 * KEY_BYTES.end().div_ceil(3) {
        return None;
    }
    engine
        .decode(text)
        .ok()
        .filter(|k| KEY_BYTES.contains(&k.len()))
}

/// A PBKDF2 hash, refused as too costly when its iterations times its
/// output blocks are past the budget.
fn bounded_pbkdf2(
    digest: Pbkdf2Digest,
    iterations: u64,
    salt: Vec<u8>,
    expected: Vec<u8>,
    scheme: &'static str,
) -> Result<ImportedHash, HashProblem> {
    within_budget(pbkdf2_work(digest, iterations, expected.len()), || {
        format!(
            "{scheme} iterations {iterations} of a {}-byte key",
            expected.len()
        )
    })?;
    // Within the budget, the count is far below u32::MAX.
    let iterations = u32::try_from(iterations).map_err(|_| HashProblem::Malformed(scheme))?;
    Ok(ImportedHash::Pbkdf2 {
        digest,
        iterations,
        salt,
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
    let iterations = iteration_count(iterations, Pbkdf2Digest::Sha256, SCHEME)?;
    let salt = (salt.len() <= 4 * MAX_SALT_BYTES.div_ceil(3))
        .then(|| STANDARD_NO_PAD.decode(salt.replace('.', "+")).ok())
        .flatten();
    let expected = decoded_key(&STANDARD_NO_PAD, &hash.replace('.', "+"));
    let (Some(salt), Some(expected)) = (salt, expected) else {
        return Err(HashProblem::Malformed(SCHEME));
    };
    if salt.len() > MAX_SALT_BYTES {
        return Err(HashProblem::Malformed(SCHEME));
    }
    bounded_pbkdf2(Pbkdf2Digest::Sha256, iterations, salt, expected, SCHEME)
}

/// A PBKDF2 iteration count: a positive integer whose work alone (for one
/// output block) is within the budget, so that a hostile count is called
/// too costly whatever else the hash holds.
fn iteration_count(
    text: &str,
    digest: Pbkdf2Digest,
    scheme: &'static str,
) -> Result<u64, HashProblem> {
    let n = text
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(HashProblem::Malformed(scheme))?;
    within_budget(pbkdf2_work(digest, n, 0), || {
        format!("{scheme} iterations {n}")
    })?;
    Ok(n)
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
    within_budget(bcrypt_work(cost), || format!("{scheme} cost {cost}"))?;
    Ok(ImportedHash::Bcrypt {
        sha256_first,
        cost,
        bcrypt: bcrypt.to_owned(),
    })
}

/// The work of a bcrypt hash of `cost`: 2^cost rounds.
fn bcrypt_work(cost: u32) -> u128 {
    1u128
        .checked_shl(cost)
        .unwrap_or(u128::MAX)
        .saturating_mul(BCRYPT_UNITS_PER_ROUND)
}

/// The work of scrypt with these parameters (N = 2^`log_n`).
fn scrypt_work(log_n: u32, r: u32, p: u32) -> u128 {
    let n = 1u128.checked_shl(log_n).unwrap_or(u128::MAX);
    n.saturating_mul(u128::from(r))
        .saturating_mul(u128::from(p))
        .div_ceil(SCRYPT_NRP_PER_UNIT)
}

/// `N$SALT$R$P$BASE64_HASH`, the salt taken as its text.
fn django_scrypt(rest: &str) -> Result<ImportedHash, HashProblem> {
    let malformed = HashProblem::Malformed("scrypt");
    let fields: Vec<&str> = rest.split('$').collect();
    let [n, salt, r, p, hash] = fields[..] else {
        return Err(malformed);
    };
    if salt.is_empty() || salt.len() > MAX_SALT_BYTES {
        return Err(malformed);
    }
    let (Ok(n), Ok(r), Ok(p)) = (n.parse::<u128>(), r.parse::<u32>(), p.parse::<u32>()) else {
        return Err(malformed);
    };
    bounded_scrypt(n, r, p, "scrypt", || {
        let expected = decoded_key(&STANDARD, hash)?;
        Some((salt.as_bytes().to_vec(), expected))
    })
}

/// An scrypt hash of N = `n`, refused as too costly past the memory or
/// work bounds before `salt_and_key` is called for the salt and the key
/// (`None`: malformed).
fn bounded_scrypt(
    n: u128,
    r: u32,
    p: u32,
    scheme: &'static str,
    salt_and_key: impl FnOnce() -> Option<(Vec<u8>, Vec<u8>)>,
) -> Result<ImportedHash, HashProblem> {
    let malformed = HashProblem::Malformed(scheme);
    if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 {
        return Err(malformed);
    }
    let log_n = n.trailing_zeros();
    // scrypt fills 128 * r * N bytes (and mixes them p times over).
    let memory = 128u128.saturating_mul(u128::from(r)).saturating_mul(n);
    if memory > MAX_SCRYPT_BYTES {
        return Err(HashProblem::TooCostly(format!(
            "{scheme} N=2^{log_n}, r={r}: {} MiB of memory (at most {})",
            memory >> 20,
            MAX_SCRYPT_BYTES >> 20
        )));
    }
    within_budget(scrypt_work(log_n, r, p), || {
        format!("{scheme} N=2^{log_n}, r={r}, p={p}")
    })?;
    let (salt, expected) = salt_and_key()
        .filter(|(_, key)| KEY_BYTES.contains(&key.len()))
        .ok_or(malformed.clone())?;
    // Within 256 MiB, log2(N) is at most 21; scrypt's own rules (such as
    // N < 2^(16 r)) are checked now, so that a hash read is one it runs.
    let log_n = u8::try_from(log_n).map_err(|_| malformed.clone())?;
    scrypt::Params::new(log_n, r, p, expected.len()).map_err(|_| malformed)?;
    Ok(ImportedHash::Scrypt {
        log_n,
        r,
        p,
        salt,
        expected,
    })
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
