//! Account endpoints: signup, the current user, password change, logout, and the nginx check.

use super::openapi::*;
use crate::authority::{Authority, LoginMethod, NewAccount, User};
use crate::http::extract::auth::Authenticated;
use crate::http::extract::client::{ClientIp, origin};
use crate::http::extract::cookies;
use crate::http::extract::error::ApiError;
use crate::http::extract::requests::Body;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// RFC 3339 in UTC, as Django REST framework renders datetimes.
pub fn timestamp(seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The user object of docs/API.md.
pub fn user_object(user: &User) -> UserObject {
    UserObject {
        app_metadata: user.app_metadata.as_map().clone(),
        date_joined: timestamp(user.date_joined),
        email: user.email.clone(),
        email_verified: user.email_verified,
        id: user.id.get(),
        is_active: user.is_active,
        is_staff: user.is_staff,
        last_login: user.last_login.map(timestamp),
        roles: user.roles.names().to_vec(),
        username: user.username.to_string(),
    }
}

/// `POST /api/auth/signup`: 201 with the new user's id, username and email.
#[utoipa::path(
    post,
    path = "/api/auth/signup",
    tag = "accounts",
    summary = "Create an account",
    request_body(content((SignupRequest = "application/json"), (SignupRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 429, description = "Throttled: too many attempts", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 201, description = "Created", body = SignupResponse),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 403, description = "Signup is disabled", body = ErrorDetail),
        (status = 503, description = "No user id is left for a new account (`user_ids_exhausted`)", body = ErrorDetail)
    )
)]
pub async fn signup(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    Body(request): Body<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>), ApiError> {
    let user = authority
        .accounts()
        .signup(NewAccount {
            username: &request.username,
            password: &request.password,
            email: request.email.as_deref().unwrap_or_default(),
            superuser: false,
            client: Some(client),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            email: user.email.clone(),
            id: user.id.get(),
            username: user.username.to_string(),
        }),
    ))
}

/// `GET /api/auth/me`: the authenticated user.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "accounts",
    summary = "The authenticated user",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserObject),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused"))),
        (status = 400, description = "Two Authorization headers", body = ErrorDetail)
    )
)]
pub async fn me(auth: Authenticated) -> Json<UserObject> {
    Json(user_object(&auth.user))
}

/// `POST /api/auth/password`: change the password with a fresh token; 204.
#[utoipa::path(
    post,
    path = "/api/auth/password",
    tag = "accounts",
    summary = "Change the password (needs a fresh token; for a user with a second factor, from a login that used it)",
    request_body(content((PasswordChange = "application/json"), (PasswordChange = "application/x-www-form-urlencoded"))),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; every earlier token is refused"),
        (status = 429, description = "Throttled: too many wrong old passwords (they count as failed logins)", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "No credentials, a refused token (see `reason`), or one that is not fresh (`fresh_token_required`: refreshed, or, for a user with a confirmed second factor, from a login that did not use it)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn change_password(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    auth: Authenticated,
    Body(request): Body<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let PasswordChange {
        old_password,
        new_password,
    } = request;
    authority
        .accounts()
        .change_password(&auth.claims, &old_password, &new_password, client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/auth/logout`: end the session (the token's family); 204.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "accounts",
    summary = "End the session (the token family)",
    request_body(content((LogoutRequest = "application/json"), (LogoutRequest = "application/x-www-form-urlencoded"))),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn logout(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: axum::http::HeaderMap,
    auth: Authenticated,
    Body(request): Body<LogoutRequest>,
) -> Result<Response, ApiError> {
    authority
        .sessions()
        .logout(
            &auth.claims,
            request.refresh.as_deref(),
            &origin(client, &headers, LoginMethod::Password),
        )
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    cookies::clear_all(response.headers_mut(), authority.settings());
    Ok(response)
}

/// `/api/auth/check` for nginx `auth_request`: 204 with the user's id and
/// name in headers, or the 401 of any protected endpoint.
#[utoipa::path(
    method(get, head, post, put, patch, delete),
    path = "/api/auth/check",
    tag = "accounts",
    summary = "For nginx auth_request: 204 with the user in headers, or 401",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Authenticated", headers(("X-Auth-User-Id" = String), ("X-Auth-Username" = String))),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused"))),
        (status = 400, description = "Two Authorization headers", body = ErrorDetail)
    )
)]
pub async fn check(auth: Authenticated) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&auth.user.id.to_string()) {
        headers.insert("x-auth-user-id", id);
    }
    if let Ok(name) = HeaderValue::from_bytes(auth.user.username.as_bytes()) {
        headers.insert("x-auth-username", name);
    }
    response
}
