//! The bodies the simplejwt-style, account and admin endpoints read. Each is
//! both the schema the OpenAPI document shows and the value its handler
//! receives, read by Django REST framework's rules: every field's error in
//! one 400, `{"field": ["This field is required."]}` and the like.
#![allow(missing_docs)]

use super::error::ApiError;
use crate::authority::Authority;
use crate::authority::user_claims::{AppMetadata, Roles};
use crate::http::serving::body::{Fields, Payload};
use axum::extract::{FromRequest, Request};
use std::sync::Arc;
use utoipa::ToSchema;

/// A request body read field by field.
pub trait ReadBody: Sized {
    /// Reads every field, recording what is wrong in `fields`.
    fn read(fields: &mut Fields<'_>) -> Self;
}

/// The typed body of a request: 400 naming every field at fault, and the
/// body errors of [`Payload`] (413, 415, 400) before that.
pub struct Body<T>(pub T);

impl<T: ReadBody> FromRequest<Arc<Authority>> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, authority: &Arc<Authority>) -> Result<Self, ApiError> {
        let payload = Payload::from_request(req, authority).await?;
        let mut fields = payload.fields();
        let value = T::read(&mut fields);
        fields.finish()?;
        Ok(Body(value))
    }
}

/// A password login: `POST /api/token/` (and the page).
#[derive(ToSchema)]
pub struct Credentials {
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "correct horse battery staple", format = Password)]
    pub password: String,
}

impl ReadBody for Credentials {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            username: f.string("username"),
            password: f.string("password"),
        }
    }
}

/// A refresh token: `POST /api/token/refresh/`, `POST /api/token/blacklist/`.
#[derive(ToSchema)]
pub struct RefreshRequest {
    pub refresh: String,
}

impl ReadBody for RefreshRequest {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            refresh: f.string("refresh"),
        }
    }
}

/// A token to check: `POST /api/token/verify/`, `POST /oauth/introspect`.
#[derive(ToSchema)]
pub struct TokenRequest {
    pub token: String,
}

impl ReadBody for TokenRequest {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            token: f.string("token"),
        }
    }
}

/// A new account: `POST /api/auth/signup`.
#[derive(ToSchema)]
pub struct SignupRequest {
    #[schema(example = "alice", max_length = 150)]
    pub username: String,
    #[schema(example = "correct horse battery staple", format = Password)]
    pub password: String,
    #[schema(example = "alice@example.com", nullable = false)]
    pub email: Option<String>,
}

impl ReadBody for SignupRequest {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            username: f.string("username"),
            password: f.string("password"),
            email: f.optional_string("email"),
        }
    }
}

/// A password change: `POST /api/auth/password`.
#[derive(ToSchema)]
pub struct PasswordChange {
    #[schema(format = Password)]
    pub old_password: String,
    #[schema(format = Password)]
    pub new_password: String,
}

impl ReadBody for PasswordChange {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            old_password: f.string("old_password"),
            new_password: f.string("new_password"),
        }
    }
}

/// A logout, optionally naming a refresh token of the session to blacklist.
#[derive(ToSchema)]
pub struct LogoutRequest {
    /// A refresh token of the same session to blacklist.
    pub refresh: Option<String>,
}

impl ReadBody for LogoutRequest {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            refresh: f.optional_string("refresh").filter(|r| !r.is_empty()),
        }
    }
}

/// An administrator's change of a user's flags, address and metadata. A
/// new address is unverified unless `email_verified` says otherwise.
#[derive(ToSchema)]
pub struct UserPatch {
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
    #[schema(nullable = false)]
    pub is_staff: Option<bool>,
    #[schema(nullable = false, format = Email)]
    pub email: Option<String>,
    #[schema(nullable = false)]
    pub email_verified: Option<bool>,
    /// Replaces the user's `app_metadata`: a JSON object of at most 4,096
    /// bytes (as compact JSON), copied into access tokens when
    /// `extra_claims` names it. Access tokens issued before are refused as
    /// `expired`, so clients refresh and get it.
    #[schema(nullable = false, value_type = Option<Object>)]
    pub app_metadata: Option<AppMetadata>,
}

