//! Password reset and email verification: four thin handlers over the
//! domain's recovery operations.

use super::openapi::*;
use crate::authority::Authority;
use crate::http::extract::auth::Authenticated;
use crate::http::extract::client::ClientIp;
use crate::http::extract::error::ApiError;
use crate::http::extract::requests::Body;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;

/// `POST /api/auth/password/reset`: 202 `{}` whether or not the address is known.
#[utoipa::path(
    post,
    path = "/api/auth/password/reset",
    tag = "accounts",
    summary = "Mail a password-reset link",
    description = "Answers 202 `{}` whether or not an active user has the address, in the same \
                   time either way; a user with it gets a mail with a link to the page. At most \
                   5 requests an hour per address and 20 per client are honoured; past that the \
                   answer is the same and nothing is sent.",
    request_body(content((ResetRequest = "application/json"), (ResetRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "Accepted", body = Empty),
        (status = 400, description = "Not an email address, or an unreadable body", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 503, description = "Email is not configured (`email_unavailable`)", body = ErrorDetail)
    )
)]
pub async fn request_reset(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    Body(request): Body<ResetRequest>,
) -> Result<(StatusCode, Json<Empty>), ApiError> {
    authority
        .recovery()
        .request_password_reset(&request.email, client)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Empty {})))
}

/// `POST /api/auth/password/reset/confirm`: a new password with a reset link's token; 204.
#[utoipa::path(
    post,
    path = "/api/auth/password/reset/confirm",
    tag = "accounts",
    summary = "Set a new password with a reset link",
    description = "Every token of the user issued before is refused afterwards, as after a \
                   password change; the link works once.",
    request_body(content((ResetConfirm = "application/json"), (ResetConfirm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "`token`: bad, used or expired; `new_password`: too weak", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 503, description = "Email is not configured (`email_unavailable`)", body = ErrorDetail)
    )
)]
pub async fn confirm_reset(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    Body(request): Body<ResetConfirm>,
) -> Result<StatusCode, ApiError> {
    authority
        .recovery()
        .confirm_password_reset(&request.token, &request.new_password, client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/auth/email/verify/request`: mail the caller a verification link; 202.
#[utoipa::path(
    post,
    path = "/api/auth/email/verify/request",
    tag = "accounts",
    summary = "Mail a verification link to the caller's address",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted", body = Empty),
        (status = 400, description = "The account has no address mail can go to", body = BadRequest),
        (status = 401, description = "No credentials, or a refused token (see `reason`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused"))),
        (status = 503, description = "Email is not configured (`email_unavailable`)", body = ErrorDetail)
    )
)]
pub async fn request_verification(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    auth: Authenticated,
) -> Result<(StatusCode, Json<Empty>), ApiError> {
    authority
        .recovery()
        .request_verification(auth.user.id, client)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Empty {})))
}

/// `POST /api/auth/email/verify`: verify the address with a link's token; 204.
#[utoipa::path(
    post,
    path = "/api/auth/email/verify",
    tag = "accounts",
    summary = "Verify an address with a verification link",
    request_body(content((VerifyEmail = "application/json"), (VerifyEmail = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Verified"),
        (status = 400, description = "`token`: bad, used or expired", body = BadRequest),
        (status = 413, description = "Body over 65,536 bytes", body = ErrorDetail),
        (status = 415, description = "Neither JSON nor a form", body = ErrorDetail),
        (status = 503, description = "Email is not configured (`email_unavailable`)", body = ErrorDetail)
    )
)]
pub async fn verify_email(
    State(authority): State<Arc<Authority>>,
    Body(request): Body<VerifyEmail>,
) -> Result<StatusCode, ApiError> {
    authority.recovery().verify_email(&request.token).await?;
    Ok(StatusCode::NO_CONTENT)
}
