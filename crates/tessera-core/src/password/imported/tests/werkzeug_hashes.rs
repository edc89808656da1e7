//! Werkzeug 3.1's hashes, each with what its `check_password_hash` said.

use super::*;

/// A hash made by werkzeug 3.1 (tests/fixtures/werkzeug/make_fixtures.py in
/// tessera-server), with what its `check_password_hash` said.
#[derive(Deserialize)]
struct WerkzeugVector {
    method: String,
    password: String,
    encoded: String,
    check_ok: bool,
    check_wrong: bool,
    cheap: bool,
}

fn werkzeug_vectors() -> Vec<WerkzeugVector> {
    serde_json::from_str(include_str!("../werkzeug_vectors.json")).unwrap()
}

#[test]
fn werkzeug_scrypt_and_pbkdf2_hashes_check_as_werkzeug_checks_them() {
    let mut memory = HashMemory::new();
    let mut methods = std::collections::BTreeSet::new();
    for v in werkzeug_vectors() {
        let parsed = read(&v.encoded).unwrap_or_else(|e| panic!("{}: {e}", v.encoded));
        assert!(parsed.work() <= MAX_WORK, "{}", v.encoded);
        // PBKDF2 at a million iterations takes seconds in a test build (the
        // generic HMAC is compiled unoptimised here): those are only read.
        let slow_pbkdf2 = !v.cheap && matches!(parsed, ImportedHash::Pbkdf2 { .. });
        if slow_pbkdf2 {
            continue;
        }
        assert_eq!(
            parsed.verify(&v.password, &mut memory),
            v.check_ok,
            "{}",
            v.encoded
        );
        assert_eq!(
            parsed.verify(&format!("{}!", v.password), &mut memory),
            v.check_wrong,
            "{}!",
            v.encoded
        );
        methods.insert(v.method);
    }
    for method in [
        "scrypt:1024:8:1",
        "scrypt:16:1:2",
        "scrypt",
        "pbkdf2:sha256:1000",
        "pbkdf2:sha512:1000",
        "pbkdf2:sha1:1000",
        "pbkdf2:sha256:1",
    ] {
        assert!(methods.contains(method), "{method} checked");
    }
}

#[test]
fn werkzeug_defaults_are_read_with_werkzeugs_parameters() {
    for v in werkzeug_vectors().iter().filter(|v| !v.cheap) {
        let parsed = read(&v.encoded).unwrap_or_else(|e| panic!("{}: {e}", v.encoded));
        match (&parsed, v.method.as_str()) {
            // generate_password_hash's default and a bare "scrypt".
            (ImportedHash::Scrypt { log_n, r, p, .. }, "scrypt") => {
                assert_eq!((*log_n, *r, *p), (15, 8, 1), "{}", v.encoded);
            }
            // "pbkdf2" and "pbkdf2:sha256" run werkzeug 3.1's 1,000,000.
            (
                ImportedHash::Pbkdf2 {
                    digest, iterations, ..
                },
                "pbkdf2" | "pbkdf2:sha256",
            ) => assert_eq!((*digest, *iterations), (Pbkdf2Digest::Sha256, 1_000_000)),
            (
                ImportedHash::Pbkdf2 {
                    digest, iterations, ..
                },
                "pbkdf2:sha512:600000",
            ) => assert_eq!((*digest, *iterations), (Pbkdf2Digest::Sha512, 600_000)),
            _ => panic!("{} read as {parsed:?}", v.encoded),
        }
    }
}

