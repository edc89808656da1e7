//! The keys part: the key ring in force, the cache of verified tokens, the
//! one reload of the keys for a token with an unknown `kid` (with its one
//! rate limiter), and rotation. [`ring`] loads and rotates the stored keys,
//! [`stored`] says which stored key does what on the database's clock.
//!
//! Promises: a token is verified against the ring in force (a reload for an
//! unknown kid at most once a second, whatever tokens come, so that made-up
//! kids cannot each cost a database query); a reload that fails keeps the
//! keys in force; a ring replaced empties the cache.

pub mod ring;
pub mod stored;

pub use ring::{KeyLoadError, KeyStart, Rotated, load_at_start, load_existing, rotate};
pub use stored::{KeyInfo, KeyState, list};

use super::audit_trail::AuditKind;
use super::common::Common;
use super::{KeyUse, read, write};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use tessera_core::Refusal;
use tessera_core::claims::{TokenType, VerifiedClaims};
use tessera_core::client::{self, ClientClaims};
use tessera_core::keys::KeyRing;
use tessera_core::reload::validate_with_reload;
use tessera_core::token;
use tessera_core::verified::VerifiedTokens;
use tessera_store::KeyStore;

/// How often at most the keys are read again for tokens with unknown kids.
const UNKNOWN_KID_RELOAD_EVERY_MS: i64 = 1000;

/// The key ring, the verified-token cache and the unknown-kid reload.
pub struct Keys {
    common: Arc<Common>,
    /// Where the keys are kept: the store, or in a test a double that
    /// implements only this.
    store: Arc<dyn KeyStore>,
    ring: RwLock<Arc<KeyRing>>,
    /// Tokens whose signature and claims were verified (against the ring in
    /// `ring`); revocation is still checked on every request.
    verified: VerifiedTokens,
    /// When (ms) keys were last read again for a token with an unknown kid.
    unknown_kid_reload_ms: AtomicI64,
}

impl Keys {
    /// Loads the keys as `keys` says.
    pub(super) async fn open(
        common: Arc<Common>,
        store: Arc<dyn KeyStore>,
        keys: KeyUse,
    ) -> Result<Self, KeyLoadError> {
        let (settings, clock) = (common.settings(), common.clock());
        let ring = match keys {
            KeyUse::Serve => load_at_start(settings, store.as_ref(), clock.as_ref()).await?,
            KeyUse::Existing => load_existing(settings, store.as_ref(), clock.as_ref()).await?,
        };
        Ok(Self {
            common,
            store,
            ring: RwLock::new(Arc::new(ring)),
            verified: VerifiedTokens::default(),
            unknown_kid_reload_ms: AtomicI64::new(i64::MIN),
        })
    }

    /// The key ring in force.
    pub fn ring(&self) -> Arc<KeyRing> {
        read(&self.ring).clone()
    }

    /// The public JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        self.ring().jwks(self.common.now())
    }

    /// Generates a key for `alg` and puts it in service: published at once,
    /// it signs from the moment `start` says, on every instance at once.
    pub async fn rotate(
        &self,
        alg: tessera_core::Algorithm,
        start: KeyStart,
    ) -> Result<Rotated, KeyLoadError> {
        let common = &self.common;
        let rotated = rotate(
            common.settings(),
            self.store.as_ref(),
            alg,
            common.clock().as_ref(),
            start,
        )
        .await?;
        common.announce();
        self.reload().await;
        let detail = serde_json::json!({
            "kid": rotated.kid,
            "algorithm": tessera_core::keys::algorithm_name(alg),
            "signs_from": rotated.signs_from,
        });
        common.audit(AuditKind::KeysRotated, None, None, None, detail);
        // Rotation is rare and mostly the CLI's, which exits right after.
        common.audit_log().flush().await;
        Ok(rotated)
    }

    /// What `token` proves by itself (signature, header, times, type), from
    /// the cache when it was verified before against the ring in force; a
    /// token whose kid is unknown reloads the keys (rate-limited) first.
    pub(super) async fn validate(
        &self,
        token: &str,
        expected: Option<TokenType>,
        now: i64,
    ) -> Result<Arc<VerifiedClaims>, Refusal> {
        let policy = self.common.policy();
        let validate = |ring: &KeyRing| self.verified.validate(policy, ring, token, expected, now);
        validate_with_reload(self.ring(), token, now, validate, |kid| {
            self.reload_for_unknown_kid(kid, now)
        })
        .await
    }

    /// [`Self::validate`] without the cache (a refresh token is decided by
    /// the database anyway, and is presented once).
    pub(super) async fn validate_uncached(
        &self,
        token: &str,
        expected: Option<TokenType>,
        now: i64,
    ) -> Result<VerifiedClaims, Refusal> {
        let policy = self.common.policy();
        let validate = |ring: &KeyRing| token::validate(policy, ring, token, expected, now);
        validate_with_reload(self.ring(), token, now, validate, |kid| {
            self.reload_for_unknown_kid(kid, now)
        })
        .await
    }

    /// What a service client's token proves by itself (signature, header,
    /// times, client claims), with the same one reload for an unknown kid
    /// as users' tokens. Not cached: a client presents its token a few
    /// times an hour, not on every page.
    pub(super) async fn validate_client(
        &self,
        token: &str,
        now: i64,
    ) -> Result<ClientClaims, Refusal> {
        let policy = self.common.policy();
        let validate = |ring: &KeyRing| client::validate_client(policy, ring, token, now);
        validate_with_reload(self.ring(), token, now, validate, |kid| {
            self.reload_for_unknown_kid(kid, now)
        })
        .await
    }

    /// For a token whose kid this process does not know: reads the keys
    /// again (another instance may have rotated a moment ago, before the
    /// change log reached this one), at most once a second. The ring when it
    /// now holds the kid.
    async fn reload_for_unknown_kid(&self, kid: String, now: i64) -> Option<Arc<KeyRing>> {
        // Another request may have reloaded since the ring was read.
        let ring = self.ring();
        if ring.get(&kid, now).is_some() {
            return Some(ring);
        }
        let at = self.common.now_ms();
        let last = self.unknown_kid_reload_ms.load(Ordering::Acquire);
        if at.saturating_sub(last) < UNKNOWN_KID_RELOAD_EVERY_MS
            || self
                .unknown_kid_reload_ms
                .compare_exchange(last, at, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return None;
        }
        self.reload().await;
        Some(self.ring()).filter(|ring| ring.get(&kid, now).is_some())
    }

    /// Reads the stored keys again (after a rotation here or elsewhere);
    /// keeps the keys in force when that fails.
    pub(super) async fn reload(&self) {
        let common = &self.common;
        let reloaded = ring::reload(
            common.settings(),
            self.store.as_ref(),
            common.clock().as_ref(),
        )
        .await;
        match reloaded {
            Ok(Some(ring)) => {
                *write(&self.ring) = Arc::new(ring);
                // Entries of the old ring can no longer hit (rings differ
                // in generation); free their memory too.
                self.verified.clear();
            }
            Ok(None) => {}
            // Keep the keys in force: a bad new key must not stop verification.
            Err(e) => tracing::error!(error = %e, "could not reload signing keys"),
        }
    }
}
