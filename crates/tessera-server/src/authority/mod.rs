//! The domain: accounts, login, refresh, verification and revocation, knowing
//! nothing of HTTP. Handlers call one method here each.
//!
//! Verifying an access token touches only memory: the key ring, the
//! revocation markers and each user's standing are loaded at start, updated on
//! every write this process makes, and brought up to date with writes of other
//! processes by [`Authority::sync`] (polled by the server).

mod state;
#[cfg(test)]
mod tests;

use crate::config::Settings;
use crate::keyring::{self, KeyLoadError};
use crate::telemetry;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use state::Users;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tessera_core::claims::{Subject, TokenType, VerifiedClaims, new_token_id, secrets_match};
use tessera_core::clock::Clock;
use tessera_core::keys::KeyRing;
use tessera_core::password::{self, PasswordPolicy};
use tessera_core::revocation::{RevocationSet, UserStanding};
use tessera_core::throttle::{FailureLog, Limit};
use tessera_core::token::{self, Grant, IssuedToken, TokenError, TokenPolicy};
use tessera_core::username::Username;
use tessera_store::{
    ChangeKind, NewUser, RefreshRecord, Store, StoreError, UserRecord, UserUpdate,
};
use tokio::sync::Semaphore;

/// Why a token was refused, as docs/API.md's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed, forged, or naming no user.
    Invalid,
    /// Past its expiry.
    Expired,
    /// The other type of token.
    WrongType,
    /// Blacklisted, older version, revoked family or inactive user.
    Revoked,
}

impl Refusal {
    /// The `reason` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Invalid => "invalid",
            Refusal::Expired => "expired",
            Refusal::WrongType => "wrong_type",
            Refusal::Revoked => "revoked",
        }
    }
}

impl From<TokenError> for Refusal {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => Refusal::Invalid,
            TokenError::Expired => Refusal::Expired,
            TokenError::WrongType => Refusal::WrongType,
        }
    }
}

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
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that should not happen (a lost worker thread, a signing failure).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        AuthError::Token(e.into())
    }
}

fn field_error(field: &str, message: impl Into<String>) -> AuthError {
    let mut errors = FieldErrors::new();
    errors.insert(field.to_owned(), vec![message.into()]);
    AuthError::Fields(errors)
}

/// A user as the rest of the server sees it: everything but the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Normalised username.
    pub username: String,
    /// Email, `""` when none.
    pub email: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Superuser flag.
    pub is_superuser: bool,
    /// Active flag.
    pub is_active: bool,
    /// Current token version.
    pub token_version: i64,
    /// Unix seconds.
    pub date_joined: i64,
    /// Unix seconds.
    pub last_login: Option<i64>,
    /// The row's revision: higher is newer.
    pub revision: i64,
}

impl From<UserRecord> for User {
    fn from(r: UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username,
            email: r.email,
            is_staff: r.is_staff,
            is_superuser: r.is_superuser,
            is_active: r.is_active,
            token_version: r.token_version,
            date_joined: r.date_joined,
            last_login: r.last_login,
            revision: r.revision,
        }
    }
}

impl User {
    fn standing(&self) -> UserStanding {
        UserStanding {
            token_version: self.token_version,
            is_active: self.is_active,
        }
    }

    fn subject(&self) -> Subject {
        Subject {
            user_id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            is_staff: self.is_staff,
            token_version: self.token_version,
        }
    }
}

/// How tokens travel to the client: in the response body (for an
/// `Authorization` header), or in cookies (browsers), which adds CSRF values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// In the body; the client sends them back in a header.
    Header,
    /// In HttpOnly cookies, with CSRF values for the double-submit check.
    Cookie,
}

/// An access and a refresh token from one login.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The access token.
    pub access: IssuedToken,
    /// The refresh token.
    pub refresh: IssuedToken,
}

