//! The sessions part: a session begins with a login (see [`Logins`]: a new
//! family of tokens) and ends with a logout, a blacklisting or revocation
//! that ends it, or its user's (or staff's) end of it from the session
//! list. The tokens themselves are the tokens part's, the revocation
//! markers the live state's.
//!
//! Promises: every way of ending a session revokes its family (each of its
//! tokens refused, on every instance once synced) and is audited.

use super::common::Common;
use super::hashing::Hashing;
use super::live::Live;
use super::logins::Logins;
use super::mfa::{AMR_PASSWORD, SecondFactorAnswer, SecondFactors};
use super::recovery::Recovery;
use super::throttling::Throttle;
use super::tokens::Tokens;
use super::{
    AuditKind, AuthError, LoginMethod, SessionOrigin, TokenPair, Transport, User,
    only_superusers_touch_superusers,
};
use serde_json::json;
use std::sync::Arc;
use tessera_core::Refusal;
use tessera_core::claims::{TokenType, VerifiedClaims};
use tessera_core::ids::{FamilyId, UserId};
use tessera_store::SessionRecord;

/// Logins, logouts and the sessions a user sees.
pub struct Sessions {
    common: Arc<Common>,
    live: Arc<Live>,
    tokens: Arc<Tokens>,
    logins: Logins,
}

impl Sessions {
    pub(super) fn new(
        common: Arc<Common>,
        hashing: Arc<Hashing>,
        live: Arc<Live>,
        throttle: Arc<Throttle>,
        tokens: Arc<Tokens>,
        recovery: Arc<Recovery>,
        second: SecondFactors,
    ) -> Self {
        let logins = Logins::new(
            common.clone(),
            hashing,
            live.clone(),
            throttle,
            tokens.clone(),
            recovery,
            second,
        );
        Self {
            common,
            live,
            tokens,
            logins,
        }
    }

