//! The live state: what a request is decided on without a database query,
//! and the one place that keeps it in step with the database. Owns the
//! users held in memory ([`users`], which never go backwards), the
//! revocation markers, the change-log cursor (the id of the last change
//! applied) and whether the last sync succeeded; applies the change log to
//! them ([`Live::sync`]), and writes this process's own revocations through
//! to the store and to memory at once.
//!
//! Promises: memory is loaded from a change-log position read before
//! anything else, so whatever is committed after it is replayed (replaying
//! is idempotent); a gap in the log that means missed changes reloads
//! everything; a user's copy never replaces a newer one.

pub mod follow;
mod redis;
mod users;

use super::common::Common;
use super::feed::{Feed, event_of};
use super::keys::Keys;
use super::tokens::record_of;
use super::{AuthError, User, read, write};
use crate::telemetry;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use tessera_core::Refusal;
use tessera_core::claims::{TokenType, VerifiedClaims};
use tessera_core::client::ClientClaims;
use tessera_core::feed::FeedEvent;
use tessera_core::ids::{FamilyId, Jti, UserId};
use tessera_core::revocation::RevocationSet;
use tessera_store::{ChangeKind, Store, StoreError, UserRecord};
use users::Users;

/// Changes read from the log at a time.
const BATCH: i64 = 1000;

/// Users, revocation markers and the change-log cursor.
pub(super) struct Live {
    common: Arc<Common>,
    /// Where each change applied is published for other services.
    feed: Arc<Feed>,
    users: Users,
    revocations: RwLock<RevocationSet>,
    /// The id of the last change-log entry applied to memory.
    applied: AtomicI64,
    /// Whether the last sync succeeded (see [`Live::synced`]).
    synced: AtomicBool,
}

impl Live {
    /// Loads users and revocation markers, resuming the change log after
    /// `position` (read by the caller before anything else was loaded).
    pub(super) async fn open(
        common: Arc<Common>,
        feed: Arc<Feed>,
        position: i64,
    ) -> Result<Self, StoreError> {
        let store = common.store();
        let users = Users::new(store.all_users().await?);
        let mut revocations = RevocationSet::new();
        load_markers(
            store.as_ref(),
            &mut revocations,
            common.now(),
            common.policy().leeway,
        )
        .await?;
        Ok(Self {
            common,
            feed,
            users,
            revocations: RwLock::new(revocations),
            applied: AtomicI64::new(position),
            synced: AtomicBool::new(true),
        })
    }

    /// The user with this id: from memory, or from the store on a miss (a
    /// user created by another process a moment ago).
    pub(super) async fn user(&self, id: UserId) -> Result<Option<Arc<User>>, AuthError> {
        if let Some(user) = self.users.get(id) {
            return Ok(Some(user));
        }
        let record = self.common.store().user_by_id(id.get()).await?;
        Ok(record.map(|r| self.remember(r)))
    }

    /// The user with this id as memory holds it, without a query (a
    /// refresh's first guess, which its write confirms).
    pub(super) fn held(&self, id: UserId) -> Option<Arc<User>> {
        self.users.get(id)
    }

    /// Keeps `record` in memory unless a newer copy is there; returns the
    /// newest copy, which is the one to act on.
    pub(super) fn remember(&self, record: UserRecord) -> Arc<User> {
        self.users.remember(record)
    }

    /// Whether the markers or the user's standing refuse a token of `user`.
    pub(super) fn check(&self, claims: &VerifiedClaims, user: &User) -> Result<(), Refusal> {
        read(&self.revocations).check(claims, user.standing())
    }

    /// Whether the markers or the user's standing refuse the session (the
    /// family) of a token of `user`, its own blacklisting aside.
    pub(super) fn check_session(
        &self,
        claims: &VerifiedClaims,
        user: &User,
    ) -> Result<(), Refusal> {
        read(&self.revocations).check_session(claims, user.standing())
    }

    /// Whether memory knows token `jti` as blacklisted.
    pub(super) fn is_blacklisted(&self, jti: &Jti) -> bool {
        read(&self.revocations).is_blacklisted(jti)
    }

    /// Marks token `jti` blacklisted in memory until `until` (its store
    /// write made by the caller, in the same decision).
    pub(super) fn mark_blacklisted(&self, jti: &Jti, until: i64) {
        write(&self.revocations).blacklist(jti, until);
    }

    /// Ends a family (a login and everything refreshed from it): in the
    /// store, in memory, and announced to other instances.
    pub(super) async fn revoke_family(
        &self,
        fid: &FamilyId,
        user_id: UserId,
        now: i64,
    ) -> Result<(), AuthError> {
        // No token of the family can outlive this.
        let until = now + self.common.policy().longest_validity();
        let store = self.common.store();
        store
            .revoke_family(fid.as_str(), user_id.get(), until, now)
            .await?;
        write(&self.revocations).revoke_family(fid, until);
        self.common.announce();
        telemetry::revoked("family");
        Ok(())
    }

    /// Blacklists the token `claims` describe as a token of type
    /// `token_type`, in the store and in memory; true if this call did it
    /// (then it is announced).
    pub(super) async fn blacklist(
        &self,
        claims: &VerifiedClaims,
        token_type: TokenType,
    ) -> Result<bool, AuthError> {
        let store = self.common.store();
        let now = self.common.now();
        let record = record_of(claims);
        let newly = match token_type {
            TokenType::Refresh => store.blacklist_refresh_token(&record, now).await?,
            TokenType::Access => store.blacklist_access_token(&record, now).await?,
        };
        self.mark_blacklisted(&claims.jti, claims.exp);
        if newly {
            self.common.announce();
            telemetry::revoked("token");
        }
        Ok(newly)
    }

