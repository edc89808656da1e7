//! The HTTP layer's one error type, and the single place where errors become
//! the status codes, bodies and headers of docs/API.md.

use crate::authority::{AuthError, EnrolmentRequired, FieldErrors, Refusal, SecondFactorChallenge};
use crate::http::serving::note::StoreRefused;
use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tessera_store::StoreError;

pub use tessera_core::credentials::{CHALLENGE, CHALLENGE_INVALID};
use tessera_core::credentials::{not_authenticated_body, token_not_valid_body};

/// The challenge of a refused service client (RFC 6749 2.3.1: HTTP Basic).
pub const BASIC_CHALLENGE: &str = "Basic realm=\"tessera\"";

/// The challenge of a refused service client's bearer token.
pub const CLIENT_BEARER_CHALLENGE: &str = "Bearer realm=\"tessera\"";

/// The detail of a 503 while the database cannot be reached (Django REST
/// framework's `ServiceUnavailable`).
pub const UNAVAILABLE: &str = "Service temporarily unavailable, try again later.";

/// Every way a request can fail, as the client will see it.
#[derive(Debug)]
pub enum ApiError {
    /// No credentials on a protected endpoint.
    NotAuthenticated,
    /// A token refused on a protected endpoint, with the reason.
    BadToken(Refusal),
    /// A token refused by one of the simplejwt token endpoints.
    TokenNotValid,
    /// Failed login.
    NoActiveAccount,
    /// Field validation failed.
    Fields(FieldErrors),
    /// A malformed request, explained.
    BadRequest(String),
    /// Body over the limit.
    PayloadTooLarge,
    /// A body of a content type we do not read.
    UnsupportedMediaType(String),
    /// No such path or object.
    NotFound,
    /// Not found, with a specific detail (DRF's "Invalid page.").
    NotFoundWith(String),
    /// Known path, other method.
    MethodNotAllowed(Method),
    /// Authenticated but not allowed.
    PermissionDenied,
    /// A cookie-authenticated unsafe request without the matching CSRF header.
    CsrfFailed,
    /// Rate limited: retry after this many seconds.
    Throttled(u64),
    /// The request took longer than the server allows.
    Timeout,
    /// A password change with a token that is not fresh.
    FreshTokenRequired,
    /// An OAuth2 error (RFC 6749 5.2): `error` code and description.
    OAuth(&'static str, String),
    /// The password was right but the address is not verified
    /// (`email_verification = required`).
    EmailNotVerified,
    /// Password reset and verification are not configured.
    EmailUnavailable,
    /// The database cannot be reached for now (details are logged): a
    /// client may retry shortly.
    Unavailable,
    /// A change that would leave no active staff user.
    LastActiveStaff,
    /// A new account cannot have an id: the users' id sequence is at its
    /// largest value (logged for the operator).
    UserIdsExhausted,
    /// A service client's authentication failed (RFC 6749 5.2
    /// `invalid_client`): 401 with a Basic challenge.
    InvalidClient,
    /// A service client's valid token lacks the scope named.
    InsufficientScope(String),
    /// The password was right and a second factor is needed (401
    /// `mfa_required` with the `mfa_token`).
    MfaRequired(SecondFactorChallenge),
    /// The password was right and the user must enrol a second factor
    /// first (401 `mfa_enrolment_required` with the `enrolment_token`).
    MfaEnrolmentRequired(EnrolmentRequired),
    /// An `mfa_token` that names no live challenge.
    MfaTokenInvalid,
    /// A wrong or used second-factor code at a login's second step.
    MfaCodeInvalid,
    /// A TOTP enrolment while a factor is in force.
    MfaAlreadyEnrolled,
    /// No factor (or pending enrolment) to act on.
    MfaNotEnrolled,
    /// A passkey operation refused.
    Passkey(crate::authority::PasskeyError),
    /// A status and body chosen by a wire format's wrapper.
    Raw(StatusCode, Value),
    /// Our fault; details are logged, not sent.
    Internal,
}

/// The detail of [`ApiError::EmailNotVerified`].
pub const EMAIL_NOT_VERIFIED: &str = "Email address not verified.";

/// The detail of [`ApiError::MfaRequired`].
pub const MFA_REQUIRED: &str = "Second factor required.";

/// The fields of a login's 401 `mfa_required`, whatever the route's shape
/// adds to them: `detail`, `code`, `mfa_token` and `methods`.
pub fn mfa_required_fields(challenge: &SecondFactorChallenge) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("detail".into(), json!(MFA_REQUIRED));
    fields.insert("code".into(), json!("mfa_required"));
    fields.insert("mfa_token".into(), json!(challenge.token()));
    fields.insert("methods".into(), json!(challenge.methods()));
    fields
}

