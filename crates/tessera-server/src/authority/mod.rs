//! The domain: accounts, login, refresh, verification and revocation, knowing
//! nothing of HTTP. [`Authority`] is a thin front over parts that each own
//! their state privately and reach one another only through methods:
//!
//! - [`keys`]: the key ring, the verified-token cache, the one reload for an
//!   unknown `kid` (one rate limiter) and rotation;
//! - `live`: the users in memory, the revocation markers, the change-log
//!   cursor and whether it is followed, and [`Authority::sync`], the one
//!   place the change log is applied to them;
//! - [`tokens`]: issuing, checking and refreshing tokens (rotation, grace
//!   period, reuse);
//! - [`sessions`]: logins (with their second step), logouts and the
//!   sessions a user sees;
//! - [`mfa`]: second factors (TOTP, recovery codes, the challenges of
//!   logins waiting for one);
//! - [`accounts`]: signup, passwords, administration (roles and metadata,
//!   checked by [`user_claims`]), the audit log's pages;
//! - [`recovery`]: password reset and email verification by mail;
//! - [`clients`]: service clients (the `client_credentials` grant), and the
//!   check of their tokens by the endpoints for services;
//! - `throttling` (login failures, signups, tokens per user) and `hashing`
//!   (password work off the runtime), used by the parts above;
//! - [`feed`]: the revocation feed other services follow (snapshot and
//!   streams), published by the sync;
//! - [`serving`]: the public origin and the database's refusals, for `/readyz`;
//! - `common`: the settings, store, clock and audit log every part uses.
//!
//! Verifying an access token touches only memory: the key ring, the
//! revocation markers and each user's standing are loaded at start, updated on
//! every write this process makes, and brought up to date with writes of other
//! processes by [`Authority::sync`] (polled by the server).

pub mod accounts;
mod audit_trail;
pub mod clients;
mod common;
mod error;
pub mod feed;
mod grace;
mod hash_pool;
mod hashing;
pub mod keys;
mod live;
pub use live::follow::{FOLLOWING_TASKS, start as start_following};
mod logins;
pub mod mfa;
mod model;
pub mod recovery;
pub mod serving;
pub mod sessions;
mod shared_counts;
#[cfg(test)]
mod tests;
mod throttled_log;
mod throttling;
pub mod tokens;
pub mod user_claims;

pub use accounts::Accounts;
use accounts::only_superusers_touch_superusers;
pub use audit_trail::{AuditKind, AuditPage};
pub use clients::Clients;
pub use feed::Feed;
pub use keys::Keys;
pub use mfa::{
    EnrolmentGrant, EnrolmentRequired, FactorCaller, Mfa, NewPasskey, PasskeyView, Passkeys,
    SecondFactorAnswer, SecondFactorChallenge, TotpEnrolment,
};
pub use model::{
    DEFAULT_PAGE_SIZE, LoginMethod, MAX_PAGE_SIZE, NewAccount, Refreshed, SessionOrigin, TokenPair,
    Transport, User, UserChange, UsersPage, client_key,
};
pub use recovery::Recovery;
pub use serving::Serving;
pub use sessions::Sessions;
pub use tokens::{MAX_ISSUED_LIFETIME, Tokens};

use crate::config::Settings;
use common::Common;
use hashing::Hashing;
use live::Live;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tessera_core::clock::Clock;
use tessera_core::password::PasswordPolicy;
use tessera_store::{KeyStore, Store, StoreError};
use throttling::Throttle;

use error::field_error;
pub use error::{AuthError, ClientAuthError, FieldErrors, PasskeyError, StartError};
pub use tessera_core::Refusal;

