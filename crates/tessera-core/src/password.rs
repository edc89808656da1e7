//! Password hashing (Argon2id, PHC strings) and the password policy
//! (docs/API.md).
//!
//! Hashing is deliberately slow; callers run it off their async runtime, and
//! give it its working memory ([`HashMemory`]) so that memory is bounded by
//! the hashes allowed at once, not by how many have run.

pub mod imported;
mod policy;

pub use policy::PasswordPolicy;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::LazyLock;

/// Argon2id's memory cost here, KiB: OWASP's recommended minimum (19 MiB,
/// 2 passes, 1 lane).
const M_COST_KIB: u32 = 19_456;
/// Argon2id's passes over that memory.
const T_COST: u32 = 2;

/// The most memory one verification may take, KiB: hashes made elsewhere
/// (imported users) may ask for more than Tessera's own, but not without bound.
const MAX_VERIFY_KIB: u32 = 262_144;

fn params() -> Params {
    if insecure_test_cost() {
        // Argon2's minimum (8 KiB, one pass): what the test suite hashes at.
        return Params::new(8, 1, 1, None).unwrap_or_default();
    }
    // These constants are valid Argon2 parameters; `Params::new` cannot refuse them.
    Params::new(M_COST_KIB, T_COST, 1, None).unwrap_or_default()
}

/// Whether this process hashes new passwords at an insecure cost, for its
/// test suite. Never in a build without the `insecure-test-hashing` feature
/// (which only the test suite enables, as a dev-dependency, so `cargo build`
/// and `cargo install` never have it); in one with it, only after
/// [`use_insecure_test_cost`] or with `TESSERA_TEST_INSECURE_HASHING=1` in
/// the environment.
pub fn insecure_test_cost() -> bool {
    #[cfg(feature = "insecure-test-hashing")]
    {
        test_cost::chosen()
    }
    #[cfg(not(feature = "insecure-test-hashing"))]
    {
        false
    }
}

/// Hashes new passwords at Argon2's minimum cost from now on, in this
/// process: tests that hash hundreds of passwords on two cores. Call it
/// before the first hash (a hash made earlier still verifies, and is
/// replaced at its next login as any older hash is).
#[cfg(feature = "insecure-test-hashing")]
pub fn use_insecure_test_cost() {
    test_cost::CHOSEN.store(true, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(feature = "insecure-test-hashing")]
mod test_cost {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    pub(super) static CHOSEN: AtomicBool = AtomicBool::new(false);

    /// Read once: a child process the tests start is told by its environment.
    static FROM_ENVIRONMENT: LazyLock<bool> = LazyLock::new(|| {
        std::env::var_os("TESSERA_TEST_INSECURE_HASHING").is_some_and(|v| v == "1")
    });

    pub(super) fn chosen() -> bool {
        CHOSEN.load(Ordering::Relaxed) || *FROM_ENVIRONMENT
    }
}

/// Working memory for one Argon2 hash, reused from hash to hash. Allocating
/// it for each hash let the allocator keep every thread's copy: a burst of
/// failed logins grew the process by hundreds of megabytes for good.
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    /// Memory for one hash with Tessera's parameters.
    pub fn new() -> Self {
        Self(vec![Block::default(); params().block_count()])
    }

    /// The bytes it holds.
    pub fn bytes(&self) -> usize {
        self.0.len() * Block::SIZE
    }

    /// `blocks` blocks of it, grown first if they are more than it has.
    fn blocks(&mut self, blocks: usize) -> &mut [Block] {
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::default());
        }
        &mut self.0[..blocks]
    }
}

impl Default for HashMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes `password` with `argon` and `salt` in `memory`: the PHC form.
fn hash_in<'a>(
    argon: &Argon2<'_>,
    (algorithm, version, params): (Algorithm, Version, &Params),
    password: &str,
    salt: argon2::password_hash::Salt<'a>,
    memory: &mut HashMemory,
) -> Result<PasswordHash<'a>, argon2::password_hash::Error> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(length, |out| {
        argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                out,
                memory.blocks(params.block_count()),
            )
            .map_err(Into::into)
    })?;
    Ok(PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: params.try_into()?,
        salt: Some(salt),
        hash: Some(output),
    })
}

/// Hashes `password` into a PHC string (Argon2id) with a fresh random salt,
/// working in `memory`.
pub fn hash_with(
    password: &str,
    memory: &mut HashMemory,
) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let params = params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let algorithm = (Algorithm::Argon2id, Version::V0x13, &params);
    Ok(hash_in(&argon, algorithm, password, salt.as_salt(), memory)?.to_string())
}

/// [`hash_with`] in memory of its own (tools and tests).
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    hash_with(password, &mut HashMemory::new())
}