/// The detail of [`ApiError::MfaEnrolmentRequired`].
pub const MFA_ENROLMENT_REQUIRED: &str =
    "A second factor is required: enrol one with the enrolment_token, then log in again.";

/// The fields of a login's 401 `mfa_enrolment_required`, whatever the
/// route's shape adds to them: `detail`, `code` and `enrolment_token`.
pub fn mfa_enrolment_required_fields(
    enrolment: &EnrolmentRequired,
) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("detail".into(), json!(MFA_ENROLMENT_REQUIRED));
    fields.insert("code".into(), json!("mfa_enrolment_required"));
    fields.insert("enrolment_token".into(), json!(enrolment.token()));
    fields
}

impl ApiError {
    /// For simplejwt's token endpoints, which answer every refused token with
    /// one body and no reason.
    pub fn for_token_endpoint(self) -> Self {
        match self {
            ApiError::BadToken(_) => ApiError::TokenNotValid,
            other => other,
        }
    }

    /// A 400 for one field.
    pub fn field(name: &str, message: &str) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(name.to_owned(), vec![message.to_owned()]);
        ApiError::Fields(errors)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::NoActiveAccount => ApiError::NoActiveAccount,
            AuthError::Token(reason) => ApiError::BadToken(reason),
            AuthError::Fields(errors) => ApiError::Fields(errors),
            AuthError::FreshTokenRequired => ApiError::FreshTokenRequired,
            AuthError::Throttled(seconds) => ApiError::Throttled(seconds),
            AuthError::CsrfFailed => ApiError::CsrfFailed,
            AuthError::SignupClosed | AuthError::NotSuperuser => ApiError::PermissionDenied,
            AuthError::LastActiveStaff => ApiError::LastActiveStaff,
            AuthError::InvalidPage => ApiError::NotFoundWith("Invalid page.".into()),
            AuthError::EmailNotVerified => ApiError::EmailNotVerified,
            AuthError::EmailUnavailable => ApiError::EmailUnavailable,
            AuthError::InvalidClient => ApiError::InvalidClient,
            AuthError::InvalidScope(description) => ApiError::OAuth("invalid_scope", description),
            AuthError::SecondFactorRequired(challenge) => ApiError::MfaRequired(challenge),
            AuthError::EnrolmentRequired(enrolment) => ApiError::MfaEnrolmentRequired(enrolment),
            AuthError::MfaTokenInvalid => ApiError::MfaTokenInvalid,
            AuthError::MfaCodeInvalid => ApiError::MfaCodeInvalid,
            AuthError::MfaAlreadyEnrolled => ApiError::MfaAlreadyEnrolled,
            AuthError::MfaNotEnrolled => ApiError::MfaNotEnrolled,
            AuthError::Passkey(e) => ApiError::Passkey(e),
            AuthError::Store(StoreError::UserIdsExhausted) => {
                tracing::error!(
                    "a new account was refused: no user id is left (the users' id sequence is at \
                     2^63 - 1); see docs/MIGRATING.md, Importing users"
                );
                ApiError::UserIdsExhausted
            }
            AuthError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "the database is unavailable");
                ApiError::Unavailable
            }
            AuthError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                ApiError::Internal
            }
            AuthError::Internal(message) => {
                tracing::error!(error = %message, "internal failure");
                ApiError::Internal
            }
        }
    }
}

/// The errors of simplejwt's token endpoints (refresh, verify, blacklist):
/// every refused token is one body, `token_not_valid`, with no reason.
#[derive(Debug)]
pub struct TokenEndpointError(pub ApiError);

impl From<AuthError> for TokenEndpointError {
    fn from(e: AuthError) -> Self {
        TokenEndpointError(ApiError::from(e).for_token_endpoint())
    }
}

impl From<ApiError> for TokenEndpointError {
    fn from(e: ApiError) -> Self {
        TokenEndpointError(e.for_token_endpoint())
    }
}

impl IntoResponse for TokenEndpointError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

/// The errors of the OAuth2 token endpoint (RFC 6749 5.2): bad credentials
/// and bad refresh tokens are `invalid_grant`; throttling and failures keep
/// their own answers.
#[derive(Debug)]
pub struct OAuthFailure(pub ApiError);