/// The result of a refresh: a new access token, and a new refresh token when rotating.
#[derive(Debug, Clone)]
pub struct Refreshed {
    /// The new access token.
    pub access: IssuedToken,
    /// The new refresh token, when rotation is on.
    pub refresh: Option<IssuedToken>,
}

/// What a new account needs.
#[derive(Debug, Clone, Copy)]
pub struct NewAccount<'a> {
    /// Username as typed (normalised here).
    pub username: &'a str,
    /// Password in clear; hashed here.
    pub password: &'a str,
    /// Email, `""` for none.
    pub email: &'a str,
    /// Staff and superuser (the `createsuperuser` command).
    pub superuser: bool,
    /// The client's address, for the signup rate limit; `None` from the CLI.
    pub client: Option<IpAddr>,
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
}

/// The domain service: owns the store, the keys and the in-memory state.
pub struct Authority {
    settings: Settings,
    policy: TokenPolicy,
    passwords: PasswordPolicy,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<KeyRing>>,
    revocations: RwLock<RevocationSet>,
    users: Users,
    /// Bounds how many password hashes run at once, so that a login storm
    /// queues here instead of taking every blocking thread and all the CPU.
    hashing: Semaphore,
    /// Password checks waiting for a hashing permit (the queue a login storm builds).
    hashing_queued: std::sync::atomic::AtomicUsize,
    last_change: AtomicI64,
    /// Whether the last sync succeeded (see [`Authority::synced`]).
    synced: AtomicBool,
    /// Failed logins by username and by client address (docs/API.md).
    login_failures: Option<Mutex<LoginFailures>>,
    /// Signups by client address.
    signups: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// The two failure logs of login throttling: a key of one never meets the other's.
struct LoginFailures {
    by_username: FailureLog,
    by_address: FailureLog,
}

/// Keys remembered per failure log, whatever an attacker invents; far above
/// what hashing lets through in a minute.
const MAX_THROTTLE_KEYS: usize = 100_000;

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding a lock cannot leave these maps half-updated in a
    // way that matters more than refusing service, so keep going.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Authority {
    /// Loads keys, users and revocation markers from `store` (already migrated).
    pub async fn open(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let now = clock.now();
        // Read the change log's position before anything else: whatever is
        // committed after it (a key rotation while the keys load, a
        // deactivation while the users load) is replayed by `sync`, and
        // replaying is idempotent.
        let last_change = store.latest_change().await?;
        let ring = keyring::load_at_start(&settings, store.as_ref(), now).await?;
        let users = Users::new(store.all_users().await?);
        let mut revocations = RevocationSet::new();
        load_markers(
            store.as_ref(),
            &mut revocations,
            now,
            settings.leeway.as_secs() as i64,
        )
        .await?;
        let policy = TokenPolicy {
            access_lifetime: settings.access_seconds(),
            refresh_lifetime: settings.refresh_seconds(),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway.as_secs() as i64,
            user_id_claim: settings.user_id_claim.clone(),
            extra_claims: settings.extra_claims.clone(),
        };
        let passwords = PasswordPolicy {
            min_length: settings.password_min_length,
        };
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let login_failures = settings.login_failures_per_minute().map(|failures| {
            let limit = Limit {
                failures,
                window_ms: 60_000,
            };
            Mutex::new(LoginFailures {
                by_username: FailureLog::new(limit, MAX_THROTTLE_KEYS),
                by_address: FailureLog::new(limit, MAX_THROTTLE_KEYS),
            })
        });
        let signups = settings.signup_rate_limit.and_then(|rate| {
            let burst = NonZeroU32::new(rate.count)?;
            let quota = Quota::with_period(rate.per / rate.count)?.allow_burst(burst);
            Some(RateLimiter::keyed(quota))
        });
        Ok(Self {
            settings,
            policy,
            passwords,
            store,
            clock,
            keys: RwLock::new(Arc::new(ring)),
            revocations: RwLock::new(revocations),
            users,
            hashing: Semaphore::new(parallel),
            hashing_queued: Default::default(),
            last_change: AtomicI64::new(last_change),
            synced: AtomicBool::new(true),
            login_failures,
            signups,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current time, seconds.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The key ring in force.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        read(&self.keys).clone()
    }

    /// The public JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        self.key_ring().jwks(self.now())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        self.hashing_queued.fetch_add(1, Ordering::AcqRel);
        let permit = self.hashing.acquire().await;
        self.hashing_queued.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(|_| AuthError::Internal("hashing pool closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| AuthError::Internal("hashing task failed".into()))
    }

    /// Keeps `record` in memory unless a newer copy is there; returns the
    /// newest copy, which is the one to act on.
    fn remember(&self, record: UserRecord) -> Arc<User> {
        self.users.remember(record)
    }

    /// The user with this id: from memory, or from the store on a miss (a
    /// user created by another process a moment ago).
    pub async fn user(&self, id: i64) -> Result<Option<Arc<User>>, AuthError> {
        if let Some(user) = self.users.get(id) {
            return Ok(Some(user));
        }
        Ok(self.store.user_by_id(id).await?.map(|r| self.remember(r)))
    }

    /// Creates an account after checking the username and password rules.
    pub async fn signup(&self, account: NewAccount<'_>) -> Result<Arc<User>, AuthError> {
        if let (Some(limiter), Some(client)) = (&self.signups, account.client)
            && let Err(not_until) = limiter.check_key(&client)
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            telemetry::throttled();
            return Err(AuthError::Throttled(wait.as_secs().max(1)));
        }
        let mut errors = FieldErrors::new();
        let username = match Username::parse(account.username) {
            Ok(u) => Some(u),
            Err(e) => {
                errors.insert("username".into(), vec![e.to_string()]);
                None
            }
        };
        if let Some(u) = &username
            && self.store.user_by_username(u.as_str()).await?.is_some()
        {
            errors.insert("username".into(), vec![USERNAME_TAKEN.into()]);
        }
        let checked_name = username.as_ref().map_or(account.username, Username::as_str);
        if let Err(messages) = self
            .passwords
            .check(account.password, checked_name, account.email)
        {
            errors.insert("password".into(), messages);
        }
        if account.email.len() > 254
            || (!account.email.is_empty() && !looks_like_email(account.email))
        {
            errors.insert("email".into(), vec!["Enter a valid email address.".into()]);
        }
        let Some(username) = username.filter(|_| errors.is_empty()) else {
            return Err(AuthError::Fields(errors));
        };
        let clear = account.password.to_owned();
        let hash = self
            .blocking(move || password::hash(&clear))
            .await?
            .map_err(|e| AuthError::Internal(format!("hashing failed: {e}")))?;
        let created = self
            .store
            .create_user(NewUser {
                username: username.into_string(),
                email: account.email.to_owned(),
                password_hash: hash,
                is_staff: account.superuser,
                is_superuser: account.superuser,
                date_joined: self.now(),
            })
            .await;
        match created {
            Ok(record) => Ok(self.remember(record)),
            Err(StoreError::UsernameTaken) => Err(field_error("username", USERNAME_TAKEN)),
            Err(e) => Err(e.into()),
        }
    }

    /// A password login: a new family with a fresh access token and a refresh token.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: IpAddr,
        transport: Transport,
    ) -> Result<(TokenPair, Arc<User>), AuthError> {
        let name = Username::parse(username);
        // Throttle by the name as it will be looked up, so that variants
        // which normalise alike share one count.
        let user_key = match &name {
            Ok(n) => n.as_str().to_owned(),
            Err(_) => username.chars().take(200).collect(),
        };
        let address_key = client.to_string();
        self.check_login_throttle(&user_key, &address_key)?;
        let record = match name {
            Ok(name) => self.store.user_by_username(name.as_str()).await?,
            Err(_) => None,
        };
        let clear = password.to_owned();
        // Unknown users cost one hash too, so that timing does not tell them apart.
        let stored_hash = record.as_ref().map(|r| r.password_hash.clone());
        let matches = self
            .blocking(move || match stored_hash {
                Some(hash) => password::verify(&clear, &hash),
                None => password::verify_dummy(&clear),
            })
            .await?;
        let record = match record {
            Some(r) if matches && r.is_active => r,
            _ => {
                telemetry::login(false);
                self.record_login_failure(&user_key, &address_key);
                return Err(AuthError::NoActiveAccount);
            }
        };
        // The row read above is as old as the hash is slow: decide on the row
        // as the login's own write leaves it (a deactivation or password
        // change may have landed in between), and on memory if it is newer.
        let now = self.now();
        let user = match self.store.record_login(record.id, now).await? {
            Some(current) => self.remember(current),
            None => return Err(AuthError::NoActiveAccount),
        };
        if !user.is_active || user.token_version != record.token_version {
            telemetry::login(false);
            return Err(AuthError::NoActiveAccount);
        }
        telemetry::login(true);
        // The username's count restarts; the address's does not, or an
        // attacker could reset it by logging in to an account of their own.
        if let Some(failures) = &self.login_failures {
            lock(failures).by_username.clear(&user_key);
        }
        let fid = new_token_id();
        let pair = TokenPair {
            access: self.mint(&user, TokenType::Access, &fid, true, transport, now)?,
            refresh: self.mint(&user, TokenType::Refresh, &fid, false, transport, now)?,
        };
        self.store
            .record_refresh_token(&refresh_record(&pair.refresh, user.id))
            .await?;
        Ok((pair, user))
    }

    fn check_login_throttle(&self, user_key: &str, address_key: &str) -> Result<(), AuthError> {
        let Some(failures) = &self.login_failures else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let failures = lock(failures);
        let wait = failures
            .by_username
            .retry_after(user_key, now)
            .max(failures.by_address.retry_after(address_key, now));
        match wait {
            Some(seconds) => {
                telemetry::throttled();
                Err(AuthError::Throttled(seconds))
            }
            None => Ok(()),
        }
    }

    fn record_login_failure(&self, user_key: &str, address_key: &str) {
        if let Some(failures) = &self.login_failures {
            let now = self.clock.now_ms();
            let mut failures = lock(failures);
            failures.by_username.record(user_key, now);
            failures.by_address.record(address_key, now);
        }
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
    ) -> Result<(VerifiedClaims, Arc<User>), AuthError> {
        let now = self.now();
        let claims = token::validate(&self.policy, &self.key_ring(), token, expected, now)?;
        let user = self
            .user(claims.user_id)
            .await?
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        read(&self.revocations)
            .check(&claims, user.standing())
            .map_err(|_| AuthError::Token(Refusal::Revoked))?;
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
    ) -> Result<(VerifiedClaims, Arc<User>), AuthError> {
        self.check(token, Some(TokenType::Access)).await
    }

    /// Exchanges a refresh token for a new access token (and a new refresh
    /// token when rotating). A blacklisted refresh token presented again is a
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
    ) -> Result<Refreshed, AuthError> {
        let now = self.now();
        let claims = token::validate(
            &self.policy,
            &self.key_ring(),
            token,
            Some(TokenType::Refresh),
            now,
        )?;
        if transport == Transport::Cookie {
            Self::check_csrf(&claims, csrf)?;
        }
        let user = self
            .user(claims.user_id)
            .await?
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        let reused = read(&self.revocations).is_blacklisted(&claims.jti);
        if reused {
            self.on_reuse(&claims, now).await?;
            return Err(AuthError::Token(Refusal::Revoked));
        }
        read(&self.revocations)
            .check(&claims, user.standing())
            .map_err(|_| AuthError::Token(Refusal::Revoked))?;
        let access = self.mint(&user, TokenType::Access, &claims.fid, false, transport, now)?;
        if !self.settings.rotate_refresh_tokens {
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
            // One conditional write decides among concurrent refreshes of the
            // same token: the others find it blacklisted, which is a reuse.
            if !self
                .store
                .rotate_refresh_token(&old, &new_record, now)
                .await?
            {
                write(&self.revocations).blacklist(&claims.jti, claims.exp);
                self.on_reuse(&claims, now).await?;
                return Err(AuthError::Token(Refusal::Revoked));
            }
            write(&self.revocations).blacklist(&claims.jti, claims.exp);
        } else {
            self.store.record_refresh_token(&new_record).await?;
        }
        telemetry::refreshed();
        Ok(Refreshed {
            access,
            refresh: Some(new),
        })
    }

