//! Logins: the beginning of a session. Owns the audit of throttled login
//! attempts ([`ThrottledLog`]).
//!
//! Promises: a login is throttled before its hash, answers alike for a
//! wrong password and an inactive user, decides on the user row as its own
//! write leaves it, and is audited once whatever it answers; one account
//! keeps at most `max_sessions_per_user` sessions. A user with a second
//! factor gets, after every check of the password step, a challenge
//! instead of tokens; its second step is throttled and audited as a login
//! is, and begins the session the first step would have begun. A user
//! without one whom the `mfa` setting requires one of gets an enrolment
//! token instead, and no session.

use super::common::Common;
use super::hashing::{Hashing, PasswordCheck};
use super::live::Live;
use super::mfa::{
    AMR_HARDWARE_KEY, AMR_PASSWORD, AMR_SOFTWARE_KEY, Factors, Passkeys, Proof, Refused,
    SecondFactorAnswer, SecondFactors,
};
use super::recovery::Recovery;
use super::throttled_log::ThrottledLog;
use super::throttling::{LoginAttempt, Throttle};
use super::tokens::{Minting, Tokens, refresh_record};
use super::{
    AuditKind, AuthError, LoginMethod, PasskeyError, SessionOrigin, TokenPair, Transport, User,
};
use crate::telemetry;
use serde_json::json;
use std::sync::Arc;
use tessera_core::claims::{AuthMethod, TokenType};
use tessera_core::ids::{FamilyId, UserId};
use tessera_core::username::{Username, UsernameError};
use tessera_store::{ChallengeAnswer, Rehash, SessionRecord};

/// Password logins and the sessions they begin.
pub(super) struct Logins {
    common: Arc<Common>,
    hashing: Arc<Hashing>,
    live: Arc<Live>,
    throttle: Arc<Throttle>,
    tokens: Arc<Tokens>,
    recovery: Arc<Recovery>,
    factors: Arc<Factors>,
    passkeys: Arc<Passkeys>,
    /// Refused login attempts, as the audit log is told of them (one event
    /// per client a minute).
    throttled_log: ThrottledLog,
}

/// Why a login whose attempt was counted did not succeed.
enum LoginFailure {
    /// Wrong credentials, an inactive user, or one changed while the hash
    /// ran: a failed attempt. `user_id` when the name is a user's.
    Refused { user_id: Option<UserId> },
    /// The right password of a user whose address must be verified first:
    /// not a failure of the password.
    Unverified { user_id: UserId, username: String },
    /// Something failed (storage, hashing): the attempt is not settled.
    Error(AuthError),
}

impl<E: Into<AuthError>> From<E> for LoginFailure {
    fn from(e: E) -> Self {
        LoginFailure::Error(e.into())
    }
}

impl Logins {
    pub(super) fn new(
        common: Arc<Common>,
        hashing: Arc<Hashing>,
        live: Arc<Live>,
        throttle: Arc<Throttle>,
        tokens: Arc<Tokens>,
        recovery: Arc<Recovery>,
        second: SecondFactors,
    ) -> Self {
        let SecondFactors { factors, passkeys } = second;
        Self {
            common,
            hashing,
            live,
            throttle,
            tokens,
            recovery,
            factors,
            passkeys,
            throttled_log: ThrottledLog::default(),
        }
    }