/// The domain service: a thin front over its parts (see the module doc),
/// with what the server's tasks call (sync, readiness, upkeep, mail).
pub struct Authority {
    common: Arc<Common>,
    keys: Arc<Keys>,
    live: Arc<Live>,
    feed: Arc<Feed>,
    throttle: Arc<Throttle>,
    #[cfg_attr(not(test), allow(dead_code))]
    hashing: Arc<Hashing>,
    tokens: Arc<Tokens>,
    sessions: Sessions,
    mfa: Mfa,
    passkeys: Arc<Passkeys>,
    accounts: Accounts,
    recovery: Arc<Recovery>,
    clients: Clients,
    serving: Serving,
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
        let key_store: Arc<dyn KeyStore> = store.clone();
        Self::assemble(settings, store, key_store, clock, keys).await
    }

    /// [`Authority::open`], its keys kept in `key_store` rather than in
    /// `store`: a test double of the keys alone.
    #[cfg(test)]
    async fn open_with_key_store(
        settings: Settings,
        store: Arc<dyn Store>,
        key_store: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        Self::assemble(settings, store, key_store, clock, KeyUse::Serve).await
    }

    /// The parts, over `store` (and the keys over `key_store`).
    async fn assemble(
        settings: Settings,
        store: Arc<dyn Store>,
        key_store: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
        keys: KeyUse,
    ) -> Result<Self, StartError> {
        let letters = crate::mail::Letters::from_settings(&settings).map_err(StartError::Mail)?;
        // Read the change log's position before anything else: whatever is
        // committed after it (a key rotation while the keys load, a
        // deactivation while the users load) is replayed by `sync`, and
        // replaying is idempotent.
        let position = store.latest_change().await?;
        let passwords = PasswordPolicy {
            min_length: settings.password_min_length,
        };
        let throttle = Arc::new(Throttle::new(&settings, clock.clone()));
        let common = Arc::new(Common::new(settings, store, clock));
        let keys = Arc::new(Keys::open(common.clone(), key_store, keys).await?);
        let feed = Arc::new(Feed::new(common.clone()));
        let live = Arc::new(Live::open(common.clone(), feed.clone(), position).await?);
        let hashing = Arc::new(Hashing::new(passwords));
        let recovery = Arc::new(Recovery::new(
            common.clone(),
            hashing.clone(),
            live.clone(),
            letters,
        ));
        let tokens = Arc::new(Tokens::new(
            common.clone(),
            keys.clone(),
            live.clone(),
            throttle.clone(),
        ));
        let factors = Arc::new(mfa::Factors::new(common.clone()));
        let relying_party =
            mfa::RelyingParty::new(common.settings()).map_err(StartError::Passkeys)?;
        let passkeys = Arc::new(Passkeys::new(
            common.clone(),
            factors.clone(),
            Arc::new(relying_party),
        ));
        let sessions = Sessions::new(
            common.clone(),
            hashing.clone(),
            live.clone(),
            throttle.clone(),
            tokens.clone(),
            recovery.clone(),
            mfa::SecondFactors {
                factors: factors.clone(),
                passkeys: passkeys.clone(),
            },
        );
        let mfa = Mfa::new(common.clone(), factors, throttle.clone());
        let accounts = Accounts::new(
            common.clone(),
            hashing.clone(),
            live.clone(),
            throttle.clone(),
            recovery.clone(),
        );
        let clients = Clients::new(common.clone(), keys.clone(), live.clone(), throttle.clone());
        let serving = Serving::new(common.clone(), throttle.clone());
        Ok(Self {
            common,
            keys,
            live,
            feed,
            throttle,
            hashing,
            tokens,
            sessions,
            mfa,
            passkeys,
            accounts,
            recovery,
            clients,
            serving,
        })
    }

    /// The keys: the ring in force, the JWKS, rotation.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Tokens: checking, refreshing, issuing.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Sessions: login, logout, blacklisting, the session list.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Second factors: a user's enrolment, confirmation and removal of
    /// their TOTP factor, and their recovery codes (the login's second step
    /// is [`Sessions::answer_second_factor`]).
    pub fn mfa(&self) -> &Mfa {
        &self.mfa
    }

    /// Passkeys: a user's registration, list and removal of theirs, and
    /// the beginning of the ceremonies that use one (their answers are
    /// [`Sessions::answer_second_factor`] and
    /// [`Sessions::login_with_passkey`]).
    pub fn passkeys(&self) -> &Passkeys {
        &self.passkeys
    }

    /// Accounts: signup, passwords, administration, the audit log's pages.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Recovery: password reset and email verification by mail.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The revocation feed: snapshots and streams for other services.
    pub fn feed(&self) -> &Arc<Feed> {
        &self.feed
    }

    /// Service clients: administration, the `client_credentials` grant,
    /// and the check of a client's token ([`Clients::authorize`]).
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// Serving: the public origin, the database's refusals, the throttle's sharing.
    pub fn serving(&self) -> &Serving {
        &self.serving
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        self.common.settings()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.common.store()
    }

    /// The current time, seconds.
    pub fn now(&self) -> i64 {
        self.common.now()
    }

    /// Woken (one stored wake-up, so bursts fold into one) after every write
    /// of this process that changes whether some token is accepted: what
    /// announces changes to other instances (Redis) waits on it.
    pub fn writes(&self) -> Arc<tokio::sync::Notify> {
        self.common.writes()
    }

    /// The audit log's writer (to flush it).
    pub fn audit_log(&self) -> &crate::audit::AuditLog {
        self.common.audit_log()
    }

    /// Applies writes made by other processes since the last call (the
    /// change log, applied by the live state); returns how many changes were read.
    pub(in crate::authority) async fn sync(&self) -> Result<usize, StoreError> {
        self.live.sync(&self.keys).await
    }

    /// Whether the last sync from the change log succeeded: while it fails,
    /// other processes' revocations do not arrive and readiness says so.
    pub(in crate::authority) fn synced(&self) -> bool {
        self.live.synced()
    }

    /// Records the outcome of a sync (the supervisor's report).
    pub(in crate::authority) fn set_synced(&self, ok: bool) {
        self.live.set_synced(ok);
    }

    /// Whether this process can serve: the database answers (within 2 s),
    /// a key verifies, and the change log is followed. When ready, the id of
    /// the last change applied; otherwise what is missing.
    pub async fn readiness(&self) -> Result<i64, NotReady> {
        let ping = self.store().ping();
        let ping = tokio::time::timeout(std::time::Duration::from_secs(2), ping).await;
        if !matches!(ping, Ok(Ok(()))) {
            return Err(NotReady::Database);
        }
        // A database that answers reads may still refuse writes (a full
        // disk): not ready while writes were refused a moment ago.
        if self.serving.store_refused_lately() {
            return Err(NotReady::Database);
        }
        if self.keys.ring().keys(self.now()).next().is_none() {
            return Err(NotReady::Keys);
        }
        if !self.synced() {
            return Err(NotReady::Sync);
        }
        Ok(self.live.applied_change())
    }

    /// Forgets revocation markers whose tokens have all expired, and
    /// throttling counts that no longer matter; writes the throttled-login
    /// events counted since the last call.
    pub fn prune(&self) {
        // Markers outlive their tokens' exp by the leeway the tokens still enjoy.
        self.live.prune(self.now() - self.common.policy().leeway);
        self.throttle.prune(self.common.now_ms());
        self.sessions.sweep_throttled();
    }

    /// Deletes expired rows from the store (see [`Store::prune`]).
    pub async fn prune_store(&self) -> Result<u64, StoreError> {
        // An hour of change log is far more than any running process needs;
        // the revocation feed's snapshot reads its window from it.
        let now = self.now();
        let kept = self.feed.window().saturating_add(60).max(3600);
        let retention = self.settings().audit_retention.as_secs();
        let retention = i64::try_from(retention).unwrap_or(i64::MAX);
        let store = self.store();
        let audit = store.prune_audit(now.saturating_sub(retention)).await?;
        let leeway = self.common.policy().leeway;
        Ok(store.prune(now - leeway, now - kept).await? + audit)
    }

    /// The sender that delivers the outbox, when mail is configured (see
    /// [`Recovery::mail_sender`]).
    pub fn mail_sender(
        &self,
    ) -> Option<Result<crate::mail::sender::MailSender, crate::mail::sender::SenderError>> {
        self.recovery.mail_sender()
    }

    /// Woken when mail or a mail request is written (what the sender waits on).
    pub fn mail_wake(&self) -> Arc<tokio::sync::Notify> {
        self.recovery.mail_wake()
    }

    /// Writes the mail of each reset request waiting for it (see
    /// [`Recovery::dispatch_mail_requests`]); how many it handled.
    pub async fn dispatch_mail_requests(&self) -> Result<usize, AuthError> {
        self.recovery.dispatch_mail_requests().await
    }
}

/// What keeps a process from being ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The database does not answer.
    Database,
    /// No key verifies tokens.
    Keys,
    /// The change log cannot be read: other processes' writes do not arrive.
    Sync,
}

impl NotReady {
    /// The `reason` of `/readyz`'s 503.
    pub fn as_str(self) -> &'static str {
        match self {
            NotReady::Database => "database",
            NotReady::Keys => "keys",
            NotReady::Sync => "sync",
        }
    }
}