    async fn on_reuse(&self, claims: &VerifiedClaims, now: i64) -> Result<(), AuthError> {
        if !self.settings.reuse_detection {
            return Ok(());
        }
        telemetry::reuse_detected();
        tracing::warn!(
            user_id = claims.user_id,
            "refresh token reused; revoking its family"
        );
        self.revoke_family(&claims.fid, claims.user_id, now).await
    }

    /// Ends a family (a login and everything refreshed from it).
    pub async fn revoke_family(&self, fid: &str, user_id: i64, now: i64) -> Result<(), AuthError> {
        // No token of the family can outlive this: the longest lifetime from now.
        let until = now
            + self
                .policy
                .refresh_lifetime
                .max(self.policy.access_lifetime)
            + self.policy.leeway;
        self.store.revoke_family(fid, user_id, until, now).await?;
        write(&self.revocations).revoke_family(fid, until);
        telemetry::revoked("family");
        Ok(())
    }

    /// Blacklists a refresh token (simplejwt's blacklist endpoint).
    pub async fn blacklist(&self, token: &str) -> Result<(), AuthError> {
        let (claims, _) = self.check(token, Some(TokenType::Refresh)).await?;
        if !self.blacklist_claims(&claims).await? {
            return Err(AuthError::Token(Refusal::Revoked));
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
            telemetry::revoked("token");
        }
        Ok(newly)
    }

