//! The tokens part: issuing tokens, checking them completely (what a token
//! proves by itself, then its user and the revocation markers), and the
//! refresh with rotation, the grace period and reuse detection. Owns the
//! refresh grace period ([`Grace`]).
//!
//! Promises: a token is accepted only if the keys verify it and nothing
//! revoked it (no database query unless its user is unknown here); a
//! refresh is decided by the database, so that a token rotated, blacklisted
//! or ended on another instance a moment ago is never refreshed here; one
//! conditional write decides among concurrent refreshes of one token.

use super::common::Common;
use super::grace::Grace;
use super::keys::Keys;
use super::live::Live;
use super::throttling::Throttle;
use super::{AuditKind, AuthError, Refreshed, SessionOrigin, Transport, User, field_error};
use crate::telemetry;
use serde_json::json;
use std::sync::Arc;
use tessera_core::Refusal;
use tessera_core::claims::{AuthMethod, TokenType, VerifiedClaims, new_token_id, secrets_match};
use tessera_core::ids::{FamilyId, UserId};
use tessera_core::token::{self, Grant, IssuedToken};
use tessera_core::username::Username;
use tessera_store::{ExpectedUser, RefreshRecord, Rotation};

/// The longest lifetime `tessera token issue --lifetime` gives a token: 30
/// days, in seconds. No session lists such a token, so staff cannot end it
/// alone (only with all of its user's tokens, or by a key rotation): a long
/// one is a standing credential. A service re-issues one on a schedule.
pub const MAX_ISSUED_LIFETIME: i64 = 30 * 86_400;

/// Issuing, checking and refreshing tokens.
pub struct Tokens {
    common: Arc<Common>,
    keys: Arc<Keys>,
    live: Arc<Live>,
    throttle: Arc<Throttle>,
    /// The refresh grace period (`refresh_grace_period`).
    grace: Grace,
}

/// A new token's family and what it proves.
pub(super) struct Minting<'a> {
    /// Access or refresh.
    pub token_type: TokenType,
    /// Its family (login).
    pub fid: &'a FamilyId,
    /// Whether it comes straight from a password login.
    pub fresh: bool,
    /// How the login proved the user (`amr`), carried by every token of
    /// its family.
    pub amr: &'a [AuthMethod],
}

impl Tokens {
    pub(super) fn new(
        common: Arc<Common>,
        keys: Arc<Keys>,
        live: Arc<Live>,
        throttle: Arc<Throttle>,
    ) -> Self {
        let grace = Grace::new(common.settings().refresh_grace_period);
        Self {
            common,
            keys,
            live,
            throttle,
            grace,
        }
    }

