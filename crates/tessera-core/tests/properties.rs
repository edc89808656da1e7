//! Properties of the token rules over generated input: nothing panics, and
//! no change to a valid token yields a different valid token.

use proptest::prelude::*;
use std::sync::OnceLock;
use tessera_core::Algorithm;
use tessera_core::claims::{Subject, TokenType};
use tessera_core::ids::{FamilyId, UserId};
use tessera_core::keys::{KeyMaterial, KeyRing};
use tessera_core::password::imported::{self, MAX_WORK, NATIVE_WORK};
use tessera_core::password::{HashMemory, PasswordPolicy};
use tessera_core::throttle::{FailureLog, Limit};
use tessera_core::token::{Grant, TokenPolicy, issue, validate};
use tessera_core::username::{MAX_USERNAME_CHARS, Username};

const NOW: i64 = 1_800_000_000;

fn setup() -> &'static (TokenPolicy, KeyRing, String) {
    static SETUP: OnceLock<(TokenPolicy, KeyRing, String)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = KeyMaterial::generate(Algorithm::ES256)
            .unwrap()
            .into_key()
            .unwrap();
        let ring = KeyRing::single(key);
        let policy = TokenPolicy::new();
        let subject = Subject {
            user_id: UserId::new(7),
            username: "alice".into(),
            email: String::new(),
            is_staff: false,
            is_superuser: false,
            token_version: 0,
            roles: Vec::new(),
            app_metadata: Default::default(),
            claims_version: 0,
        };
        let fid = FamilyId::random();
        let grant = Grant {
            token_type: TokenType::Access,
            fid: &fid,
            fresh: true,
            extra: None,
            csrf: None,
            amr: &[],
        };
        let token = issue(&policy, &ring, &subject, &grant, NOW).unwrap().token;
        (policy, ring, token)
    })
}

fn base64url_segment() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    })
}

proptest! {
    #[test]
    fn any_string_is_refused_without_panicking(s in "\\PC{0,300}") {
        let (policy, ring, _) = setup();
        prop_assert!(validate(policy, ring, &s, None, NOW).is_err());
    }

    #[test]
    fn token_shaped_garbage_is_refused(h in base64url_segment(), p in base64url_segment(), sig in base64url_segment()) {
        let (policy, ring, _) = setup();
        let token = format!("{h}.{p}.{sig}");
        prop_assert!(validate(policy, ring, &token, None, NOW).is_err());
    }

    #[test]
    fn any_change_to_a_valid_token_is_refused_or_harmless(index in 0usize..2000, byte in 0x21u8..0x7f) {
        let (policy, ring, token) = setup();
        let original = validate(policy, ring, token, None, NOW).unwrap();
        let mut bytes = token.clone().into_bytes();
        let index = index % bytes.len();
        prop_assume!(bytes[index] != byte);
        bytes[index] = byte;
        let mutated = String::from_utf8(bytes).unwrap();
        if let Ok(claims) = validate(policy, ring, &mutated, None, NOW) {
            // Only an encoding variant that decodes to the very same token may pass.
            prop_assert_eq!(claims, original);
        }
    }

    #[test]
    fn usernames_never_panic_and_stay_within_bounds(s in "\\PC{0,400}") {
        if let Ok(name) = Username::parse(&s) {
            prop_assert!(name.as_str().chars().count() <= MAX_USERNAME_CHARS);
            prop_assert!(!name.as_str().chars().any(char::is_control));
            prop_assert!(!name.as_str().trim().is_empty());
        }
    }


    #[test]
    fn throttling_waits_are_between_1_and_60_seconds_and_memory_is_capped(
        events in proptest::collection::vec((0u8..20, 0i64..120_000), 0..300)
    ) {
        let mut log = FailureLog::new(Limit { failures: 3, window_ms: 60_000 }, 8);
        let mut now = 0;
        for (key, step) in events {
            now += step / 100;
            let key = format!("k{key}");
            if let Some(wait) = log.retry_after(&key, now) {
                prop_assert!((1..=60).contains(&wait));
            } else {
                log.record(&key, now);
            }
            prop_assert!(log.len() <= 8);
        }
    }
}

proptest! {
    // zxcvbn takes milliseconds a password: fewer cases here (the fuzz
    // targets go deeper), so that the suite stays fast.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_password_policy_never_panics(password in "\\PC{0,300}", username in "\\PC{0,40}", email in "\\PC{0,40}") {
        let _ = PasswordPolicy { min_length: 8 }.check(&password, &username, &email);
    }
}

/// A number in `typical` (where a hash is read and checked) two times in
/// three, else as a hostile row has it: any size, small, near the work
/// budget's edges, or a power of two (scrypt's N).
fn number(typical: std::ops::Range<u128>) -> impl Strategy<Value = u128> {
    prop_oneof![
        6 => typical,
        1 => any::<u128>(),
        1 => any::<u64>().prop_map(u128::from),
        1 => any::<u32>().prop_map(u128::from),
        1 => 1u128..3_000_000,
        1 => (0u32..128).prop_map(|k| 1u128 << k),
    ]
}

