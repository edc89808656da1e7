//! Second factors: a user's enrolment, confirmation and removal of their
//! TOTP factor and their recovery codes (each with a fresh access token),
//! and the second step of a login, which answers what the login's route
//! would have answered.

use super::oauth::token_response;
use super::openapi::*;
use super::tokens::{token_view, tokens};
use crate::authority::{
    Authority, EnrolmentGrant, FactorCaller, LoginMethod, TokenPair, Transport,
};
use crate::http::extract::auth::{Authenticated, bearer_token};
use crate::http::extract::client::{ClientIp, origin};
use crate::http::extract::cookies;
use crate::http::extract::error::ApiError;
use crate::http::extract::requests::{Body, MfaVerifyBody, SecondFactorBody, TotpCode};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;

/// The answer of a body that read as neither factor (the body's reader
/// refuses it first; this is never reached).
fn no_factor() -> ApiError {
    ApiError::field(
        "non_field_errors",
        "Give either code or recovery_code, not both.",
    )
}

/// Whoever may enrol a TOTP factor: the holder of an access token, or of an
/// enrolment token (in the `Authorization` header, wherever access tokens
/// are looked for: it is not one).
pub enum Enroller {
    /// An access token's holder.
    Access(Authenticated),
    /// An enrolment token's holder.
    Enrolment(EnrolmentGrant),
}

impl Enroller {
    /// As the domain takes it.
    pub(super) fn caller(&self) -> FactorCaller<'_> {
        match self {
            Enroller::Access(auth) => FactorCaller::AccessToken {
                claims: &auth.claims,
                user: &auth.user,
            },
            Enroller::Enrolment(grant) => FactorCaller::EnrolmentToken(grant),
        }
    }
}

impl FromRequestParts<Arc<Authority>> for Enroller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        authority: &Arc<Authority>,
    ) -> Result<Self, ApiError> {
        let types = &authority.settings().auth_header_types;
        // A JWT has dots; an enrolment token (base64url) has none.
        if let Some(token) = bearer_token(&parts.headers, types)?
            && !token.is_empty()
            && !token.contains('.')
        {
            let grant = authority.mfa().enrolment_grant(&token).await?;
            return Ok(Enroller::Enrolment(grant));
        }
        Ok(Enroller::Access(
            Authenticated::from_request_parts(parts, authority).await?,
        ))
    }
}

/// `POST /api/auth/mfa/totp`: a new TOTP secret, pending until confirmed.
#[utoipa::path(
    post,
    path = "/api/auth/mfa/totp",
    tag = "second factors",
    summary = "Begin a TOTP enrolment: a new secret, its otpauth URI and QR code (needs a fresh token, or the enrolment_token of a login's 401 mfa_enrolment_required)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The secret, shown this once; pending until confirmed (enrolling again replaces it)", body = TotpEnrolmentBody, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 409, description = "A TOTP factor is already enrolled (`mfa_already_enrolled`)", body = ErrorDetail),
        (status = 401, description = "No credentials, a refused token (an enrolment token unknown, expired, or of a user whose password changed since: `token_not_valid`), or one that is not fresh (`fresh_token_required`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn begin_totp(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    enroller: Enroller,
) -> Result<Response, ApiError> {
    let origin = origin(client, &headers, LoginMethod::Password);
    let enrolment = authority
        .mfa()
        .begin_totp(enroller.caller(), &origin)
        .await?;
    Ok(tokens(TotpEnrolmentBody {
        otpauth_uri: enrolment.otpauth_uri,
        qr_svg: enrolment.qr_svg,
        secret: enrolment.secret,
    }))
}

