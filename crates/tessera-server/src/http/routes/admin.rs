//! Administration endpoints for staff users.

use super::accounts::user_object;
use super::openapi::*;
use crate::authority::Authority;
use crate::http::extract::auth::Authenticated;
use crate::http::extract::error::ApiError;
use crate::http::extract::origin::PublicOrigin;
use crate::http::extract::requests::Body;
use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_core::ids::UserId;

/// A request authenticated by a staff user's access token; 403 for others.
pub struct Staff(pub Authenticated);

impl FromRequestParts<Arc<Authority>> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        authority: &Arc<Authority>,
    ) -> Result<Self, ApiError> {
        let auth = Authenticated::from_request_parts(parts, authority).await?;
        // The user's current flag, not the token's: a demotion applies at once.
        if !auth.user.is_staff {
            return Err(ApiError::PermissionDenied);
        }
        Ok(Staff(auth))
    }
}

/// `GET /api/admin/users?page=&page_size=`: users by id, paged like DRF's
/// PageNumberPagination.
#[utoipa::path(
    get,
    path = "/api/admin/users",
    tag = "admin",
    summary = "Users by id, paged",
    params(("page" = Option<i64>, Query, description = "1-based page, default 1"), ("page_size" = Option<i64>, Query, description = "default 20, at most 100")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page", body = UserPage),
        (status = 403, description = "Not staff", body = ErrorDetail),
        (status = 404, description = "Invalid page", body = ErrorDetail),
        (status = 400, description = "Two Authorization headers", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn list_users(
    State(authority): State<Arc<Authority>>,
    _staff: Staff,
    origin: PublicOrigin,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<UserPage>, ApiError> {
    // DRF reads an unreadable page_size as the default, and an unreadable
    // page as a page that does not exist.
    let page_size = query
        .get("page_size")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let page = query
        .get("page")
        .map_or(Some(1), |p| p.parse::<i64>().ok())
        .unwrap_or(0);
    let found = authority.accounts().users_page(page, page_size).await?;
    let base = format!("{}/api/admin/users", origin.base(authority.settings()));
    let link = |p: Option<i64>| p.map(|p| format!("{base}?page={p}&page_size={}", found.page_size));
    Ok(Json(UserPage {
        count: found.count,
        next: link(found.next),
        previous: link(found.previous),
        results: found.users.iter().map(user_object).collect(),
    }))
}

fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// `PATCH /api/admin/users/{id}`: set `is_active`, `is_staff`, `email`,
/// `email_verified`, `app_metadata`.
#[utoipa::path(
    patch,
    path = "/api/admin/users/{id}",
    tag = "admin",
    summary = "Set is_active, is_staff, email, email_verified and app_metadata",
    request_body(content((UserPatch = "application/json"), (UserPatch = "application/x-www-form-urlencoded"))),
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserObject),
        (status = 403, description = "Not staff, or the user is a superuser and the caller is not", body = ErrorDetail),
        (status = 404, description = "No such user", body = ErrorDetail),
        (status = 409, description = "`is_staff` or `is_active` false for the last active staff user (`last_active_staff`)", body = ErrorDetail),
        (status = 400, description = "Missing or mistyped fields, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn update_user(
    State(authority): State<Arc<Authority>>,
    Staff(staff): Staff,
    Path(id): Path<String>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<UserObject>, ApiError> {
    let id = user_id(&id)?;
    let actor = Some(staff.user.id);
    let user = authority
        .accounts()
        .set_user_flags(id, patch.into_change(), actor)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(user_object(&user)))
}

/// `POST /api/admin/users/{id}/revoke`: every token of the user issued so far stops working.
#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/revoke",
    tag = "admin",
    summary = "Refuse every token of the user issued so far",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not staff, or the user is a superuser and the caller is not", body = ErrorDetail),
        (status = 404, description = "No such user", body = ErrorDetail),
        (status = 400, description = "Two Authorization headers", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn revoke_user(
    State(authority): State<Arc<Authority>>,
    Staff(staff): Staff,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = user_id(&id)?;
    authority
        .accounts()
        .revoke_user(id, Some(staff.user.id))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/admin/users/{id}/mfa`: removes the user's second factors
/// (a lost device); the password alone logs them in again.
#[utoipa::path(
    delete,
    path = "/api/admin/users/{id}/mfa",
    tag = "admin",
    summary = "Remove the user's second factors (TOTP, recovery codes, logins waiting for a code): a lost device",
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed (or there was nothing to remove); audited as `mfa_reset`"),
        (status = 403, description = "Not staff, or the user is a superuser and the caller is not", body = ErrorDetail),
        (status = 404, description = "No such user", body = ErrorDetail),
        (status = 400, description = "Two Authorization headers", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn reset_mfa(
    State(authority): State<Arc<Authority>>,
    Staff(staff): Staff,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = user_id(&id)?;
    authority
        .accounts()
        .reset_second_factors(id, Some(staff.user.id))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/admin/users/{id}/roles`: the user's roles, all of them.
#[utoipa::path(
    put,
    path = "/api/admin/users/{id}/roles",
    tag = "admin",
    summary = "Set the user's roles; their older access tokens answer `expired`",
    request_body(content((RolesRequest = "application/json"))),
    params(("id" = i64, Path, description = "User id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = UserObject),
        (status = 403, description = "Not staff, or the user is a superuser and the caller is not", body = ErrorDetail),
        (status = 404, description = "No such user", body = ErrorDetail),
        (status = 400, description = "Missing or mistyped `roles`, a bad role name, too many roles, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn set_roles(
    State(authority): State<Arc<Authority>>,
    Staff(staff): Staff,
    Path(id): Path<String>,
    Body(request): Body<RolesRequest>,
) -> Result<Json<UserObject>, ApiError> {
    let id = user_id(&id)?;
    let user = authority
        .accounts()
        .set_roles(id, request.roles, Some(staff.user.id))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(user_object(&user)))
}
