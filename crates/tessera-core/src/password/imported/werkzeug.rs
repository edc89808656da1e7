//! Werkzeug's hashes, as `werkzeug.security.generate_password_hash` writes
//! them (what Flask applications and Flask-JWT-Extended's examples store):
//! `METHOD$SALT$HEX`, with METHOD `scrypt:N:r:p` (werkzeug's default) or
//! `pbkdf2:DIGEST:ITERATIONS`. The salt is used as its UTF-8 text, not
//! decoded; HEX is the derived key in lowercase hex, 64 bytes for scrypt
//! and the digest's size for PBKDF2. Read as werkzeug 3.1's
//! `check_password_hash` reads them, so that a password it accepts is
//! accepted here and one it refuses is refused.

use super::{
    HashProblem, ImportedHash, MAX_SALT_BYTES, Pbkdf2Digest, bounded_pbkdf2, bounded_scrypt,
    iteration_count,
};

/// The iterations werkzeug 3.1 runs for a `pbkdf2` method that names none.
/// werkzeug has always written the count it used (`pbkdf2:sha256:600000`),
/// so only a hash built by hand lacks it; werkzeug's own reading is taken.
const DEFAULT_PBKDF2_ITERATIONS: u64 = 1_000_000;
/// werkzeug's scrypt parameters (N, r, p) for a bare `scrypt` method, the
/// same in every version that has scrypt (2.3 on).
const DEFAULT_SCRYPT: (u128, u32, u32) = (1 << 15, 8, 1);
/// The key werkzeug's scrypt derives (hashlib's default `dklen`), bytes.
const SCRYPT_KEY_BYTES: usize = 64;

/// Whether `method` (what precedes the first `$`) and the `rest` after it
/// are werkzeug's. Django's `scrypt$N$SALT$R$P$HASH` shares the bare name
/// but has five fields after it, werkzeug's two.
pub(super) fn is_werkzeug(method: &str, rest: &str) -> bool {
    method == "pbkdf2"
        || method.starts_with("pbkdf2:")
        || method.starts_with("scrypt:")
        || (method == "scrypt" && rest.matches('$').count() == 1)
}

/// Reads a hash for which [`is_werkzeug`] holds: `rest` is `SALT$HEX`.
pub(super) fn read(method: &str, rest: &str) -> Result<ImportedHash, HashProblem> {
    let mut args = method.split(':');
    match args.next() {
        Some("scrypt") => scrypt(args.collect(), rest),
        _ => pbkdf2(method, args.collect(), rest),
    }
}

/// `pbkdf2[:DIGEST[:ITERATIONS]]`; werkzeug's default digest is SHA-256.
fn pbkdf2(method: &str, args: Vec<&str>, rest: &str) -> Result<ImportedHash, HashProblem> {
    let (digest_name, iterations) = match args[..] {
        [] => ("sha256", None),
        [digest] => (digest, None),
        [digest, iterations] => (digest, Some(iterations)),
        _ => return Err(HashProblem::Malformed("werkzeug pbkdf2")),
    };
    // The label of each digest names it in the messages, whole.
    let (digest, scheme) = match digest_name {
        "sha1" => (Pbkdf2Digest::Sha1, "werkzeug pbkdf2:sha1"),
        "sha256" => (Pbkdf2Digest::Sha256, "werkzeug pbkdf2:sha256"),
        "sha512" => (Pbkdf2Digest::Sha512, "werkzeug pbkdf2:sha512"),
        // hashlib has more (md5, sha224, sha3_256, ...), which no
        // werkzeug default nor guide uses: named, not guessed at.
        _ => return Err(super::unknown_scheme(method)),
    };
    let iterations = match iterations {
        Some(text) => iteration_count(text, digest, scheme)?,
        None => iteration_count(&DEFAULT_PBKDF2_ITERATIONS.to_string(), digest, scheme)?,
    };
    let (salt, expected) =
        salt_and_key(rest, digest.output_bytes()).ok_or(HashProblem::Malformed(scheme))?;
    bounded_pbkdf2(digest, iterations, salt, expected, scheme)
}

/// `scrypt[:N:R:P]`.
fn scrypt(args: Vec<&str>, rest: &str) -> Result<ImportedHash, HashProblem> {
    const SCHEME: &str = "werkzeug scrypt";
    let malformed = HashProblem::Malformed(SCHEME);
    let (n, r, p) = match args[..] {
        [] => DEFAULT_SCRYPT,
        [n, r, p] => match (n.parse::<u128>(), r.parse::<u32>(), p.parse::<u32>()) {
            (Ok(n), Ok(r), Ok(p)) => (n, r, p),
            _ => return Err(malformed),
        },
        _ => return Err(malformed),
    };
    // The costs are refused before the key is even decoded, as Django's.
    bounded_scrypt(n, r, p, SCHEME, || salt_and_key(rest, SCRYPT_KEY_BYTES))
}

/// `SALT$HEX`: the salt's bytes and the key, which must be `key_bytes`
/// long in lowercase hex (werkzeug compares hex text, so another length or
/// an uppercase digit never matches there either).
fn salt_and_key(rest: &str, key_bytes: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let (salt, hex) = rest.split_once('$')?;
    let lowercase_hex = hex.len() == 2 * key_bytes
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if salt.is_empty() || salt.len() > MAX_SALT_BYTES || !lowercase_hex {
        return None;
    }
    let key = hex::decode(hex).ok()?;
    Some((salt.as_bytes().to_vec(), key))
}
