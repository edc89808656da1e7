//! Reading each scheme's encoded hash into an [`ImportedHash`], its
//! parameters checked against the work budget before anything runs.

use super::*;

/// The scheme `encoded` seems to name, for a message: what precedes its
/// first `$` (or its first field of a `$`-led string), never the hash.
pub(super) fn unknown(encoded: &str) -> HashProblem {
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
pub(super) const MAX_SCHEME_CHARS: usize = 64;

/// [`HashProblem::UnknownScheme`] naming `scheme` whole. A cut would name
/// another scheme (`pbkdf2:sha256:100000` for a 1,000,000-iteration one):
/// only a text too long for any scheme is cut, and says so with `…`.
pub(super) fn unknown_scheme(scheme: &str) -> HashProblem {
    let mut chars = scheme.chars();
    let mut named: String = chars.by_ref().take(MAX_SCHEME_CHARS).collect();
    if chars.next().is_some() {
        named.push('…');
    }
    HashProblem::UnknownScheme(named)
}

pub(super) fn is_bcrypt(encoded: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| encoded.starts_with(prefix))
}

/// An Argon2 PHC string, its memory and passes bounded.
pub(super) fn argon2_phc(phc: &str) -> Result<ImportedHash, HashProblem> {
    use argon2::password_hash::PasswordHash;
    let parsed = PasswordHash::new(phc).map_err(|_| HashProblem::Malformed("argon2"))?;
    let params = super::super::argon2_params(&parsed).ok_or(HashProblem::Malformed("argon2"))?;
    let key_fits = parsed.hash.is_some_and(|h| KEY_BYTES.contains(&h.len()));
    if parsed.salt.is_none() || !key_fits {
        return Err(HashProblem::Malformed("argon2"));
    }
    let (memory_kib, passes) = (params.m_cost(), params.t_cost());
    if memory_kib > super::super::MAX_VERIFY_KIB {
        return Err(HashProblem::TooCostly(format!(
            "argon2 memory {memory_kib} KiB (at most {})",
            super::super::MAX_VERIFY_KIB
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
pub(super) fn within_budget(work: u128, what: impl FnOnce() -> String) -> Result<(), HashProblem> {
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
pub(super) fn pbkdf2_work(digest: Pbkdf2Digest, iterations: u64, key_bytes: usize) -> u128 {
    let blocks = key_bytes.div_ceil(digest.output_bytes()).max(1);
    (u128::from(iterations) * blocks as u128 * digest.iteration_weight())
        .div_ceil(PBKDF2_ITERATIONS_PER_UNIT)
}

/// `ITERATIONS$SALT$BASE64_HASH`, the salt taken as its text.
pub(super) fn django_pbkdf2(
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
pub(super) fn decoded_key(engine: &impl Engine, text: &str) -> Option<Vec<u8>> {
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
pub(super) fn bounded_pbkdf2(
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
pub(super) fn passlib_pbkdf2(rest: &str) -> Result<ImportedHash, HashProblem> {
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
pub(super) fn iteration_count(
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

pub(super) fn bcrypt_hash(
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
pub(super) fn bcrypt_work(cost: u32) -> u128 {
    1u128
        .checked_shl(cost)
        .unwrap_or(u128::MAX)
        .saturating_mul(BCRYPT_UNITS_PER_ROUND)
}

/// The work of scrypt with these parameters (N = 2^`log_n`).
pub(super) fn scrypt_work(log_n: u32, r: u32, p: u32) -> u128 {
    let n = 1u128.checked_shl(log_n).unwrap_or(u128::MAX);
    n.saturating_mul(u128::from(r))
        .saturating_mul(u128::from(p))
        .div_ceil(SCRYPT_NRP_PER_UNIT)
}

/// `N$SALT$R$P$BASE64_HASH`, the salt taken as its text.
pub(super) fn django_scrypt(rest: &str) -> Result<ImportedHash, HashProblem> {
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
pub(super) fn bounded_scrypt(
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
