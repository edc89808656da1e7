//! Passkeys: a user's registration, list and removal of theirs, a login's
//! second step with one, and a passwordless login with one (when
//! `passkey_login` is on). Each ceremony is a start, whose options the
//! page passes to `navigator.credentials`, and a finish with what the
//! browser answered (`PublicKeyCredential.toJSON()`).

use super::mfa::{Enroller, login_answer};
use super::openapi::*;
use super::tokens::{requested_transport, tokens};
use crate::authority::{Authority, LoginMethod, NewPasskey, PasskeyView, SecondFactorAnswer};
use crate::http::extract::auth::Authenticated;
use crate::http::extract::client::{ClientIp, origin};
use crate::http::extract::error::ApiError;
use crate::http::extract::requests::{
    Body, MfaPasskeyBody, MfaToken, PasskeyAssertionBody, PasskeyRegistrationBody,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

/// The answer to a ceremony's start: its options, never cached.
fn options(public_key: Value) -> Response {
    let public_key = match public_key {
        Value::Object(mut o) => o.remove("publicKey").unwrap_or(Value::Null),
        other => other,
    };
    tokens(PasskeyOptions { public_key })
}

/// The body's credential, which its reader refused when absent (never
/// reached without one).
fn required<T>(credential: Option<T>) -> Result<T, ApiError> {
    credential.ok_or_else(|| ApiError::field("credential", "This field is required."))
}

impl From<PasskeyView> for PasskeyObject {
    fn from(p: PasskeyView) -> Self {
        Self {
            created_at: p.created_at,
            id: p.id,
            last_used_at: p.last_used_at,
            name: p.name,
        }
    }
}

impl From<NewPasskey> for NewPasskeyBody {
    fn from(new: NewPasskey) -> Self {
        let p = new.passkey;
        Self {
            created_at: p.created_at,
            id: p.id,
            last_used_at: p.last_used_at,
            name: p.name,
            recovery_codes: new.recovery_codes,
        }
    }
}

/// `POST /api/auth/passkeys/register/start`: the options of a new passkey.
#[utoipa::path(
    post,
    path = "/api/auth/passkeys/register/start",
    tag = "passkeys",
    summary = "Begin registering a passkey: the creation options for navigator.credentials.create() (needs a fresh token, or the enrolment_token of a login's 401 mfa_enrolment_required)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The options; the ceremony can be finished for 5 minutes, on any instance", body = PasskeyOptions, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 409, description = "The user has 10 passkeys already (`passkey_limit`)", body = ErrorDetail),
        (status = 503, description = "The server has no `public_url` (of a host name): passkeys are bound to its host (`passkeys_unavailable`)", body = ErrorDetail),
        (status = 401, description = "No credentials, a refused token, or one that is not fresh (`fresh_token_required`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn begin_registration(
    State(authority): State<Arc<Authority>>,
    enroller: Enroller,
) -> Result<Response, ApiError> {
    let started = authority
        .passkeys()
        .begin_registration(enroller.caller())
        .await?;
    Ok(options(started))
}

