//! Reading credentials as docs/API.md defines them, shared by the server
//! and the verification library: the `Authorization` header's scheme and
//! token, and the bodies and challenges of a refusal.

use serde_json::{Value, json};

/// `WWW-Authenticate` when no credentials were presented (RFC 6750 3.1).
pub const CHALLENGE: &str = "Bearer realm=\"api\"";
/// `WWW-Authenticate` when a presented token was refused.
pub const CHALLENGE_INVALID: &str = "Bearer realm=\"api\", error=\"invalid_token\"";

/// What an `Authorization` header value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No credentials: another scheme, or not exactly one space after it.
    Nothing,
    /// A token: visible ASCII, possibly empty.
    Token(String),
    /// Something after the scheme that cannot be a token (bytes outside visible ASCII).
    Unreadable,
}

/// Reads `<scheme> <token>` for one of `schemes` (case-sensitive, as simplejwt).
pub fn bearer(value: &[u8], schemes: &[String]) -> Presented {
    for scheme in schemes {
        let Some(rest) = value
            .strip_prefix(scheme.as_bytes())
            .and_then(|rest| rest.strip_prefix(b" "))
        else {
            continue;
        };
        if rest.first() == Some(&b' ') {
            return Presented::Nothing;
        }
        if !is_visible_ascii(rest) {
            return Presented::Unreadable;
        }
        return Presented::Token(String::from_utf8_lossy(rest).into_owned());
    }
    Presented::Nothing
}

/// Whether every byte is visible ASCII (0x21 to 0x7e), as a token's must be.
pub fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The 401 body for a request without credentials.
pub fn not_authenticated_body() -> Value {
    json!({"detail": "Authentication credentials were not provided.", "code": "not_authenticated"})
}

/// The 401 body for a refused token, with the reason (`invalid`, `expired`, `wrong_type`, `revoked`).
pub fn token_not_valid_body(reason: &str) -> Value {
    json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "reason": reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: &[u8]) -> Presented {
        bearer(value, &["Bearer".to_owned(), "JWT".to_owned()])
    }

    #[test]
    fn schemes_and_spacing() {
        assert_eq!(read(b"Bearer abc"), Presented::Token("abc".into()));
        assert_eq!(read(b"JWT abc"), Presented::Token("abc".into()));
        assert_eq!(read(b"Bearer "), Presented::Token(String::new()));
        assert_eq!(read(b"Bearer  abc"), Presented::Nothing);
        assert_eq!(read(b"Bearer"), Presented::Nothing);
        assert_eq!(read(b"bearer abc"), Presented::Nothing);
        assert_eq!(read(b"Basic abc"), Presented::Nothing);
        assert_eq!(read(b"Bearer a\\xffb"), Presented::Token("a\\xffb".into()));
        assert_eq!(read(b"Bearer a\xffb"), Presented::Unreadable);
        assert_eq!(read(b"Bearer a b"), Presented::Unreadable);
    }
}
