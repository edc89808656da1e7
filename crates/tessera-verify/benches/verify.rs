//! The library's verify against a bare jsonwebtoken decode of the same token,
//! for HS256, ES256 and EdDSA. Criterion measures each; then an interleaved
//! run in the same process prints the library's time as a ratio of the bare
//! decode's (the budget is 1.15).
//!
//! `cargo bench -p tessera-verify --bench verify`

use criterion::Criterion;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tessera_core::claims::{Subject, TokenType};
use tessera_core::ids::{FamilyId, UserId};
use tessera_core::keys::{KeyMaterial, KeyRing};
use tessera_core::token::{Grant, TokenPolicy, issue};
use tessera_verify::Verifier;

struct Case {
    name: &'static str,
    token: String,
    verifier: Verifier,
    bare_key: DecodingKey,
    validation: Validation,
}

fn case(name: &'static str, alg: Algorithm) -> Case {
    use ed25519_dalek::pkcs8::DecodePrivateKey as _;
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let material = KeyMaterial::generate(alg).unwrap();
    let secret = material.as_bytes().to_vec();
    let key = material.into_key().unwrap();
    let ring = KeyRing::single(key);
    let subject = Subject {
        user_id: UserId::new(42),
        username: "alice".into(),
        email: "alice@example.com".into(),
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = issue(&TokenPolicy::new(), &ring, &subject, &grant, now)
        .unwrap()
        .token;
    let (verifier, bare_key) = match alg {
        Algorithm::HS256 => (
            Verifier::builder()
                .hmac_secret(alg, secret.clone())
                .build()
                .unwrap(),
            DecodingKey::from_secret(&secret),
        ),
        Algorithm::ES256 => {
            let pem = p256::SecretKey::from_pkcs8_pem(std::str::from_utf8(&secret).unwrap())
                .unwrap()
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap();
            (
                Verifier::builder()
                    .public_key_pem(alg, pem.as_bytes())
                    .build()
                    .unwrap(),
                DecodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            )
        }
        _ => {
            let pem =
                ed25519_dalek::SigningKey::from_pkcs8_pem(std::str::from_utf8(&secret).unwrap())
                    .unwrap()
                    .verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .unwrap();
            (
                Verifier::builder()
                    .public_key_pem(alg, pem.as_bytes())
                    .build()
                    .unwrap(),
                DecodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            )
        }
    };
    Case {
        name,
        token,
        verifier,
        bare_key,
        validation: Validation::new(alg),
    }
}

fn library(rt: &tokio::runtime::Runtime, c: &Case) {
    let claims = rt.block_on(c.verifier.verify::<IgnoredAny>(black_box(&c.token)));
    assert!(claims.is_ok());
}

fn bare(rt: &tokio::runtime::Runtime, c: &Case) {
    // The same executor hop as the library's async call, so that only the
    // verification work differs.
    let data = rt.block_on(async {
        jsonwebtoken::decode::<Map<String, Value>>(black_box(&c.token), &c.bare_key, &c.validation)
    });
    assert!(data.is_ok());
}

/// Mean time per call of `f` over interleaved rounds.
fn interleaved(rt: &tokio::runtime::Runtime, c: &Case) -> (f64, f64) {
    let rounds = 20;
    let per_round = if c.name == "HS256" { 20_000 } else { 1_000 };
    let (mut lib, mut raw) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            library(rt, c);
        }
        lib += t.elapsed();
        let t = Instant::now();
        for _ in 0..per_round {
            bare(rt, c);
        }
        raw += t.elapsed();
    }
    let n = f64::from(rounds * per_round);
    (lib.as_nanos() as f64 / n, raw.as_nanos() as f64 / n)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cases = [
        case("HS256", Algorithm::HS256),
        case("ES256", Algorithm::ES256),
        case("EdDSA", Algorithm::EdDSA),
    ];
    let mut criterion = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    for c in &cases {
        let mut group = criterion.benchmark_group(c.name);
        group.bench_function("tessera_verify", |b| b.iter(|| library(&rt, c)));
        group.bench_function("bare_jsonwebtoken_decode", |b| b.iter(|| bare(&rt, c)));
        group.finish();
    }
    criterion.final_summary();

    println!("\nlibrary verify vs bare jsonwebtoken decode (interleaved, same process):");
    println!(
        "{:<6} {:>14} {:>14} {:>8}",
        "alg", "library ns", "bare ns", "ratio"
    );
    for c in &cases {
        let (lib, raw) = interleaved(&rt, c);
        let ratio = lib / raw;
        let verdict = if ratio <= 1.15 {
            "within 15%"
        } else {
            "OVER BUDGET"
        };
        println!(
            "{:<6} {:>14.0} {:>14.0} {:>8.3}  {verdict}",
            c.name, lib, raw, ratio
        );
    }
}