impl From<AuthError> for OAuthFailure {
    fn from(e: AuthError) -> Self {
        OAuthFailure(match e {
            AuthError::NoActiveAccount => {
                ApiError::OAuth("invalid_grant", "Invalid username or password.".into())
            }
            AuthError::Token(_) => ApiError::OAuth(
                "invalid_grant",
                "The refresh token is invalid, expired or revoked.".into(),
            ),
            AuthError::EmailNotVerified => {
                // Section 12's 401 and body, with RFC 6749's fields beside
                // them for clients that read only those.
                let body = json!({
                    "error": "invalid_grant",
                    "error_description": EMAIL_NOT_VERIFIED,
                    "detail": EMAIL_NOT_VERIFIED,
                    "code": "email_not_verified",
                });
                return OAuthFailure(ApiError::Raw(StatusCode::UNAUTHORIZED, body));
            }
            AuthError::SecondFactorRequired(challenge) => {
                // The same fields as on every login route, with RFC 6749's
                // beside them (as Auth0's `mfa_required` grant error).
                let mut body = mfa_required_fields(&challenge);
                body.insert("error".into(), json!("mfa_required"));
                body.insert("error_description".into(), json!(MFA_REQUIRED));
                return OAuthFailure(ApiError::Raw(StatusCode::UNAUTHORIZED, Value::Object(body)));
            }
            AuthError::EnrolmentRequired(enrolment) => {
                let mut body = mfa_enrolment_required_fields(&enrolment);
                body.insert("error".into(), json!("mfa_enrolment_required"));
                body.insert("error_description".into(), json!(MFA_ENROLMENT_REQUIRED));
                return OAuthFailure(ApiError::Raw(StatusCode::UNAUTHORIZED, Value::Object(body)));
            }
            other => other.into(),
        })
    }
}

impl From<ApiError> for OAuthFailure {
    fn from(e: ApiError) -> Self {
        OAuthFailure(e)
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

/// Marks a response as not to be cached (RFC 6749 5.1), as every response
/// carrying or describing tokens must be.
pub fn no_store(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn with_challenge(status: StatusCode, body: Value, challenge: &'static str) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotAuthenticated => with_challenge(
                StatusCode::UNAUTHORIZED,
                not_authenticated_body(),
                CHALLENGE,
            ),
            ApiError::BadToken(reason) => with_challenge(
                StatusCode::UNAUTHORIZED,
                token_not_valid_body(reason.as_str()),
                CHALLENGE_INVALID,
            ),
            ApiError::TokenNotValid => with_challenge(
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}),
                CHALLENGE_INVALID,
            ),
            ApiError::NoActiveAccount => with_challenge(
                StatusCode::UNAUTHORIZED,
                json!({"detail": "No active account found with the given credentials", "code": "no_active_account"}),
                CHALLENGE,
            ),
            ApiError::Fields(errors) => {
                (StatusCode::BAD_REQUEST, Json(json!(errors))).into_response()
            }
            ApiError::BadRequest(detail) => {
                (StatusCode::BAD_REQUEST, Json(json!({"detail": detail}))).into_response()
            }
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({"detail": "Request body is larger than 65536 bytes."})),
            )
                .into_response(),
            ApiError::UnsupportedMediaType(media) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Json(json!({"detail": format!("Unsupported media type \"{media}\" in request.")})),
            )
                .into_response(),
            ApiError::NotFound => {
                (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response()
            }
            ApiError::NotFoundWith(detail) => {
                (StatusCode::NOT_FOUND, Json(json!({"detail": detail}))).into_response()
            }
            ApiError::MethodNotAllowed(method) => (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(json!({"detail": format!("Method \"{method}\" not allowed.")})),
            )
                .into_response(),
            ApiError::PermissionDenied => (
                StatusCode::FORBIDDEN,
                Json(json!({
                    "detail": "You do not have permission to perform this action.",
                    "code": "permission_denied",
                })),
            )
                .into_response(),
            ApiError::CsrfFailed => with_challenge(
                StatusCode::UNAUTHORIZED,
                json!({"detail": "CSRF token missing or incorrect.", "code": "csrf_failed"}),
                CHALLENGE,
            ),
            ApiError::Throttled(seconds) => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({
                        "detail": format!("Request was throttled. Expected available in {seconds} seconds."),
                        "code": "throttled",
                    })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            ApiError::Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                Json(json!({"detail": "The request took too long."})),
            )
                .into_response(),
            ApiError::FreshTokenRequired => with_challenge(
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Fresh token required", "code": "fresh_token_required"}),
                CHALLENGE_INVALID,
            ),
            ApiError::OAuth(error, description) => {
                let mut response = (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": error, "error_description": description})),
                )
                    .into_response();
                no_store(response.headers_mut());
                response
            }
            ApiError::EmailNotVerified => with_challenge(
                StatusCode::UNAUTHORIZED,
                json!({"detail": EMAIL_NOT_VERIFIED, "code": "email_not_verified"}),
                CHALLENGE,
            ),
            ApiError::EmailUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"detail": "Email is not configured.", "code": "email_unavailable"})),
            )
                .into_response(),
            ApiError::InvalidClient => {
                let body = json!({
                    "error": "invalid_client",
                    "error_description": "Client authentication failed.",
                });
                let mut response = with_challenge(StatusCode::UNAUTHORIZED, body, BASIC_CHALLENGE);
                no_store(response.headers_mut());
                response
            }
            ApiError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                Json(json!({
                    "detail": format!("The client token does not grant the scope \"{scope}\"."),
                    "code": "insufficient_scope",
                })),
            )
                .into_response(),
            ApiError::MfaRequired(challenge) => {
                let body = Value::Object(mfa_required_fields(&challenge));
                let mut response = with_challenge(StatusCode::UNAUTHORIZED, body, CHALLENGE);
                no_store(response.headers_mut());
                response
            }
            ApiError::MfaEnrolmentRequired(enrolment) => {
                let body = Value::Object(mfa_enrolment_required_fields(&enrolment));
                let mut response = with_challenge(StatusCode::UNAUTHORIZED, body, CHALLENGE);
                no_store(response.headers_mut());
                response
            }
            ApiError::MfaTokenInvalid => with_challenge(
                StatusCode::UNAUTHORIZED,
                json!({
                    "detail": "The second-factor token is invalid, expired or used: log in again.",
                    "code": "mfa_token_invalid",
                }),
                CHALLENGE,
            ),
            ApiError::MfaCodeInvalid => with_challenge(
                StatusCode::UNAUTHORIZED,
                json!({
                    "detail": "The code is wrong or was used already.",
                    "code": "mfa_code_invalid",
                }),
                CHALLENGE,
            ),
            ApiError::MfaAlreadyEnrolled => (
                StatusCode::CONFLICT,
                Json(json!({
                    "detail": "A TOTP factor is already enrolled: remove it first.",
                    "code": "mfa_already_enrolled",
                })),
            )
                .into_response(),
            ApiError::MfaNotEnrolled => (
                StatusCode::CONFLICT,
                Json(json!({
                    "detail": "No TOTP factor, or no enrolment pending, to act on.",
                    "code": "mfa_not_enrolled",
                })),
            )
                .into_response(),
            ApiError::Passkey(e) => passkey_refusal(e),
            ApiError::Raw(status, body) => {
                let mut response = (status, Json(body)).into_response();
                no_store(response.headers_mut());
                response
            }
            ApiError::Unavailable => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
                    Json(json!({"detail": UNAVAILABLE})),
                )
                    .into_response();
                // The edge tells `/readyz` (see `note`).
                response.extensions_mut().insert(StoreRefused);
                response
            }
            ApiError::LastActiveStaff => (
                StatusCode::CONFLICT,
                Json(json!({
                    "detail": "The last active staff user cannot be deactivated or lose staff status.",
                    "code": "last_active_staff",
                })),
            )
                .into_response(),
            ApiError::UserIdsExhausted => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "detail": "No user id is left for a new account.",
                    "code": "user_ids_exhausted",
                })),
            )
                .into_response(),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"detail": "Internal server error."})),
            )
                .into_response(),
        }
    }
}

