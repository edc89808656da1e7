//! The library on its own: key sources, the settings, the extractor and the
//! layer, JWKS caching and online introspection, against tokens minted with
//! tessera-core and small in-process stand-ins for Tessera's endpoints.

use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_core::claims::{ExtraClaim, Subject, TokenType};
use tessera_core::ids::{FamilyId, UserId};
use tessera_core::keys::{KeyMaterial, KeyRing};
use tessera_core::token::{Grant, TokenPolicy, issue};
use tessera_verify::{
    Algorithm, Authenticated, Claims, Refusal, SubjectClaim, UserClaim, Verifier, VerifyError,
    VerifyLayer,
};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-library";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn mint_with(ring: &KeyRing, policy: &TokenPolicy, token_type: TokenType, at: i64) -> String {
    let subject = Subject {
        user_id: UserId::new(7),
        username: "alice".into(),
        email: "alice@example.com".into(),
        is_staff: true,
        is_superuser: false,
        token_version: 0,
        roles: Vec::new(),
        app_metadata: Default::default(),
        claims_version: 0,
    };
    let fid = FamilyId::random();
    let grant = Grant {
        token_type,
        fid: &fid,
        fresh: true,
        extra: None,
        csrf: None,
        amr: &[],
    };
    issue(policy, ring, &subject, &grant, at).unwrap().token
}

fn hs_ring() -> KeyRing {
    KeyRing::single(
        KeyMaterial::from_bytes(Algorithm::HS256, SECRET.to_vec())
            .unwrap()
            .into_key()
            .unwrap(),
    )
}

#[derive(Debug, Deserialize)]
struct Extra {
    email: String,
    is_staff: bool,
}

#[tokio::test]
async fn a_shared_secret_verifies_and_types_custom_claims() {
    let ring = hs_ring();
    let mut policy = TokenPolicy::new();
    policy.extra_claims = vec![ExtraClaim::Email, ExtraClaim::IsStaff];
    let verifier = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .build()
        .unwrap();
    let token = mint_with(&ring, &policy, TokenType::Access, now());
    let claims: Claims<Extra> = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.user_id, 7);
    assert_eq!(claims.username.as_deref(), Some("alice"));
    assert_eq!(claims.custom.email, "alice@example.com");
    assert!(claims.custom.is_staff);

    let refresh = mint_with(&ring, &policy, TokenType::Refresh, now());
    assert_eq!(
        verifier.verify::<Value>(&refresh).await.unwrap_err(),
        VerifyError::Refused(Refusal::WrongType)
    );
    let old = mint_with(&ring, &policy, TokenType::Access, now() - 3600);
    assert_eq!(
        verifier.verify::<Value>(&old).await.unwrap_err(),
        VerifyError::Refused(Refusal::Expired)
    );
    let other = Verifier::builder()
        .hmac_secret(
            Algorithm::HS256,
            b"another-secret-another-secret-0123456789".to_vec(),
        )
        .build()
        .unwrap();
    assert_eq!(
        other.verify::<Value>(&token).await.unwrap_err(),
        VerifyError::Refused(Refusal::Invalid)
    );
    assert!(
        Verifier::builder()
            .hmac_secret(Algorithm::HS256, b"short".to_vec())
            .build()
            .is_err()
    );
    assert!(Verifier::builder().build().is_err());
}

/// The simplejwt tutorial's claims, as its services read them.
#[derive(Debug, Deserialize)]
struct Tutorial {
    user_name: String,
    email: String,
    is_admin: bool,
}

