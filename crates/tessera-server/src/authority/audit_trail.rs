//! The audit trail's vocabulary and its reading: the names of the security
//! events ([`AuditKind`], the one list of them) and pages of the events
//! written (the writer is `crate::audit`).

use super::AuthError;
use std::sync::Arc;
use tessera_store::{AuditFilter, AuditRecord, Store};

/// Every kind of security event the audit log holds; its name
/// ([`AuditKind::as_str`]) is what the log stores and the API filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A password login began a session.
    LoginSucceeded,
    /// A login was refused (wrong credentials, inactive, unverified address).
    LoginFailed,
    /// Login attempts refused by the throttle (one event per client a minute).
    LoginThrottled,
    /// An account was created.
    Signup,
    /// A rotated refresh token was presented again: its family was revoked.
    RefreshReused,
    /// A session was ended by its user (logout, blacklist, revocation).
    Logout,
    /// A session was ended from the session list.
    SessionEnded,
    /// A user changed their password.
    PasswordChanged,
    /// An operator set a user's password.
    PasswordSet,
    /// An administrator changed a user's flags or address.
    UserUpdated,
    /// Every token of a user issued until then was revoked.
    UserRevoked,
    /// A new signing key was put in service.
    KeysRotated,
    /// An access token was issued outside any login (the CLI).
    TokenIssued,
    /// Users were imported.
    UsersImported,
    /// A password reset was asked for.
    PasswordResetRequested,
    /// A password was set with a reset link.
    PasswordReset,
    /// A verification link was mailed.
    EmailVerificationRequested,
    /// An address was verified by its link.
    EmailVerified,
    /// A service client was registered (by a staff user, or the CLI).
    ClientAdded,
    /// A service client was given a new secret.
    ClientSecretRotated,
    /// A service client was removed: its tokens are refused from then on.
    ClientRemoved,
    /// A service client's authentication was refused (unknown client, wrong
    /// or missing secret, removed client).
    ClientAuthFailed,
    /// A password was right and the user has a second factor: it was asked for.
    MfaRequired,
    /// A second factor was accepted (at login, or to remove the factor).
    MfaSucceeded,
    /// A second factor was refused (a wrong, used or malformed code, an
    /// unknown, expired or used `mfa_token`).
    MfaFailed,
    /// A TOTP enrolment began: a new secret was given (pending).
    TotpEnrolmentStarted,
    /// A code confirmed a pending TOTP factor, and recovery codes were given.
    TotpConfirmed,
    /// A TOTP factor was removed, its recovery codes with it.
    TotpRemoved,
    /// New recovery codes were given, the old ones void.
    RecoveryCodesRegenerated,
    /// A staff user removed a user's second factors (TOTP, recovery codes,
    /// live challenges): a lost device.
    MfaReset,
    /// A password was right, of a user whom the `mfa` setting requires a
    /// second factor of and who has none: an enrolment token was given
    /// instead of tokens.
    MfaEnrolmentRequired,
    /// A passkey was registered (`first_factor`: with recovery codes).
    PasskeyRegistered,
    /// A passkey was removed (with the recovery codes, when it was the
    /// user's last factor).
    PasskeyRemoved,
}

impl AuditKind {
    /// Every kind, in the order the API and the CLI list them.
    pub const ALL: [AuditKind; 33] = [
        AuditKind::LoginSucceeded,
        AuditKind::LoginFailed,
        AuditKind::LoginThrottled,
        AuditKind::Signup,
        AuditKind::RefreshReused,
        AuditKind::Logout,
        AuditKind::SessionEnded,
        AuditKind::PasswordChanged,
        AuditKind::PasswordSet,
        AuditKind::UserUpdated,
        AuditKind::UserRevoked,
        AuditKind::KeysRotated,
        AuditKind::TokenIssued,
        AuditKind::UsersImported,
        AuditKind::PasswordResetRequested,
        AuditKind::PasswordReset,
        AuditKind::EmailVerificationRequested,
        AuditKind::EmailVerified,
        AuditKind::ClientAdded,
        AuditKind::ClientSecretRotated,
        AuditKind::ClientRemoved,
        AuditKind::ClientAuthFailed,
        AuditKind::MfaRequired,
        AuditKind::MfaSucceeded,
        AuditKind::MfaFailed,
        AuditKind::TotpEnrolmentStarted,
        AuditKind::TotpConfirmed,
        AuditKind::TotpRemoved,
        AuditKind::RecoveryCodesRegenerated,
        AuditKind::MfaReset,
        AuditKind::MfaEnrolmentRequired,
        AuditKind::PasskeyRegistered,
        AuditKind::PasskeyRemoved,
    ];

