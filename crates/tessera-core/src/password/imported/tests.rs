//! Hashes made by Django 5.2 (`make_password`, at its default costs and with
//! the cheapest valid ones), passlib 1.7 and argon2-cffi, each with whether
//! its own library accepts the password and the password plus "!".
use super::*;
use serde::Deserialize;

mod werkzeug_hashes;

#[derive(Deserialize)]
struct Vector {
    hasher: String,
    /// None for Django's unusable password (`make_password(None)`).
    password: Option<String>,
    encoded: String,
    check_ok: bool,
    check_wrong: bool,
    cheap: bool,
}

fn vectors() -> Vec<Vector> {
    serde_json::from_str(include_str!("vectors.json")).unwrap()
}

/// Checks every vector of `hasher` (Django's default costs only when `slow`).
fn check(hasher: &str, slow: bool) {
    let mut memory = HashMemory::new();
    let mut checked = 0;
    for v in vectors().iter().filter(|v| v.hasher == hasher) {
        if !v.cheap && !slow {
            continue;
        }
        let parsed = parse(&v.encoded).unwrap_or_else(|| panic!("not read: {}", v.encoded));
        let password = v.password.as_deref().unwrap_or_default();
        // Where Tessera parts from passlib: plain bcrypt reads 72 bytes at
        // most, and a longer password is refused rather than cut (see
        // `a_plain_bcrypt_hash_refuses_passwords_it_cannot_tell_apart`).
        let plain_bcrypt = matches!(
            parsed,
            ImportedHash::Bcrypt {
                sha256_first: false,
                ..
            }
        );
        let refused = plain_bcrypt && password.len() > 72;
        assert_eq!(
            parsed.verify(password, &mut memory),
            v.check_ok && !refused,
            "{} {:?}",
            v.encoded,
            password
        );
        // The wrong password costs a second hash: at the default costs, only
        // the cheap vectors check it.
        if v.cheap {
            assert_eq!(
                parsed.verify(&format!("{password}!"), &mut memory),
                v.check_wrong && !refused,
                "{} {:?}!",
                v.encoded,
                password
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no vector of {hasher}");
}

#[test]
fn django_pbkdf2_sha256() {
    // Django's 1,000,000 iterations take seconds in a test build (the
    // generic HMAC is compiled in this crate, unoptimised); see
    // `django_default_costs_are_read` for that vector.
    check("pbkdf2_sha256", false);
}

#[test]
fn django_pbkdf2_sha1() {
    check("pbkdf2_sha1", false);
}

#[test]
fn django_argon2() {
    // Django's default costs (100 MiB, 8 lanes) take seconds in a test
    // build; the cheap vector has the same format.
    check("argon2", false);
}

#[test]
fn django_bcrypt_sha256() {
    check("bcrypt_sha256", true);
}

#[test]
fn django_bcrypt() {
    check("bcrypt", true);
}

#[test]
fn django_scrypt() {
    // Django's default costs (80 MiB) take seconds in a test build; the
    // cheap vector has the same format.
    check("scrypt", false);
}

#[test]
fn passlib_pbkdf2_sha256_and_bcrypt_2a_2b_2y() {
    for hasher in [
        "passlib_pbkdf2_sha256",
        "passlib_bcrypt_2a",
        "passlib_bcrypt_2b",
        "passlib_bcrypt_2y",
    ] {
        check(hasher, false);
    }
}

#[test]
fn argon2_phc_strings_of_every_variant() {
    for hasher in [
        "argon2_cffi_argon2id",
        "argon2_cffi_argon2i",
        "argon2_cffi_argon2d",
    ] {
        check(hasher, false);
    }
}

#[test]
fn a_plain_bcrypt_hash_refuses_passwords_it_cannot_tell_apart() {
    // Issue 29 item 12: bcrypt reads at most 72 bytes, so any password
    // sharing the owner's first 72 logged in, and was rehashed as typed,
    // after which the owner's own password was refused.
    let v = vectors();
    let long = v
        .iter()
        .find(|v| {
            v.hasher == "passlib_bcrypt_2b" && v.password.as_ref().is_some_and(|p| p.len() > 72)
        })
        .expect("a long-password vector");
    let password = long.password.as_deref().unwrap_or_default();
    let parsed = parse(&long.encoded).unwrap();
    let mut memory = HashMemory::new();
    // bcrypt itself cannot tell these apart ...
    let other = format!("{}, or anything else", &password[..72]);
    assert!(bcrypt::verify(password, &long.encoded).unwrap());
    assert!(bcrypt::verify(&other, &long.encoded).unwrap());
    // ... so past 72 bytes none is taken: the owner sets a new password.
    assert!(!parsed.verify(password, &mut memory));
    assert!(!parsed.verify(&other, &mut memory));
    // 72 bytes are all bcrypt reads: the password it was made from, for
    // all it can know.
    assert!(parsed.verify(&password[..72], &mut memory));
    assert!(!parsed.verify(&password[..71], &mut memory));

    // A NUL byte ends bcrypt's key and the key repeats through 72 bytes:
    // "abc\0abc" is bcrypt's "abc". No hasher of the source stacks takes a
    // NUL, so a password holding one is refused too.
    let abc = bcrypt::hash_with_salt("abc", 4, [7; 16])
        .unwrap()
        .to_string();
    assert!(bcrypt::verify("abc\0abc", &abc).unwrap());
    let parsed = parse(&abc).unwrap();
    assert!(parsed.verify("abc", &mut memory));
    assert!(!parsed.verify("abc\0abc", &mut memory));
    assert!(!parsed.verify("abc\0", &mut memory));

    // bcrypt_sha256 hashes the password first: every byte counts, and a
    // long password is the owner's as any other.
    let hexed = hex::encode(Sha256::digest(password.as_bytes()));
    let bcrypt_sha256 = format!(
        "bcrypt_sha256${}",
        bcrypt::hash_with_salt(hexed, 4, [7; 16]).unwrap()
    );
    let parsed = parse(&bcrypt_sha256).unwrap();
    assert!(parsed.verify(password, &mut memory));
    assert!(!parsed.verify(&other, &mut memory));
    assert!(!parsed.verify(&password[..72], &mut memory));
}

#[test]
fn unusable_empty_unknown_and_out_of_bounds_hashes_match_nothing() {
    let unusable = vectors()
        .into_iter()
        .find(|v| v.hasher == "unusable")
        .unwrap();
    assert!(unusable.encoded.starts_with('!'));
    for encoded in [
        unusable.encoded.as_str(),
        "",
        "!",
        "md5$salt$0123456789abcdef0123456789abcdef",
        "sha1$salt$hash",
        "plain text password",
        "pbkdf2_sha256$$salt$aGFzaA==",
        "pbkdf2_sha256$0$salt$aGFzaA==",
        "pbkdf2_sha256$4294967295$salt$aGFzaA==",
        "pbkdf2_sha256$1000$salt$not base64",
        "pbkdf2_sha256$1000$$aGFzaA==",
        "pbkdf2_sha256$1000$salt$aGFzaA==$extra",
        "bcrypt$$2b$31$abcdefghijklmnopqrstuuVXi7ffDnEtDAtvM8RrUc7dxXjPMgAVm",
        "bcrypt$$2b$12$short",
        "bcrypt$not-bcrypt",
        "scrypt$1000$salt$8$1$aGFzaA==",
        "scrypt$1073741824$salt$8$1$aGFzaA==",
        "scrypt$16384$salt$8$0$aGFzaA==",
        "scrypt$16384$salt$8$1",
        "argon2$notargon",
        "$pbkdf2-sha256$1000$salt",
    ] {
        assert_eq!(parse(encoded), None, "{encoded:?}");
    }
    // A PHC string that asks for 4 GiB is refused as too costly, not run.
    let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
    assert!(matches!(read(huge), Err(HashProblem::TooCostly(_))));
}

#[test]
fn each_unusable_hash_says_why() {
    let cases: [(&str, HashProblem); 12] = [
        ("", HashProblem::NoPassword),
        ("!q8Jd0bWl3", HashProblem::NoPassword),
        ("md5$salt$0123", HashProblem::UnknownScheme("md5".into())),
        ("$1$salt$hash", HashProblem::UnknownScheme("1".into())),
        // No `$`: maybe a password in clear, of which nothing is repeated.
        ("hunter2", HashProblem::UnknownScheme("(none)".into())),
        (
            "pbkdf2_sha256$x$salt$aGFzaA==",
            HashProblem::Malformed("pbkdf2_sha256"),
        ),
        ("bcrypt$$2b$12$short", HashProblem::Malformed("bcrypt")),
        ("argon2$notargon", HashProblem::Malformed("argon2")),
        (
            "pbkdf2_sha256$1000000000000$salt$aGFzaA==",
            HashProblem::TooCostly(
                "pbkdf2_sha256 iterations 1000000000000: the work of 12849507 native logins (at most 20)"
                    .into(),
            ),
        ),
        (
            "bcrypt$$2b$31$abcdefghijklmnopqrstuuVXi7ffDnEtDAtvM8RrUc7dxXjPMgAVm",
            HashProblem::TooCostly(
                "bcrypt cost 31: the work of 8830114 native logins (at most 20)".into(),
            ),
        ),
        (
            "scrypt$1099511627776$salt$8$1$aGFzaA==",
            HashProblem::TooCostly(
                "scrypt N=2^40, r=8: 1073741824 MiB of memory (at most 256)".into(),
            ),
        ),
        (
            "$argon2id$v=19$m=65536,t=1000,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            HashProblem::TooCostly(
                "argon2 memory 65536 KiB × 1000 passes: the work of 1685 native logins (at most 20)"
                    .into(),
            ),
        ),
    ];
    for (encoded, problem) in cases {
        assert_eq!(read(encoded), Err(problem), "{encoded:?}");
    }
    // The message names the scheme, never the hash or a password.
    let message = read("hunter2").unwrap_err().to_string();
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn django_default_costs_are_read() {
    for v in vectors()
        .iter()
        .filter(|v| !v.cheap && v.hasher != "unusable")
    {
        let parsed = parse(&v.encoded).unwrap_or_else(|| panic!("not read: {}", v.encoded));
        if let ImportedHash::Pbkdf2 {
            iterations,
            expected,
            ..
        } = &parsed
        {
            assert_eq!(*iterations, 1_000_000);
            assert_eq!(
                expected.len(),
                if v.hasher == "pbkdf2_sha1" { 20 } else { 32 }
            );
        }
    }
}

/// A Django PBKDF2 hash with this many iterations and a key of `key_len`
/// bytes (the salt is Django's length).
fn pbkdf2_row(scheme: &str, iterations: u64, key_len: usize) -> String {
    let key = STANDARD.encode(vec![7u8; key_len]);
    format!("{scheme}${iterations}$YlLjahIQDvo417sCPoHORx${key}")
}

#[test]
fn the_work_of_one_check_is_bounded_whatever_parameter_carries_it() {
    // Issue 29 item 7: iterations were capped but the derived key's length
    // was not, and PBKDF2's work grows with it: 256 KiB at 200,000
    // iterations pinned a core for minutes per login.
    let hostile = pbkdf2_row("pbkdf2_sha256", 200_000, 256 << 10);
    assert!(read(&hostile).is_err(), "a 256 KiB key is refused");
    // The work is iterations × output blocks: each of these is one
    // parameter within bounds, and the product past them.
    for encoded in [
        pbkdf2_row("pbkdf2_sha256", 2_000_000, 64),
        pbkdf2_row("pbkdf2_sha1", 1_000_000, 64),
        pbkdf2_row("pbkdf2_sha256", 5_000_000, 32),
        // bcrypt doubles per cost: 12 is Django's, 13 twice that.
        "bcrypt$$2b$13$abcdefghijklmnopqrstuuVXi7ffDnEtDAtvM8RrUc7dxXjPMgAVm".to_owned(),
        "$2b$14$abcdefghijklmnopqrstuuVXi7ffDnEtDAtvM8RrUc7dxXjPMgAVm".to_owned(),
        // Argon2: memory × passes, each alone within bounds.
        "$argon2id$v=19$m=262144,t=3,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".to_owned(),
        "$argon2id$v=19$m=65536,t=16,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".to_owned(),
        // scrypt: N × r × p, 64 MiB of memory, run 8 times.
        format!("scrypt$65536$salt$8$8${}", STANDARD.encode([7u8; 64])),
    ] {
        assert!(
            matches!(read(&encoded), Err(HashProblem::TooCostly(_))),
            "{encoded:.80}: {:?}",
            read(&encoded)
        );
    }
    // Near the bound they are read, and their work is within it.
    for encoded in [
        pbkdf2_row("pbkdf2_sha256", 1_500_000, 32),
        pbkdf2_row("pbkdf2_sha256", 750_000, 64),
        pbkdf2_row("pbkdf2_sha1", 1_500_000, 20),
        "$argon2id$v=19$m=262144,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".to_owned(),
        format!("scrypt$65536$salt$8$1${}", STANDARD.encode([7u8; 64])),
    ] {
        let hash = read(&encoded).unwrap_or_else(|e| panic!("{encoded:.80}: {e}"));
        assert!(hash.work() <= MAX_WORK, "{encoded:.80}");
    }
    // Django's default costs are all read (bcrypt's 12 among them).
    for v in vectors().iter().filter(|v| v.hasher != "unusable") {
        let hash = read(&v.encoded).unwrap_or_else(|e| panic!("{}: {e}", v.encoded));
        assert!(hash.work() <= MAX_WORK, "{}", v.encoded);
    }
}

#[test]
fn salts_and_keys_of_hostile_lengths_are_refused_before_any_work() {
    let salt = "s".repeat(2000);
    let key = STANDARD.encode([7u8; 32]);
    for encoded in [
        // Keys shorter than 16 bytes would let a wrong password match by chance.
        pbkdf2_row("pbkdf2_sha256", 1000, 8),
        pbkdf2_row("pbkdf2_sha256", 1000, 65),
        format!("pbkdf2_sha256$1000${salt}${key}"),
        format!(
            "$pbkdf2-sha256$1000${}${key}",
            STANDARD_NO_PAD.encode(salt.as_bytes())
        ),
        format!("scrypt$1024${salt}$8$1${key}"),
        format!("scrypt$1024$salt$8$1${}", STANDARD.encode([7u8; 65])),
        format!("scrypt$1024$salt$8$1${}", STANDARD.encode([7u8; 8])),
        // scrypt itself refuses N >= 2^(16 r).
        format!("scrypt$65536$salt$1$1${key}"),
    ] {
        assert!(
            matches!(read(&encoded), Err(HashProblem::Malformed(_))),
            "{encoded:.80}: {:?}",
            read(&encoded)
        );
    }
}

#[test]
fn parameters_past_every_integer_type_are_refused_without_overflow() {
    let key = STANDARD.encode([7u8; 32]);
    for encoded in [
        // N = 2^127: 128 × r × N overflowed u128 (a panic in a debug build).
        format!("scrypt$170141183460469231731687303715884105728$salt$4294967295$1${key}"),
        format!("scrypt$1024$salt$4294967295$4294967295${key}"),
        format!("pbkdf2_sha256$18446744073709551615$salt${key}"),
        format!("pbkdf2_sha1$99999999999999999999999$salt${key}"),
        "$argon2id$v=19$m=4294967295,t=4294967295,p=16777215$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".to_owned(),
        "bcrypt$$2b$99$abcdefghijklmnopqrstuuVXi7ffDnEtDAtvM8RrUc7dxXjPMgAVm".to_owned(),
        // 2^29 lanes: argon2's own check multiplied them by 8 in a u32 (a
        // panic in a debug build; found by the property test).
        "$argon2id$v=19$m=8,t=0,p=536870912$AAAA$AAAAAAAAAAAAAA".to_owned(),
        "$argon2id$v=19$m=4294967295,t=1,p=4294967295$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG".to_owned(),
    ] {
        assert!(read(&encoded).is_err(), "{encoded:.80}");
    }
}

#[test]
fn an_unknown_scheme_is_named_whole() {
    // A cut at 20 characters named `pbkdf2:sha256:100000` for a hash of
    // 1,000,000 iterations, another scheme (issue 30, item 4).
    let scheme = "sha256_crypt:rounds=5000:extra";
    assert_eq!(
        read(&format!("{scheme}$salt$hash")),
        Err(HashProblem::UnknownScheme(scheme.into()))
    );
    // Only a text too long for any scheme is cut, and the cut is shown.
    let long = "x".repeat(1000);
    let Err(HashProblem::UnknownScheme(named)) = read(&format!("{long}$salt$hash")) else {
        panic!("not an unknown scheme");
    };
    assert_eq!(named, format!("{}…", "x".repeat(64)));
}
