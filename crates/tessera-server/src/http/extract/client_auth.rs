//! Service clients' credentials on a request: HTTP Basic (RFC 6749 2.3.1,
//! `client_secret_basic`: id and secret form-url-encoded inside Basic),
//! the body's `client_id` and `client_secret` (`client_secret_post`), and
//! a client's bearer token; and the answers of
//! [`ClientAuthError`] for the endpoints that services call.

use super::error::{ApiError, CLIENT_BEARER_CHALLENGE};
use crate::authority::ClientAuthError;
use crate::authority::clients::ClientCredentials;
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;

/// What a request's `Authorization` header carries for a service client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthorization {
    /// No `Authorization` header.
    None,
    /// HTTP Basic with a client id and secret.
    Basic(ClientCredentials),
    /// HTTP Basic that cannot be read (not base64, no `:`, not UTF-8).
    MalformedBasic,
    /// `Bearer` and a token.
    Bearer(String),
    /// Another scheme.
    Other,
}

/// Reads the one `Authorization` header; two are a 400, as everywhere.
pub fn client_authorization(headers: &HeaderMap) -> Result<ClientAuthorization, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(ClientAuthorization::None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "Multiple Authorization headers are not allowed.".into(),
        ));
    }
    let Ok(value) = value.to_str() else {
        return Ok(ClientAuthorization::Other);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Ok(
            basic(rest.trim()).map_or(ClientAuthorization::MalformedBasic, |c| {
                ClientAuthorization::Basic(c)
            }),
        );
    }
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() && !rest.contains(' ') {
        return Ok(ClientAuthorization::Bearer(rest.to_owned()));
    }
    Ok(ClientAuthorization::Other)
}

/// The client id and secret of Basic credentials: base64 of `id:secret`,
/// each form-url-encoded first (RFC 6749 2.3.1).
fn basic(encoded: &str) -> Option<ClientCredentials> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some(ClientCredentials {
        client_id: form_decode(id)?,
        secret: form_decode(secret)?,
    })
}

/// One `application/x-www-form-urlencoded` component: `+` is a space, and
/// percent escapes must make UTF-8.
fn form_decode(component: &str) -> Option<String> {
    let spaced = component.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|text| text.into_owned())
}

impl IntoResponse for ClientAuthError {
    fn into_response(self) -> Response {
        match self {
            ClientAuthError::NotValid(_) => {
                let body = json!({
                    "detail": "The client token is invalid, expired or revoked.",
                    "code": "token_not_valid",
                });
                let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CLIENT_BEARER_CHALLENGE),
                );
                response
            }
            ClientAuthError::InsufficientScope(scope) => {
                ApiError::InsufficientScope(scope).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("tc_a%3Ab:s+c%25t%2B");
        assert_eq!(
            client_authorization(&with(&format!("Basic {encoded}"))).unwrap(),
            ClientAuthorization::Basic(ClientCredentials {
                client_id: "tc_a:b".into(),
                secret: "s c%t+".into(),
            })
        );
        for bad in ["Basic !!!", "Basic dGNfYQ==", "basic", "Basic /w==:"] {
            assert_eq!(
                client_authorization(&with(bad)).unwrap(),
                ClientAuthorization::MalformedBasic,
                "{bad}"
            );
        }
        assert_eq!(
            client_authorization(&with("Bearer abc")).unwrap(),
            ClientAuthorization::Bearer("abc".into())
        );
        assert_eq!(
            client_authorization(&with("Digest x")).unwrap(),
            ClientAuthorization::Other
        );
        assert_eq!(
            client_authorization(&HeaderMap::new()).unwrap(),
            ClientAuthorization::None
        );
    }
}
