//! Known JWT attacks, each refused with 401 and reason `invalid`. The server
//! signs with a secret the tests know, so each forged token differs from one
//! the server would accept in exactly the defect under test (a control token
//! built the same way without the defect is accepted).

use super::harness::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn hs_server() -> (Server, String, Value) {
    let s = Server::start(&format!("signing_key = \"{HS_SECRET}\"")).await;
    let (access, _) = s.user("alice").await;
    let kid = segment(&access, 0)["kid"].as_str().unwrap().to_owned();
    let claims = segment(&access, 1);
    // The control: a token we forge with the real key and header is accepted.
    let control = hs256(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        &claims,
        HS_SECRET.as_bytes(),
    );
    assert_eq!(
        s.me(&control).await.status,
        200,
        "control token must be accepted"
    );
    (s, kid, claims)
}

#[tokio::test]
async fn alg_none_is_refused_in_every_capitalisation() {
    let (s, kid, claims) = hs_server().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims));
        assert_refused(&s.me(&unsigned).await, "invalid");
        // With a signature that is valid HS256 over the same input, too.
        let signed = hs256(&header, &claims, HS_SECRET.as_bytes());
        assert_refused(&s.me(&signed).await, "invalid");
    }
}

#[tokio::test]
async fn hs256_signed_with_the_servers_public_key_is_refused() {
    let s = Server::start("algorithm = \"ES256\"").await;
    let (access, _) = s.user("alice").await;
    let claims = segment(&access, 1);
    let jwks = s.get("/.well-known/jwks.json").await.body;
    let jwk = jwks["keys"][0].clone();
    let kid = jwk["kid"].as_str().unwrap();
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    let point = p256::EncodedPoint::from_affine_coordinates(
        x.as_slice().into(),
        y.as_slice().into(),
        false,
    );
    let public = p256::PublicKey::from_sec1_bytes(point.as_bytes()).unwrap();
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let der = public.to_public_key_der().unwrap();
    let secrets: Vec<Vec<u8>> = vec![
        pem.into_bytes(),
        der.as_bytes().to_vec(),
        point.as_bytes().to_vec(),
        jwk.to_string().into_bytes(),
    ];
    for secret in secrets {
        for alg in ["HS256", "ES256"] {
            let forged = hs256(
                &json!({"alg": alg, "typ": "JWT", "kid": kid}),
                &claims,
                &secret,
            );
            assert_refused(&s.me(&forged).await, "invalid");
        }
    }
    assert_eq!(s.me(&access).await.status, 200);
}

#[tokio::test]
async fn psychic_ecdsa_signatures_are_refused() {
    // CVE-2022-21449: an ECDSA signature with r = s = 0 verified in some Java
    // releases. Also the curve order n itself, and signatures of the wrong length.
    let s = Server::start("algorithm = \"ES256\"").await;
    let (access, _) = s.user("alice").await;
    let parts: Vec<&str> = access.split('.').collect();
    let order = hex_bytes("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let signatures = [
        [0u8; 64].to_vec(),
        [order.clone(), order].concat(),
        vec![0u8; 32],
        vec![0u8; 65],
    ];
    for signature in signatures {
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert_refused(&s.me(&forged).await, "invalid");
    }
    assert_eq!(s.me(&access).await.status, 200);
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let (s, _, _) = hs_server().await;
    s.create_user("mallory", false).await;
    let (access, _) = s.login("mallory").await;
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims = segment(&access, 1);
    claims["user_id"] = json!(1);
    claims["sub"] = json!("1");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_refused(&s.me(&tampered).await, "invalid");
    let mut claims = segment(&access, 1);
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    assert_refused(&s.me(&tampered).await, "invalid");
}

#[tokio::test]
async fn a_stripped_signature_is_refused() {
    let (s, _, _) = hs_server().await;
    let (access, _) = s.login("alice").await;
    let parts: Vec<&str> = access.split('.').collect();
    for stripped in [
        format!("{}.{}.", parts[0], parts[1]),
        format!("{}.{}", parts[0], parts[1]),
    ] {
        assert_refused(&s.me(&stripped).await, "invalid");
    }
}

