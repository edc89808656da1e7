//! The factors as the logins part needs them: whether a user has one, the
//! challenge after a right password, and the check of an answer against
//! what the user holds (the store's conditional write then accepts it once).

use super::super::PasskeyError;
use super::super::common::Common;
use super::super::error::field_error;
use super::super::{AuditKind, AuthError, SessionOrigin, Transport, User};
use super::passkeys::PasskeyUse;
use super::recovery_codes;
use super::totp::{self, TotpKey};
use super::{
    AMR_PASSWORD_AND_HARDWARE_KEY, AMR_PASSWORD_AND_SOFTWARE_KEY, AMR_WITH_SECOND_FACTOR,
    CHALLENGE_LIFETIME, ENROLMENT_LIFETIME, EnrolmentRequired, MAX_LIVE_CHALLENGES, METHODS,
    SecondFactorAnswer, SecondFactorChallenge,
};
use serde_json::json;
use std::sync::Arc;
use tessera_core::claims::AuthMethod;
use tessera_core::link::{LinkToken, stored_hash};
use tessera_store::{ChallengeRecord, FactorProof};

/// The `purpose` of a login's challenge (its token is an `mfa_token`).
const LOGIN: &str = "login";

/// The `purpose` of an enrolment token's row.
const ENROLMENT: &str = "enrolment";

/// A second factor checked against what the user holds, ready for the
/// store's conditional write that accepts it once.
#[derive(Debug)]
pub(in crate::authority) enum Proof {
    /// A right TOTP code, of this time step.
    TotpStep(i64),
    /// A recovery code of this hash (whether it is the user's and unused,
    /// the write decides).
    RecoveryCode(String),
    /// An assertion of a passkey (whether its counter went up, the write
    /// decides).
    Passkey(PasskeyUse),
}

impl Proof {
    /// As the store takes it.
    pub(in crate::authority) fn as_store(&self) -> FactorProof<'_> {
        match self {
            Proof::TotpStep(step) => FactorProof::TotpStep(*step),
            Proof::RecoveryCode(hash) => FactorProof::RecoveryCode(hash),
            Proof::Passkey(used) => FactorProof::Passkey {
                id: &used.id,
                sign_count: used.sign_count,
                passkey: &used.passkey,
            },
        }
    }

    /// The `amr` of a login with a password and this second factor.
    pub(in crate::authority) fn amr(&self) -> &'static [AuthMethod] {
        match self {
            Proof::TotpStep(_) | Proof::RecoveryCode(_) => &AMR_WITH_SECOND_FACTOR,
            Proof::Passkey(used) if used.key == AuthMethod::SoftwareKey => {
                &AMR_PASSWORD_AND_SOFTWARE_KEY
            }
            Proof::Passkey(_) => &AMR_PASSWORD_AND_HARDWARE_KEY,
        }
    }
}

/// Why a second factor was refused before any write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::authority) enum Refused {
    /// Not of a code's shape.
    Malformed,
    /// Not a code of the user's factor now.
    Wrong,
    /// The user has no confirmed factor.
    NoFactor,
}

impl Refused {
    /// The answer at a login's second step: a field error for a code of
    /// the wrong shape, else one body for every wrong code.
    pub(in crate::authority) fn into_error(self, answer: &SecondFactorAnswer) -> AuthError {
        match self {
            _ if matches!(answer, SecondFactorAnswer::Passkey(_)) => {
                AuthError::Passkey(PasskeyError::Refused)
            }
            Refused::Malformed => refused_field(answer, true),
            Refused::Wrong | Refused::NoFactor => AuthError::MfaCodeInvalid,
        }
    }

    /// Its name in audit events.
    pub(in crate::authority) fn reason(self) -> &'static str {
        match self {
            Refused::Malformed => "malformed",
            Refused::Wrong => "wrong",
            Refused::NoFactor => "no_factor",
        }
    }
}

/// The field error answering a refused `answer` (wrong, used or malformed).
pub(super) fn refused_field(answer: &SecondFactorAnswer, malformed: bool) -> AuthError {
    let message = match (answer, malformed) {
        (SecondFactorAnswer::Code(_), true) => "Enter the 6 digits your authenticator app shows.",
        (SecondFactorAnswer::RecoveryCode(_), true) => {
            "A recovery code is 10 letters and digits, as it was shown (xxxxx-xxxxx)."
        }
        (SecondFactorAnswer::Code(_), false) => "The code is wrong or was used already.",
        (SecondFactorAnswer::RecoveryCode(_), false) => {
            "The recovery code is wrong or was used already."
        }
        (SecondFactorAnswer::Passkey(_), _) => {
            "This is not the answer to the passkey ceremony under way: start it again."
        }
    };
    field_error(answer.field(), message)
}

/// The factors as the logins part needs them: whether a user has one, the
/// challenge after a right password, and the check of an answer.
pub(in crate::authority) struct Factors {
    common: Arc<Common>,
}

impl Factors {
    pub(in crate::authority) fn new(common: Arc<Common>) -> Self {
        Self { common }
    }

