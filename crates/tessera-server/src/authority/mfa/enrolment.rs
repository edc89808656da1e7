//! A user's management of their own TOTP factor and recovery codes:
//! enrolment, confirmation, removal, regeneration.

use super::super::common::Common;
use super::super::throttling::{LoginAttempt, Throttle};
use super::super::{AuditKind, AuthError, SessionOrigin, User};
use super::factors::{Factors, Refused, refused_field};
use super::{EnrolmentGrant, FactorCaller, require_fresh};
use super::{SecondFactorAnswer, recovery_codes, totp};
use serde_json::json;
use std::sync::Arc;
use tessera_core::Refusal;
use tessera_core::claims::VerifiedClaims;
use totp::TotpKey;

/// What enrolment answers, once: the secret (base32, for typing in), the
/// `otpauth://` URI apps scan, and its QR code (SVG).
pub struct TotpEnrolment {
    /// The secret in base32.
    pub secret: String,
    /// The Key URI.
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// A user's management of their own second factors, each with a fresh
/// access token (one straight from a login, not from a refresh; for a user
/// with a confirmed factor, from a login that used it: `amr` has `mfa`).
pub struct Mfa {
    common: Arc<Common>,
    factors: Arc<Factors>,
    throttle: Arc<Throttle>,
}

impl Mfa {
    pub(in crate::authority) fn new(
        common: Arc<Common>,
        factors: Arc<Factors>,
        throttle: Arc<Throttle>,
    ) -> Self {
        Self {
            common,
            factors,
            throttle,
        }
    }

    /// The user a live enrolment token names, allowed to enrol and nothing
    /// else; a token refused as [`Refusal::Invalid`] when it names none (of
    /// the wrong shape, unknown, expired, an `mfa_token`) or its user has
    /// since changed their password or been deactivated.
    pub async fn enrolment_grant(&self, token: &str) -> Result<EnrolmentGrant, AuthError> {
        let refused = AuthError::Token(Refusal::Invalid);
        let Some(record) = self.factors.live_enrolment(token).await? else {
            return Err(refused);
        };
        let user = self.common.store().user_by_id(record.user_id).await?;
        match user.map(User::from) {
            Some(user) if user.is_active && user.token_version == record.token_version => {
                Ok(EnrolmentGrant {
                    user: Arc::new(user),
                })
            }
            _ => Err(refused),
        }
    }