    /// A password login: a new family with a fresh access token and a
    /// refresh token; for a user with a second factor,
    /// [`AuthError::SecondFactorRequired`] instead, the login going on at
    /// [`Logins::answer_challenge`]; for a user without one whom the `mfa`
    /// setting requires one of, [`AuthError::EnrolmentRequired`].
    pub(super) async fn login(
        &self,
        username: &str,
        password: &str,
        origin: &SessionOrigin,
        transport: Transport,
    ) -> Result<(TokenPair, Arc<User>), AuthError> {
        let name = Username::parse(username);
        // Throttle by the name as it will be looked up, so that variants
        // which normalise alike share one count.
        let user_key = match &name {
            Ok(n) => n.as_str().to_owned(),
            Err(_) => username.chars().take(200).collect(),
        };
        let address_key = origin.ip.to_string();
        // Counted before the hash: a burst gets no more checks than the limit.
        let attempt = self
            .reserve(&user_key, &address_key, username, origin)
            .await?;
        let (user_id, detail, error) = match self.verify_login(name, password, origin).await {
            Ok(user) => {
                let throttle = &self.throttle;
                let methods = self.factors.methods_of(&user).await?;
                if methods.is_some() || self.factors.required_of(&user) {
                    // Not yet a success: the user's failures stay counted
                    // until the second factor is right.
                    throttle
                        .first_factor_passed(&user_key, &address_key, attempt)
                        .await;
                    let factors = &self.factors;
                    return Err(match methods {
                        Some(methods) => {
                            let challenge = factors.challenge(&user, origin, transport, methods);
                            AuthError::SecondFactorRequired(challenge.await?)
                        }
                        None => {
                            let enrolment = factors.enrolment(&user, origin, transport);
                            AuthError::EnrolmentRequired(enrolment.await?)
                        }
                    });
                }
                telemetry::login(true);
                throttle
                    .login_succeeded(&user_key, &address_key, attempt)
                    .await;
                let pair = self
                    .begin_session(&user, transport, origin, &AMR_PASSWORD)
                    .await?;
                let detail = json!({"method": origin.method.name(), "session": pair.refresh.fid});
                let kind = AuditKind::LoginSucceeded;
                self.common
                    .audit(kind, Some(user.id), None, Some(origin), detail);
                return Ok((pair, user));
            }
            Err(LoginFailure::Error(e)) => return Err(e),
            Err(LoginFailure::Refused { user_id }) => {
                // The name as given is an attacker's input: kept as data, cut short.
                let given: String = username.chars().take(150).collect();
                let detail = json!({"username": given});
                (user_id, detail, AuthError::NoActiveAccount)
            }
            Err(LoginFailure::Unverified { user_id, username }) => {
                let detail = json!({"username": username, "reason": "email_not_verified"});
                (Some(user_id), detail, AuthError::EmailNotVerified)
            }
        };
        // The one failure path: audited, counted, and the attempt settled.
        let kind = AuditKind::LoginFailed;
        self.common.audit(kind, user_id, None, Some(origin), detail);
        telemetry::login(false);
        let throttle = &self.throttle;
        if matches!(error, AuthError::EmailNotVerified) {
            // The password was right: not a failed attempt.
            throttle
                .login_succeeded(&user_key, &address_key, attempt)
                .await;
        } else {
            throttle
                .login_failed(&user_key, &address_key, attempt)
                .await;
        }
        Err(error)
    }

    /// Counts a login attempt of `user_key` from `address_key` before its
    /// check; refused while either is throttled, the refusal then noted
    /// (as of the name `name`) for the audit log.
    async fn reserve(
        &self,
        user_key: &str,
        address_key: &str,
        name: &str,
        origin: &SessionOrigin,
    ) -> Result<LoginAttempt, AuthError> {
        let now_ms = self.common.now_ms();
        let reserved = self
            .throttle
            .reserve_login(user_key, address_key, now_ms)
            .await;
        if let Err(AuthError::Throttled(_)) = &reserved {
            self.note_throttled(name, origin);
        }
        reserved
    }

    /// A refused attempt, before any hash and so free to send: audited at
    /// most once a minute per client, with the attempts it stands for.
    fn note_throttled(&self, username: &str, origin: &SessionOrigin) {
        let now_ms = self.common.now_ms();
        if let Some(throttled) = self.throttled_log.refused(origin.ip, username, now_ms) {
            let detail = json!({"username": throttled.username, "attempts": throttled.attempts});
            let kind = AuditKind::LoginThrottled;
            self.common.audit(kind, None, None, Some(origin), detail);
        }
    }