/// Whether `password` matches the PHC string `phc` (any Argon2 variant and
/// parameters up to 256 MiB), working in `memory`. A malformed `phc`
/// matches nothing.
pub fn verify_with(password: &str, phc: &str, memory: &mut HashMemory) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Some(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        argon2_params(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_KIB {
        return false;
    }
    let argon = Argon2::new(algorithm, version, params.clone());
    match hash_in(
        &argon,
        (algorithm, version, &params),
        password,
        salt,
        memory,
    ) {
        // `Output`'s comparison is constant-time.
        Ok(computed) => computed.hash.is_some_and(|output| output == expected),
        Err(_) => false,
    }
}

/// The Argon2 parameters `parsed` names, if they are valid. The lanes are
/// looked at first: argon2 0.5's `Params::new` multiplies them by 8 in a
/// `u32`, which overflows past 2^29 lanes (a panic in a build that checks
/// overflow, as the tests' does) before it refuses more than 2^24 - 1.
pub(crate) fn argon2_params(parsed: &PasswordHash<'_>) -> Option<Params> {
    let too_many_lanes = parsed.params.iter().any(|(name, value)| {
        name.as_str() == "p" && value.decimal().is_ok_and(|p| p > Params::MAX_P_COST)
    });
    if too_many_lanes {
        return None;
    }
    Params::try_from(parsed).ok()
}

/// Whether `password` matches `stored`, a hash Tessera made or one an
/// imported user brought ([`imported`]), working in `memory`. A hash that
/// cannot be used (none set, unknown, too costly, malformed) matches
/// nothing, and costs one verification of Tessera's own ([`verify_dummy`]),
/// as an unknown user does: answering such a user at once told an
/// attacker that the name exists (issue 29, item 6).
///
/// A usable hash much cheaper than Tessera's own (an older Django's 10,000
/// PBKDF2 iterations, bcrypt cost 4) costs one dummy verification more, so
/// that it is not answered in a fraction of an unknown user's time. Only
/// below half a native verification: nearer to it, one more would leave
/// the check further from an unknown user's time than it was. An imported
/// hash dearer than Tessera's own is not made cheaper (it cannot be; see
/// docs/SECURITY.md): it is replaced at the user's first login.
pub fn verify_stored(password: &str, stored: &str, memory: &mut HashMemory) -> bool {
    let Some(hash) = imported::parse(stored) else {
        return verify_dummy(password, memory);
    };
    let matches = hash.verify(password, memory);
    if hash.work() < native_work() / 2 {
        verify_dummy(password, memory);
    }
    matches
}

/// The work of one verification of a hash Tessera makes now, in the unit
/// of [`imported::ImportedHash::work`]: in a test build at the test cost,
/// what the dummy verification costs there.
fn native_work() -> u64 {
    let params = params();
    u64::from(params.m_cost()) * u64::from(params.t_cost())
}

/// Whether `stored` is a hash as Tessera makes them today (Argon2id with
/// its parameters); any other the caller replaces after the next successful
/// login, so that imported and older hashes do not stay weaker.
pub fn is_current(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(Version::V0x13.into())
        && argon2_params(&parsed).is_some_and(|p| {
            let ours = params();
            (p.m_cost(), p.t_cost(), p.p_cost()) == (ours.m_cost(), ours.t_cost(), ours.p_cost())
        })
}

/// [`verify_with`] in memory of its own (tools and tests).
pub fn verify(password: &str, phc: &str) -> bool {
    verify_with(password, phc, &mut HashMemory::new())
}

/// A hash of no one's password, verified against when a username is unknown so
/// that the answer takes as long as for a known user with a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash("tessera: no such user").unwrap_or_default());

/// Spends the time of one verification (in `memory`) and returns false.
pub fn verify_dummy(password: &str, memory: &mut HashMemory) -> bool {
    let _ = verify_with(password, &DUMMY_HASH, memory);
    false
}

/// Forces the dummy hash to be computed now rather than on the first unknown login.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_and_verify() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("wrong", &h));
        assert!(is_current(&h));
        let mut memory = HashMemory::new();
        assert!(verify_stored(
            "correct horse battery staple",
            &h,
            &mut memory
        ));
        assert!(!verify_stored("wrong", &h, &mut memory));
        // Another Argon2 variant or cost is not Tessera's own: it is replaced.
        for other in [
            "$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            "pbkdf2_sha256$1000000$salt$aGFzaA==",
            "",
        ] {
            assert!(!is_current(other), "{other}");
        }
        assert!(!verify("x", "not a phc string"));
        // More lanes than Argon2 allows, past what argon2's check can count.
        assert!(!verify(
            "x",
            "$argon2id$v=19$m=8,t=1,p=536870912$AAAA$AAAAAAAAAAAAAA"
        ));
        assert!(!verify_dummy("anything", &mut HashMemory::new()));
    }

    #[test]
    fn one_working_memory_serves_hash_after_hash_and_foreign_argon2_hashes() {
        use argon2::password_hash::PasswordHasher;
        let mut memory = HashMemory::new();
        let first = hash_with("first password", &mut memory).unwrap();
        let second = hash_with("second password", &mut memory).unwrap();
        assert!(verify_with("first password", &first, &mut memory));
        assert!(verify_with("second password", &second, &mut memory));
        assert!(!verify_with("second password", &first, &mut memory));
        assert_eq!(memory.bytes(), 19_456 * 1024);
        // Hashes the argon2 crate makes with other variants and parameters.
        let salt = SaltString::generate(&mut OsRng);
        for (algorithm, m_cost) in [(Algorithm::Argon2i, 8192), (Algorithm::Argon2d, 32_768)] {
            let params = Params::new(m_cost, 1, 1, None).unwrap();
            let phc = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"elsewhere", &salt)
                .unwrap()
                .to_string();
            assert!(verify_with("elsewhere", &phc, &mut memory), "{phc}");
            assert!(!verify_with("elsewhere!", &phc, &mut memory));
        }
        // The memory grew for the larger one, once.
        assert_eq!(memory.bytes(), 32_768 * 1024);
        // A hash asking for more than 256 MiB is not computed.
        let greedy = first.replace("m=19456", "m=524288");
        assert!(!verify_with("first password", &greedy, &mut memory));
    }
}