    /// Begins (or begins again) the TOTP enrolment of the caller: a new
    /// secret, pending until [`Mfa::confirm_totp`];
    /// [`AuthError::MfaAlreadyEnrolled`] when a confirmed factor exists.
    pub async fn begin_totp(
        &self,
        caller: FactorCaller<'_>,
        origin: &SessionOrigin,
    ) -> Result<TotpEnrolment, AuthError> {
        let user = caller.user();
        // A user with a passkey enrols TOTP as they would change it (one
        // with TOTP is told it is enrolled, below).
        caller.require_fresh(self.has_passkey(user).await?)?;
        let secret = TotpKey::generate_secret();
        let key = self.factors.key(&secret, user)?;
        let otpauth_uri = key.otpauth_uri()?;
        let qr_svg = totp::qr_svg(&otpauth_uri)?;
        let now = self.common.now();
        let store = self.common.store();
        if !store
            .begin_totp_enrolment(user.id.get(), &secret, now)
            .await?
        {
            return Err(AuthError::MfaAlreadyEnrolled);
        }
        let kind = AuditKind::TotpEnrolmentStarted;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), json!({}));
        Ok(TotpEnrolment {
            secret: key.secret_base32(),
            otpauth_uri,
            qr_svg,
        })
    }

    /// Confirms the caller's pending factor with a code of it: the factor
    /// in force from now on, and [`RECOVERY_CODES`] new recovery codes,
    /// shown only in this answer. A wrong code is a failed login of the user.
    pub async fn confirm_totp(
        &self,
        caller: FactorCaller<'_>,
        code: &str,
        origin: &SessionOrigin,
    ) -> Result<Vec<String>, AuthError> {
        let user = caller.user();
        caller.require_fresh(self.has_passkey(user).await?)?;
        let store = self.common.store();
        let pending = store.totp_factor(user.id.get()).await?;
        let Some(pending) = pending.filter(|f| f.confirmed_at.is_none()) else {
            return Err(AuthError::MfaNotEnrolled);
        };
        let answer = SecondFactorAnswer::Code(code.to_owned());
        let attempt = self.reserve(user, origin).await?;
        let key = self.factors.key(&pending.secret, user)?;
        let now = self.common.now();
        let step = match totp::is_code(code) {
            true => key.step_of(code, now).ok_or(Refused::Wrong),
            false => Err(Refused::Malformed),
        };
        let codes = recovery_codes::RecoveryCodes::generate();
        let confirmed = match step {
            Ok(step) => {
                let (id, secret) = (user.id.get(), &pending.secret);
                store
                    .confirm_totp(id, secret, step, codes.hashes(), now)
                    .await?
            }
            Err(refused) => {
                return Err(self
                    .refuse(user, origin, attempt, &answer, refused.reason(), "confirm")
                    .await);
            }
        };
        if !confirmed {
            // Begun again, or confirmed, meanwhile: this code proves nothing now.
            self.release(user, origin, attempt).await;
            return Err(AuthError::MfaNotEnrolled);
        }
        self.release(user, origin, attempt).await;
        let kind = AuditKind::TotpConfirmed;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), json!({}));
        Ok(codes.into_shown())
    }

    /// Removes `user`'s confirmed factor and its recovery codes, with a
    /// code of the factor or a recovery code (each used up by it). A wrong
    /// one is a failed login of the user.
    pub async fn remove_totp(
        &self,
        claims: &VerifiedClaims,
        user: &User,
        answer: &SecondFactorAnswer,
        origin: &SessionOrigin,
    ) -> Result<(), AuthError> {
        let store = self.common.store();
        let factor = store.totp_factor(user.id.get()).await?;
        if factor.is_none_or(|f| f.confirmed_at.is_none()) {
            return Err(AuthError::MfaNotEnrolled);
        }
        require_fresh(claims, true)?;
        let attempt = self.reserve(user, origin).await?;
        let proof = match self.factors.check(user, answer).await? {
            Ok(proof) => proof,
            Err(refused) => {
                return Err(self
                    .refuse(user, origin, attempt, answer, refused.reason(), "removal")
                    .await);
            }
        };
        let now = self.common.now();
        if !store
            .remove_totp(user.id.get(), proof.as_store(), now)
            .await?
        {
            return Err(self
                .refuse(user, origin, attempt, answer, "used", "removal")
                .await);
        }
        self.release(user, origin, attempt).await;
        let detail = json!({"factor": answer.factor(), "purpose": "removal"});
        let kind = AuditKind::MfaSucceeded;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), detail);
        let kind = AuditKind::TotpRemoved;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), json!({}));
        Ok(())
    }

    /// [`RECOVERY_CODES`] new recovery codes for `user`, shown only in
    /// this answer; the old ones no longer work.
    pub async fn regenerate_recovery_codes(
        &self,
        claims: &VerifiedClaims,
        user: &User,
        origin: &SessionOrigin,
    ) -> Result<Vec<String>, AuthError> {
        let has_factor = self.factors.methods_of(user).await?.is_some();
        if !has_factor {
            return Err(AuthError::MfaNotEnrolled);
        }
        require_fresh(claims, true)?;
        let codes = recovery_codes::RecoveryCodes::generate();
        let now = self.common.now();
        let store = self.common.store();
        if !store
            .replace_recovery_codes(user.id.get(), codes.hashes(), now)
            .await?
        {
            return Err(AuthError::MfaNotEnrolled);
        }
        let kind = AuditKind::RecoveryCodesRegenerated;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), json!({}));
        Ok(codes.into_shown())
    }

    /// Whether `user` has a passkey.
    async fn has_passkey(&self, user: &User) -> Result<bool, AuthError> {
        let passkeys = self.common.store().passkeys(user.id.get()).await?;
        Ok(!passkeys.is_empty())
    }

    /// Counts a check of `user`'s code as a login attempt (before it is
    /// checked), or refuses it while the user or the address is throttled.
    async fn reserve(
        &self,
        user: &User,
        origin: &SessionOrigin,
    ) -> Result<LoginAttempt, AuthError> {
        let address = origin.ip.to_string();
        let now_ms = self.common.now_ms();
        let throttle = &self.throttle;
        throttle
            .reserve_login(&user.username, &address, now_ms)
            .await
    }

    /// The attempt was not a failure: it no longer counts.
    async fn release(&self, user: &User, origin: &SessionOrigin, attempt: LoginAttempt) {
        let address = origin.ip.to_string();
        let throttle = &self.throttle;
        throttle
            .first_factor_passed(&user.username, &address, attempt)
            .await;
    }

    /// A refused code: the attempt counted as a failed login, audited as
    /// `mfa_failed` (`reason`, `purpose`), and answered with the field
    /// error naming what was wrong.
    async fn refuse(
        &self,
        user: &User,
        origin: &SessionOrigin,
        attempt: LoginAttempt,
        answer: &SecondFactorAnswer,
        reason: &'static str,
        purpose: &'static str,
    ) -> AuthError {
        let address = origin.ip.to_string();
        let throttle = &self.throttle;
        throttle
            .login_failed(&user.username, &address, attempt)
            .await;
        let detail = json!({"factor": answer.factor(), "reason": reason, "purpose": purpose});
        let kind = AuditKind::MfaFailed;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), detail);
        refused_field(answer, reason == Refused::Malformed.reason())
    }
}
