//! OAuth2 endpoints: the password, refresh_token and client_credentials
//! grants (RFC 6749 4.3, 6, 4.4), revocation (RFC 7009) and introspection
//! (RFC 7662), which `introspection_requires_client` keeps for service
//! clients holding the `introspect` scope. The same token machinery as
//! simplejwt's endpoints; only the wire format differs.

use super::openapi::*;
use crate::authority::clients::ClientCredentials;
use crate::authority::{
    Authority, ClientAuthError, LoginMethod, SessionOrigin, TokenPair, Transport,
};
use crate::http::extract::client::{ClientIp, origin};
use crate::http::extract::client_auth::{ClientAuthorization, client_authorization};
use crate::http::extract::error::{ApiError, OAuthFailure, no_store};
use crate::http::serving::body::Payload;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::Arc;
use tessera_core::client::SCOPE_INTROSPECT;
use tessera_core::token::IssuedToken;

fn invalid_request(description: impl Into<String>) -> ApiError {
    ApiError::OAuth("invalid_request", description.into())
}

/// A malformed body is an `invalid_request`; size and media type errors keep their status.
fn read(payload: Result<Payload, ApiError>) -> Result<Payload, ApiError> {
    payload.map_err(|e| match e {
        ApiError::BadRequest(detail) => invalid_request(detail),
        other => other,
    })
}

/// A required, non-empty string parameter.
fn param(payload: &Payload, name: &str) -> Result<String, ApiError> {
    match payload.0.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(invalid_request(format!("Missing parameter: {name}")))
        }
        Some(_) => Err(invalid_request(format!(
            "Parameter {name} must be a string"
        ))),
    }
}

/// An optional string parameter (`None` when absent or null).
fn optional_param(payload: &Payload, name: &str) -> Result<Option<String>, ApiError> {
    match payload.0.get(name) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(invalid_request(format!(
            "Parameter {name} must be a string"
        ))),
    }
}

/// RFC 6749 5.1's token response (also the FastAPI route's).
pub(super) fn token_response(access: &IssuedToken, refresh: &str) -> Response {
    let mut response = Json(OAuthToken {
        access_token: access.token.clone(),
        expires_in: access.exp - access.iat,
        refresh_token: refresh.to_owned(),
        token_type: "bearer".to_owned(),
    })
    .into_response();
    no_store(response.headers_mut());
    response
}

/// `POST /oauth/token`.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth2",
    summary = "RFC 6749 token endpoint: password, refresh_token and client_credentials grants",
    request_body(content((OAuthTokenRequest = "application/json"), (OAuthTokenRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 429, description = "Throttled: too many attempts", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 200, description = "The tokens (a service client's: one access token, no refresh token)", body = TokenResponse, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "RFC 6749 5.2 error", body = OAuthError, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "`invalid_client`: a service client's authentication failed; or `mfa_required` (with `mfa_token` and `methods`) for a user with a second factor, answered at /api/auth/mfa/verify; or `mfa_enrolment_required` (with `enrolment_token`) for a user the `mfa` setting requires a factor of who has none", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "Basic realm=\"tessera\""), ("Cache-Control" = String, description = "no-store"))),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither a form nor JSON", body = ErrorDetail)
    )
)]
pub async fn token(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    payload: Result<Payload, ApiError>,
) -> Result<Response, OAuthFailure> {
    let payload = read(payload)?;
    match param(&payload, "grant_type")?.as_str() {
        "password" => {
            let origin = origin(client, &headers, LoginMethod::OAuth);
            password_grant(&authority, &payload, &origin).await
        }
        "refresh_token" => {
            let origin = origin(client, &headers, LoginMethod::OAuth);
            refresh_grant(&authority, &payload, &origin).await
        }
        "client_credentials" => {
            let origin = origin(client, &headers, LoginMethod::OAuth);
            client_credentials_grant(&authority, &headers, &payload, &origin).await
        }
        other => Err(OAuthFailure(ApiError::OAuth(
            "unsupported_grant_type",
            format!(
                "Unsupported grant_type {other:.64}; use password, refresh_token or client_credentials."
            ),
        ))),
    }
}

/// RFC 6749 4.3: username and password for a new family.
async fn password_grant(
    authority: &Authority,
    payload: &Payload,
    origin: &SessionOrigin,
) -> Result<Response, OAuthFailure> {
    let username = param(payload, "username")?;
    let password = param(payload, "password")?;
    let (TokenPair { access, refresh }, _) = authority
        .sessions()
        .login(&username, &password, origin, Transport::Header)
        .await?;
    Ok(token_response(&access, &refresh.token))
}

/// RFC 6749 6: a refresh token for a new access token (and, rotating, a
/// new refresh token; otherwise the same one comes back).
async fn refresh_grant(
    authority: &Authority,
    payload: &Payload,
    origin: &SessionOrigin,
) -> Result<Response, OAuthFailure> {
    let refresh_token = param(payload, "refresh_token")?;
    let refreshed = authority
        .tokens()
        .refresh(&refresh_token, Transport::Header, None, origin)
        .await?;
    let refresh = refreshed.refresh.map_or(refresh_token, |new| new.token);
    Ok(token_response(&refreshed.access, &refresh))
}