#[tokio::test]
async fn an_unknown_or_missing_kid_is_refused() {
    let (s, _, claims) = hs_server().await;
    for header in [
        json!({"alg": "HS256", "typ": "JWT", "kid": "unknown"}),
        json!({"alg": "HS256", "typ": "JWT", "kid": "../../etc/passwd"}),
        json!({"alg": "HS256", "typ": "JWT", "kid": "' OR '1'='1"}),
        json!({"alg": "HS256", "typ": "JWT"}),
    ] {
        let forged = hs256(&header, &claims, HS_SECRET.as_bytes());
        assert_refused(&s.me(&forged).await, "invalid");
    }
}

/// A listener that counts connections: proof that nothing was fetched.
fn counting_listener() -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test]
async fn jku_x5u_x5c_and_embedded_jwk_headers_are_refused_and_never_fetched() {
    let (s, kid, claims) = hs_server().await;
    let (url, fetched) = counting_listener();
    let attacker_secret = b"attacker-secret-attacker-secret-!!";
    let attacker_jwk =
        json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(attacker_secret), "alg": "HS256"});
    let cases: Vec<(Value, &[u8])> = vec![
        (
            json!({"alg": "HS256", "typ": "JWT", "kid": kid, "jku": format!("{url}/jwks.json")}),
            HS_SECRET.as_bytes(),
        ),
        (
            json!({"alg": "HS256", "typ": "JWT", "kid": kid, "x5u": format!("{url}/cert.pem")}),
            HS_SECRET.as_bytes(),
        ),
        (
            json!({"alg": "HS256", "typ": "JWT", "kid": kid, "x5c": ["MIIB"]}),
            HS_SECRET.as_bytes(),
        ),
        (
            json!({"alg": "HS256", "typ": "JWT", "kid": "evil", "jku": format!("{url}/jwks.json")}),
            attacker_secret,
        ),
        (
            json!({"alg": "HS256", "typ": "JWT", "kid": kid, "jwk": attacker_jwk}),
            attacker_secret,
        ),
        (
            json!({"alg": "HS256", "typ": "JWT", "jwk": attacker_jwk}),
            attacker_secret,
        ),
    ];
    for (header, secret) in cases {
        let forged = hs256(&header, &claims, secret);
        assert_refused(&s.me(&forged).await, "invalid");
        let r = s.post("/api/token/verify/", json!({"token": forged})).await;
        assert_token_not_valid(&r);
    }
    // A verifier that fetched a header's URL would do so before answering:
    // the answer depends on the keys it would fetch.
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        0,
        "the server fetched a URL from a token header"
    );
}

#[tokio::test]
async fn a_9_kib_token_is_refused_before_decoding() {
    let (s, kid, mut claims) = hs_server().await;
    claims["pad"] = json!("p".repeat(9 * 1024));
    let big = hs256(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        &claims,
        HS_SECRET.as_bytes(),
    );
    assert!(big.len() > 9 * 1024);
    assert_refused(&s.me(&big).await, "invalid");
    assert_token_not_valid(&s.post("/api/token/verify/", json!({"token": big})).await);
    // Just under the cap, the same construction is accepted: the size alone decided.
    claims["pad"] = json!("p".repeat(5 * 1024));
    let fits = hs256(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        &claims,
        HS_SECRET.as_bytes(),
    );
    assert!(fits.len() < 8192);
    assert_eq!(s.me(&fits).await.status, 200);
    s.assert_healthy().await;
}

#[tokio::test]
async fn a_token_of_another_server_with_the_same_algorithm_is_refused() {
    let (s, kid, claims) = hs_server().await;
    let forged = hs256(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        &claims,
        b"another-servers-secret-0123456789abcdef",
    );
    assert_refused(&s.me(&forged).await, "invalid");
}
