//! simplejwt's token endpoints: obtain, refresh, verify, blacklist.

use super::openapi::*;
use crate::authority::{Authority, LoginMethod, SessionOrigin, Transport};
use crate::config::{Settings, TokenLocation};
use crate::http::extract::client::{ClientIp, origin};
use crate::http::extract::cookies;
use crate::http::extract::error::no_store;
use crate::http::extract::error::{ApiError, TokenEndpointError};
use crate::http::extract::requests::Body;
use crate::http::serving::body::Payload;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tessera_core::token::IssuedToken;

/// Token responses must not be cached by anything between us and the client.
pub(super) fn tokens(body: impl Serialize) -> Response {
    let mut response = Json(body).into_response();
    no_store(response.headers_mut());
    response
}

/// `POST /api/token/`: username and password for an access and a refresh token.
#[utoipa::path(
    post,
    path = "/api/token",
    tag = "tokens",
    summary = "Log in: an access and a refresh token",
    request_body(content((Credentials = "application/json"), (Credentials = "application/x-www-form-urlencoded"))),
    params(("X-Token-Transport" = Option<String>, Header, description = "`cookie`: set the tokens as cookies (with `cookies` in token_locations) and answer with the access token's decoded header and claims")),
    responses(
        (status = 429, description = "Throttled: too many attempts", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 200, description = "The tokens, or in cookie transport the access token's decoded header and claims", body = LoginResponse, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "Wrong credentials or an inactive user (`no_active_account`); or the right password of a user with a second factor (`mfa_required`, with `mfa_token` and `methods`: the login goes on at /api/auth/mfa/verify); or `mfa_enrolment_required` (with `enrolment_token`) for a user the `mfa` setting requires a factor of who has none", body = ErrorDetail, headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn obtain(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Body(credentials): Body<Credentials>,
) -> Result<Response, ApiError> {
    let settings = authority.settings();
    let transport = requested_transport(&headers, settings);
    let origin = origin(client, &headers, LoginMethod::Password);
    let (pair, _) = authority
        .sessions()
        .login(
            &credentials.username,
            &credentials.password,
            &origin,
            transport,
        )
        .await?;
    if transport == Transport::Header {
        return Ok(tokens(TokenPairBody {
            access: pair.access.token,
            refresh: pair.refresh.token,
        }));
    }
    let mut response = tokens(token_view(&pair.access.token, Some(&pair.refresh)));
    cookies::set_access(response.headers_mut(), settings, &pair.access);
    cookies::set_refresh(response.headers_mut(), settings, &pair.refresh);
    Ok(response)
}

/// The transport the client asked for with `X-Token-Transport`.
pub(super) fn requested_transport(headers: &HeaderMap, settings: &Settings) -> Transport {
    let asked = cookies::header_value(headers, cookies::TRANSPORT_HEADER)
        .is_some_and(|v| v.eq_ignore_ascii_case("cookie"));
    Transport::chosen(asked, settings)
}

/// What a page may know of an access token it cannot read (it is in an
/// HttpOnly cookie): its decoded header and claims, without the signature.
pub(super) fn token_view(token: &str, refresh: Option<&IssuedToken>) -> TokenView {
    let decode = |segment: Option<&str>| {
        segment
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .unwrap_or(Value::Null)
    };
    let mut segments = token.split('.');
    let header = decode(segments.next());
    let claims = decode(segments.next());
    TokenView {
        claims,
        header,
        // The page echoes this when it refreshes through the refresh cookie.
        refresh_csrf: refresh.and_then(|r| r.csrf.clone()),
    }
}

/// `POST /api/token/refresh/`: a refresh token for a new access token.
#[utoipa::path(
    post,
    path = "/api/token/refresh",
    tag = "tokens",
    summary = "A new access token (and refresh token when rotating)",
    request_body(content((RefreshRequest = "application/json"), (RefreshRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The new token(s), or in cookie transport the new access token's decoded header and claims", body = RefreshResponse, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "Token is invalid or expired", body = ErrorDetail, headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn refresh(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    payload: Payload,
) -> Result<Response, TokenEndpointError> {
    let origin = origin(client, &headers, LoginMethod::Password);
    // No token in the body, and a refresh cookie: cookie transport.
    let cookie = authority
        .settings()
        .token_locations
        .contains(&TokenLocation::Cookies)
        .then(|| cookies::get(&headers, cookies::REFRESH))
        .flatten()
        .filter(|_| !payload.0.contains_key("refresh"));
    if let Some(token) = cookie {
        return refresh_by_cookie(&authority, &headers, &token, &origin).await;
    }
    let mut fields = payload.fields();
    let token = fields.string("refresh");
    fields.finish()?;
    let refreshed = authority
        .tokens()
        .refresh(&token, Transport::Header, None, &origin)
        .await?;
    Ok(tokens(RefreshedBody {
        access: refreshed.access.token,
        refresh: refreshed.refresh.map(|new| new.token),
    }))
}

/// A refresh through the refresh cookie, which needs the CSRF header: new
/// cookies, and the decoded access token in the body.
async fn refresh_by_cookie(
    authority: &Authority,
    headers: &HeaderMap,
    token: &str,
    origin: &SessionOrigin,
) -> Result<Response, TokenEndpointError> {
    let csrf = cookies::header_value(headers, cookies::CSRF_HEADER);
    let refreshed = authority
        .tokens()
        .refresh(token, Transport::Cookie, csrf, origin)
        .await?;
    let mut response = tokens(token_view(
        &refreshed.access.token,
        refreshed.refresh.as_ref(),
    ));
    let settings = authority.settings();
    cookies::set_access(response.headers_mut(), settings, &refreshed.access);
    if let Some(new) = &refreshed.refresh {
        cookies::set_refresh(response.headers_mut(), settings, new);
    }
    Ok(response)
}

/// `POST /api/token/verify/`: 200 `{}` for a valid token of either type.
#[utoipa::path(
    post,
    path = "/api/token/verify",
    tag = "tokens",
    summary = "Check a token of either type",
    request_body(content((TokenRequest = "application/json"), (TokenRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Valid", body = Empty),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "Token is invalid or expired", body = ErrorDetail, headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn verify(
    State(authority): State<Arc<Authority>>,
    Body(request): Body<TokenRequest>,
) -> Result<Json<Empty>, TokenEndpointError> {
    authority.tokens().check(&request.token, None).await?;
    Ok(Json(Empty {}))
}

/// `POST /api/token/blacklist/`: refuses a refresh token from now on and,
/// with `blacklist_ends_session`, ends its session as logout does.
#[utoipa::path(
    post,
    path = "/api/token/blacklist",
    tag = "tokens",
    summary = "Blacklist a refresh token, ending its session (setting blacklist_ends_session)",
    request_body(content((RefreshRequest = "application/json"), (RefreshRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Blacklisted; with blacklist_ends_session (the default) the access tokens of the same login are refused too", body = Empty),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "Token is invalid or expired", body = ErrorDetail, headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn blacklist(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Body(request): Body<RefreshRequest>,
) -> Result<Json<Empty>, TokenEndpointError> {
    // Where the request came from: the logout it may be is audited with it.
    let origin = origin(client, &headers, LoginMethod::Password);
    authority
        .sessions()
        .blacklist(&request.refresh, &origin)
        .await?;
    Ok(Json(Empty {}))
}