/// RFC 6749 4.4: a service client's token, for the scopes asked (all the
/// client holds when none are).
async fn client_credentials_grant(
    authority: &Authority,
    headers: &HeaderMap,
    payload: &Payload,
    origin: &SessionOrigin,
) -> Result<Response, OAuthFailure> {
    let credentials = client_credentials(headers, payload)?;
    let scope = optional_param(payload, "scope")?;
    let grant = authority
        .clients()
        .grant(&credentials, scope.as_deref(), origin)
        .await?;
    let token = grant.token;
    let mut response = Json(ClientToken {
        access_token: token.token,
        expires_in: token.exp - token.iat,
        scope: grant.scopes.join(" "),
        token_type: "bearer".to_owned(),
    })
    .into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// The client's id and secret: from HTTP Basic (`client_secret_basic`) or
/// the body's `client_id` and `client_secret` (`client_secret_post`). Both
/// at once is an `invalid_request`; neither, or Basic that cannot be read,
/// an `invalid_client`.
fn client_credentials(
    headers: &HeaderMap,
    payload: &Payload,
) -> Result<ClientCredentials, ApiError> {
    let posted = ["client_id", "client_secret"]
        .iter()
        .any(|name| payload.0.contains_key(*name));
    match client_authorization(headers)? {
        ClientAuthorization::Basic(_) | ClientAuthorization::MalformedBasic if posted => {
            Err(invalid_request(
                "Authenticate the client one way: HTTP Basic, or client_id and client_secret \
                 in the body, not both.",
            ))
        }
        ClientAuthorization::Basic(credentials) => Ok(credentials),
        ClientAuthorization::MalformedBasic => Err(ApiError::InvalidClient),
        _ => {
            let client_id = optional_param(payload, "client_id")?;
            let secret = optional_param(payload, "client_secret")?;
            match (client_id, secret) {
                (Some(client_id), Some(secret)) => Ok(ClientCredentials { client_id, secret }),
                _ => Err(ApiError::InvalidClient),
            }
        }
    }
}

/// With `introspection_requires_client`: the request authenticates a
/// client holding `introspect`, by HTTP Basic or by one of its tokens.
async fn require_introspector(
    authority: &Authority,
    headers: &HeaderMap,
    client: IpAddr,
) -> Result<(), ApiError> {
    match client_authorization(headers)? {
        ClientAuthorization::Basic(credentials) => {
            let origin = origin(client, headers, LoginMethod::OAuth);
            let found = authority
                .clients()
                .authenticate(&credentials, &origin)
                .await?;
            if !found.scopes.iter().any(|s| s == SCOPE_INTROSPECT) {
                return Err(ApiError::InsufficientScope(SCOPE_INTROSPECT.to_owned()));
            }
            Ok(())
        }
        ClientAuthorization::Bearer(token) => {
            match authority
                .clients()
                .authorize(&token, SCOPE_INTROSPECT)
                .await
            {
                Ok(_) => Ok(()),
                Err(ClientAuthError::NotValid(_)) => Err(ApiError::InvalidClient),
                Err(ClientAuthError::InsufficientScope(scope)) => {
                    Err(ApiError::InsufficientScope(scope))
                }
            }
        }
        _ => Err(ApiError::InvalidClient),
    }
}

/// `POST /oauth/revoke`: 200 whatever the token (RFC 7009 2.2); a refresh
/// token's session ends with it when `blacklist_ends_session` is on.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth2",
    summary = "RFC 7009 revocation: 200 whatever the token; a refresh token's session ends (setting blacklist_ends_session)",
    request_body(content((RevokeRequest = "application/json"), (RevokeRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "Missing token", body = OAuthError, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither a form nor JSON", body = ErrorDetail)
    )
)]
pub async fn revoke(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    payload: Result<Payload, ApiError>,
) -> Result<Response, ApiError> {
    let payload = read(payload)?;
    let token = param(&payload, "token")?;
    let origin = origin(client, &headers, LoginMethod::OAuth);
    // token_type_hint only saves a lookup elsewhere; the token says its own type.
    authority.sessions().revoke_token(&token, &origin).await?;
    let mut response = StatusCode::OK.into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// `POST /oauth/introspect`: `{"active": true, ...claims}` or exactly `{"active": false}`.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth2",
    summary = "RFC 7662 introspection (of users' and service clients' tokens); with introspection_requires_client, for clients holding the introspect scope",
    request_body(content((TokenRequest = "application/json"), (TokenRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Whether the token is active, and its claims", body = Introspection, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 401, description = "With introspection_requires_client: no client, or not one (`invalid_client`)", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "Basic realm=\"tessera\""), ("Cache-Control" = String, description = "no-store"))),
        (status = 403, description = "With introspection_requires_client: a client without the introspect scope (`insufficient_scope`)", body = ErrorDetail),
        (status = 429, description = "Throttled: too many failed client authentications", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 400, description = "Missing token", body = OAuthError, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither a form nor JSON", body = ErrorDetail)
    )
)]
pub async fn introspect(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    payload: Result<Payload, ApiError>,
) -> Result<Response, ApiError> {
    if authority.settings().introspection_requires_client {
        require_introspector(&authority, &headers, client).await?;
    }
    let payload = read(payload)?;
    let token = param(&payload, "token")?;
    let claims = match authority.tokens().introspect(&token).await? {
        Some(claims) => Some(claims),
        None => authority.clients().introspect(&token).await,
    };
    let body = match claims {
        // A claim named `active` gives way to ours.
        Some(claims) => Introspection {
            active: true,
            claims: claims.into_iter().filter(|(k, _)| k != "active").collect(),
        },
        None => Introspection {
            active: false,
            claims: Default::default(),
        },
    };
    let mut response = Json(body).into_response();
    no_store(response.headers_mut());
    Ok(response)
}