impl ReadBody for UserPatch {
    fn read(f: &mut Fields<'_>) -> Self {
        let app_metadata = f.optional_value("app_metadata").and_then(|value| {
            AppMetadata::parse(value)
                .map_err(|message| f.refuse("app_metadata", &message))
                .ok()
        });
        Self {
            is_active: f.optional_bool("is_active"),
            is_staff: f.optional_bool("is_staff"),
            email: f.optional_string("email"),
            email_verified: f.optional_bool("email_verified"),
            app_metadata,
        }
    }
}

impl UserPatch {
    /// The change it asks for.
    pub fn into_change(self) -> crate::authority::UserChange {
        crate::authority::UserChange {
            is_active: self.is_active,
            is_staff: self.is_staff,
            email: self.email,
            email_verified: self.email_verified,
            app_metadata: self.app_metadata,
        }
    }
}

/// A user's roles, all of them: `PUT /api/admin/users/{id}/roles`.
#[derive(ToSchema)]
pub struct RolesRequest {
    /// The roles the user has from now on: names of 1 to 150 characters
    /// without control characters, at most 100 (repeats count once).
    #[schema(value_type = Vec<String>, example = json!(["editors", "billing"]))]
    pub roles: Roles,
}

impl ReadBody for RolesRequest {
    fn read(f: &mut Fields<'_>) -> Self {
        let names = f.string_list("roles");
        let roles = Roles::parse(names).unwrap_or_else(|message| {
            f.refuse("roles", &message);
            Roles::default()
        });
        Self { roles }
    }
}

/// A password-reset request.
#[derive(ToSchema)]
pub struct ResetRequest {
    /// The account's address; the answer is the same whether or not one has it.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

impl ReadBody for ResetRequest {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            email: f.string("email"),
        }
    }
}

/// A new password, with the token of a reset link.
#[derive(ToSchema)]
pub struct ResetConfirm {
    /// The `reset` parameter of the mailed link.
    #[schema(min_length = 43, max_length = 43, pattern = "^[A-Za-z0-9_-]{43}$")]
    pub token: String,
    #[schema(format = Password)]
    pub new_password: String,
}

impl ReadBody for ResetConfirm {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            token: f.string("token"),
            new_password: f.string("new_password"),
        }
    }
}

/// The token of a verification link.
#[derive(ToSchema)]
pub struct VerifyEmail {
    /// The `verify` parameter of the mailed link.
    #[schema(min_length = 43, max_length = 43, pattern = "^[A-Za-z0-9_-]{43}$")]
    pub token: String,
}

impl ReadBody for VerifyEmail {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            token: f.string("token"),
        }
    }
}

/// A code of the authenticator app: `POST /api/auth/mfa/totp/confirm`.
#[derive(ToSchema)]
pub struct TotpCode {
    /// The 6 digits the app shows now.
    #[schema(example = "123456", pattern = "^[0-9]{6}$")]
    pub code: String,
}

impl ReadBody for TotpCode {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            code: f.string("code"),
        }
    }
}

/// A second factor, one of two fields: a code of the authenticator app, or
/// a recovery code (`DELETE /api/auth/mfa/totp`, and with the `mfa_token`
/// the second step of a login).
#[derive(ToSchema)]
pub struct SecondFactor {
    /// The 6 digits the app shows now.
    #[schema(example = "123456", nullable = false)]
    pub code: Option<String>,
    /// One of the recovery codes, as shown (`xxxxx-xxxxx`; case, hyphen
    /// and spaces do not matter).
    #[schema(example = "k7m2p-x9qrt", nullable = false)]
    pub recovery_code: Option<String>,
}

impl SecondFactor {
    /// Reads the two fields, refusing both or neither under
    /// `non_field_errors`.
    fn read_answer(f: &mut Fields<'_>) -> Option<crate::authority::SecondFactorAnswer> {
        use crate::authority::SecondFactorAnswer;
        let code = f.optional_string("code");
        let recovery_code = f.optional_string("recovery_code");
        match (code, recovery_code) {
            (Some(code), None) => Some(SecondFactorAnswer::Code(code)),
            (None, Some(recovery_code)) => Some(SecondFactorAnswer::RecoveryCode(recovery_code)),
            _ => {
                f.refuse(
                    "non_field_errors",
                    "Give either code or recovery_code, not both.",
                );
                None
            }
        }
    }
}

/// The second factor of [`SecondFactor`], read.
pub struct SecondFactorBody(pub Option<crate::authority::SecondFactorAnswer>);