#[tokio::test]
async fn renamed_claims_are_read_under_the_names_tessera_writes() {
    let ring = hs_ring();
    let mut policy = TokenPolicy::new();
    policy.extra_claims = vec![ExtraClaim::Email, ExtraClaim::IsStaff];
    policy.claim_names.set(UserClaim::Username, "user_name");
    policy.claim_names.set(UserClaim::IsStaff, "is_admin");
    policy.subject = SubjectClaim::Username;
    let token = mint_with(&ring, &policy, TokenType::Access, now());
    let verifier = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .subject(SubjectClaim::Username)
        .claim_name(UserClaim::Username, "user_name")
        .claim_name(UserClaim::IsStaff, "is_admin")
        .build()
        .unwrap();
    let claims: Claims<Tutorial> = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.username.as_deref(), Some("alice"));
    assert_eq!(
        (
            claims.custom.user_name.as_str(),
            claims.custom.email.as_str()
        ),
        ("alice", "alice@example.com")
    );
    assert!(claims.custom.is_admin);
    assert!(claims.raw.get("username").is_none() && claims.raw.get("is_staff").is_none());
    // Without the names the username is not found: `sub` (the username) is
    // backed by nothing, and the token is refused as Tessera would refuse it.
    let unaware = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .subject(SubjectClaim::Username)
        .build()
        .unwrap();
    assert_eq!(
        unaware.verify::<Value>(&token).await.unwrap_err(),
        VerifyError::Refused(Refusal::Invalid)
    );
    // Names Tessera would refuse are refused here too.
    for (claim, name, error) in [
        (
            UserClaim::Username,
            "sub",
            "claim names: `username` cannot be renamed `sub`, a claim Tessera writes itself",
        ),
        (
            UserClaim::Username,
            "user_id",
            "claim names: `username` cannot be renamed `user_id`, the claim of the user id \
             (`user_id_claim`)",
        ),
    ] {
        let e = Verifier::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .claim_name(claim, name)
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(error), "{e}");
    }
    let e = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .claim_name(UserClaim::IsStaff, "is_admin")
        .claim_name(UserClaim::IsSuperuser, "is_admin")
        .build()
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "claim names: `is_staff` and `is_superuser` are both renamed `is_admin`"
    );
}

