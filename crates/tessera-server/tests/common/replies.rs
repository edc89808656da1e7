//! A response as the tests look at it, and the refusals docs/API.md states,
//! shared by the in-process `http` suite and the `server` suite (each
//! includes this file), so that both hold replies to the same words.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The value of header `name`, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Asserts a 401 refusing a presented token with this reason.
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
