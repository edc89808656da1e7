//! Authentication of requests: finding the access token where the settings
//! say to look, and handing it to the authority.

use super::cookies;
use super::error::ApiError;
use crate::authority::{Authority, Refusal, User};
use crate::config::{Settings, TokenLocation};
use crate::http::serving::body::read_body;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::sync::Arc;
use tessera_core::claims::VerifiedClaims;
use tessera_core::credentials::{self, Presented};

/// Where a request's access token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization` header.
    Header,
    /// `access_token_cookie`.
    Cookie,
    /// `?access_token=`.
    Query,
    /// `access_token` in a JSON body.
    Json,
}

/// A request authenticated by a valid access token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: Arc<VerifiedClaims>,
    /// Its user, as this process knows them now.
    pub user: Arc<User>,
    /// Where the token came from.
    pub source: Source,
}

/// The `access_token` of a JSON body, put aside by [`capture_json_token`]
/// before the handler reads the body.
#[derive(Debug, Clone)]
pub struct JsonAccessToken(pub String);

impl FromRequestParts<Arc<Authority>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        authority: &Arc<Authority>,
    ) -> Result<Self, ApiError> {
        let (token, source) =
            find_token(parts, authority.settings())?.ok_or(ApiError::NotAuthenticated)?;
        if token.is_empty() || !credentials::is_visible_ascii(token.as_bytes()) {
            return Err(ApiError::BadToken(Refusal::Invalid));
        }
        let (claims, user) = authority.tokens().authenticate(&token).await?;
        // A browser sends cookies on its own, also to requests another site
        // made it send: unsafe methods must prove they come from our page.
        if source == Source::Cookie && (!parts.method.is_safe() || original_method_unsafe(parts)) {
            crate::authority::Tokens::check_csrf(
                &claims,
                cookies::header_value(&parts.headers, cookies::CSRF_HEADER),
            )?;
        }
        crate::http::serving::note::note_user(&parts.extensions, user.id.get());
        Ok(Self {
            claims,
            user,
            source,
        })
    }
}

/// Whether `X-Original-Method` names an unsafe method: a proxy asking
/// `/api/auth/check` on behalf of a POST (nginx's `auth_request` sends a GET)
/// gets the CSRF check that POST would get. It can only add the check, never
/// waive it; a method that cannot be read counts as unsafe.
fn original_method_unsafe(parts: &Parts) -> bool {
    parts
        .headers
        .get_all("x-original-method")
        .iter()
        .any(|value| !axum::http::Method::from_bytes(value.as_bytes()).is_ok_and(|m| m.is_safe()))
}

/// The access token from the first configured location that carries one.
fn find_token(parts: &Parts, settings: &Settings) -> Result<Option<(String, Source)>, ApiError> {
    for location in &settings.token_locations {
        let found = match location {
            TokenLocation::Headers => bearer_token(&parts.headers, &settings.auth_header_types)?
                .map(|t| (t, Source::Header)),
            TokenLocation::Cookies => {
                cookies::get(&parts.headers, cookies::ACCESS).map(|t| (t, Source::Cookie))
            }
            TokenLocation::QueryString => {
                query_token(parts.uri.query()).map(|t| (t, Source::Query))
            }
            TokenLocation::Json => parts
                .extensions
                .get::<JsonAccessToken>()
                .map(|t| (t.0.clone(), Source::Json)),
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

fn query_token(query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v)
}

/// With `json` among the token locations, reads a JSON body's top-level
/// `access_token` before routing and hands the body on unchanged.
pub async fn capture_json_token(authority: &Authority, req: Request) -> Result<Request, ApiError> {
    let settings = authority.settings();
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !settings.token_locations.contains(&TokenLocation::Json) || !is_json {
        return Ok(req);
    }
    let (mut parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, settings.request_timeout).await?;
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(serde_json::Value::String(token)) = map.get("access_token")
    {
        parts.extensions.insert(JsonAccessToken(token.clone()));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
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
    Ok(match credentials::bearer(value.as_bytes(), types) {
        Presented::Nothing => None,
        Presented::Token(token) => Some(token),
        // Refused as invalid by the caller, like an empty token.
        Presented::Unreadable => Some(String::new()),
    })
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
