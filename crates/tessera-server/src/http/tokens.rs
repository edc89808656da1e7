//! simplejwt's token endpoints: obtain, refresh, verify, blacklist.

use super::body::Payload;
use super::client::ClientIp;
use super::error::ApiError;
use super::error::no_store;
use super::openapi::*;
use crate::authority::Authority;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// Token responses must not be cached by anything between us and the client.
fn tokens(body: Value) -> Response {
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
    responses(
        (status = 429, description = "Throttled: too many attempts", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 200, description = "The tokens", body = TokenPair, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "Wrong credentials or an inactive user", body = ErrorDetail, headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn obtain(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    payload: Payload,
) -> Result<Response, ApiError> {
    let mut fields = payload.fields();
    let username = fields.string("username");
    let password = fields.string("password");
    fields.finish()?;
    let (pair, _) = authority.login(&username, &password, client).await?;
    Ok(tokens(
        json!({"access": pair.access.token, "refresh": pair.refresh.token}),
    ))
}

/// `POST /api/token/refresh/`: a refresh token for a new access token.
#[utoipa::path(
    post,
    path = "/api/token/refresh",
    tag = "tokens",
    summary = "A new access token (and refresh token when rotating)",
    request_body(content((RefreshRequest = "application/json"), (RefreshRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The new token(s)", body = Refreshed, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "Token is invalid or expired", body = ErrorDetail, headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn refresh(
    State(authority): State<Arc<Authority>>,
    payload: Payload,
) -> Result<Response, ApiError> {
    let mut fields = payload.fields();
    let token = fields.string("refresh");
    fields.finish()?;
    let refreshed = authority
        .refresh(&token)
        .await
        .map_err(|e| ApiError::from(e).for_token_endpoint())?;
    let mut body = json!({"access": refreshed.access.token});
    if let Some(new) = refreshed.refresh {
        body["refresh"] = json!(new.token);
    }
    Ok(tokens(body))
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
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let mut fields = payload.fields();
    let token = fields.string("token");
    fields.finish()?;
    authority
        .check(&token, None)
        .await
        .map_err(|e| ApiError::from(e).for_token_endpoint())?;
    Ok(Json(json!({})))
}

/// `POST /api/token/blacklist/`: refuses a refresh token from now on.
#[utoipa::path(
    post,
    path = "/api/token/blacklist",
    tag = "tokens",
    summary = "Blacklist a refresh token",
    request_body(content((RefreshRequest = "application/json"), (RefreshRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Blacklisted", body = Empty),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "Token is invalid or expired", body = ErrorDetail, headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn blacklist(
    State(authority): State<Arc<Authority>>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let mut fields = payload.fields();
    let token = fields.string("refresh");
    fields.finish()?;
    authority
        .blacklist(&token)
        .await
        .map_err(|e| ApiError::from(e).for_token_endpoint())?;
    Ok(Json(json!({})))
}
