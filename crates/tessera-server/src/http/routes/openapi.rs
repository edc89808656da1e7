//! The OpenAPI 3.1 document: the schemas of the bodies the API writes (the
//! bodies it reads are the typed requests of [`super::requests`]), the bearer
//! scheme, and the document itself.
//! Operations are declared beside their handlers with `#[utoipa::path]`.
//!
//! The handlers answer with these same structs (those that derive
//! `Serialize`), so that the document cannot drift from the answers; a test
//! compares each answer's fields with its schema. Fields are declared in
//! alphabetical order: the order in which `serde_json` writes an object's
//! keys, which the bodies had when they were built as JSON values.
#![allow(missing_docs, dead_code)]

pub use super::clients::schemas::{
    ClientObject, ClientRequest, ClientToken, NewClientObject, TokenResponse,
};
pub use crate::http::extract::requests::{
    Credentials, LogoutRequest, MfaPasskey, MfaToken, MfaVerify, PasskeyAssertion,
    PasskeyRegistration, PasswordChange, RefreshRequest, ResetConfirm, ResetRequest, RolesRequest,
    SecondFactor, SignupRequest, TokenRequest, TotpCode, UserPatch, VerifyEmail,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

mod drop_in;
pub use drop_in::*;

/// The content types every body endpoint reads.
pub const BODY_TYPES: [&str; 2] = ["application/json", "application/x-www-form-urlencoded"];

/// In cookie transport: the access token's header and claims (the token
/// itself is in an HttpOnly cookie).
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    #[schema(value_type = HashMap<String, serde_json::Value>)]
    pub claims: serde_json::Value,
    #[schema(value_type = HashMap<String, serde_json::Value>)]
    pub header: serde_json::Value,
    /// The new refresh token's CSRF value, when a refresh cookie was set.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_csrf: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenPairBody),
    Cookies(TokenView),
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RefreshResponse {
    Tokens(RefreshedBody),
    Cookies(TokenView),
}

#[derive(Serialize, ToSchema)]
pub struct TokenPairBody {
    pub access: String,
    pub refresh: String,
}

#[derive(Serialize, ToSchema)]
pub struct RefreshedBody {
    pub access: String,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

/// A TOTP enrolment, shown once: the secret (to type in), the URI apps
/// scan, and its QR code.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolmentBody {
    /// `otpauth://totp/ISSUER:USERNAME?secret=...&issuer=ISSUER`.
    pub otpauth_uri: String,
    /// The URI as a QR code: an SVG document.
    pub qr_svg: String,
    /// The shared secret in base32 (RFC 4648, unpadded).
    pub secret: String,
}

/// What the second step of a login answers: what its route would have.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SecondStepResponse {
    /// `POST /api/token/`, header transport.
    Tokens(TokenPairBody),
    /// `POST /api/token/`, cookie transport.
    Cookies(TokenView),
    /// The OAuth2 password grant and FastAPI's `POST /token`.
    OAuth(OAuthToken),
    /// Flask-JWT-Extended's `POST /login`.
    Flask(FlaskTokens),
}

/// Ten recovery codes, shown once: each works once, instead of a code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesBody {
    #[schema(example = json!(["k7m2p-x9qrt", "a3bcd-ef4gh"]))]
    pub recovery_codes: Vec<String>,
}

/// A WebAuthn ceremony's options: pass `publicKey` to
/// `navigator.credentials.create()` or `.get()` (after
/// `PublicKeyCredential.parseCreationOptionsFromJSON()` or
/// `parseRequestOptionsFromJSON()`: binary fields are base64url).
#[derive(Serialize, ToSchema)]
pub struct PasskeyOptions {
    #[serde(rename = "publicKey")]
    #[schema(value_type = HashMap<String, serde_json::Value>)]
    pub public_key: serde_json::Value,
}

/// One of the user's passkeys.
#[derive(Serialize, ToSchema)]
pub struct PasskeyObject {
    /// When it was registered, Unix seconds.
    pub created_at: i64,
    /// Its id, for its removal.
    pub id: String,
    /// When it last logged in, Unix seconds.
    pub last_used_at: Option<i64>,
    pub name: String,
}