#[tokio::test]
async fn a_pem_public_key_verifies_and_refuses_key_confusion() {
    use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    let material = KeyMaterial::generate(Algorithm::ES256).unwrap();
    let pem = p256::SecretKey::from_pkcs8_pem(std::str::from_utf8(material.as_bytes()).unwrap())
        .unwrap()
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let ring = KeyRing::single(material.into_key().unwrap());
    let policy = TokenPolicy::new();
    let verifier = Verifier::builder()
        .public_key_pem(Algorithm::ES256, pem.as_bytes())
        .build()
        .unwrap();
    let token = mint_with(&ring, &policy, TokenType::Access, now());
    assert!(verifier.verify::<Value>(&token).await.is_ok());
    // The same claims signed with HS256 keyed by the public PEM.
    let kid = ring.signing_key(now()).unwrap().kid().to_owned();
    let forged_ring = KeyRing::single(
        KeyMaterial::from_bytes(Algorithm::HS256, pem.as_bytes().to_vec())
            .unwrap()
            .into_key()
            .unwrap(),
    );
    let forged = mint_with(&forged_ring, &policy, TokenType::Access, now());
    assert_eq!(
        verifier.verify::<Value>(&forged).await.unwrap_err(),
        VerifyError::Refused(Refusal::Invalid)
    );
    assert!(!kid.is_empty());
    assert!(
        Verifier::builder()
            .public_key_pem(Algorithm::HS256, pem.as_bytes())
            .build()
            .is_err()
    );
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_set() {
    let ring = hs_ring();
    let mut policy = TokenPolicy::new();
    policy.issuer = Some("https://auth.example".into());
    policy.audience = Some("orders".into());
    let token = mint_with(&ring, &policy, TokenType::Access, now());
    let strict = |iss: &str, aud: &str| {
        Verifier::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .issuer(iss)
            .audience(aud)
            .build()
            .unwrap()
    };
    assert!(
        strict("https://auth.example", "orders")
            .verify::<Value>(&token)
            .await
            .is_ok()
    );
    assert!(
        strict("https://evil.example", "orders")
            .verify::<Value>(&token)
            .await
            .is_err()
    );
    assert!(
        strict("https://auth.example", "billing")
            .verify::<Value>(&token)
            .await
            .is_err()
    );
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A JWKS endpoint with `max-age`, counting its fetches.
async fn jwks_server(ring: Arc<KeyRing>, max_age: u64) -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = Router::new().route(
        "/jwks.json",
        get(move || {
            let (ring, counter) = (ring.clone(), counter.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (
                    [("cache-control", format!("max-age={max_age}"))],
                    Json(ring.jwks(0)),
                )
            }
        }),
    );
    (format!("{}/jwks.json", serve(app).await), fetches)
}

#[tokio::test]
async fn jwks_keys_are_cached_for_max_age_and_filtered_by_algorithm() {
    let ring = Arc::new(KeyRing::single(
        KeyMaterial::generate(Algorithm::EdDSA)
            .unwrap()
            .into_key()
            .unwrap(),
    ));
    let (url, fetches) = jwks_server(ring.clone(), 1).await;
    let token = mint_with(&ring, &TokenPolicy::new(), TokenType::Access, now());
    let clock = Arc::new(tessera_verify::FixedClock::new(now()));
    let verifier = Verifier::builder()
        .jwks_url(&url)
        .jwks_min_interval(Duration::from_millis(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..5 {
        assert!(verifier.verify::<Value>(&token).await.is_ok());
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached within max-age");
    clock.advance(2);
    assert!(verifier.verify::<Value>(&token).await.is_ok());
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "fetched again after max-age"
    );
    // EdDSA not among the accepted algorithms: its key never enters the ring.
    let es_only = Verifier::builder()
        .jwks_url(&url)
        .algorithms(&[Algorithm::ES256])
        .build()
        .unwrap();
    assert_eq!(
        es_only.verify::<Value>(&token).await.unwrap_err(),
        VerifyError::Refused(Refusal::Invalid)
    );
}

#[tokio::test]
async fn the_extractor_and_the_layer_answer_like_tessera() {
    let ring = hs_ring();
    let token = mint_with(&ring, &TokenPolicy::new(), TokenType::Access, now());
    let verifier = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .build()
        .unwrap();
    let guarded = Router::new()
        .route(
            "/inside",
            get(
                |Extension(claims): Extension<Claims<Map<String, Value>>>| async move {
                    Json(json!({"user": claims.user_id}))
                },
            ),
        )
        .layer(VerifyLayer::new(verifier.clone()));
    let open = Router::new()
        .route(
            "/extract",
            get(|Authenticated(claims): Authenticated<Extra>| async move {
                Json(json!({"staff": claims.custom.is_staff}))
            }),
        )
        .with_state(verifier);
    let base = serve(guarded.merge(open)).await;
    let http = reqwest::Client::new();
    for path in ["/inside", "/extract"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"api\"");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "not_authenticated");
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"api\", error=\"invalid_token\""
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({"detail": "Given token not valid for any token type", "code": "token_not_valid", "reason": "invalid"})
        );
    }
    let r = http
        .get(format!("{base}/inside"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"user": 7}));
    // Extra claims absent from the token: the typed extractor refuses rather than guess.
    let r = http
        .get(format!("{base}/extract"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn online_mode_asks_introspection_and_caches_the_answer() {
    let ring = hs_ring();
    let token = mint_with(&ring, &TokenPolicy::new(), TokenType::Access, now());
    let active = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let asked = Arc::new(AtomicUsize::new(0));
    let (flag, count) = (active.clone(), asked.clone());
    let app = Router::new().route(
        "/oauth/introspect",
        post(move || {
            let (flag, count) = (flag.clone(), count.clone());
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                Json(json!({"active": flag.load(Ordering::SeqCst)}))
            }
        }),
    );
    let base = serve(app).await;
    let clock = Arc::new(tessera_verify::FixedClock::new(now()));
    let verifier = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .introspection(format!("{base}/oauth/introspect"), Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    assert!(verifier.verify::<Value>(&token).await.is_ok());
    assert!(verifier.verify::<Value>(&token).await.is_ok());
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the second answer comes from the cache"
    );
    active.store(false, Ordering::SeqCst);
    clock.advance(1);
    assert_eq!(
        verifier.verify::<Value>(&token).await.unwrap_err(),
        VerifyError::Refused(Refusal::Revoked)
    );
    // No answer at all fails closed.
    let unreachable = Verifier::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .introspection(
            "http://127.0.0.1:9/oauth/introspect",
            Duration::from_secs(1),
        )
        .build()
        .unwrap();
    assert_eq!(
        unreachable.verify::<Value>(&token).await.unwrap_err(),
        VerifyError::Refused(Refusal::Revoked)
    );
}