/// `POST /api/auth/mfa/totp/confirm`: a code of the pending secret puts
/// the factor in force and gives the recovery codes.
#[utoipa::path(
    post,
    path = "/api/auth/mfa/totp/confirm",
    tag = "second factors",
    summary = "Confirm the TOTP enrolment with a code: the factor in force, and ten recovery codes (needs a fresh token, or the enrolment_token of a login's 401 mfa_enrolment_required)",
    request_body(content((TotpCode = "application/json"), (TotpCode = "application/x-www-form-urlencoded"))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Confirmed: the recovery codes, shown this once", body = RecoveryCodesBody, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "A wrong, used or malformed code (under `code`; it counts as a failed login), or an unreadable body", body = BadRequest),
        (status = 409, description = "No enrolment pending (`mfa_not_enrolled`)", body = ErrorDetail),
        (status = 429, description = "Throttled: too many wrong codes or passwords", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 401, description = "No credentials, a refused token (an enrolment token unknown, expired, or of a user whose password changed since: `token_not_valid`), or one that is not fresh (`fresh_token_required`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn confirm_totp(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    enroller: Enroller,
    Body(request): Body<TotpCode>,
) -> Result<Response, ApiError> {
    let origin = origin(client, &headers, LoginMethod::Password);
    let recovery_codes = authority
        .mfa()
        .confirm_totp(enroller.caller(), &request.code, &origin)
        .await?;
    Ok(tokens(RecoveryCodesBody { recovery_codes }))
}

/// `DELETE /api/auth/mfa/totp`: removes the factor and its recovery codes,
/// with a code or a recovery code.
#[utoipa::path(
    delete,
    path = "/api/auth/mfa/totp",
    tag = "second factors",
    summary = "Remove the TOTP factor and its recovery codes, with a code or a recovery code (needs a fresh token from a login that used the factor)",
    request_body(content((SecondFactor = "application/json"), (SecondFactor = "application/x-www-form-urlencoded"))),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed: a password alone logs in from now on"),
        (status = 400, description = "A wrong, used or malformed code (it counts as a failed login), both fields or neither, or an unreadable body", body = BadRequest),
        (status = 409, description = "No factor to remove (`mfa_not_enrolled`)", body = ErrorDetail),
        (status = 429, description = "Throttled: too many wrong codes or passwords", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 401, description = "No credentials, a refused token, or one that is not fresh (`fresh_token_required`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn remove_totp(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    auth: Authenticated,
    Body(request): Body<SecondFactorBody>,
) -> Result<StatusCode, ApiError> {
    let answer = request.0.ok_or_else(no_factor)?;
    let origin = origin(client, &headers, LoginMethod::Password);
    authority
        .mfa()
        .remove_totp(&auth.claims, &auth.user, &answer, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/auth/mfa/recovery-codes`: ten new recovery codes, the old
/// ones void.
#[utoipa::path(
    post,
    path = "/api/auth/mfa/recovery-codes",
    tag = "second factors",
    summary = "Ten new recovery codes, the old ones void (needs a fresh token from a login that used the factor)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new codes, shown this once", body = RecoveryCodesBody, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 409, description = "No factor (`mfa_not_enrolled`)", body = ErrorDetail),
        (status = 401, description = "No credentials, a refused token, or one that is not fresh (`fresh_token_required`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn regenerate_recovery_codes(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    let origin = origin(client, &headers, LoginMethod::Password);
    let recovery_codes = authority
        .mfa()
        .regenerate_recovery_codes(&auth.claims, &auth.user, &origin)
        .await?;
    Ok(tokens(RecoveryCodesBody { recovery_codes }))
}

/// `POST /api/auth/mfa/verify`: the second step of a login; answers what
/// the login's route would have answered.
#[utoipa::path(
    post,
    path = "/api/auth/mfa/verify",
    tag = "second factors",
    summary = "The second step of a login: the mfa_token with a code or a recovery code",
    request_body(content((MfaVerify = "application/json"), (MfaVerify = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "What the login's route answers: simplejwt's tokens (or, in cookie transport, the cookies and the access token's decoded claims), RFC 6749's token response for the OAuth2 and FastAPI routes, Flask-JWT-Extended's", body = SecondStepResponse, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "A malformed code (it counts as a failed login), both fields or neither, or an unreadable body", body = BadRequest),
        (status = 401, description = "`mfa_code_invalid`: a wrong or used code; `mfa_token_invalid`: an unknown, expired or used mfa_token (log in again). Each counts as a failed login", body = ErrorDetail,
            headers(("WWW-Authenticate" = String))),
        (status = 429, description = "Throttled: too many wrong codes or passwords", body = ErrorDetail, headers(("Retry-After" = u64)))
    )
)]
pub async fn verify(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Body(request): Body<MfaVerifyBody>,
) -> Result<Response, ApiError> {
    let answer = request.answer.ok_or_else(no_factor)?;
    let origin = origin(client, &headers, LoginMethod::Password);
    let (pair, _, method, transport) = authority
        .sessions()
        .answer_second_factor(&request.mfa_token, &answer, &origin)
        .await?;
    Ok(login_answer(&authority, pair, method, transport))
}

/// What the route a login began on answers with its tokens.
pub(super) fn login_answer(
    authority: &Authority,
    pair: TokenPair,
    method: LoginMethod,
    transport: Transport,
) -> Response {
    match (method, transport) {
        (LoginMethod::OAuth | LoginMethod::Fastapi, _) => {
            token_response(&pair.access, &pair.refresh.token)
        }
        (LoginMethod::FlaskJwtExtended, _) => tokens(FlaskTokens {
            access_token: pair.access.token,
            refresh_token: pair.refresh.token,
        }),
        (LoginMethod::Password | LoginMethod::Passkey, Transport::Header) => {
            tokens(TokenPairBody {
                access: pair.access.token,
                refresh: pair.refresh.token,
            })
        }
        (LoginMethod::Password | LoginMethod::Passkey, Transport::Cookie) => {
            let settings = authority.settings();
            let mut response = tokens(token_view(&pair.access.token, Some(&pair.refresh)));
            cookies::set_access(response.headers_mut(), settings, &pair.access);
            cookies::set_refresh(response.headers_mut(), settings, &pair.refresh);
            response
        }
    }
}
