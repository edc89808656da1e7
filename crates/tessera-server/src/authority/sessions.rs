//! Sessions: login, the tokens of a family, verification, refresh with
//! rotation and reuse detection, blacklisting, introspection, logout.

use super::*;
use serde_json::json;

impl Authority {
    /// A password login: a new family with a fresh access token and a refresh token.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        origin: &SessionOrigin,
        transport: Transport,
    ) -> Result<(TokenPair, Arc<User>), AuthError> {
        let client = origin.ip;
        let name = Username::parse(username);
        // Throttle by the name as it will be looked up, so that variants
        // which normalise alike share one count.
        let user_key = match &name {
            Ok(n) => n.as_str().to_owned(),
            Err(_) => username.chars().take(200).collect(),
        };
        let address_key = client.to_string();
        // The name as given is an attacker's input: kept as data, cut short.
        let given = || json!({"username": username.chars().take(150).collect::<String>()});
        // Counted before the hash: a burst gets no more checks than the limit.
        let attempt = match self
            .throttle
            .reserve_login(&user_key, &address_key, self.clock.now_ms())
            .await
        {
            Ok(attempt) => attempt,
            Err(e) => {
                // Refused before any hash, so free to send: written at most
                // once a minute per client, with the attempts it stands for.
                if matches!(e, AuthError::Throttled(_))
                    && let Some(throttled) =
                        self.throttled_log
                            .refused(client, username, self.clock.now_ms())
                {
                    let detail =
                        json!({"username": throttled.username, "attempts": throttled.attempts});
                    self.audit("login_throttled", None, None, Some(origin), detail);
                }
                return Err(e);
            }
        };
        let record = match name {
            Ok(name) => self.store.user_by_username(name.as_str()).await?,
            Err(_) => None,
        };
        let clear = password.to_owned();
        let stored_hash = record.as_ref().map(|r| r.password_hash.clone());
        let checked = self
            .hashing(move |memory| check_password(&clear, stored_hash, memory))
            .await?;
        let (record, rehash) = match (record, checked) {
            (Some(r), Some(rehash)) if r.is_active => (r, rehash),
            (record, _) => {
                let user_id = record.map(|r| r.id);
                self.audit("login_failed", user_id, None, Some(origin), given());
                telemetry::login(false);
                self.throttle
                    .login_failed(&user_key, &address_key, attempt)
                    .await;
                return Err(AuthError::NoActiveAccount);
            }
        };
        // Only someone who knows the password learns that the address is
        // not verified; the attempt is not a failure of the password.
        if self.refuse_unverified(&record, client).await {
            let detail = json!({"username": record.username, "reason": "email_not_verified"});
            self.audit("login_failed", Some(record.id), None, Some(origin), detail);
            telemetry::login(false);
            self.throttle
                .login_succeeded(&user_key, &address_key, attempt)
                .await;
            return Err(AuthError::EmailNotVerified);
        }
        // The row read above is as old as the hash is slow: decide on the row
        // as the login's own write leaves it (a deactivation or password
        // change may have landed in between), and on memory if it is newer.
        let now = self.now();
        let rehash = rehash.as_ref().map(|(old, new)| Rehash { old, new });
        let current = self.store.record_login(record.id, now, rehash).await?;
        let user = match current.map(|r| self.remember(r)) {
            Some(user) if user.is_active && user.token_version == record.token_version => user,
            _ => {
                self.audit("login_failed", Some(record.id), None, Some(origin), given());
                telemetry::login(false);
                self.throttle
                    .login_failed(&user_key, &address_key, attempt)
                    .await;
                return Err(AuthError::NoActiveAccount);
            }
        };
        telemetry::login(true);
        self.throttle
            .login_succeeded(&user_key, &address_key, attempt)
            .await;
        let pair = self.begin_session(&user, transport, origin).await?;
        let detail = json!({"method": origin.method.name(), "session": pair.refresh.fid});
        self.audit("login_succeeded", Some(user.id), None, Some(origin), detail);
        Ok((pair, user))
    }

    /// Begins a session (a new family: a fresh access token and a refresh
    /// token) for `user`, whose identity the caller has established: a
    /// password login above, or a test harness that created the account
    /// itself. Counted by `user_rate_limit`, recorded, and the oldest
    /// sessions past `max_sessions_per_user` ended.
    pub async fn begin_session(
        &self,
        user: &User,
        transport: Transport,
        origin: &SessionOrigin,
    ) -> Result<TokenPair, AuthError> {
        let now = self.now();
        self.throttle.check_tokens(user.id).await?;
        let fid = new_token_id();
        let pair = TokenPair {
            access: self.mint(user, TokenType::Access, &fid, true, transport, now)?,
            refresh: self.mint(user, TokenType::Refresh, &fid, false, transport, now)?,
        };
        let session = SessionRecord {
            family_id: fid.clone(),
            user_id: user.id,
            created_at: now,
            last_used: now,
            expires_at: pair.refresh.exp,
            token_version: user.token_version,
            ip: origin.ip.to_string(),
            user_agent: origin.user_agent.clone(),
            method: origin.method.name().to_owned(),
        };
        // The session and its first refresh token, in one transaction.
        self.store
            .begin_session(&refresh_record(&pair.refresh, user.id), &session)
            .await?;
        self.end_sessions_beyond_the_cap(user.id, now).await?;
        Ok(pair)
    }

    /// Ends the user's oldest sessions past `max_sessions_per_user` (the new
    /// one counted), as a logout ends one: what one account can keep alive
    /// stays bounded however often it logs in.
    async fn end_sessions_beyond_the_cap(&self, user_id: i64, now: i64) -> Result<(), AuthError> {
        let keep = i64::try_from(self.settings.max_sessions_per_user).unwrap_or(i64::MAX);
        for fid in self.store.sessions_beyond(user_id, keep, now).await? {
            tracing::info!(user_id, "session cap reached; ending the oldest session");
            self.revoke_family(&fid, user_id, now).await?;
        }
        Ok(())
    }

    fn mint(
        &self,
        user: &User,
        token_type: TokenType,
        fid: &str,
        fresh: bool,
        transport: Transport,
        now: i64,
    ) -> Result<IssuedToken, AuthError> {
        // Tokens that travel in cookies carry a CSRF value the page must echo.
        let csrf = (transport == Transport::Cookie).then(new_token_id);
        let grant = Grant {
            token_type,
            fid,
            fresh,
            extra: None,
            csrf: csrf.as_deref(),
        };
        let issued = token::issue(&self.policy, &self.key_ring(), &user.subject(), &grant, now)
            .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))?;
        telemetry::issued(token_type);
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
        let now = self.now();
        let claims =
            match self
                .verified
                .validate(&self.policy, &self.key_ring(), token, expected, now)
            {
                Err(Refusal::Invalid) if self.reload_for_unknown_kid(token, now).await => self
                    .verified
                    .validate(&self.policy, &self.key_ring(), token, expected, now)?,
                other => other?,
            };
        let user = self
            .user(claims.user_id)
            .await?
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        read(&self.revocations).check(&claims, user.standing())?;
        Ok((claims, user))
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

    /// Authenticates a request's access token.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<(Arc<VerifiedClaims>, Arc<User>), AuthError> {
        self.check(token, Some(TokenType::Access)).await
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
        let now = self.now();
        let validate = || {
            token::validate(
                &self.policy,
                &self.key_ring(),
                token,
                Some(TokenType::Refresh),
                now,
            )
        };
        let claims = match validate() {
            Err(Refusal::Invalid) if self.reload_for_unknown_kid(token, now).await => validate()?,
            other => other?,
        };
        if transport == Transport::Cookie {
            Self::check_csrf(&claims, csrf)?;
        }
        // Decided by the database, not by this process's memory: another
        // instance may have blacklisted or rotated this token, ended its
        // session, or changed its user a moment ago, and the memory here
        // learns of it only at the next sync.
        let standing = self
            .store
            .refresh_standing(&claims.jti, &claims.fid)
            .await?;
        let user = self
            .store
            .user_by_id(claims.user_id)
            .await?
            .map(|record| self.remember(record))
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        if standing.family_revoked {
            return Err(AuthError::Token(Refusal::Revoked));
        }
        read(&self.revocations).check_session(&claims, user.standing())?;
        if standing.blacklisted || read(&self.revocations).is_blacklisted(&claims.jti) {
            return self
                .refresh_again(token, &claims, &user, transport, origin, now)
                .await;
        }
        self.throttle.check_tokens(user.id).await?;
        let access = self.mint(&user, TokenType::Access, &claims.fid, false, transport, now)?;
        if !self.settings.rotate_refresh_tokens {
            // Nothing else is written: the session's "last used" is noted
            // by the batched writer, not waited for.
            self.store.touch_session(&claims.fid, now);
            telemetry::refreshed();
            return Ok(Refreshed {
                access,
                refresh: None,
            });
        }
        let new = self.mint(
            &user,
            TokenType::Refresh,
            &claims.fid,
            false,
            transport,
            now,
        )?;
        let new_record = refresh_record(&new, user.id);
        if self.settings.blacklist_after_rotation {
            let old = record_of(&claims);
            let kept = self.grace.keep(token, &new, self.clock.now_ms());
            // One conditional write decides among concurrent refreshes of the
            // same token: the others find it blacklisted, and are answered
            // as a token presented again (the winner's successor within the
            // grace period, else a reuse).
            let rotated = self
                .store
                .rotate_refresh_token(&old, &new_record, kept.as_ref(), now)
                .await?;
            write(&self.revocations).blacklist(&claims.jti, claims.exp);
            if !rotated {
                return self
                    .refresh_again(token, &claims, &user, transport, origin, now)
                    .await;
            }
            self.announce();
        } else {
            self.store.record_refresh_token(&new_record).await?;
        }
        telemetry::refreshed();
        Ok(Refreshed {
            access,
            refresh: Some(new),
        })
    }

    /// A refresh token presented after its rotation (or its blacklisting):
    /// within the grace period, the successor it rotated into and a new
    /// access token; otherwise a reuse.
    async fn refresh_again(
        &self,
        token: &str,
        claims: &VerifiedClaims,
        user: &User,
        transport: Transport,
        origin: &SessionOrigin,
        now: i64,
    ) -> Result<Refreshed, AuthError> {
        let successor = self
            .grace
            .successor(self.store.as_ref(), token, &claims.jti, self.clock.now_ms())
            .await?;
        let Some(successor) = successor else {
            self.on_reuse(claims, now, origin).await?;
            return Err(AuthError::Token(Refusal::Revoked));
        };
        self.throttle.check_tokens(user.id).await?;
        let access = self.mint(user, TokenType::Access, &claims.fid, false, transport, now)?;
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
        if !self.settings.reuse_detection {
            return Ok(());
        }
        telemetry::reuse_detected();
        let detail = json!({"session": claims.fid});
        self.audit(
            "refresh_reused",
            Some(claims.user_id),
            None,
            Some(origin),
            detail,
        );
        tracing::warn!(
            user_id = claims.user_id,
            "refresh token reused; revoking its family"
        );
        self.revoke_family(&claims.fid, claims.user_id, now).await
    }

    /// Ends a family (a login and everything refreshed from it).
    pub async fn revoke_family(&self, fid: &str, user_id: i64, now: i64) -> Result<(), AuthError> {
        // No token of the family can outlive this.
        let until = now + self.policy.longest_validity();
        self.store.revoke_family(fid, user_id, until, now).await?;
        write(&self.revocations).revoke_family(fid, until);
        self.announce();
        telemetry::revoked("family");
        Ok(())
    }

    /// Blacklists a refresh token (simplejwt's blacklist endpoint) and, with
    /// `blacklist_ends_session`, ends its session as [`Authority::logout`]
    /// does. A token that is not a valid refresh token, or one already
    /// blacklisted, is refused and changes nothing.
    pub async fn blacklist(&self, token: &str, origin: &SessionOrigin) -> Result<(), AuthError> {
        let (claims, _) = self.check(token, Some(TokenType::Refresh)).await?;
        if !self.blacklist_claims(&claims).await? {
            return Err(AuthError::Token(Refusal::Revoked));
        }
        if self.settings.blacklist_ends_session {
            self.end_session_of(&claims, origin).await?;
        }
        Ok(())
    }

    /// Blacklists the token these claims came from; true if this call did it.
    async fn blacklist_claims(&self, claims: &VerifiedClaims) -> Result<bool, AuthError> {
        let record = record_of(claims);
        let newly = self
            .store
            .blacklist_refresh_token(&record, self.now())
            .await?;
        write(&self.revocations).blacklist(&claims.jti, claims.exp);
        if newly {
            self.announce();
            telemetry::revoked("token");
        }
        Ok(newly)
    }

    /// RFC 7009 revocation: a valid token of either type is blacklisted (an
    /// access token by its `jti`), and a refresh token's session ended as
    /// [`Authority::logout`] ends it when `blacklist_ends_session` is on; an
    /// unknown, invalid or expired token is not an error.
    pub async fn revoke_token(&self, token: &str, origin: &SessionOrigin) -> Result<(), AuthError> {
        match self.check(token, None).await {
            Ok((claims, _)) => {
                self.blacklist_claims(&claims).await?;
                // RFC 7009 2.1 lets revoking a refresh token revoke the
                // grant it came from: the login, as simplejwt's blacklist.
                if claims.token_type == TokenType::Refresh && self.settings.blacklist_ends_session {
                    self.end_session_of(&claims, origin).await?;
                }
                Ok(())
            }
            Err(AuthError::Token(_)) => Ok(()),
            Err(e) => Err(e),
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

    /// Ends the session of `claims` (its family), and blacklists `refresh`
    /// when it is a valid refresh token of the same user.
    pub async fn logout(
        &self,
        claims: &VerifiedClaims,
        refresh: Option<&str>,
        origin: &SessionOrigin,
    ) -> Result<(), AuthError> {
        if let Some(token) = refresh {
            match self.check(token, Some(TokenType::Refresh)).await {
                Ok((refresh_claims, _)) if refresh_claims.user_id == claims.user_id => {
                    self.blacklist_claims(&refresh_claims).await?;
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
        self.revoke_family(&claims.fid, claims.user_id, self.now())
            .await?;
        let detail = json!({"session": claims.fid});
        self.audit("logout", Some(claims.user_id), None, Some(origin), detail);
        Ok(())
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
            .store
            .user_by_username(name.as_str())
            .await?
            .ok_or(AuthError::NoActiveAccount)?;
        let user = Some(self.remember(record))
            .filter(|u| u.is_active)
            .ok_or(AuthError::NoActiveAccount)?;
        let mut policy = self.policy.clone();
        if let Some(seconds) = lifetime {
            policy.access_lifetime = seconds;
        }
        let fid = new_token_id();
        let grant = Grant {
            token_type: TokenType::Access,
            fid: &fid,
            fresh: false,
            extra: None,
            csrf: None,
        };
        let issued = token::issue(
            &policy,
            &self.key_ring(),
            &user.subject(),
            &grant,
            self.now(),
        )
        .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))?;
        // A bearer token made outside any login: who got one, for how long,
        // and its family (to find its uses), never the token.
        let detail = json!({"lifetime": policy.access_lifetime, "session": fid});
        self.audit("token_issued", Some(user.id), None, None, detail);
        self.audit.flush().await;
        Ok(issued)
    }
}

/// The longest lifetime `tessera token issue --lifetime` gives a token: 30
/// days, in seconds. No session lists such a token, so staff cannot end it
/// alone (only with all of its user's tokens, or by a key rotation): a long
/// one is a standing credential. A service re-issues one on a schedule.
pub const MAX_ISSUED_LIFETIME: i64 = 30 * 86_400;

/// The stored form of a token known by its verified claims.
fn record_of(claims: &VerifiedClaims) -> RefreshRecord {
    RefreshRecord {
        jti: claims.jti.clone(),
        user_id: claims.user_id,
        family_id: claims.fid.clone(),
        issued_at: claims.iat,
        expires_at: claims.exp,
    }
}

/// The stored form of a token just issued.
fn refresh_record(token: &IssuedToken, user_id: i64) -> RefreshRecord {
    RefreshRecord {
        jti: token.jti.clone(),
        user_id,
        family_id: token.fid.clone(),
        issued_at: token.iat,
        expires_at: token.exp,
    }
}

/// A password login's hashing step: `None` when `password` does not match
/// `stored` (the user's hash; `None` for an unknown user), else the hash to
/// replace and its replacement when `stored` is not Tessera's current kind
/// (an imported user's first login), computed under the same permit.
fn check_password(
    password: &str,
    stored: Option<String>,
    memory: &mut HashMemory,
) -> Option<Option<(String, String)>> {
    let Some(stored) = stored else {
        // Unknown users cost one hash too, so that timing does not tell them apart.
        password::verify_dummy(password, memory);
        return None;
    };
    if !password::verify_stored(password, &stored, memory) {
        return None;
    }
    if password::is_current(&stored) {
        return Some(None);
    }
    // Should hashing fail, the old hash stays and serves the next login.
    Some(
        password::hash_with(password, memory)
            .ok()
            .map(|new| (stored, new)),
    )
}
