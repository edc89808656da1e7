//! Hashes made by Django 5.2 (`make_password`, at its default costs and with
//! the cheapest valid ones), passlib 1.7 and argon2-cffi, each with whether
//! its own library accepts the password and the password plus "!".
use super::*;
use serde::Deserialize;

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
        assert_eq!(
            parsed.verify(password, &mut memory),
            v.check_ok,
            "{} {:?}",
            v.encoded,
            password
        );
        // The wrong password costs a second hash: at the default costs, only
        // the cheap vectors check it.
        if v.cheap {
            assert_eq!(
                parsed.verify(&format!("{password}!"), &mut memory),
                v.check_wrong,
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
fn a_bcrypt_password_counts_its_first_72_bytes_as_bcrypt_does() {
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
    assert!(parsed.verify(&password[..72], &mut memory));
    assert!(!parsed.verify(&password[..71], &mut memory));
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
                "pbkdf2_sha256 iterations 1000000000000 (at most 10000000)".into(),
            ),
        ),
        (
            "bcrypt$$2b$31$abcdefghijklmnopqrstuuVXi7ffDnEtDAtvM8RrUc7dxXjPMgAVm",
            HashProblem::TooCostly("bcrypt cost 31 (at most 16)".into()),
        ),
        (
            "scrypt$1099511627776$salt$8$1$aGFzaA==",
            HashProblem::TooCostly(
                "scrypt N=2^40, r=8, p=1 (at most N=2^20, r=32, p=16, 256 MiB)".into(),
            ),
        ),
        (
            "$argon2id$v=19$m=65536,t=1000,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
            HashProblem::TooCostly("argon2 passes 1000 (at most 16)".into()),
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