/// Base64 of a key: mostly of a length accepted (16 to 64 bytes).
fn key(padded: bool) -> impl Strategy<Value = String> {
    prop_oneof![3 => base64_of(16..65, padded), 1 => base64_of(0..101, padded)]
}

/// Base64 of `lengths` bytes, padded or not.
fn base64_of(lengths: std::ops::Range<usize>, padded: bool) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), lengths).prop_map(move |bytes| {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
        if padded {
            STANDARD.encode(bytes)
        } else {
            STANDARD_NO_PAD.encode(bytes)
        }
    })
}

/// A salt as Django writes it (text), or one far longer than any hasher's.
fn salt_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]{0,40}",
        (1000usize..1100).prop_map(|n| "s".repeat(n))
    ]
}

/// A hash of one of the imported schemes' shapes, with hostile parameters.
fn hostile_hash() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(vec!["pbkdf2_sha256", "pbkdf2_sha1"]),
            number(1..9_000),
            salt_text(),
            key(true),
        )
            .prop_map(|(scheme, n, salt, key)| format!("{scheme}${n}${salt}${key}")),
        (number(1..9_000), base64_of(0..1100, false), key(false)).prop_map(|(n, salt, key)| {
            let (salt, key) = (salt.replace('+', "."), key.replace('+', "."));
            format!("$pbkdf2-sha256${n}${salt}${key}")
        }),
        (
            (1u32..13)
                .prop_map(|k| 1u128 << k)
                .boxed()
                .prop_union(number(0..64).boxed()),
            salt_text(),
            number(1..9),
            number(1..5),
            key(true),
        )
            .prop_map(|(n, salt, r, p, key)| format!("scrypt${n}${salt}${r}${p}${key}")),
        (
            prop::sample::select(vec!["bcrypt$$2b", "bcrypt_sha256$$2b", "$2a", "$2y"]),
            prop_oneof![3 => 4u32..6, 1 => 0u32..100],
            "[./A-Za-z0-9]{53}",
        )
            .prop_map(|(prefix, cost, rest)| format!("{prefix}${cost:02}${rest}")),
        (
            prop::sample::select(vec![
                "$argon2id$v=19",
                "argon2$argon2i$v=19",
                "$argon2d$v=16"
            ]),
            number(8..4096),
            number(1..3),
            number(1..4),
            base64_of(8..70, false),
            key(false),
        )
            .prop_map(|(prefix, m, t, p, salt, key)| format!(
                "{prefix}$m={m},t={t},p={p}${salt}${key}"
            )),
        // Werkzeug's (Flask's): `pbkdf2:DIGEST:ITERATIONS$SALT$HEX`.
        (
            prop::sample::select(vec!["sha1", "sha256", "sha512", "md5"]),
            number(1..9_000),
            salt_text(),
            hex_key(),
        )
            .prop_map(|(digest, n, salt, key)| format!("pbkdf2:{digest}:{n}${salt}${key}")),
        // ... and `scrypt:N:r:p$SALT$HEX`.
        (
            (1u32..13)
                .prop_map(|k| 1u128 << k)
                .boxed()
                .prop_union(number(0..64).boxed()),
            number(1..9),
            number(1..5),
            salt_text(),
            hex_key(),
        )
            .prop_map(|(n, r, p, salt, key)| format!("scrypt:{n}:{r}:{p}${salt}${key}")),
    ]
}

/// Lowercase hex of a key, mostly of a length Werkzeug writes (20, 32 or
/// 64 bytes).
fn hex_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![20usize, 32, 64])
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        1 => proptest::collection::vec(any::<u8>(), 0..101),
    ]
    .prop_map(hex::encode)
}

thread_local! {
    /// One working memory for every case (19 MiB zeroed each was most of
    /// the test's time).
    static MEMORY: std::cell::RefCell<HashMemory> = std::cell::RefCell::new(HashMemory::new());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Issue 29, item 7: no parameter of an imported hash panics its
    /// reading, what is read is within the work budget, and a cheap one is
    /// checked without a panic (the fuzz target `imported_hash` goes deeper).
    #[test]
    fn imported_hashes_with_hostile_parameters_are_read_within_the_budget_or_refused(
        encoded in hostile_hash(),
        password in "\\PC{0,100}",
    ) {
        match imported::read(&encoded) {
            Ok(hash) => {
                prop_assert!(hash.work() <= MAX_WORK, "{encoded}: {}", hash.work());
                // Only what is cheap: the budget bounds the rest.
                if hash.work() <= NATIVE_WORK / 8 {
                    MEMORY.with_borrow_mut(|memory| hash.verify(&password, memory));
                }
            }
            Err(problem) => prop_assert!(!problem.to_string().is_empty()),
        }
    }
}
