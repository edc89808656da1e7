//! The domain: accounts, login, refresh, verification and revocation, knowing
//! nothing of HTTP. Handlers call one method here each.
//!
//! Verifying an access token touches only memory: the key ring, the
//! revocation markers and each user's standing are loaded at start, updated on
//! every write this process makes, and brought up to date with writes of other
//! processes by [`Authority::sync`] (polled by the server).
//!
//! One type, in files along its seams: `sessions` (login, tokens, refresh,
//! revocation), `accounts` (signup, password change, administration),
//! `throttling` (login failures and the signup limit), `state` (the users in
//! memory, which never go backwards) and `sync` (following the change log).

mod accounts;
mod audit_trail;
mod grace;
mod hash_pool;
mod model;
mod recovery;
pub use accounts::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, UserChange, UsersPage};
pub use audit_trail::{AUDIT_EVENTS, AuditPage};
pub use model::{
    LoginMethod, NewAccount, Refreshed, SessionOrigin, TokenPair, Transport, User, client_key,
};
pub use sessions::MAX_ISSUED_LIFETIME;
pub use sync::NotReady;
mod session_list;
mod sessions;
mod shared_counts;
mod state;
mod sync;
#[cfg(test)]
mod tests;
mod throttled_log;
mod throttling;

use crate::config::Settings;
use crate::keyring::{self, KeyLoadError};
use crate::telemetry;
use hash_pool::HashPool;
use state::Users;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tessera_core::claims::{TokenType, VerifiedClaims, new_token_id, secrets_match};
use tessera_core::clock::Clock;
use tessera_core::keys::KeyRing;
use tessera_core::password::{self, HashMemory, PasswordPolicy};
use tessera_core::revocation::RevocationSet;
use tessera_core::token::{self, Grant, IssuedToken, TokenPolicy};
use tessera_core::username::Username;
use tessera_core::verified::VerifiedTokens;
use tessera_store::{
    ChangeKind, NewUser, RefreshRecord, Rehash, SessionRecord, Store, StoreError, UserRecord,
    UserUpdate,
};
use throttling::Throttle;
use tokio::sync::Semaphore;

pub use tessera_core::Refusal;

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
    /// Signup is closed (`signup_enabled = false`) to clients.
    #[error("signup is closed")]
    SignupClosed,
    /// A staff user who is not a superuser acting on a superuser.
    #[error("only a superuser may change a superuser, revoke its tokens or end its sessions")]
    NotSuperuser,
    /// A change that would leave no active staff user.
    #[error("the last active staff user cannot be deactivated or lose staff status")]
    LastActiveStaff,
    /// A page number past the last page, or not a page number.
    #[error("invalid page")]
    InvalidPage,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A login whose password was right, of a user whose address is not
    /// verified while `email_verification = required`.
    #[error("email address not verified")]
    EmailNotVerified,
    /// Password reset and verification need `smtp_url` and `public_url`.
    #[error("email is not configured")]
    EmailUnavailable,
    /// Something that should not happen (a lost worker thread, a signing failure).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Refusal> for AuthError {
    fn from(refusal: Refusal) -> Self {
        AuthError::Token(refusal)
    }
}

fn field_error(field: &str, message: impl Into<String>) -> AuthError {
    let mut errors = FieldErrors::new();
    errors.insert(field.to_owned(), vec![message.into()]);
    AuthError::Fields(errors)
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
    /// The mail settings cannot be used (`mail_templates`, or
    /// `email_verification` without `smtp_url` and `public_url`).
    #[error("{0}")]
    Mail(String),
}