    /// RFC 7009 revocation: a valid token of either type is blacklisted (an
    /// access token by its `jti`); an unknown, invalid or expired token is
    /// not an error.
    pub async fn revoke_token(&self, token: &str) -> Result<(), AuthError> {
        match self.check(token, None).await {
            Ok((claims, _)) => {
                self.blacklist_claims(&claims).await?;
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
            Ok((claims, _)) => Ok(Some(claims.raw)),
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
        self.revoke_family(&claims.fid, claims.user_id, self.now())
            .await
    }

    /// Changes the caller's password. Needs a fresh token (from a password
    /// login) and the old password; every token issued before is refused after.
    pub async fn change_password(
        &self,
        claims: &VerifiedClaims,
        old: &str,
        new: &str,
    ) -> Result<(), AuthError> {
        if !claims.fresh {
            return Err(AuthError::FreshTokenRequired);
        }
        let record = self
            .store
            .user_by_id(claims.user_id)
            .await?
            .ok_or(AuthError::Token(Refusal::Invalid))?;
        let (clear, hash) = (old.to_owned(), record.password_hash.clone());
        if !self
            .blocking(move || password::verify(&clear, &hash))
            .await?
        {
            return Err(field_error(
                "old_password",
                "Your old password was entered incorrectly. Please enter it again.",
            ));
        }
        if let Err(messages) = self.passwords.check(new, &record.username, &record.email) {
            let mut errors = FieldErrors::new();
            errors.insert("new_password".into(), messages);
            return Err(AuthError::Fields(errors));
        }
        let clear = new.to_owned();
        let hash = self
            .blocking(move || password::hash(&clear))
            .await?
            .map_err(|e| AuthError::Internal(format!("hashing failed: {e}")))?;
        let update = UserUpdate {
            password_hash: Some(hash),
            bump_token_version: true,
            ..Default::default()
        };
        self.update_user(record.id, update).await?;
        Ok(())
    }

    /// One page of users, ordered by id, and the total count.
    pub async fn list_users(&self, offset: i64, limit: i64) -> Result<(i64, Vec<User>), AuthError> {
        let count = self.store.count_users().await?;
        let users = self.store.list_users(offset, limit).await?;
        Ok((count, users.into_iter().map(User::from).collect()))
    }

    /// An administrator's change of a user's flags. Deactivation also raises
    /// the token version, so the user's tokens stop working at once.
    pub async fn set_user_flags(
        &self,
        id: i64,
        is_active: Option<bool>,
        is_staff: Option<bool>,
    ) -> Result<Option<Arc<User>>, AuthError> {
        let update = UserUpdate {
            is_active,
            is_staff,
            bump_token_version: is_active == Some(false),
            ..Default::default()
        };
        self.update_user(id, update).await
    }

    /// Refuses every token of the user issued until now.
    pub async fn revoke_user(&self, id: i64) -> Result<Option<Arc<User>>, AuthError> {
        let update = UserUpdate {
            bump_token_version: true,
            ..Default::default()
        };
        self.update_user(id, update).await
    }

    /// An access token for `username` with a chosen lifetime (service tokens,
    /// tests): a family of its own, not fresh.
    pub async fn issue_access_token(
        &self,
        username: &str,
        lifetime: Option<i64>,
    ) -> Result<IssuedToken, AuthError> {
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
        let grant = Grant {
            token_type: TokenType::Access,
            fid: &new_token_id(),
            fresh: false,
            extra: None,
            csrf: None,
        };
        token::issue(
            &policy,
            &self.key_ring(),
            &user.subject(),
            &grant,
            self.now(),
        )
        .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))
    }