/// The answer to a refused passkey operation.
fn passkey_refusal(e: crate::authority::PasskeyError) -> Response {
    use crate::authority::PasskeyError;
    let (status, detail, code) = match e {
        PasskeyError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Passkeys need the server's public_url, of a host name: its host is the passkeys' \
             relying party.",
            "passkeys_unavailable",
        ),
        PasskeyError::LoginDisabled => (
            StatusCode::FORBIDDEN,
            "Logging in with a passkey alone is off on this server: log in with your password.",
            "passkey_login_disabled",
        ),
        PasskeyError::Refused => {
            let body = json!({
                "detail": "The passkey was refused: start again.",
                "code": "passkey_invalid",
            });
            return with_challenge(StatusCode::UNAUTHORIZED, body, CHALLENGE);
        }
        PasskeyError::Duplicate => (
            StatusCode::CONFLICT,
            "This passkey is registered already.",
            "passkey_already_registered",
        ),
        PasskeyError::TooMany => (
            StatusCode::CONFLICT,
            "You have 10 passkeys, the most an account can have: remove one first.",
            "passkey_limit",
        ),
        PasskeyError::NotFound => (
            StatusCode::NOT_FOUND,
            "You have no passkey of that id.",
            "passkey_not_found",
        ),
        PasskeyError::NoPasskey => (
            StatusCode::CONFLICT,
            "This account has no passkey: answer with another second factor.",
            "passkey_not_registered",
        ),
    };
    (status, Json(json!({"detail": detail, "code": code}))).into_response()
}
