//! Tokens taken apart and forged, and the refusals tests expect.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The JSON of one token segment.
pub fn segment(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// Signs `header.payload` with HMAC-SHA256 under `secret`.
pub fn hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
        .expect("sign");
    format!("{input}.{sig}")
}

/// Asserts a 401 refusing a presented token with this reason, as docs/API.md states.
pub fn assert_refused(r: &Reply, reason: &str) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Given token not valid for any token type", "code": "token_not_valid", "reason": reason}),
        "{}",
        r.text
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"invalid_token\"")
    );
}

/// Asserts simplejwt's token-endpoint 401.
pub fn assert_token_not_valid(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})
    );
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"invalid_token\"")
    );
}

/// Asserts the no-credentials 401.
pub fn assert_not_authenticated(r: &Reply) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"detail": "Authentication credentials were not provided.", "code": "not_authenticated"})
    );
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"api\""));
}