    /// Whether the markers refuse a client's token: a removed client, or a
    /// revoked `jti`.
    pub(super) fn check_client(&self, claims: &ClientClaims) -> Result<(), Refusal> {
        read(&self.revocations).check_client(claims)
    }

    /// Removes client `client_id` at `now`: in the store (with its
    /// change-log entry), in memory at once, and announced to other
    /// instances. Its tokens are refused until `until`, when the last of
    /// them has expired. False when there was no such client.
    pub(super) async fn remove_client(
        &self,
        client_id: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, AuthError> {
        let store = self.common.store();
        if !store.remove_client(client_id, now, until).await? {
            return Ok(false);
        }
        write(&self.revocations).remove_client(client_id, until);
        self.common.announce();
        telemetry::revoked("client");
        Ok(true)
    }

    /// Forgets markers whose tokens have all expired at `until`.
    pub(super) fn prune(&self, until: i64) {
        write(&self.revocations).prune(until);
    }

    /// The id of the last change-log entry applied to memory.
    pub(super) fn applied_change(&self) -> i64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Whether the last sync from the change log succeeded: while it fails,
    /// other processes' revocations do not arrive and readiness says so.
    pub(super) fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Records the outcome of a sync (the supervisor's report).
    pub(super) fn set_synced(&self, ok: bool) {
        self.synced.store(ok, Ordering::Release);
    }

    /// Applies writes made by other processes since the last call (a key
    /// rotation reloads `keys`); returns how many changes were read. A gap
    /// in the change log is either ids rolled back (a request cut short
    /// after PostgreSQL drew its id), which is harmless, or rows pruned
    /// while this process was behind, which means changes were missed: then
    /// everything is loaded again.
    pub(super) async fn sync(&self, keys: &Keys) -> Result<usize, StoreError> {
        let store = self.common.store();
        let mut total = 0;
        loop {
            let after = self.applied.load(Ordering::Acquire);
            let changes = store.changes_since(after, BATCH).await?;
            if let Some(first) = changes.first()
                && first.id != after + 1
                && !self.only_rolled_back_before(first.id, after).await?
            {
                tracing::warn!(
                    applied = after,
                    next = first.id,
                    "the change log has a gap (pruned while this process was behind); reloading all state"
                );
                self.reload_all(keys).await?;
                return Ok(total + changes.len());
            }
            for change in &changes {
                // A user's event carries the row just read: built before
                // memory takes the row.
                let mut user_event = None;
                match change.kind {
                    Some(ChangeKind::User) => {
                        if let Ok(id) = change.subject.parse::<UserId>() {
                            let record = store.user_by_id(id.get()).await?;
                            user_event = Some(event_of(change, record.as_ref()));
                            match record {
                                Some(record) => {
                                    self.remember(record);
                                }
                                None => self.users.forget(id),
                            }
                        }
                    }
                    // An id not of the token-id shape names no token that
                    // could validate: nothing to remember.
                    Some(ChangeKind::Jti) => {
                        if let Some(jti) = Jti::parse(&change.subject) {
                            let until = change.expires_at.unwrap_or(i64::MAX);
                            self.mark_blacklisted(&jti, until);
                        }
                    }
                    Some(ChangeKind::Family) => {
                        if let Some(fid) = FamilyId::parse(&change.subject) {
                            let until = change.expires_at.unwrap_or(i64::MAX);
                            write(&self.revocations).revoke_family(&fid, until);
                        }
                    }
                    Some(ChangeKind::Client) => {
                        let until = change.expires_at.unwrap_or(i64::MAX);
                        write(&self.revocations).remove_client(&change.subject, until);
                    }
                    Some(ChangeKind::Keys) => keys.reload().await,
                    None => {}
                }
                self.applied.store(change.id, Ordering::Release);
                // Published once applied here: a follower told of it finds
                // this instance refusing the same tokens.
                let event = user_event.unwrap_or_else(|| event_of(change, None));
                if let Some(event) = event {
                    self.feed.publish(change.id, event);
                }
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
            .common
            .store()
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
    async fn reload_all(&self, keys: &Keys) -> Result<(), StoreError> {
        let store = self.common.store();
        let position = store.latest_change().await?;
        self.users.reload(store.all_users().await?);
        let mut markers = RevocationSet::new();
        load_markers(
            store.as_ref(),
            &mut markers,
            self.common.now(),
            self.common.policy().leeway,
        )
        .await?;
        write(&self.revocations).merge(markers);
        keys.reload().await;
        self.applied.store(position, Ordering::Release);
        // Followers missed what this process missed: they start over.
        self.feed.publish(position, FeedEvent::Reset);
        Ok(())
    }
}

/// Adds every revocation marker still in force to `set`.
async fn load_markers(
    store: &dyn Store,
    set: &mut RevocationSet,
    now: i64,
    leeway: i64,
) -> Result<(), StoreError> {
    // A token is accepted until exp + leeway, so its marker must last as long.
    let markers = store.revocations(now - leeway).await?;
    // A marker whose id is not of the token-id shape names no token that
    // could validate: it is skipped.
    for (jti, until) in &markers.jtis {
        if let Some(jti) = Jti::parse(jti) {
            set.blacklist(&jti, *until);
        }
    }
    for (fid, until) in &markers.families {
        if let Some(fid) = FamilyId::parse(fid) {
            set.revoke_family(&fid, *until);
        }
    }
    for (client_id, until) in store.removed_clients(now - leeway).await? {
        set.remove_client(&client_id, until);
    }
    Ok(())
}