    /// The methods the user's second factor can be answered with; `None`
    /// when they have no confirmed factor (a password alone logs them in).
    pub(in crate::authority) async fn methods_of(
        &self,
        user: &User,
    ) -> Result<Option<Vec<&'static str>>, AuthError> {
        let store = self.common.store();
        let totp = store.totp_factor(user.id.get()).await?;
        let totp = totp.is_some_and(|f| f.confirmed_at.is_some());
        let passkey = !store.passkeys(user.id.get()).await?.is_empty();
        if !totp && !passkey {
            return Ok(None);
        }
        // The recovery codes stand in for either factor.
        let has = [totp, passkey, true];
        Ok(Some(
            METHODS
                .iter()
                .zip(has)
                .filter_map(|(method, has)| has.then_some(*method))
                .collect(),
        ))
    }

    /// Whether the `mfa` setting requires `user` to have a factor.
    pub(in crate::authority) fn required_of(&self, user: &User) -> bool {
        let staff = user.is_staff || user.is_superuser;
        self.common.settings().mfa.requires_factor(staff)
    }

    /// A challenge for `user`, whose password was just right on a login
    /// that began as `origin` says and whose tokens travel by `transport`;
    /// audited as `mfa_required`.
    pub(in crate::authority) async fn challenge(
        &self,
        user: &User,
        origin: &SessionOrigin,
        transport: Transport,
        methods: Vec<&'static str>,
    ) -> Result<SecondFactorChallenge, AuthError> {
        let token = self
            .issue(user, origin, transport, LOGIN, CHALLENGE_LIFETIME)
            .await?;
        let detail = json!({"method": origin.method.name()});
        let kind = AuditKind::MfaRequired;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), detail);
        Ok(SecondFactorChallenge { token, methods })
    }

    /// An enrolment token for `user`, whose password was just right on a
    /// login that began as `origin` says and who must enrol a factor
    /// first; audited as `mfa_enrolment_required`.
    pub(in crate::authority) async fn enrolment(
        &self,
        user: &User,
        origin: &SessionOrigin,
        transport: Transport,
    ) -> Result<EnrolmentRequired, AuthError> {
        let token = self
            .issue(user, origin, transport, ENROLMENT, ENROLMENT_LIFETIME)
            .await?;
        let detail = json!({"method": origin.method.name()});
        let kind = AuditKind::MfaEnrolmentRequired;
        self.common
            .audit(kind, Some(user.id), None, Some(origin), detail);
        Ok(EnrolmentRequired { token })
    }

    /// Stores a new token of `purpose` for `user` (within the user's
    /// [`MAX_LIVE_CHALLENGES`]), live for `lifetime` seconds: the token.
    async fn issue(
        &self,
        user: &User,
        origin: &SessionOrigin,
        transport: Transport,
        purpose: &str,
        lifetime: i64,
    ) -> Result<String, AuthError> {
        let now = self.common.now();
        let token = LinkToken::generate();
        let record = ChallengeRecord {
            token_hash: token.hash.clone(),
            user_id: user.id.get(),
            token_version: user.token_version,
            method: origin.method.name().to_owned(),
            transport: transport.name().to_owned(),
            ip: origin.ip.to_string(),
            user_agent: origin.user_agent.clone(),
            created_at: now,
            expires_at: now.saturating_add(lifetime),
            purpose: purpose.to_owned(),
        };
        let store = self.common.store();
        store.create_challenge(&record, MAX_LIVE_CHALLENGES).await?;
        Ok(token.token)
    }

    /// The live login challenge `token` (an `mfa_token`) names, if any:
    /// `None` for a token of the wrong shape (no lookup), an unknown,
    /// expired or used one, or an enrolment token.
    pub(in crate::authority) async fn live_challenge(
        &self,
        token: &str,
    ) -> Result<Option<ChallengeRecord>, AuthError> {
        self.live(token, LOGIN).await
    }

    /// The live enrolment token's row `token` names, if any (`None` for an
    /// `mfa_token`).
    pub(in crate::authority) async fn live_enrolment(
        &self,
        token: &str,
    ) -> Result<Option<ChallengeRecord>, AuthError> {
        self.live(token, ENROLMENT).await
    }

    async fn live(&self, token: &str, purpose: &str) -> Result<Option<ChallengeRecord>, AuthError> {
        let Some(hash) = stored_hash(token) else {
            return Ok(None);
        };
        let now = self.common.now();
        let found = self.common.store().challenge(&hash, now).await?;
        Ok(found.filter(|c| c.purpose == purpose))
    }

    /// `answer` checked against what user `user` holds (not yet used: the
    /// store's write decides that), or why it is refused. A TOTP code is
    /// checked against the confirmed factor only; a passkey's answer is
    /// refused here (only a login's second step, which knows its ceremony,
    /// checks one).
    pub(in crate::authority) async fn check(
        &self,
        user: &User,
        answer: &SecondFactorAnswer,
    ) -> Result<Result<Proof, Refused>, AuthError> {
        match answer {
            SecondFactorAnswer::Code(code) => {
                if !totp::is_code(code) {
                    return Ok(Err(Refused::Malformed));
                }
                let store = self.common.store();
                let factor = store.totp_factor(user.id.get()).await?;
                let Some(factor) = factor.filter(|f| f.confirmed_at.is_some()) else {
                    return Ok(Err(Refused::NoFactor));
                };
                let key = self.key(&factor.secret, user)?;
                Ok(key
                    .step_of(code, self.common.now())
                    .map(Proof::TotpStep)
                    .ok_or(Refused::Wrong))
            }
            SecondFactorAnswer::RecoveryCode(code) => Ok(recovery_codes::hash_of(code)
                .map(Proof::RecoveryCode)
                .ok_or(Refused::Malformed)),
            SecondFactorAnswer::Passkey(_) => Ok(Err(Refused::Wrong)),
        }
    }

    /// The TOTP key of `secret` for `user`.
    pub(super) fn key(&self, secret: &[u8], user: &User) -> Result<TotpKey, AuthError> {
        let issuer = &self.common.settings().totp_issuer;
        TotpKey::new(secret, issuer, &user.username)
    }
}