    /// The login's decision, once its attempt is counted: the user whose
    /// password `password` is, active, verified when it must be, as the
    /// login's own write leaves the row.
    async fn verify_login(
        &self,
        name: Result<Username, UsernameError>,
        password: &str,
        origin: &SessionOrigin,
    ) -> Result<Arc<User>, LoginFailure> {
        let store = self.common.store();
        let record = match name {
            Ok(name) => store.user_by_username(name.as_str()).await?,
            Err(_) => None,
        };
        let stored_hash = record.as_ref().map(|r| r.password_hash.clone());
        let checked = self.hashing.check_login(password, stored_hash).await?;
        let record = match (record, &checked) {
            (Some(r), PasswordCheck::Matches | PasswordCheck::Rehash { .. }) if r.is_active => r,
            (record, _) => {
                let user_id = record.map(|r| UserId::new(r.id));
                return Err(LoginFailure::Refused { user_id });
            }
        };
        // Only someone who knows the password learns that the address is
        // not verified; the attempt is not a failure of the password.
        if self.recovery.refuse_unverified(&record, origin.ip).await {
            let (user_id, username) = (UserId::new(record.id), record.username);
            return Err(LoginFailure::Unverified { user_id, username });
        }
        // The row read above is as old as the hash is slow: decide on the row
        // as the login's own write leaves it (a deactivation or password
        // change may have landed in between), and on memory if it is newer.
        let rehash = match &checked {
            PasswordCheck::Rehash { old, new } => Some(Rehash { old, new }),
            _ => None,
        };
        let now = self.common.now();
        let current = store.record_login(record.id, now, rehash).await?;
        match current.map(|r| self.live.remember(r)) {
            Some(user) if user.is_active && user.token_version == record.token_version => Ok(user),
            _ => Err(LoginFailure::Refused {
                user_id: Some(UserId::new(record.id)),
            }),
        }
    }

    /// Begins a session (a new family: a fresh access token and a refresh
    /// token) for `user`, whose identity the caller has established as
    /// `amr` says: a password login above (and its second factor), or a
    /// test harness that created the account itself. Counted by
    /// `user_rate_limit`, recorded, and the oldest sessions past
    /// `max_sessions_per_user` ended.
    pub(super) async fn begin_session(
        &self,
        user: &User,
        transport: Transport,
        origin: &SessionOrigin,
        amr: &[AuthMethod],
    ) -> Result<TokenPair, AuthError> {
        let now = self.common.now();
        self.throttle.check_tokens(user.id).await?;
        let fid = FamilyId::random();
        let minting = |token_type, fresh| Minting {
            token_type,
            fid: &fid,
            fresh,
            amr,
        };
        let tokens = &self.tokens;
        let access = minting(TokenType::Access, true);
        let refresh = minting(TokenType::Refresh, false);
        let pair = TokenPair {
            access: tokens.mint(user, access, transport, now)?,
            refresh: tokens.mint(user, refresh, transport, now)?,
        };
        let session = SessionRecord {
            family_id: fid.into(),
            user_id: user.id.get(),
            created_at: now,
            last_used: now,
            expires_at: pair.refresh.exp,
            token_version: user.token_version,
            ip: origin.ip.to_string(),
            user_agent: origin.user_agent.clone(),
            method: origin.method.name().to_owned(),
        };
        // The session and its first refresh token, in one transaction.
        let first = refresh_record(&pair.refresh, user.id);
        self.common.store().begin_session(&first, &session).await?;
        self.end_sessions_beyond_the_cap(user.id, now).await?;
        Ok(pair)
    }

