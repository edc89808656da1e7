//! Authentication of requests: finding the access token where the settings
//! say to look, and handing it to the authority.

use super::error::ApiError;
use crate::authority::{Authority, Refusal, User};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::sync::Arc;
use tessera_core::claims::VerifiedClaims;

/// A request authenticated by a valid access token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: VerifiedClaims,
    /// Its user, as this process knows them now.
    pub user: Arc<User>,
}

impl FromRequestParts<Arc<Authority>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        authority: &Arc<Authority>,
    ) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers, &authority.settings().auth_header_types)?
            .ok_or(ApiError::NotAuthenticated)?;
        if token.is_empty() {
            return Err(ApiError::BadToken(Refusal::Invalid));
        }
        let (claims, user) = authority.authenticate(&token).await?;
        tracing::Span::current().record("user_id", user.id);
        Ok(Self { claims, user })
    }
}

/// The token of an `Authorization: <type> <token>` header.
///
/// `Ok(None)` when there are no credentials: no header, another scheme, or
/// not exactly one space after the scheme. A token with bytes outside visible
/// ASCII comes back empty, which the caller refuses as invalid. Two headers are a 400.
pub fn bearer_token(headers: &HeaderMap, types: &[String]) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "Multiple Authorization headers are not allowed.".into(),
        ));
    }
    let bytes = value.as_bytes();
    for scheme in types {
        let Some(rest) = bytes
            .strip_prefix(scheme.as_bytes())
            .and_then(|rest| rest.strip_prefix(b" "))
        else {
            continue;
        };
        if rest.first() == Some(&b' ') {
            return Ok(None);
        }
        if !rest.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Ok(Some(String::new()));
        }
        return Ok(Some(String::from_utf8_lossy(rest).into_owned()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_header_value_is_credentials_or_none(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let mut h = HeaderMap::new();
                h.insert(header::AUTHORIZATION, value);
                if let Some(token) = bearer_token(&h, &["Bearer".to_owned()]).unwrap() {
                    prop_assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)));
                }
            }
        }
    }

    fn token(value: &[u8]) -> Result<Option<String>, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        bearer_token(&h, &["Bearer".to_owned(), "JWT".to_owned()])
    }

    #[test]
    fn schemes_and_spacing() {
        assert_eq!(token(b"Bearer abc").unwrap().as_deref(), Some("abc"));
        assert_eq!(token(b"JWT abc").unwrap().as_deref(), Some("abc"));
        assert_eq!(token(b"Bearer  abc").unwrap(), None);
        assert_eq!(token(b"Bearer").unwrap(), None);
        assert_eq!(token(b"bearer abc").unwrap(), None);
        assert_eq!(token(b"Basic abc").unwrap(), None);
        assert_eq!(token(b"Bearerabc").unwrap(), None);
        assert_eq!(token(b"Bearer a\xffb").unwrap().as_deref(), Some(""));
        assert_eq!(token(b"Bearer a b").unwrap().as_deref(), Some(""));
    }

    #[test]
    fn two_headers_are_a_bad_request() {
        let mut h = HeaderMap::new();
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert!(matches!(
            bearer_token(&h, &["Bearer".to_owned()]),
            Err(ApiError::BadRequest(_))
        ));
    }
}
