//! Following the database: other processes' writes through the change log,
//! reloads, key rotation, and forgetting what has expired.

use super::*;
use serde_json::json;

/// How long `/readyz` says unavailable after a request was refused for the
/// database's sake: long enough that a balancer's probe sees it, short
/// enough that the instance comes back soon after the database does.
const STORE_REFUSAL_MEMORY_MS: i64 = 5_000;

impl Authority {
    /// Generates a key for `alg` and puts it in service: published at once,
    /// it signs from the moment `start` says, on every instance at once.
    pub async fn rotate_keys(
        &self,
        alg: tessera_core::Algorithm,
        start: keyring::KeyStart,
    ) -> Result<keyring::Rotated, KeyLoadError> {
        let rotated = keyring::rotate(
            &self.settings,
            self.store.as_ref(),
            alg,
            self.clock.as_ref(),
            start,
        )
        .await?;
        self.announce();
        self.reload_keys().await;
        let detail = serde_json::json!({
            "kid": rotated.kid,
            "algorithm": tessera_core::keys::algorithm_name(alg),
            "signs_from": rotated.signs_from,
        });
        self.audit("keys_rotated", None, None, None, detail);
        // Rotation is rare and mostly the CLI's, which exits right after.
        self.audit.flush().await;
        Ok(rotated)
    }

    /// Applies writes made by other processes since the last call; returns
    /// how many changes were read. A gap in the change log is either ids
    /// rolled back (a request cut short after PostgreSQL drew its id), which
    /// is harmless, or rows pruned while this process was behind, which
    /// means changes were missed: then everything is loaded again.
    pub async fn sync(&self) -> Result<usize, StoreError> {
        const BATCH: i64 = 1000;
        let mut total = 0;
        loop {
            let after = self.last_change.load(Ordering::Acquire);
            let changes = self.store.changes_since(after, BATCH).await?;
            if let Some(first) = changes.first()
                && first.id != after + 1
                && !self.only_rolled_back_before(first.id, after).await?
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

    /// Whether the ids between `after` and `next` are missing because they
    /// were rolled back, not pruned. Ids commit in id order, so they will
    /// never appear; pruning removes only the oldest entries, so if one at
    /// or below `after` is still kept, nothing after it was pruned. (A
    /// cancelled request on PostgreSQL forced every instance to reload all
    /// state before.)
    async fn only_rolled_back_before(&self, next: i64, after: i64) -> Result<bool, StoreError> {
        let rolled_back = self
            .store
            .oldest_change()
            .await?
            .is_some_and(|oldest| oldest <= after);
        if rolled_back {
            tracing::debug!(
                applied = after,
                next,
                "change ids rolled back; nothing missed"
            );
        }
        Ok(rolled_back)
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

    /// The id of the last change-log entry applied to memory.
    pub fn applied_change(&self) -> i64 {
        self.last_change.load(Ordering::Acquire)
    }

    /// Whether the last sync from the change log succeeded: while it fails,
    /// other processes' revocations do not arrive and readiness says so.
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Whether this process can serve: the database answers (within 2 s),
    /// a key verifies, and the change log is followed. When ready, the id of
    /// the last change applied; otherwise what is missing.
    pub async fn readiness(&self) -> Result<i64, NotReady> {
        let ping = tokio::time::timeout(std::time::Duration::from_secs(2), self.store.ping()).await;
        if !matches!(ping, Ok(Ok(()))) {
            return Err(NotReady::Database);
        }
        // A database that answers reads may still refuse writes (a full
        // disk): not ready while writes were refused a moment ago.
        let refused = self.store_refused_ms.load(Ordering::Acquire);
        if self.clock.now_ms().saturating_sub(refused) < STORE_REFUSAL_MEMORY_MS {
            return Err(NotReady::Database);
        }
        if self.key_ring().keys(self.now()).next().is_none() {
            return Err(NotReady::Keys);
        }
        if !self.synced() {
            return Err(NotReady::Sync);
        }
        Ok(self.applied_change())
    }

    /// Records that a request was answered 503 because the database could
    /// not serve it; `/readyz` says so for the next few seconds.
    pub fn note_store_refused(&self) {
        self.store_refused_ms
            .store(self.clock.now_ms(), Ordering::Release);
    }

    /// Records the outcome of a sync (the supervisor's report).
    pub fn set_synced(&self, ok: bool) {
        self.synced.store(ok, Ordering::Release);
    }

    /// For a token whose kid this process does not know: reads the keys
    /// again (another instance may have rotated a moment ago, before the
    /// change log reached this one), at most once a second whatever tokens
    /// come, so that made-up kids cannot turn into a database query each.
    /// True when the ring now holds the kid.
    pub(super) async fn reload_for_unknown_kid(&self, token: &str, now: i64) -> bool {
        const EVERY_MS: i64 = 1000;
        let Some(kid) = tessera_core::token::peek_kid(token) else {
            return false;
        };
        if self.key_ring().get(&kid, now).is_some() {
            return false;
        }
        let at = self.clock.now_ms();
        let last = self.kid_reload_ms.load(Ordering::Acquire);
        if at.saturating_sub(last) < EVERY_MS
            || self
                .kid_reload_ms
                .compare_exchange(last, at, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return false;
        }
        self.reload_keys().await;
        self.key_ring().get(&kid, now).is_some()
    }

    async fn reload_keys(&self) {
        match keyring::reload(&self.settings, self.store.as_ref(), self.clock.as_ref()).await {
            Ok(Some(ring)) => {
                *write(&self.keys) = Arc::new(ring);
                // Entries of the old ring can no longer hit (rings differ
                // in generation); free their memory too.
                self.verified.clear();
            }
            Ok(None) => {}
            // Keep the keys in force: a bad new key must not stop verification.
            Err(e) => tracing::error!(error = %e, "could not reload signing keys"),
        }
    }

    /// Deletes expired rows from the store (see [`Store::prune`]).
    pub async fn prune_store(&self) -> Result<u64, StoreError> {
        // An hour of change log is far more than any running process needs.
        let now = self.now();
        let retention = i64::try_from(self.settings.audit_retention.as_secs()).unwrap_or(i64::MAX);
        let audit = self
            .store
            .prune_audit(now.saturating_sub(retention))
            .await?;
        Ok(self
            .store
            .prune(now - self.policy.leeway, now - 3600)
            .await?
            + audit)
    }

    /// Forgets revocation markers whose tokens have all expired.
    pub fn prune(&self) {
        let now = self.now();
        // Markers outlive their tokens' exp by the leeway the tokens still enjoy.
        write(&self.revocations).prune(now - self.policy.leeway);
        self.throttle.prune(self.clock.now_ms());
        for throttled in self.throttled_log.sweep(self.clock.now_ms()) {
            let origin = SessionOrigin::new(throttled.client, "", LoginMethod::Password);
            let detail = json!({"username": throttled.username, "attempts": throttled.attempts});
            self.audit("login_throttled", None, None, Some(&origin), detail);
        }
    }
}

/// Adds every revocation marker still in force to `set`.
pub(super) async fn load_markers(
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