    /// The second step of a login: the challenge `token` names answered
    /// with `answer`, from `request` (whose address the throttle counts).
    /// Right, the session the login would have begun: tokens minted as its
    /// route would have had them (its method and transport, returned
    /// beside them), `amr` saying a second factor was used. The challenge
    /// and the code are used up together, once, whatever instance answers.
    /// Every refusal is a failed login attempt (of the user when the token
    /// names one, else of the address alone) and an `mfa_failed` event.
    pub(super) async fn answer_challenge(
        &self,
        token: &str,
        answer: &SecondFactorAnswer,
        request: &SessionOrigin,
    ) -> Result<(TokenPair, Arc<User>, LoginMethod, Transport), AuthError> {
        let store = self.common.store();
        let challenge = self.factors.live_challenge(token).await?;
        // The user as the database has them now: a password change or a
        // deactivation on another instance a moment ago voids the login.
        let user = match &challenge {
            Some(c) => store
                .user_by_id(c.user_id)
                .await?
                .map(|r| self.live.remember(r)),
            None => None,
        };
        let address_key = request.ip.to_string();
        // Without a user, the address alone counts (a key no username has).
        let user_key = match &user {
            Some(user) => user.username.clone(),
            None => format!("\u{0}mfa:{address_key}"),
        };
        let name = user.as_ref().map_or("", |u| u.username.as_str());
        let attempt = self.reserve(&user_key, &address_key, name, request).await?;
        let factor = answer.factor();
        let (failure, reason, user_id) = match (challenge, user) {
            (Some(challenge), Some(user))
                if user.is_active && user.token_version == challenge.token_version =>
            {
                let checked = match answer {
                    SecondFactorAnswer::Passkey(credential) => {
                        let passkeys = &self.passkeys;
                        let hash = &challenge.token_hash;
                        let used = passkeys.check_second_factor(&user, credential, hash);
                        used.await?.map(Proof::Passkey).ok_or(Refused::Wrong)
                    }
                    _ => self.factors.check(&user, answer).await?,
                };
                let (failure, reason) = match checked {
                    Err(refused) => (refused.into_error(answer), refused.reason()),
                    Ok(proof) => {
                        let now = self.common.now();
                        let (hash, id) = (&challenge.token_hash, user.id.get());
                        let answered = store.answer_challenge(hash, id, proof.as_store(), now);
                        match answered.await? {
                            ChallengeAnswer::Completed(challenge) => {
                                let throttle = &self.throttle;
                                throttle
                                    .login_succeeded(&user_key, &address_key, attempt)
                                    .await;
                                let amr = proof.amr();
                                let completed =
                                    self.complete(&challenge, user, factor, amr, request);
                                return completed.await;
                            }
                            ChallengeAnswer::ProofRefused => match answer {
                                SecondFactorAnswer::Passkey(_) => {
                                    (AuthError::Passkey(PasskeyError::Refused), "used")
                                }
                                _ => (AuthError::MfaCodeInvalid, "used"),
                            },
                            ChallengeAnswer::ChallengeGone => (AuthError::MfaTokenInvalid, "token"),
                        }
                    }
                };
                (failure, reason, Some(user.id))
            }
            (_, user) => (AuthError::MfaTokenInvalid, "token", user.map(|u| u.id)),
        };
        let detail = json!({"factor": factor, "reason": reason, "purpose": "login"});
        let kind = AuditKind::MfaFailed;
        self.common
            .audit(kind, user_id, None, Some(request), detail);
        telemetry::login(false);
        let throttle = &self.throttle;
        throttle
            .login_failed(&user_key, &address_key, attempt)
            .await;
        Err(failure)
    }

    /// A challenge answered: the session its login would have begun.
    async fn complete(
        &self,
        challenge: &tessera_store::ChallengeRecord,
        user: Arc<User>,
        factor: &'static str,
        amr: &[AuthMethod],
        request: &SessionOrigin,
    ) -> Result<(TokenPair, Arc<User>, LoginMethod, Transport), AuthError> {
        let method = LoginMethod::named(&challenge.method).unwrap_or(LoginMethod::Password);
        let transport = Transport::named(&challenge.transport).unwrap_or(Transport::Header);
        // Where the login began (the password's request); the second step
        // normally comes from the same client.
        let ip = challenge.ip.parse().unwrap_or(request.ip);
        let origin = SessionOrigin::new(ip, &challenge.user_agent, method);
        let pair = self.begin_session(&user, transport, &origin, amr).await?;
        telemetry::login(true);
        let detail = json!({"factor": factor, "purpose": "login"});
        let kind = AuditKind::MfaSucceeded;
        self.common
            .audit(kind, Some(user.id), None, Some(request), detail);
        let detail = json!({
            "method": method.name(), "session": pair.refresh.fid, "second_factor": factor,
        });
        let kind = AuditKind::LoginSucceeded;
        self.common
            .audit(kind, Some(user.id), None, Some(&origin), detail);
        Ok((pair, user, method, transport))
    }