/// A passkey just registered; with the recovery codes (shown this once)
/// when it is the user's first second factor.
#[derive(Serialize, ToSchema)]
pub struct NewPasskeyBody {
    pub created_at: i64,
    pub id: String,
    pub last_used_at: Option<i64>,
    pub name: String,
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// One session: a login's token family.
#[derive(Serialize, ToSchema)]
pub struct SessionObject {
    #[schema(format = DateTime)]
    pub created: String,
    /// Whether the token of the request belongs to it (the caller's own list only).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
    /// The session id (its `fid`): 32 lowercase hex characters.
    pub id: String,
    /// The client address at login.
    pub ip: String,
    #[schema(format = DateTime)]
    pub last_used: String,
    /// The User-Agent at login (at most 256 characters).
    pub user_agent: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub results: Vec<SessionObject>,
}

/// One security event.
#[derive(Serialize, ToSchema)]
pub struct AuditEventObject {
    /// The staff user who did it.
    pub actor_id: Option<i64>,
    #[schema(format = DateTime)]
    pub at: String,
    /// Further facts; never a password, a hash or a token.
    #[schema(value_type = HashMap<String, serde_json::Value>)]
    pub detail: serde_json::Value,
    #[schema(example = "login_failed")]
    pub event: String,
    pub id: i64,
    pub ip: String,
    pub user_agent: String,
    pub user_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<AuditEventObject>,
}

/// An empty object.
#[derive(Serialize, ToSchema)]
pub struct Empty {}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    pub email: String,
    pub id: i64,
    pub username: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserObject {
    /// What staff keep about the user (`{}` when nothing).
    #[schema(value_type = Object)]
    pub app_metadata: serde_json::Map<String, serde_json::Value>,
    #[schema(format = DateTime)]
    pub date_joined: String,
    pub email: String,
    /// The user followed a link mailed to `email`.
    pub email_verified: bool,
    pub id: i64,
    pub is_active: bool,
    pub is_staff: bool,
    #[schema(format = DateTime)]
    pub last_login: Option<String>,
    /// The user's roles, sorted.
    pub roles: Vec<String>,
    pub username: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<UserObject>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
}

/// RFC 6749 token request: `username` and `password` for the password grant,
/// `refresh_token` for the refresh_token grant; for the client_credentials
/// grant an optional `scope`, and the client's `client_id` and
/// `client_secret` here unless they are in HTTP Basic (never both).
#[derive(ToSchema)]
pub struct OAuthTokenRequest {
    pub grant_type: GrantType,
    #[schema(nullable = false)]
    pub username: Option<String>,
    #[schema(nullable = false, format = Password)]
    pub password: Option<String>,
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    #[schema(nullable = false, format = Password)]
    pub client_secret: Option<String>,
    /// Space-separated; every scope the client holds when absent.
    #[schema(nullable = false, example = "revocations")]
    pub scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OAuthToken {
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    UnsupportedGrantType,
}

/// RFC 6749 section 5.2.
#[derive(ToSchema)]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    pub error_description: String,
}

#[derive(ToSchema)]
pub struct RevokeRequest {
    pub token: String,
    #[schema(nullable = false)]
    pub token_type_hint: Option<String>,
}

/// RFC 7662: `{"active": false}`, or `active: true` with every claim of the token.
#[derive(Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// The token's claims, unchanged.
    #[serde(flatten)]
    pub claims: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Reason {
    Invalid,
    Expired,
    WrongType,
    Revoked,
}

/// An error with a human-readable `detail`; `code` and `reason` where docs/API.md gives them.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub detail: String,
    #[schema(nullable = false)]
    pub code: Option<String>,
    #[schema(nullable = false)]
    pub reason: Option<Reason>,
}

/// Validation messages by field.
#[derive(Serialize, ToSchema)]
pub struct FieldErrors(pub HashMap<String, Vec<String>>);

/// A 400: messages by field, or a `detail` for a body that could not be read.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BadRequest {
    Fields(FieldErrors),
    Detail(ErrorDetail),
}

/// RFC 7517 JWK Set.
#[derive(ToSchema)]
pub struct Jwks {
    pub keys: Vec<HashMap<String, serde_json::Value>>,
}

/// RFC 8414 authorization server metadata.
#[derive(Serialize, ToSchema)]
pub struct OpenIdConfiguration {
    /// The claims a token may carry (the user id claim as configured).
    pub claims_supported: Vec<String>,
    pub grant_types_supported: Vec<&'static str>,
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub issuer: String,
    pub jwks_uri: String,
    pub response_types_supported: Vec<&'static str>,
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// The revocation feed that services follow (with a client token of scope `revocations`).
    pub revocation_feed_endpoint: String,
    pub subject_types_supported: Vec<&'static str>,
    pub token_endpoint: String,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// The algorithms of the keys in service.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: String,
    #[schema(nullable = false)]
    pub reason: Option<String>,
    /// When not ready and a background task is down (being started again
    /// after a panic or a failure): its name, e.g. `sync`.
    #[schema(nullable = false, example = "sync")]
    pub task: Option<String>,
    /// When ready: the id of the last change-log entry applied to this
    /// process's memory (other processes' writes up to it are in force here).
    #[schema(nullable = false)]
    pub applied_change: Option<i64>,
    /// With `redis_url`: `shared` while the throttling counts are kept in
    /// Redis, `local` while Redis cannot be reached and this instance counts
    /// alone.
    #[schema(nullable = false, example = "shared")]
    pub throttling: Option<String>,
    /// While a rotated key is published but does not sign yet: that key,
    /// and when this instance starts signing with it.
    #[schema(nullable = false)]
    pub next_key: Option<NextKey>,
}

/// A key published ahead of signing (`tessera keys rotate`).
#[derive(ToSchema)]
pub struct NextKey {
    pub kid: String,
    #[schema(example = "ES256")]
    pub alg: String,
    /// Unix seconds on this instance's clock: the moment of the database's
    /// clock at which every instance switches, as this one reads it.
    pub signs_from: i64,
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from /api/token/ or /oauth/token"))
                    .build(),
            ),
        );
    }
}

/// The document's frame; the operations are added as routes are registered.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "JWT authentication server: simplejwt-compatible token endpoints, OAuth2 password and refresh grants, revocation, introspection and administration."
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "tokens", description = "simplejwt-compatible token endpoints"),
        (name = "oauth2", description = "RFC 6749, 7009 and 7662"),
        (name = "revocation feed", description = "What other services follow to refuse revoked tokens (a client token with scope `revocations`)"),
        (name = "accounts", description = "Signup, the current user, password, logout"),
        (name = "second factors", description = "TOTP, recovery codes and passkeys as a second factor: enrolment, removal, and the second step of a login"),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration, list and removal, and passwordless login (with passkey_login on)"),
        (name = "admin", description = "For staff users"),
        (name = "compat", description = "Drop-in routes of the Flask-JWT-Extended and FastAPI stacks (setting `compat`)"),
        (name = "operations", description = "Health, keys, discovery, metrics, documentation")
    )
)]
pub struct ApiDoc;
