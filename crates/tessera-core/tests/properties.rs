//! Properties of the token rules over generated input: nothing panics, and
//! no change to a valid token yields a different valid token.

use proptest::prelude::*;
use std::sync::OnceLock;
use tessera_core::Algorithm;
use tessera_core::claims::{Subject, TokenType, new_token_id};
use tessera_core::keys::{KeyMaterial, KeyRing};
use tessera_core::password::PasswordPolicy;
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
            user_id: 7,
            username: "alice".into(),
            email: String::new(),
            is_staff: false,
            token_version: 0,
        };
        let fid = new_token_id();
        let grant = Grant {
            token_type: TokenType::Access,
            fid: &fid,
            fresh: true,
            extra: None,
            csrf: None,
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