    /// A passwordless login with a discoverable passkey: the browser's
    /// answer to a ceremony [`Passkeys::begin_login`] began, from
    /// `origin`, tokens travelling by `transport`. Right (the passkey of an
    /// active user, its counter raised), a new session with `amr` naming
    /// the key; anything else is one body, a failed login attempt of the
    /// address, and a `login_failed` event with the reason.
    pub(super) async fn login_with_passkey(
        &self,
        credential: &webauthn_rs::prelude::PublicKeyCredential,
        origin: &SessionOrigin,
        transport: Transport,
    ) -> Result<(TokenPair, Arc<User>), AuthError> {
        if !self.common.settings().passkey_login {
            return Err(AuthError::Passkey(PasskeyError::LoginDisabled));
        }
        let address_key = origin.ip.to_string();
        // No user is known before the check: the address alone counts
        // (under a key no username has).
        let user_key = format!("\u{0}passkey:{address_key}");
        let attempt = self.reserve(&user_key, &address_key, "", origin).await?;
        let (reason, user_id) = match self.passkeys.check_login(credential).await? {
            Ok((user_id, used)) => {
                let store = self.common.store();
                let user = store.user_by_id(user_id).await?;
                match user.map(|r| self.live.remember(r)) {
                    Some(user) if user.is_active => {
                        let throttle = &self.throttle;
                        throttle
                            .login_succeeded(&user_key, &address_key, attempt)
                            .await;
                        let amr: &[AuthMethod] = match used.key {
                            AuthMethod::SoftwareKey => &AMR_SOFTWARE_KEY,
                            _ => &AMR_HARDWARE_KEY,
                        };
                        let pair = self.begin_session(&user, transport, origin, amr).await?;
                        telemetry::login(true);
                        let detail = json!({
                            "method": origin.method.name(), "session": pair.refresh.fid,
                            "passkey": used.id,
                        });
                        let kind = AuditKind::LoginSucceeded;
                        self.common
                            .audit(kind, Some(user.id), None, Some(origin), detail);
                        return Ok((pair, user));
                    }
                    _ => ("inactive", Some(user_id)),
                }
            }
            Err(refused) => refused,
        };
        let detail = json!({"method": origin.method.name(), "reason": reason});
        let user_id = user_id.map(UserId::new);
        let kind = AuditKind::LoginFailed;
        self.common.audit(kind, user_id, None, Some(origin), detail);
        telemetry::login(false);
        let throttle = &self.throttle;
        throttle
            .login_failed(&user_key, &address_key, attempt)
            .await;
        Err(AuthError::Passkey(PasskeyError::Refused))
    }

    /// Ends the user's oldest sessions past `max_sessions_per_user` (the new
    /// one counted), as a logout ends one: what one account can keep alive
    /// stays bounded however often it logs in.
    async fn end_sessions_beyond_the_cap(
        &self,
        user_id: UserId,
        now: i64,
    ) -> Result<(), AuthError> {
        let cap = self.common.settings().max_sessions_per_user;
        let keep = i64::try_from(cap).unwrap_or(i64::MAX);
        let beyond = self
            .common
            .store()
            .sessions_beyond(user_id.get(), keep, now);
        // A stored id not of the token-id shape names no session a token
        // could still use: nothing to end.
        for fid in beyond.await?.iter().filter_map(|f| FamilyId::parse(f)) {
            let id = user_id.get();
            tracing::info!(
                user_id = id,
                "session cap reached; ending the oldest session"
            );
            self.live.revoke_family(&fid, user_id, now).await?;
        }
        Ok(())
    }

    /// Writes the throttled-login events counted but not yet written (the
    /// upkeep's, every minute).
    pub(super) fn sweep_throttled(&self) {
        for throttled in self.throttled_log.sweep(self.common.now_ms()) {
            let origin = SessionOrigin::new(throttled.client, "", LoginMethod::Password);
            let detail = json!({"username": throttled.username, "attempts": throttled.attempts});
            let kind = AuditKind::LoginThrottled;
            self.common.audit(kind, None, None, Some(&origin), detail);
        }
    }
}
