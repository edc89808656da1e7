//! What the domain's operations answer besides success, and why the
//! authority could not start.

use super::Refusal;
use super::keys::KeyLoadError;
use std::collections::BTreeMap;
use tessera_store::StoreError;

/// Field-by-field validation messages, as Django REST framework reports them.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// What a domain operation can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong credentials or an inactive user: the same answer for both.
    #[error("no active account found with the given credentials")]
    NoActiveAccount,
    /// A token was refused.
    #[error("token refused: {}", .0.as_str())]
    Token(Refusal),
    /// A cookie-authenticated request without the matching CSRF header.
    #[error("CSRF token missing or incorrect")]
    CsrfFailed,
    /// Too many attempts: try again after this many seconds.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// A password change presented a token that did not come from a password login.
    #[error("fresh token required")]
    FreshTokenRequired,
    /// Input that breaks a rule, by field.
    #[error("invalid input")]
    Fields(FieldErrors),
    /// Signup is closed (`signup_enabled = false`) to clients.
    #[error("signup is closed")]
    SignupClosed,
    /// A staff user who is not a superuser acting on a superuser.
    #[error("only a superuser may change a superuser, revoke its tokens or end its sessions")]
    NotSuperuser,
    /// A change that would leave no active staff user.
    #[error("the last active staff user cannot be deactivated or lose staff status")]
    LastActiveStaff,
    /// A page number past the last page, or not a page number.
    #[error("invalid page")]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A login whose password was right, of a user whose address is not
    /// verified while `email_verification = required`.
    #[error("email address not verified")]
    EmailNotVerified,
    /// Password reset and verification need `smtp_url` and `public_url`.
    #[error("email is not configured")]
    EmailUnavailable,
    /// A service client's authentication failed (unknown or removed client,
    /// wrong or missing secret): the same answer for each.
    #[error("client authentication failed")]
    InvalidClient,
    /// A scope asked for that the client does not hold, or not a scope.
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// The password was right and the user has a second factor: the login
    /// goes on at `/api/auth/mfa/verify` with the challenge's token.
    #[error("second factor required")]
    SecondFactorRequired(super::mfa::SecondFactorChallenge),
    /// The password was right, but the `mfa` setting requires the user to
    /// have a second factor and they have none: they enrol one with the
    /// enrolment token, then log in again.
    #[error("second factor enrolment required")]
    EnrolmentRequired(super::mfa::EnrolmentRequired),
    /// An `mfa_token` that names no live challenge: unknown, expired, used,
    /// or of a login that a password change or deactivation has voided.
    #[error("the second-factor token is invalid, expired or used")]
    MfaTokenInvalid,
    /// A second factor's code that is wrong, used already, or not of a
    /// code's shape, at the login's second step.
    #[error("the second-factor code is invalid")]
    MfaCodeInvalid,
    /// A TOTP enrolment while a confirmed factor exists.
    #[error("a TOTP factor is already enrolled")]
    MfaAlreadyEnrolled,
    /// An operation on a factor the user does not have (no enrolment
    /// pending to confirm, no factor to remove or regenerate codes of).
    #[error("no such second factor")]
    MfaNotEnrolled,
    /// A passkey operation refused (see [`PasskeyError`]).
    #[error("passkey: {0}")]
    Passkey(PasskeyError),
    /// Something that should not happen (a lost worker thread, a signing failure).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a passkey operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    /// The server has no `public_url`, whose host passkeys are bound to.
    #[error("passkeys need public_url")]
    Unavailable,
    /// A passwordless login while `passkey_login` is off.
    #[error("passkey login is off")]
    LoginDisabled,
    /// An answer to a login's ceremony that is not one (another challenge,
    /// origin or relying party; a bad signature; a replayed or expired
    /// ceremony; an unknown, deleted or cloned passkey).
    #[error("the passkey was refused")]
    Refused,
    /// A registration of a credential already registered.
    #[error("the passkey is registered already")]
    Duplicate,
    /// A registration beyond the most passkeys a user has.
    #[error("too many passkeys")]
    TooMany,
    /// A removal of a passkey the user does not have.
    #[error("no such passkey")]
    NotFound,
    /// A passkey ceremony for a login whose user has no passkey.
    #[error("the user has no passkey")]
    NoPasskey,
}

impl From<Refusal> for AuthError {
    fn from(refusal: Refusal) -> Self {
        AuthError::Token(refusal)
    }
}

pub(super) fn field_error(field: &str, message: impl Into<String>) -> AuthError {
    let mut errors = FieldErrors::new();
    errors.insert(field.to_owned(), vec![message.into()]);
    AuthError::Fields(errors)
}

/// Why a service client's bearer token does not authorize a request
/// ([`Clients::authorize`](super::Clients::authorize)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    /// Not a valid client token: forged, expired, not a client's, revoked,
    /// or of a removed client (401).
    #[error("not a valid client token: {}", .0.as_str())]
    NotValid(Refusal),
    /// A valid client token without the scope asked for (403).
    #[error("the client token lacks the scope {0}")]
    InsufficientScope(String),
}

/// Why the authority could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyLoadError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mail settings cannot be used (`mail_templates`, or
    /// `email_verification` without `smtp_url` and `public_url`).
    #[error("{0}")]
    Mail(String),
    /// `public_url` cannot be a WebAuthn relying party's.
    #[error("{0}")]
    Passkeys(String),
}