    /// A password login: a new family with a fresh access token and a
    /// refresh token (see [`Logins`]); for a user with a second factor,
    /// [`AuthError::SecondFactorRequired`], answered by
    /// [`Sessions::answer_second_factor`].
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        origin: &SessionOrigin,
        transport: Transport,
    ) -> Result<(TokenPair, Arc<User>), AuthError> {
        let logins = &self.logins;
        logins.login(username, password, origin, transport).await
    }

    /// The second step of a login whose password was right: the challenge
    /// of `mfa_token` answered with `answer`, from `request`. Right, the
    /// tokens the login would have given, with how its route answers them
    /// (its method and transport); see [`Logins`].
    pub async fn answer_second_factor(
        &self,
        mfa_token: &str,
        answer: &SecondFactorAnswer,
        request: &SessionOrigin,
    ) -> Result<(TokenPair, Arc<User>, LoginMethod, Transport), AuthError> {
        let logins = &self.logins;
        logins.answer_challenge(mfa_token, answer, request).await
    }

    /// A passwordless login with a discoverable passkey: the browser's
    /// answer to the ceremony [`Passkeys::begin_login`](super::Passkeys::begin_login) began; refused
    /// while `passkey_login` is off.
    pub async fn login_with_passkey(
        &self,
        credential: &webauthn_rs::prelude::PublicKeyCredential,
        origin: &SessionOrigin,
        transport: Transport,
    ) -> Result<(TokenPair, Arc<User>), AuthError> {
        let logins = &self.logins;
        logins
            .login_with_passkey(credential, origin, transport)
            .await
    }

    /// Begins a session (a new family: a fresh access token and a refresh
    /// token) for `user`, whose identity the caller has established by a
    /// password: a test harness that created the account itself.
    pub async fn begin_session(
        &self,
        user: &User,
        transport: Transport,
        origin: &SessionOrigin,
    ) -> Result<TokenPair, AuthError> {
        let logins = &self.logins;
        logins
            .begin_session(user, transport, origin, &AMR_PASSWORD)
            .await
    }

    /// Writes the throttled-login events counted but not yet written (the
    /// upkeep's, every minute).
    pub(super) fn sweep_throttled(&self) {
        self.logins.sweep_throttled();
    }

    /// Blacklists a refresh token (simplejwt's blacklist endpoint) and, with
    /// `blacklist_ends_session`, ends its session as [`Sessions::logout`]
    /// does. A token that is not a valid refresh token, or one already
    /// blacklisted, is refused and changes nothing.
    pub async fn blacklist(&self, token: &str, origin: &SessionOrigin) -> Result<(), AuthError> {
        let (claims, _) = self.tokens.check(token, Some(TokenType::Refresh)).await?;
        if !self.live.blacklist(&claims, TokenType::Refresh).await? {
            return Err(AuthError::Token(Refusal::Revoked));
        }
        if self.common.settings().blacklist_ends_session {
            self.end_session_of(&claims, origin).await?;
        }
        Ok(())
    }

    /// RFC 7009 revocation: a valid token of either type is blacklisted (an
    /// access token by its `jti`), and a refresh token's session ended as
    /// [`Sessions::logout`] ends it when `blacklist_ends_session` is on; an
    /// unknown, invalid or expired token is not an error.
    pub async fn revoke_token(&self, token: &str, origin: &SessionOrigin) -> Result<(), AuthError> {
        match self.tokens.check(token, None).await {
            Ok((claims, _)) => {
                self.live.blacklist(&claims, claims.token_type).await?;
                // RFC 7009 2.1 lets revoking a refresh token revoke the
                // grant it came from: the login, as simplejwt's blacklist.
                if claims.token_type == TokenType::Refresh
                    && self.common.settings().blacklist_ends_session
                {
                    self.end_session_of(&claims, origin).await?;
                }
                Ok(())
            }
            Err(AuthError::Token(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Ends the session of `claims` (its family), and blacklists `refresh`
    /// when it is a valid refresh token of the same user.
    pub async fn logout(
        &self,
        claims: &VerifiedClaims,
        refresh: Option<&str>,
        origin: &SessionOrigin,
    ) -> Result<(), AuthError> {
        if let Some(token) = refresh {
            match self.tokens.check(token, Some(TokenType::Refresh)).await {
                Ok((refresh_claims, _)) if refresh_claims.user_id == claims.user_id => {
                    self.live
                        .blacklist(&refresh_claims, TokenType::Refresh)
                        .await?;
                }
                // Revoking the family below ends that token's session anyway
                // when it belongs to it; a foreign or bad token changes nothing.
                Ok(_) | Err(AuthError::Token(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.end_session_of(claims, origin).await
    }

    /// The logout itself, shared by every route that ends a login: the
    /// family of `claims` revoked (each of its tokens refused, on every
    /// instance once synced) and a `logout` event, so that a blacklist or a
    /// revocation that ends a session is audited as the logout it is.
    async fn end_session_of(
        &self,
        claims: &VerifiedClaims,
        origin: &SessionOrigin,
    ) -> Result<(), AuthError> {
        let now = self.common.now();
        self.live
            .revoke_family(&claims.fid, claims.user_id, now)
            .await?;
        let detail = json!({"session": claims.fid});
        let user_id = Some(claims.user_id);
        self.common
            .audit(AuditKind::Logout, user_id, None, Some(origin), detail);
        Ok(())
    }

    /// The user's sessions not ended and not expired, most recently used
    /// first.
    pub async fn sessions_of(&self, user_id: UserId) -> Result<Vec<SessionRecord>, AuthError> {
        let now = self.common.now();
        Ok(self
            .common
            .store()
            .live_sessions(user_id.get(), now)
            .await?)
    }

    /// Ends session `fid` of user `user_id` as a logout would; false (and
    /// nothing done) when it is not a live session of that user: another
    /// user's, an ended one, an unknown id. `actor` is the staff user who
    /// ends it (a superuser's session: a superuser only), `None` for the
    /// user.
    pub async fn end_session(
        &self,
        user_id: UserId,
        fid: &FamilyId,
        actor: Option<UserId>,
        origin: &SessionOrigin,
    ) -> Result<bool, AuthError> {
        only_superusers_touch_superusers(&self.live, user_id, actor).await?;
        let live = self.sessions_of(user_id).await?;
        if !live.iter().any(|s| *fid == s.family_id) {
            return Ok(false);
        }
        let now = self.common.now();
        self.live.revoke_family(fid, user_id, now).await?;
        let detail = json!({"session": fid});
        let kind = AuditKind::SessionEnded;
        self.common
            .audit(kind, Some(user_id), actor, Some(origin), detail);
        Ok(true)
    }

    /// Ends every live session of user `user_id` but `keep` (the caller's
    /// own); returns how many it ended.
    pub async fn end_other_sessions(
        &self,
        user_id: UserId,
        keep: &FamilyId,
        origin: &SessionOrigin,
    ) -> Result<usize, AuthError> {
        let now = self.common.now();
        let mut ended = 0;
        for session in self.sessions_of(user_id).await? {
            // A stored id not of the token-id shape names no session a
            // token could still use: nothing to end.
            let Some(fid) = FamilyId::parse(&session.family_id) else {
                continue;
            };
            if fid != *keep {
                self.live.revoke_family(&fid, user_id, now).await?;
                let detail = json!({"session": fid});
                let kind = AuditKind::SessionEnded;
                self.common
                    .audit(kind, Some(user_id), None, Some(origin), detail);
                ended += 1;
            }
        }
        Ok(ended)
    }
}