/// `POST /api/auth/passkeys/register/finish`: the browser's new credential.
#[utoipa::path(
    post,
    path = "/api/auth/passkeys/register/finish",
    tag = "passkeys",
    summary = "Finish registering a passkey with the browser's answer (needs a fresh token, or an enrolment_token)",
    request_body(content((PasskeyRegistration = "application/json"))),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered; with ten recovery codes (shown this once) when it is the user's first second factor", body = NewPasskeyBody, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "Not a WebAuthn credential, or not the answer to the user's registration under way (another challenge, origin or site; expired; finished already), under `credential`; a name too long (under `name`)", body = BadRequest),
        (status = 409, description = "The passkey is registered already (`passkey_already_registered`), or the user has 10 (`passkey_limit`)", body = ErrorDetail),
        (status = 503, description = "No `public_url` (`passkeys_unavailable`)", body = ErrorDetail),
        (status = 401, description = "No credentials, a refused token, or one that is not fresh (`fresh_token_required`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String, description = "Bearer realm=\"api\", with error=\"invalid_token\" when a token was refused")))
    )
)]
pub async fn finish_registration(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    enroller: Enroller,
    Body(request): Body<PasskeyRegistrationBody>,
) -> Result<Response, ApiError> {
    let credential = required(request.credential)?;
    let origin = origin(client, &headers, LoginMethod::Password);
    let new = authority
        .passkeys()
        .finish_registration(
            enroller.caller(),
            &credential,
            request.name.as_deref(),
            &origin,
        )
        .await?;
    let mut response = tokens(NewPasskeyBody::from(new));
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `GET /api/auth/passkeys`: the caller's passkeys.
#[utoipa::path(
    get,
    path = "/api/auth/passkeys",
    tag = "passkeys",
    summary = "The caller's passkeys, oldest first",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Their passkeys", body = Vec<PasskeyObject>),
        (status = 401, description = "No credentials, or a refused token", body = ErrorDetail,
            headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn list(
    State(authority): State<Arc<Authority>>,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    let passkeys = authority.passkeys().list(&auth.user).await?;
    let body: Vec<PasskeyObject> = passkeys.into_iter().map(PasskeyObject::from).collect();
    Ok(axum::Json(body).into_response())
}

/// `DELETE /api/auth/passkeys/{id}`: removes one of the caller's passkeys.
#[utoipa::path(
    delete,
    path = "/api/auth/passkeys/{id}",
    tag = "passkeys",
    summary = "Remove one of the caller's passkeys (needs a fresh token from a login that used a second factor); the recovery codes go with the last factor",
    params(("id" = String, Path, description = "The passkey's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The caller has no passkey of that id (`passkey_not_found`)", body = ErrorDetail),
        (status = 401, description = "No credentials, a refused token, or one that is not fresh (`fresh_token_required`)", body = ErrorDetail,
            headers(("WWW-Authenticate" = String)))
    )
)]
pub async fn remove(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let origin = origin(client, &headers, LoginMethod::Password);
    authority
        .passkeys()
        .remove(&auth.claims, &auth.user, &id, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/auth/mfa/passkey/start`: a login's second step with a passkey.
#[utoipa::path(
    post,
    path = "/api/auth/mfa/passkey/start",
    tag = "second factors",
    summary = "Begin a login's second step with a passkey: the request options for navigator.credentials.get()",
    request_body(content((MfaToken = "application/json"), (MfaToken = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The options (the user's passkeys allowed); a new start for the same mfa_token replaces the one before", body = PasskeyOptions, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "No mfa_token, or an unreadable body", body = BadRequest),
        (status = 401, description = "An unknown, expired or used mfa_token (`mfa_token_invalid`)", body = ErrorDetail, headers(("WWW-Authenticate" = String))),
        (status = 409, description = "The user has no passkey (`passkey_not_registered`)", body = ErrorDetail),
        (status = 503, description = "No `public_url` (`passkeys_unavailable`)", body = ErrorDetail)
    )
)]
pub async fn begin_second_factor(
    State(authority): State<Arc<Authority>>,
    Body(request): Body<MfaToken>,
) -> Result<Response, ApiError> {
    let started = authority
        .passkeys()
        .begin_second_factor(&request.mfa_token)
        .await?;
    Ok(options(started))
}

/// `POST /api/auth/mfa/passkey/finish`: answers what the login's route
/// would have answered.
#[utoipa::path(
    post,
    path = "/api/auth/mfa/passkey/finish",
    tag = "second factors",
    summary = "Finish a login's second step with the browser's answer: what the login's route answers",
    request_body(content((MfaPasskey = "application/json"))),
    responses(
        (status = 200, description = "What the login's route answers (as /api/auth/mfa/verify does)", body = SecondStepResponse, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "No mfa_token, no credential or not a WebAuthn credential, or an unreadable body", body = BadRequest),
        (status = 401, description = "`passkey_invalid`: not the answer to this login's ceremony (another challenge, origin or site; expired or used; a bad signature; a passkey removed or cloned); `mfa_token_invalid`: log in again. Each counts as a failed login", body = ErrorDetail,
            headers(("WWW-Authenticate" = String))),
        (status = 429, description = "Throttled: too many failed attempts", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 503, description = "No `public_url` (`passkeys_unavailable`)", body = ErrorDetail)
    )
)]
pub async fn finish_second_factor(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Body(request): Body<MfaPasskeyBody>,
) -> Result<Response, ApiError> {
    let credential = required(request.credential)?;
    let answer = SecondFactorAnswer::Passkey(Box::new(credential));
    let origin = origin(client, &headers, LoginMethod::Password);
    let (pair, _, method, transport) = authority
        .sessions()
        .answer_second_factor(&request.mfa_token, &answer, &origin)
        .await?;
    Ok(login_answer(&authority, pair, method, transport))
}

/// `POST /api/auth/passkeys/login/start`: a passwordless login.
#[utoipa::path(
    post,
    path = "/api/auth/passkeys/login/start",
    tag = "passkeys",
    summary = "Begin a passwordless login with a discoverable passkey (with passkey_login on): the request options for navigator.credentials.get()",
    responses(
        (status = 200, description = "The options; the ceremony can be finished for 5 minutes, on any instance", body = PasskeyOptions, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 403, description = "Passkey login is off (`passkey_login_disabled`)", body = ErrorDetail),
        (status = 429, description = "10 passkey logins of this client address are under way already (5 minutes each), or 10,000 in all", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 503, description = "No `public_url` (`passkeys_unavailable`)", body = ErrorDetail)
    )
)]
pub async fn begin_login(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
) -> Result<Response, ApiError> {
    let started = authority.passkeys().begin_login(client).await?;
    Ok(options(started))
}

/// `POST /api/auth/passkeys/login/finish`: answers what
/// `POST /api/auth/token/` answers.
#[utoipa::path(
    post,
    path = "/api/auth/passkeys/login/finish",
    tag = "passkeys",
    summary = "Finish a passwordless login with the browser's answer: the tokens, as /api/auth/token/ answers them",
    params(("X-Token-Transport" = Option<String>, Header, description = "`cookie`: set the tokens as cookies (with `cookies` in token_locations) and answer with the access token's decoded header and claims")),
    request_body(content((PasskeyAssertion = "application/json"))),
    responses(
        (status = 200, description = "The tokens, or in cookie transport the access token's decoded header and claims", body = LoginResponse, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, description = "No credential or not a WebAuthn credential, or an unreadable body", body = BadRequest),
        (status = 401, description = "`passkey_invalid`: not the answer to a passkey login under way (another challenge, origin or site; expired or used; a bad signature), or of a passkey unknown, removed or cloned, or of an inactive user. Counts as a failed login of the address", body = ErrorDetail,
            headers(("WWW-Authenticate" = String))),
        (status = 403, description = "Passkey login is off (`passkey_login_disabled`)", body = ErrorDetail),
        (status = 429, description = "Throttled: too many failed attempts", body = ErrorDetail, headers(("Retry-After" = u64))),
        (status = 503, description = "No `public_url` (`passkeys_unavailable`)", body = ErrorDetail)
    )
)]
pub async fn finish_login(
    State(authority): State<Arc<Authority>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Body(request): Body<PasskeyAssertionBody>,
) -> Result<Response, ApiError> {
    let credential = required(request.credential)?;
    let transport = requested_transport(&headers, authority.settings());
    let origin = origin(client, &headers, LoginMethod::Passkey);
    let (pair, _) = authority
        .sessions()
        .login_with_passkey(&credential, &origin, transport)
        .await?;
    Ok(login_answer(
        &authority,
        pair,
        LoginMethod::Passkey,
        transport,
    ))
}