#[test]
fn werkzeug_hashes_malformed_or_past_the_budget_are_refused_and_say_why() {
    let hex32 = "ab".repeat(32);
    let hex64 = "ab".repeat(64);
    let malformed = |scheme: &'static str| Err(HashProblem::Malformed(scheme));
    let cases: Vec<(String, Result<ImportedHash, HashProblem>)> = vec![
        // A key of another length than the digest's, uppercase hex, no hex.
        (format!("pbkdf2:sha256:1000$salt${hex64}"), malformed("werkzeug pbkdf2:sha256")),
        (format!("pbkdf2:sha512:1000$salt${hex32}"), malformed("werkzeug pbkdf2:sha512")),
        (format!("pbkdf2:sha256:1000$salt${}", hex32.to_uppercase()), malformed("werkzeug pbkdf2:sha256")),
        (format!("pbkdf2:sha256:1000$salt${hex32}$"), malformed("werkzeug pbkdf2:sha256")),
        ("pbkdf2:sha256:1000$salt".into(), malformed("werkzeug pbkdf2:sha256")),
        (format!("pbkdf2:sha256:1000$${hex32}"), malformed("werkzeug pbkdf2:sha256")),
        (format!("pbkdf2:sha256:0$salt${hex32}"), malformed("werkzeug pbkdf2:sha256")),
        (format!("pbkdf2:sha256:-1$salt${hex32}"), malformed("werkzeug pbkdf2:sha256")),
        (format!("pbkdf2:sha256:1000:1$salt${hex32}"), malformed("werkzeug pbkdf2")),
        (format!("pbkdf2:sha256:1000${}${hex32}", "s".repeat(2000)), malformed("werkzeug pbkdf2:sha256")),
        (format!("scrypt:1024:8:1$salt${hex32}"), malformed("werkzeug scrypt")),
        (format!("scrypt:1000:8:1$salt${hex64}"), malformed("werkzeug scrypt")),
        (format!("scrypt:1024:8$salt${hex64}"), malformed("werkzeug scrypt")),
        (format!("scrypt:1024:8:0$salt${hex64}"), malformed("werkzeug scrypt")),
        (format!("scrypt:1024:x:1$salt${hex64}"), malformed("werkzeug scrypt")),
        // scrypt itself refuses N >= 2^(16 r).
        (format!("scrypt:65536:1:1$salt${hex64}"), malformed("werkzeug scrypt")),
        // A digest hashlib has but no werkzeug default uses: named whole.
        (
            format!("pbkdf2:sha3_256:1000000$salt${hex32}"),
            Err(HashProblem::UnknownScheme("pbkdf2:sha3_256:1000000".into())),
        ),
        // Past the budget: werkzeug's default iterations with SHA-512 ...
        (
            format!("pbkdf2:sha512:1000000$salt${hex64}"),
            Err(HashProblem::TooCostly(
                "werkzeug pbkdf2:sha512 iterations 1000000: the work of 26 native logins (at most 20)".into(),
            )),
        ),
        (
            format!("pbkdf2:sha256:99999999999999999999$salt${hex32}"),
            malformed("werkzeug pbkdf2:sha256"),
        ),
        (
            format!("pbkdf2:sha256:18446744073709551615$salt${hex32}"),
            Err(HashProblem::TooCostly(
                "werkzeug pbkdf2:sha256 iterations 18446744073709551615: the work of 237031559335290 native logins (at most 20)".into(),
            )),
        ),
        // ... and scrypt's memory or N × r × p.
        (
            format!("scrypt:1048576:8:1$salt${hex64}"),
            Err(HashProblem::TooCostly(
                "werkzeug scrypt N=2^20, r=8: 1024 MiB of memory (at most 256)".into(),
            )),
        ),
        (
            format!("scrypt:32768:8:16$salt${hex64}"),
            Err(HashProblem::TooCostly(
                "werkzeug scrypt N=2^15, r=8, p=16: the work of 108 native logins (at most 20)".into(),
            )),
        ),
        (
            format!("scrypt:340282366920938463463374607431768211455:4294967295:4294967295$salt${hex64}"),
            malformed("werkzeug scrypt"),
        ),
    ];
    for (encoded, want) in cases {
        assert_eq!(read(&encoded), want, "{encoded:.80}");
    }
    // Within bounds, werkzeug's own costs are read: its scrypt default,
    // pbkdf2:sha256 at 1,000,000 and pbkdf2:sha512 at 2.3's 600,000.
    for encoded in [
        format!("scrypt:32768:8:1$salt${hex64}"),
        format!("pbkdf2:sha256:1000000$salt${hex32}"),
        format!("pbkdf2:sha512:600000$salt${hex64}"),
        format!("pbkdf2:sha1:1000000$salt${}", "ab".repeat(20)),
    ] {
        let hash = read(&encoded).unwrap_or_else(|e| panic!("{encoded}: {e}"));
        assert!(hash.work() <= MAX_WORK, "{encoded}");
    }
}