    /// Generates a key for `alg` that signs from now on; returns its kid.
    pub async fn rotate_keys(&self, alg: tessera_core::Algorithm) -> Result<String, KeyLoadError> {
        let kid = keyring::rotate(&self.settings, self.store.as_ref(), alg, self.now()).await?;
        self.reload_keys().await;
        Ok(kid)
    }

    /// The user with this username, from the store.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, AuthError> {
        let Ok(name) = Username::parse(username) else {
            return Ok(None);
        };
        Ok(self
            .store
            .user_by_username(name.as_str())
            .await?
            .map(User::from))
    }

    /// Changes a user's flags or password hash (and raises the token version
    /// when asked), applying the change to this process at once.
    pub async fn update_user(
        &self,
        id: i64,
        update: UserUpdate,
    ) -> Result<Option<Arc<User>>, AuthError> {
        if update.bump_token_version {
            telemetry::revoked("user");
        }
        let record = self.store.update_user(id, update, self.now()).await?;
        Ok(record.map(|r| self.remember(r)))
    }

    /// Applies writes made by other processes since the last call; returns
    /// how many changes were read. A gap in the change log (rows pruned while
    /// this process was behind) means changes were missed: then everything is
    /// loaded again.
    pub async fn sync(&self) -> Result<usize, StoreError> {
        const BATCH: i64 = 1000;
        let mut total = 0;
        loop {
            let after = self.last_change.load(Ordering::Acquire);
            let changes = self.store.changes_since(after, BATCH).await?;
            if let Some(first) = changes.first()
                && first.id != after + 1
            {
                tracing::warn!(
                    applied = after,
                    next = first.id,
                    "the change log has a gap (pruned while this process was behind); reloading all state"
                );
                self.reload_all().await?;
                return Ok(total + changes.len());
            }
            for change in &changes {
                match change.kind {
                    Some(ChangeKind::User) => {
                        if let Ok(id) = change.subject.parse::<i64>() {
                            match self.store.user_by_id(id).await? {
                                Some(record) => {
                                    self.remember(record);
                                }
                                None => self.users.forget(id),
                            }
                        }
                    }
                    Some(ChangeKind::Jti) => {
                        let until = change.expires_at.unwrap_or(i64::MAX);
                        write(&self.revocations).blacklist(&change.subject, until);
                    }
                    Some(ChangeKind::Family) => {
                        let until = change.expires_at.unwrap_or(i64::MAX);
                        write(&self.revocations).revoke_family(&change.subject, until);
                    }
                    Some(ChangeKind::Keys) => self.reload_keys().await,
                    None => {}
                }
                self.last_change.store(change.id, Ordering::Release);
            }
            total += changes.len();
            if (changes.len() as i64) < BATCH {
                return Ok(total);
            }
        }
    }

    /// Loads users, revocation markers and keys again, and resumes the
    /// change log from where the reload began.
    async fn reload_all(&self) -> Result<(), StoreError> {
        let position = self.store.latest_change().await?;
        self.users.reload(self.store.all_users().await?);
        let mut markers = RevocationSet::new();
        load_markers(
            self.store.as_ref(),
            &mut markers,
            self.now(),
            self.policy.leeway,
        )
        .await?;
        write(&self.revocations).merge(markers);
        self.reload_keys().await;
        self.last_change.store(position, Ordering::Release);
        Ok(())
    }

    /// How many password checks wait for a hashing permit now.
    pub fn hashing_queued(&self) -> usize {
        self.hashing_queued.load(Ordering::Acquire)
    }

    /// The id of the last change-log entry applied to memory.
    pub fn applied_change(&self) -> i64 {
        self.last_change.load(Ordering::Acquire)
    }

    /// Whether the last sync from the change log succeeded: while it fails,
    /// other processes' revocations do not arrive and readiness says so.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Records the outcome of a sync (the supervisor's report).
    pub fn set_synced(&self, ok: bool) {
        self.synced.store(ok, Ordering::Release);
    }

    async fn reload_keys(&self) {
        match keyring::reload(&self.settings, self.store.as_ref(), self.now()).await {
            Ok(Some(ring)) => *write(&self.keys) = Arc::new(ring),
            Ok(None) => {}
            // Keep the keys in force: a bad new key must not stop verification.
            Err(e) => tracing::error!(error = %e, "could not reload signing keys"),
        }
    }

    /// Deletes expired rows from the store (see [`Store::prune`]).
    pub async fn prune_store(&self) -> Result<u64, StoreError> {
        // An hour of change log is far more than any running process needs.
        let now = self.now();
        self.store.prune(now - self.policy.leeway, now - 3600).await
    }

    /// Forgets revocation markers whose tokens have all expired.
    pub fn prune(&self) {
        let now = self.now();
        // Markers outlive their tokens' exp by the leeway the tokens still enjoy.
        write(&self.revocations).prune(now - self.policy.leeway);
        if let Some(failures) = &self.login_failures {
            let now_ms = self.clock.now_ms();
            let mut failures = lock(failures);
            failures.by_username.prune(now_ms);
            failures.by_address.prune(now_ms);
        }
        if let Some(signups) = &self.signups {
            signups.retain_recent();
            signups.shrink_to_fit();
        }
    }
}

const USERNAME_TAKEN: &str = "A user with that username already exists.";

/// The stored form of a token known by its verified claims.
/// Adds every revocation marker still in force to `set`.
async fn load_markers(
    store: &dyn Store,
    set: &mut RevocationSet,
    now: i64,
    leeway: i64,
) -> Result<(), StoreError> {
    // A token is accepted until exp + leeway, so its marker must last as long.
    let markers = store.revocations(now - leeway).await?;
    for (jti, until) in &markers.jtis {
        set.blacklist(jti, *until);
    }
    for (fid, until) in &markers.families {
        set.revoke_family(fid, *until);
    }
    Ok(())
}

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

/// Django's EmailValidator in spirit: one `@`, a non-empty local part, a
/// dotted domain, no whitespace or control characters.
fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}