    /// Signs a token of `user` with the key in force.
    pub(super) fn mint(
        &self,
        user: &User,
        minting: Minting<'_>,
        transport: Transport,
        now: i64,
    ) -> Result<IssuedToken, AuthError> {
        // Tokens that travel in cookies carry a CSRF value the page must echo.
        let csrf = (transport == Transport::Cookie).then(new_token_id);
        let grant = Grant {
            token_type: minting.token_type,
            fid: minting.fid,
            fresh: minting.fresh,
            extra: None,
            csrf: csrf.as_deref(),
            amr: minting.amr,
        };
        let ring = self.keys.ring();
        let issued = token::issue(self.common.policy(), &ring, &user.subject(), &grant, now)
            .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))?;
        telemetry::issued(minting.token_type);
        Ok(issued)
    }

    /// Checks a token completely: what it proves by itself, then that its
    /// user exists and nothing has revoked it. No database query unless the
    /// user is unknown to this process.
    pub async fn check(
        &self,
        token: &str,
        expected: Option<TokenType>,
    ) -> Result<(Arc<VerifiedClaims>, Arc<User>), AuthError> {
        let now = self.common.now();
        let claims = self.keys.validate(token, expected, now).await?;
        let user = self
            .live
            .user(claims.user_id)
            .await?
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        self.live.check(&claims, &user)?;
        Ok((claims, user))
    }

    /// Authenticates a request's access token.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<(Arc<VerifiedClaims>, Arc<User>), AuthError> {
        self.check(token, Some(TokenType::Access)).await
    }

    /// The double-submit check: a request authenticated by a cookie must
    /// present, in a header, the `csrf` claim of the token in that cookie.
    pub fn check_csrf(claims: &VerifiedClaims, presented: Option<&str>) -> Result<(), AuthError> {
        let expected = claims.raw.get("csrf").and_then(serde_json::Value::as_str);
        match (expected, presented) {
            (Some(expected), Some(presented)) if secrets_match(presented, expected) => Ok(()),
            _ => Err(AuthError::CsrfFailed),
        }
    }

    /// RFC 7662 introspection: every claim of an active token, `None` otherwise.
    pub async fn introspect(
        &self,
        token: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, AuthError> {
        match self.check(token, None).await {
            Ok((claims, _)) => Ok(Some(claims.raw.clone())),
            Err(AuthError::Token(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An access token for `username` with a chosen lifetime (service tokens,
    /// tests): a family of its own, not fresh. A lifetime (seconds) past
    /// [`MAX_ISSUED_LIFETIME`] is refused ([`AuthError::Fields`] under
    /// `lifetime`); `None` is `access_token_lifetime`. Each token issued is a
    /// `token_issued` event, written before this returns (the CLI, its
    /// caller, exits right after).
    pub async fn issue_access_token(
        &self,
        username: &str,
        lifetime: Option<i64>,
    ) -> Result<IssuedToken, AuthError> {
        if lifetime.is_some_and(|seconds| !(1..=MAX_ISSUED_LIFETIME).contains(&seconds)) {
            return Err(field_error(
                "lifetime",
                format!("Ensure this value is between 1 and {MAX_ISSUED_LIFETIME} seconds."),
            ));
        }
        let name = Username::parse(username).map_err(|e| field_error("username", e.to_string()))?;
        let record = self
            .common
            .store()
            .user_by_username(name.as_str())
            .await?
            .ok_or(AuthError::NoActiveAccount)?;
        let user = Some(self.live.remember(record))
            .filter(|u| u.is_active)
            .ok_or(AuthError::NoActiveAccount)?;
        let mut policy = self.common.policy().clone();
        if let Some(seconds) = lifetime {
            policy.access_lifetime = seconds;
        }
        let fid = FamilyId::random();
        let grant = Grant {
            token_type: TokenType::Access,
            fid: &fid,
            fresh: false,
            extra: None,
            csrf: None,
            amr: &[],
        };
        let now = self.common.now();
        let issued = token::issue(&policy, &self.keys.ring(), &user.subject(), &grant, now)
            .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))?;
        // A bearer token made outside any login: who got one, for how long,
        // and its family (to find its uses), never the token.
        let detail = json!({"lifetime": policy.access_lifetime, "session": fid});
        self.common
            .audit(AuditKind::TokenIssued, Some(user.id), None, None, detail);
        self.common.audit_log().flush().await;
        Ok(issued)
    }

    /// Exchanges a refresh token for a new access token (and a new refresh
    /// token when rotating). A refresh token presented again after its
    /// rotation is answered, within `refresh_grace_period`, with the
    /// successor it rotated into (the same for every such refresh, on every
    /// instance); after the period, or once blacklisted otherwise, it is a
    /// reuse: with reuse detection on, its whole family is revoked.
    ///
    /// In cookie transport the refresh token came from a cookie, so the
    /// caller must echo the token's `csrf` claim (`csrf`), and the new tokens
    /// get CSRF values of their own.
    pub async fn refresh(
        &self,
        token: &str,
        transport: Transport,
        csrf: Option<&str>,
        origin: &SessionOrigin,
    ) -> Result<Refreshed, AuthError> {
        let now = self.common.now();
        let claims = self
            .keys
            .validate_uncached(token, Some(TokenType::Refresh), now)
            .await?;
        if transport == Transport::Cookie {
            Self::check_csrf(&claims, csrf)?;
        }
        let settings = self.common.settings();
        // The usual case in one trip to the store: the tokens minted from
        // the user this process holds, and the rotation's own statement
        // confirming that the database agrees (the user as held, the
        // session not ended, the token not rotated yet). Another instance
        // may have changed any of these a moment ago, which the memory here
        // learns of only at the next sync: then nothing is written, and the
        // refresh is decided below on what the database says.
        let mut throttled = false;
        if settings.rotate_refresh_tokens
            && settings.blacklist_after_rotation
            && let Some(user) = self.live.held(claims.user_id)
            && self.live.check_session(&claims, &user).is_ok()
            && !self.live.is_blacklisted(&claims.jti)
        {
            self.throttle.check_tokens(user.id).await?;
            throttled = true;
            let guard = expected(&user);
            let rotated = self
                .rotate(token, &claims, &user, transport, origin, now, Some(guard))
                .await?;
            if let Some(refreshed) = rotated {
                return Ok(refreshed);
            }
        }
        let store = self.common.store();
        let (record, standing) = store
            .refresh_state(
                claims.jti.as_str(),
                claims.fid.as_str(),
                claims.user_id.get(),
            )
            .await?
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        let user = self.live.remember(record);
        if standing.family_revoked {
            return Err(AuthError::Token(Refusal::Revoked));
        }
        self.live.check_session(&claims, &user)?;
        if standing.blacklisted || self.live.is_blacklisted(&claims.jti) {
            return self
                .refresh_again(token, &claims, &user, transport, origin, now, throttled)
                .await;
        }
        if !throttled {
            self.throttle.check_tokens(user.id).await?;
        }
        if !settings.rotate_refresh_tokens {
            let access = self.mint(&user, minting(TokenType::Access, &claims), transport, now)?;
            // Nothing else is written: the session's "last used" is noted
            // by the batched writer, not waited for.
            store.touch_session(claims.fid.as_str(), now);
            telemetry::refreshed();
            return Ok(Refreshed {
                access,
                refresh: None,
            });
        }
        if settings.blacklist_after_rotation {
            // Decided on the database as read just now: no guard.
            let rotated = self
                .rotate(token, &claims, &user, transport, origin, now, None)
                .await?;
            // Without a guard a rotation is never stale.
            return rotated.ok_or(AuthError::Token(Refusal::Invalid));
        }
        let access = self.mint(&user, minting(TokenType::Access, &claims), transport, now)?;
        let new = self.mint(&user, minting(TokenType::Refresh, &claims), transport, now)?;
        store
            .record_refresh_token(&refresh_record(&new, user.id))
            .await?;
        telemetry::refreshed();
        Ok(Refreshed {
            access,
            refresh: Some(new),
        })
    }

    /// Rotation with blacklisting: a new access and refresh token minted
    /// from `user`, the presented token blacklisted and the new one
    /// recorded by one conditional write, which decides among concurrent
    /// refreshes of the same token (the others find it blacklisted, and are
    /// answered as a token presented again: the winner's successor within
    /// the grace period, else a reuse). With `guard`, the write is done only
    /// if the database holds the user and session as `user` has them;
    /// `None` when it does not (nothing written, nothing answered).
    #[allow(clippy::too_many_arguments)]
    async fn rotate(
        &self,
        token: &str,
        claims: &VerifiedClaims,
        user: &User,
        transport: Transport,
        origin: &SessionOrigin,
        now: i64,
        guard: Option<ExpectedUser>,
    ) -> Result<Option<Refreshed>, AuthError> {
        let access = self.mint(user, minting(TokenType::Access, claims), transport, now)?;
        let new = self.mint(user, minting(TokenType::Refresh, claims), transport, now)?;
        let new_record = refresh_record(&new, user.id);
        let old = record_of(claims);
        let kept = self.grace.keep(token, &new, self.common.now_ms());
        let store = self.common.store();
        let rotation = match guard {
            Some(expected) => {
                store
                    .rotate_if_current(&old, &new_record, kept.as_ref(), now, &expected)
                    .await?
            }
            None => {
                match store
                    .rotate_refresh_token(&old, &new_record, kept.as_ref(), now)
                    .await?
                {
                    true => Rotation::Rotated,
                    false => Rotation::AlreadyBlacklisted,
                }
            }
        };
        match rotation {
            Rotation::Stale => Ok(None),
            Rotation::AlreadyBlacklisted => {
                self.live.mark_blacklisted(&claims.jti, claims.exp);
                self.refresh_again(token, claims, user, transport, origin, now, true)
                    .await
                    .map(Some)
            }
            Rotation::Rotated => {
                self.live.mark_blacklisted(&claims.jti, claims.exp);
                self.common.announce();
                telemetry::refreshed();
                Ok(Some(Refreshed {
                    access,
                    refresh: Some(new),
                }))
            }
        }
    }

    /// A refresh token presented after its rotation (or its blacklisting):
    /// within the grace period, the successor it rotated into and a new
    /// access token; otherwise a reuse. `throttled`: the user's token rate
    /// was counted for this refresh already.
    #[allow(clippy::too_many_arguments)]
    async fn refresh_again(
        &self,
        token: &str,
        claims: &VerifiedClaims,
        user: &User,
        transport: Transport,
        origin: &SessionOrigin,
        now: i64,
        throttled: bool,
    ) -> Result<Refreshed, AuthError> {
        let store = self.common.store().as_ref();
        let successor = self
            .grace
            .successor(store, token, &claims.jti, self.common.now_ms())
            .await?;
        let Some(successor) = successor else {
            self.on_reuse(claims, now, origin).await?;
            return Err(AuthError::Token(Refusal::Revoked));
        };
        if !throttled {
            self.throttle.check_tokens(user.id).await?;
        }
        let access = self.mint(user, minting(TokenType::Access, claims), transport, now)?;
        telemetry::refreshed();
        Ok(Refreshed {
            access,
            refresh: Some(successor),
        })
    }

    async fn on_reuse(
        &self,
        claims: &VerifiedClaims,
        now: i64,
        origin: &SessionOrigin,
    ) -> Result<(), AuthError> {
        if !self.common.settings().reuse_detection {
            return Ok(());
        }
        telemetry::reuse_detected();
        let detail = json!({"session": claims.fid});
        let user_id = Some(claims.user_id);
        self.common.audit(
            AuditKind::RefreshReused,
            user_id,
            None,
            Some(origin),
            detail,
        );
        tracing::warn!(
            user_id = claims.user_id.get(),
            "refresh token reused; revoking its family"
        );
        self.live
            .revoke_family(&claims.fid, claims.user_id, now)
            .await
    }
}

/// What a refresh minted from `user` assumes the database holds.
fn expected(user: &User) -> ExpectedUser {
    ExpectedUser {
        user_id: user.id.get(),
        token_version: user.token_version,
        claims_version: user.claims_version,
    }
}

/// A token of the family of `claims`, not fresh (a refresh's), with the
/// family's `amr` as `claims` carry it (none for a family begun before it).
fn minting(token_type: TokenType, claims: &VerifiedClaims) -> Minting<'_> {
    Minting {
        token_type,
        fid: &claims.fid,
        fresh: false,
        amr: &claims.amr,
    }
}

/// The stored form of a token known by its verified claims.
pub(super) fn record_of(claims: &VerifiedClaims) -> RefreshRecord {
    RefreshRecord {
        jti: claims.jti.into(),
        user_id: claims.user_id.get(),
        family_id: claims.fid.into(),
        issued_at: claims.iat,
        expires_at: claims.exp,
    }
}

/// The stored form of a token just issued.
pub(super) fn refresh_record(token: &IssuedToken, user_id: UserId) -> RefreshRecord {
    RefreshRecord {
        jti: token.jti.into(),
        user_id: user_id.get(),
        family_id: token.fid.into(),
        issued_at: token.iat,
        expires_at: token.exp,
    }
}
