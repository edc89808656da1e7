//! Which stored key signs when, on the database's clock, and how a process
//! turns those moments into moments of its own clock.

use super::*;

fn record(kid: &str, alg: &str, signs_from: Option<i64>, retired_at: Option<i64>) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        algorithm: alg.into(),
        private_key: Vec::new(),
        created_at: 0,
        signs_from,
        retired_at,
    }
}

/// The roles at `now` seconds of the database's clock, with a grace of 1000 s.
fn roles(records: &[KeyRecord], now_ms: i64) -> Vec<Role> {
    Roles::at(records, now_ms, 1000).roles
}

#[test]
fn a_published_key_signs_from_its_moment_and_the_old_one_until_then() {
    // Newest first, as the store lists them: rotated with a lead, to sign from 100.
    let keys = [
        record("new", "ES256", Some(100), None),
        record("old", "ES256", None, Some(100)),
    ];
    use Role::*;
    assert_eq!(roles(&keys, 99_999), [Published, Signing]);
    assert_eq!(roles(&keys, 100_000), [Signing, Verifying]);
    // The old key verifies what it signed for the grace, then nothing.
    assert_eq!(roles(&keys, 1_099_999), [Signing, Verifying]);
    assert_eq!(roles(&keys, 1_100_000), [Signing, Expired]);
}

#[test]
fn an_emergency_rotation_during_the_lead_retires_the_published_key_before_it_signs() {
    // Published to sign from 100; then `keys rotate --now` at 50.
    let keys = [
        record("now", "ES256", Some(50), None),
        record("ahead", "ES256", Some(100), Some(50)),
        record("old", "ES256", None, Some(50)),
    ];
    use Role::*;
    for now_ms in [50_000, 99_999, 100_000, 200_000] {
        assert_eq!(roles(&keys, now_ms), [Signing, Verifying, Verifying]);
    }
}

#[test]
fn the_key_signing_is_found_by_its_period_not_by_the_order_of_creation() {
    // The rotating shell's clock was behind: the new key sorts after the old.
    let keys = [
        record("old", "ES256", None, Some(100)),
        record("new", "ES256", Some(100), None),
    ];
    use Role::*;
    assert_eq!(roles(&keys, 99_000), [Signing, Published]);
    assert_eq!(roles(&keys, 100_000), [Verifying, Signing]);
}

#[test]
fn hmac_keys_verify_until_an_asymmetric_key_published_ahead_starts_signing() {
    let keys = [
        record("es", "ES256", Some(100), None),
        record("hs", "HS256", None, Some(100)),
        record("hs-older", "HS256", None, Some(20)),
        record("unknown", "XX999", None, None),
    ];
    use Role::*;
    let before = Roles::at(&keys, 99_000, 1000);
    assert_eq!(before.roles, [Published, Signing, Verifying, Unknown]);
    // Not for their grace: only until the switch.
    assert_eq!(before.verifies_until(&keys[1], 1000), Some(100));
    assert_eq!(before.verifies_until(&keys[2], 1000), Some(100));
    assert_eq!(before.verifies_until(&keys[0], 1000), None);
    let after = Roles::at(&keys, 100_000, 1000);
    assert_eq!(after.roles, [Signing, Refused, Refused, Unknown]);
}

#[test]
fn moments_of_the_database_clock_become_moments_of_this_clock_never_sooner() {
    let ahead = |ms| DatabaseClock {
        now_ms: 0,
        ahead_ms: ms,
    };
    // The database's clock 1.5 s ahead of this one: its second 100 begins
    // at 98.5 here, so this clock's second 99 is the first that is past it.
    assert_eq!(ahead(1_500).here(100), 99);
    assert_eq!(ahead(-1_500).here(100), 102);
    assert_eq!(ahead(0).here(100), 100);
    assert_eq!(ahead(2_000_000).here(100), -1_900);
    assert_eq!(ahead(0).here(i64::MIN), i64::MIN / 1000);
}