/// The domain service: owns the store, the keys and the in-memory state.
pub struct Authority {
    settings: Settings,
    policy: TokenPolicy,
    passwords: PasswordPolicy,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: RwLock<Arc<KeyRing>>,
    /// Tokens whose signature and claims were verified (against the ring in
    /// `keys`); revocation is still checked on every request.
    verified: VerifiedTokens,
    revocations: RwLock<RevocationSet>,
    users: Users,
    /// Bounds how many password hashes run at once, so that a login storm
    /// queues here instead of taking every blocking thread and all the CPU.
    hashing: Arc<Semaphore>,
    /// Argon2's working memory, reused while hashes come.
    hash_memory: Arc<HashPool>,
    /// Where security events go.
    audit: crate::audit::AuditLog,
    /// Password checks waiting for a hashing permit (the queue a login storm builds).
    hashing_queued: std::sync::atomic::AtomicUsize,
    last_change: AtomicI64,
    /// Whether the last sync succeeded (see [`Authority::synced`]).
    synced: AtomicBool,
    /// Login failures and signups counted per username and client address.
    throttle: Throttle,
    /// Refused login attempts, as the audit log is told of them (one event
    /// per client a minute).
    throttled_log: throttled_log::ThrottledLog,
    /// Woken after each write of this process that other instances must
    /// learn of (see [`Authority::writes`]).
    written: Arc<tokio::sync::Notify>,
    /// The refresh grace period (`refresh_grace_period`).
    grace: grace::Grace,
    /// When (ms) keys were last read again for a token with an unknown kid.
    kid_reload_ms: AtomicI64,
    /// When (ms) a request was last answered 503 because the database could
    /// not serve it (full disk, locked, unreachable): `/readyz` says
    /// unavailable for a while after.
    store_refused_ms: AtomicI64,
    /// The origin of the absolute URLs given out, fixed once serving begins.
    public_origin: std::sync::OnceLock<Arc<str>>,
    /// Composes recovery mail; `None` without `smtp_url` and `public_url`.
    letters: Option<crate::mail::Letters>,
    /// Woken when mail is written to the outbox (the sender waits on it).
    mail_written: Arc<tokio::sync::Notify>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding a lock cannot leave these maps half-updated in a
    // way that matters more than refusing service, so keep going.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Whether opening the authority may put a signing key in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// `tessera serve` at start: a key of the configured algorithm is put in
    /// service when none is.
    Serve,
    /// Every other command: the keys in service, as they are.
    Existing,
}

impl Authority {
    /// Fixes the origin of the absolute URLs this authority gives out
    /// (discovery, paging links): `public_url` when set, else `fallback`, the
    /// address the server is bound to. The first call wins.
    pub fn set_public_origin(&self, fallback: std::net::SocketAddr) {
        let origin = match &self.settings.public_url {
            Some(url) => url.clone(),
            None => format!("http://{fallback}"),
        };
        let _ = self.public_origin.set(origin.into());
    }

    /// The origin fixed by [`Authority::set_public_origin`]; `public_url`
    /// (or `http://localhost`) before the server is bound.
    pub fn public_origin(&self) -> Arc<str> {
        match self.public_origin.get() {
            Some(origin) => origin.clone(),
            None => self
                .settings
                .public_url
                .as_deref()
                .unwrap_or("http://localhost")
                .into(),
        }
    }

    /// Loads keys, users and revocation markers from `store` (already
    /// migrated), to serve: a key of the configured algorithm is put in
    /// service if none is.
    pub async fn open(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        Self::open_with(settings, store, clock, KeyUse::Serve).await
    }