impl ReadBody for SecondFactorBody {
    fn read(f: &mut Fields<'_>) -> Self {
        Self(SecondFactor::read_answer(f))
    }
}

/// The second step of a login: `POST /api/auth/mfa/verify`.
#[derive(ToSchema)]
pub struct MfaVerify {
    /// The `mfa_token` of the login's 401 `mfa_required`.
    #[schema(min_length = 43, max_length = 43)]
    pub mfa_token: String,
    /// The 6 digits the app shows now.
    #[schema(example = "123456", nullable = false)]
    pub code: Option<String>,
    /// One of the recovery codes.
    #[schema(example = "k7m2p-x9qrt", nullable = false)]
    pub recovery_code: Option<String>,
}

/// [`MfaVerify`], read.
pub struct MfaVerifyBody {
    pub mfa_token: String,
    pub answer: Option<crate::authority::SecondFactorAnswer>,
}

impl ReadBody for MfaVerifyBody {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            mfa_token: f.string("mfa_token"),
            answer: SecondFactor::read_answer(f),
        }
    }
}

/// What a browser answered a WebAuthn ceremony with, as
/// `PublicKeyCredential.toJSON()` gives it (binary fields in base64url):
/// `T`, or a refusal recorded under `credential`.
fn read_credential<T: serde::de::DeserializeOwned>(f: &mut Fields<'_>) -> Option<T> {
    match f.optional_value("credential") {
        None => f.refuse("credential", "This field is required."),
        Some(serde_json::Value::Object(object)) => {
            match serde_json::from_value(serde_json::Value::Object(object)) {
                Ok(credential) => return Some(credential),
                Err(_) => f.refuse(
                    "credential",
                    "Not a WebAuthn credential: give what PublicKeyCredential.toJSON() returns.",
                ),
            }
        }
        Some(_) => f.refuse(
            "credential",
            "Expected an object: what PublicKeyCredential.toJSON() returns.",
        ),
    }
    None
}

/// The end of a passkey registration: `POST /api/auth/passkeys/register/finish`.
#[derive(ToSchema)]
pub struct PasskeyRegistration {
    /// The browser's answer to `navigator.credentials.create()`, as
    /// `PublicKeyCredential.toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// A label for the passkey (at most 100 characters; "Passkey" when absent).
    #[schema(example = "Laptop", nullable = false, max_length = 100)]
    pub name: Option<String>,
}

/// [`PasskeyRegistration`], read.
pub struct PasskeyRegistrationBody {
    pub credential: Option<webauthn_rs::prelude::RegisterPublicKeyCredential>,
    pub name: Option<String>,
}

impl ReadBody for PasskeyRegistrationBody {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            credential: read_credential(f),
            name: f.optional_string("name"),
        }
    }
}

/// The `mfa_token` of a login's 401 `mfa_required`: `POST /api/auth/mfa/passkey/start`.
#[derive(ToSchema)]
pub struct MfaToken {
    #[schema(min_length = 43, max_length = 43)]
    pub mfa_token: String,
}

impl ReadBody for MfaToken {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            mfa_token: f.string("mfa_token"),
        }
    }
}

/// A login's second step with a passkey: `POST /api/auth/mfa/passkey/finish`.
#[derive(ToSchema)]
pub struct MfaPasskey {
    #[schema(min_length = 43, max_length = 43)]
    pub mfa_token: String,
    /// The browser's answer to `navigator.credentials.get()`, as
    /// `PublicKeyCredential.toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// [`MfaPasskey`], read.
pub struct MfaPasskeyBody {
    pub mfa_token: String,
    pub credential: Option<webauthn_rs::prelude::PublicKeyCredential>,
}

impl ReadBody for MfaPasskeyBody {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            mfa_token: f.string("mfa_token"),
            credential: read_credential(f),
        }
    }
}

/// A passwordless login's answer: `POST /api/auth/passkeys/login/finish`.
#[derive(ToSchema)]
pub struct PasskeyAssertion {
    /// The browser's answer to `navigator.credentials.get()`, as
    /// `PublicKeyCredential.toJSON()` gives it.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// [`PasskeyAssertion`], read.
pub struct PasskeyAssertionBody {
    pub credential: Option<webauthn_rs::prelude::PublicKeyCredential>,
}

impl ReadBody for PasskeyAssertionBody {
    fn read(f: &mut Fields<'_>) -> Self {
        Self {
            credential: read_credential(f),
        }
    }
}