    /// The name stored in the log and used in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginThrottled => "login_throttled",
            AuditKind::Signup => "signup",
            AuditKind::RefreshReused => "refresh_reused",
            AuditKind::Logout => "logout",
            AuditKind::SessionEnded => "session_ended",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::PasswordSet => "password_set",
            AuditKind::UserUpdated => "user_updated",
            AuditKind::UserRevoked => "user_revoked",
            AuditKind::KeysRotated => "keys_rotated",
            AuditKind::TokenIssued => "token_issued",
            AuditKind::UsersImported => "users_imported",
            AuditKind::PasswordResetRequested => "password_reset_requested",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::EmailVerificationRequested => "email_verification_requested",
            AuditKind::EmailVerified => "email_verified",
            AuditKind::ClientAdded => "client_added",
            AuditKind::ClientSecretRotated => "client_secret_rotated",
            AuditKind::ClientRemoved => "client_removed",
            AuditKind::ClientAuthFailed => "client_auth_failed",
            AuditKind::MfaRequired => "mfa_required",
            AuditKind::MfaSucceeded => "mfa_succeeded",
            AuditKind::MfaFailed => "mfa_failed",
            AuditKind::TotpEnrolmentStarted => "totp_enrolment_started",
            AuditKind::TotpConfirmed => "totp_confirmed",
            AuditKind::TotpRemoved => "totp_removed",
            AuditKind::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            AuditKind::MfaReset => "mfa_reset",
            AuditKind::MfaEnrolmentRequired => "mfa_enrolment_required",
            AuditKind::PasskeyRegistered => "passkey_registered",
            AuditKind::PasskeyRemoved => "passkey_removed",
        }
    }

    /// The kind named `name` exactly, if there is one.
    pub fn parse(name: &str) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Every name, for messages that list the choices.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::ALL.into_iter().map(AuditKind::as_str)
    }
}

/// One page of audit events, newest first.
#[derive(Debug)]
pub struct AuditPage {
    /// Events matching in all.
    pub count: i64,
    /// This page's.
    pub events: Vec<AuditRecord>,
    /// The next page's number, if there is one.
    pub next: Option<i64>,
    /// The previous page's number, if there is one.
    pub previous: Option<i64>,
}

/// Page `page` (from 1) of the events matching `filter`, `page_size` a
/// page; a page past the last is [`AuthError::InvalidPage`], except page 1
/// of nothing.
pub(super) async fn page(
    store: &Arc<dyn Store>,
    filter: &AuditFilter,
    page: i64,
    page_size: i64,
) -> Result<AuditPage, AuthError> {
    let offset = (page - 1).saturating_mul(page_size);
    let (count, events) = store.audit_page(filter, offset, page_size).await?;
    if page > 1 && offset >= count {
        return Err(AuthError::InvalidPage);
    }
    Ok(AuditPage {
        count,
        events,
        next: (offset + page_size < count).then_some(page + 1),
        previous: (page > 1).then_some(page - 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_name_that_parses_back() {
        let names: std::collections::HashSet<_> = AuditKind::names().collect();
        assert_eq!(names.len(), AuditKind::ALL.len());
        for kind in AuditKind::ALL {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AuditKind::parse("Login_succeeded"), None);
        assert_eq!(AuditKind::parse(""), None);
    }
}