    /// Loads keys, users and revocation markers as `keys` says.
    pub async fn open_with(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: KeyUse,
    ) -> Result<Self, StartError> {
        let now = clock.now();
        let letters = crate::mail::Letters::from_settings(&settings).map_err(StartError::Mail)?;
        // Read the change log's position before anything else: whatever is
        // committed after it (a key rotation while the keys load, a
        // deactivation while the users load) is replayed by `sync`, and
        // replaying is idempotent.
        let last_change = store.latest_change().await?;
        let ring = match keys {
            KeyUse::Serve => {
                keyring::load_at_start(&settings, store.as_ref(), clock.as_ref()).await?
            }
            KeyUse::Existing => {
                keyring::load_existing(&settings, store.as_ref(), clock.as_ref()).await?
            }
        };
        let users = Users::new(store.all_users().await?);
        let mut revocations = RevocationSet::new();
        sync::load_markers(
            store.as_ref(),
            &mut revocations,
            now,
            settings.leeway.as_secs() as i64,
        )
        .await?;
        let policy = settings.token_policy();
        let passwords = PasswordPolicy {
            min_length: settings.password_min_length,
        };
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
        let throttle = Throttle::new(&settings, clock.clone());
        let audit = crate::audit::AuditLog::start(store.clone());
        let grace = grace::Grace::new(settings.refresh_grace_period);
        Ok(Self {
            settings,
            policy,
            passwords,
            store,
            clock,
            keys: RwLock::new(Arc::new(ring)),
            verified: VerifiedTokens::default(),
            revocations: RwLock::new(revocations),
            users,
            hashing: Arc::new(Semaphore::new(parallel)),
            hash_memory: Arc::default(),
            audit,
            hashing_queued: Default::default(),
            last_change: AtomicI64::new(last_change),
            synced: AtomicBool::new(true),
            throttle,
            written: Arc::default(),
            grace,
            kid_reload_ms: AtomicI64::new(i64::MIN),
            store_refused_ms: AtomicI64::new(i64::MIN),
            throttled_log: throttled_log::ThrottledLog::default(),
            public_origin: std::sync::OnceLock::new(),
            letters,
            mail_written: Arc::default(),
        })
    }

    /// With `redis_url`: whether the throttling counts are shared through
    /// Redis now (`false` while it cannot be reached); `None` without it.
    pub fn throttling_is_shared(&self) -> Option<bool> {
        self.throttle.is_shared()
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Woken (one stored wake-up, so bursts fold into one) after every write
    /// of this process that changes whether some token is accepted: what
    /// announces changes to other instances (Redis) waits on it.
    pub fn writes(&self) -> Arc<tokio::sync::Notify> {
        self.written.clone()
    }

    /// Tells [`Self::writes`] that the change log grew.
    fn announce(&self) {
        self.written.notify_one();
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

    /// Runs `work` off the runtime under a hashing permit. The permit is
    /// held by the work itself: a request that goes away does not free it
    /// while its hash still runs.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        self.hashing_queued.fetch_add(1, Ordering::AcqRel);
        let permit = self.hashing.clone().acquire_owned().await;
        self.hashing_queued.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|_| AuthError::Internal("hashing pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| AuthError::Internal("hashing task failed".into()))
    }

    /// [`Self::blocking`] for a password hash, with working memory from the
    /// pool ([`HashPool`]).
    async fn hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let pool = self.hash_memory.clone();
        let (result, memory) = self
            .blocking(move || {
                let mut memory = pool.take();
                let result = work(&mut memory);
                (result, memory)
            })
            .await?;
        self.hash_memory.give_back(memory);
        Ok(result)
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

    /// Appends a security event to the audit log, without waiting.
    /// `detail` must hold no password, hash or token.
    fn audit(
        &self,
        event: &str,
        user_id: Option<i64>,
        actor_id: Option<i64>,
        origin: Option<&SessionOrigin>,
        detail: serde_json::Value,
    ) {
        self.audit.record(tessera_store::AuditEvent {
            at: self.now(),
            event: event.to_owned(),
            user_id,
            actor_id,
            ip: origin.map(|o| o.ip.to_string()).unwrap_or_default(),
            user_agent: origin.map(|o| o.user_agent.clone()).unwrap_or_default(),
            detail: detail.to_string(),
        });
    }

    /// The audit log's writer (to flush it).
    pub fn audit_log(&self) -> &crate::audit::AuditLog {
        &self.audit
    }

    /// How many password checks wait for a hashing permit now.
    pub fn hashing_queued(&self) -> usize {
        self.hashing_queued.load(Ordering::Acquire)
    }
}
