//! Keys put in service by another process while this one starts or runs.

use super::*;
use crate::authority::keys::KeyStart;

/// A store that lets another process rotate the keys right after the first
/// read of them: the moment at which a start that read the change-log
/// position after the keys would miss the rotation for good.
struct RotatesAfterKeyRead {
    inner: SqliteStore,
    other: SqliteStore,
    settings: Settings,
    rotated: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl tessera_store::LinkStore for RotatesAfterKeyRead {
    async fn users_by_email(&self, email: &str) -> tessera_store::StoreResult<Vec<UserRecord>> {
        self.inner.users_by_email(email).await
    }
    async fn request_links(
        &self,
        request: &tessera_store::MailRequest,
        letter: Option<&tessera_store::Letter>,
    ) -> tessera_store::StoreResult<bool> {
        self.inner.request_links(request, letter).await
    }
    async fn pending_mail_requests(
        &self,
        limit: i64,
    ) -> tessera_store::StoreResult<Vec<tessera_store::PendingRequest>> {
        self.inner.pending_mail_requests(limit).await
    }
    async fn fulfil_mail_request(
        &self,
        id: i64,
        letter: Option<&tessera_store::Letter>,
    ) -> tessera_store::StoreResult<bool> {
        self.inner.fulfil_mail_request(id, letter).await
    }
    async fn link(
        &self,
        hash: &str,
        kind: tessera_store::LinkKind,
        now: i64,
    ) -> tessera_store::StoreResult<Option<tessera_store::LinkRecord>> {
        self.inner.link(hash, kind, now).await
    }
    async fn reset_password(
        &self,
        hash: &str,
        password_hash: &str,
        now: i64,
    ) -> tessera_store::StoreResult<Option<UserRecord>> {
        self.inner.reset_password(hash, password_hash, now).await
    }
    async fn verify_email(
        &self,
        hash: &str,
        now: i64,
    ) -> tessera_store::StoreResult<Option<UserRecord>> {
        self.inner.verify_email(hash, now).await
    }
    async fn take_mail(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> tessera_store::StoreResult<Vec<tessera_store::QueuedMail>> {
        self.inner.take_mail(now, lease_until, limit).await
    }
    async fn mail_sent(&self, id: i64, now: i64) -> tessera_store::StoreResult<()> {
        self.inner.mail_sent(id, now).await
    }
    async fn mail_failed(
        &self,
        id: i64,
        retry_at: Option<i64>,
        error: &str,
        now: i64,
    ) -> tessera_store::StoreResult<()> {
        self.inner.mail_failed(id, retry_at, error, now).await
    }
    async fn release_mail(&self, ids: &[i64], now: i64) -> tessera_store::StoreResult<()> {
        self.inner.release_mail(ids, now).await
    }
    async fn outbox_counts(&self) -> tessera_store::StoreResult<tessera_store::OutboxCounts> {
        self.inner.outbox_counts().await
    }
}

#[async_trait::async_trait]
impl tessera_store::Maintenance for RotatesAfterKeyRead {
    async fn migrate(&self) -> tessera_store::StoreResult<()> {
        self.inner.migrate().await
    }
    async fn ping(&self) -> tessera_store::StoreResult<()> {
        self.inner.ping().await
    }
    async fn prune(&self, now: i64, changes_before: i64) -> tessera_store::StoreResult<u64> {
        self.inner.prune(now, changes_before).await
    }
}

#[async_trait::async_trait]
impl tessera_store::UserStore for RotatesAfterKeyRead {
    async fn create_user(&self, user: NewUser) -> tessera_store::StoreResult<UserRecord> {
        self.inner.create_user(user).await
    }
    async fn user_by_username(&self, name: &str) -> tessera_store::StoreResult<Option<UserRecord>> {
        self.inner.user_by_username(name).await
    }
    async fn user_by_id(&self, id: i64) -> tessera_store::StoreResult<Option<UserRecord>> {
        self.inner.user_by_id(id).await
    }
    async fn all_users(&self) -> tessera_store::StoreResult<Vec<UserRecord>> {
        self.inner.all_users().await
    }
    async fn count_users(&self) -> tessera_store::StoreResult<i64> {
        self.inner.count_users().await
    }
    async fn list_users(
        &self,
        offset: i64,
        limit: i64,
    ) -> tessera_store::StoreResult<Vec<UserRecord>> {
        self.inner.list_users(offset, limit).await
    }
    async fn record_login(
        &self,
        id: i64,
        at: i64,
        rehash: Option<tessera_store::Rehash<'_>>,
    ) -> tessera_store::StoreResult<Option<UserRecord>> {
        self.inner.record_login(id, at, rehash).await
    }
    async fn import_users(
        &self,
        users: &[tessera_store::ImportedUser],
        commit: bool,
    ) -> tessera_store::StoreResult<Vec<tessera_store::ImportOutcome>> {
        self.inner.import_users(users, commit).await
    }
    async fn update_user(
        &self,
        id: i64,
        update: UserUpdate,
        now: i64,
    ) -> tessera_store::StoreResult<Option<UserRecord>> {
        self.inner.update_user(id, update, now).await
    }
}

#[async_trait::async_trait]
impl tessera_store::TokenStore for RotatesAfterKeyRead {
    async fn begin_session(
        &self,
        token: &RefreshRecord,
        session: &tessera_store::SessionRecord,
    ) -> tessera_store::StoreResult<()> {
        self.inner.begin_session(token, session).await
    }
    fn touch_session(&self, family_id: &str, at: i64) {
        self.inner.touch_session(family_id, at);
    }
    async fn live_sessions(
        &self,
        user_id: i64,
        now: i64,
    ) -> tessera_store::StoreResult<Vec<tessera_store::SessionRecord>> {
        self.inner.live_sessions(user_id, now).await
    }
    async fn record_refresh_token(&self, token: &RefreshRecord) -> tessera_store::StoreResult<()> {
        self.inner.record_refresh_token(token).await
    }
    async fn blacklist_refresh_token(
        &self,
        token: &RefreshRecord,
        now: i64,
    ) -> tessera_store::StoreResult<bool> {
        self.inner.blacklist_refresh_token(token, now).await
    }
    async fn rotate_refresh_token(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        successor: Option<&tessera_store::SealedSuccessor>,
        now: i64,
    ) -> tessera_store::StoreResult<bool> {
        self.inner
            .rotate_refresh_token(old, new, successor, now)
            .await
    }
    async fn refresh_successor(
        &self,
        jti: &str,
    ) -> tessera_store::StoreResult<Option<tessera_store::SealedSuccessor>> {
        self.inner.refresh_successor(jti).await
    }
    async fn revoke_family(
        &self,
        family_id: &str,
        user_id: i64,
        expires_at: i64,
        now: i64,
    ) -> tessera_store::StoreResult<()> {
        self.inner
            .revoke_family(family_id, user_id, expires_at, now)
            .await
    }
    async fn refresh_standing(
        &self,
        jti: &str,
        family_id: &str,
    ) -> tessera_store::StoreResult<tessera_store::RefreshStanding> {
        self.inner.refresh_standing(jti, family_id).await
    }
    async fn sessions_beyond(
        &self,
        user_id: i64,
        keep: i64,
        now: i64,
    ) -> tessera_store::StoreResult<Vec<String>> {
        self.inner.sessions_beyond(user_id, keep, now).await
    }
    async fn revocations(
        &self,
        now: i64,
    ) -> tessera_store::StoreResult<tessera_store::Revocations> {
        self.inner.revocations(now).await
    }
}

#[async_trait::async_trait]
impl tessera_store::KeyStore for RotatesAfterKeyRead {
    async fn signing_keys(&self) -> tessera_store::StoreResult<Vec<tessera_store::KeyRecord>> {
        let keys = self.inner.signing_keys().await?;
        if !self.rotated.swap(true, Ordering::AcqRel) {
            let alg = self.settings.algorithm;
            let clock = FixedClock::new(NOW + 10);
            crate::authority::keys::rotate(&self.settings, &self.other, alg, &clock, KeyStart::Now)
                .await
                .unwrap();
        }
        Ok(keys)
    }
    async fn put_first_signing_key(
        &self,
        key: &tessera_store::KeyRecord,
    ) -> tessera_store::StoreResult<bool> {
        self.inner.put_first_signing_key(key).await
    }
    async fn insert_signing_key(
        &self,
        key: &tessera_store::KeyRecord,
    ) -> tessera_store::StoreResult<()> {
        self.inner.insert_signing_key(key).await
    }
    async fn rotate_signing_key(
        &self,
        key: &tessera_store::KeyRecord,
    ) -> tessera_store::StoreResult<()> {
        self.inner.rotate_signing_key(key).await
    }
    async fn database_time_ms(&self) -> tessera_store::StoreResult<i64> {
        self.inner.database_time_ms().await
    }
}

#[async_trait::async_trait]
impl tessera_store::ChangeLog for RotatesAfterKeyRead {
    async fn latest_change(&self) -> tessera_store::StoreResult<i64> {
        self.inner.latest_change().await
    }
    async fn oldest_change(&self) -> tessera_store::StoreResult<Option<i64>> {
        self.inner.oldest_change().await
    }
    async fn changes_since(
        &self,
        after: i64,
        limit: i64,
    ) -> tessera_store::StoreResult<Vec<tessera_store::Change>> {
        self.inner.changes_since(after, limit).await
    }
}

#[async_trait::async_trait]
impl tessera_store::AuditStore for RotatesAfterKeyRead {
    async fn append_audit(
        &self,
        events: &[tessera_store::AuditEvent],
    ) -> tessera_store::StoreResult<()> {
        self.inner.append_audit(events).await
    }
    async fn audit_page(
        &self,
        filter: &tessera_store::AuditFilter,
        offset: i64,
        limit: i64,
    ) -> tessera_store::StoreResult<(i64, Vec<tessera_store::AuditRecord>)> {
        self.inner.audit_page(filter, offset, limit).await
    }
    async fn audit_after(
        &self,
        filter: &tessera_store::AuditFilter,
        after: i64,
        limit: i64,
    ) -> tessera_store::StoreResult<Vec<tessera_store::AuditRecord>> {
        self.inner.audit_after(filter, after, limit).await
    }
    async fn prune_audit(&self, before: i64) -> tessera_store::StoreResult<u64> {
        self.inner.prune_audit(before).await
    }
}

#[tokio::test]
async fn a_key_rotation_committed_while_the_keys_load_at_start_is_applied() {
    // A database with a key already (a first start), then a second start
    // during which another process rotates.
    let first = world().await;
    let old_kid = first
        .authority
        .keys()
        .ring()
        .signing_key(NOW)
        .unwrap()
        .kid()
        .to_owned();
    let url = first.authority.settings().database_url.clone();
    let settings = first.authority.settings().clone();
    let store = RotatesAfterKeyRead {
        inner: SqliteStore::connect(&url).await.unwrap(),
        other: SqliteStore::connect(&url).await.unwrap(),
        settings: settings.clone(),
        rotated: Default::default(),
    };
    // Later than both keys, so that "newest" is not a tie.
    let clock = Arc::new(FixedClock::new(NOW + 20));
    let second = Authority::open(settings, Arc::new(store), clock)
        .await
        .unwrap();
    // It loaded the keys as they were before the rotation ...
    assert_eq!(
        second.keys().ring().signing_key(NOW + 20).unwrap().kid(),
        old_kid
    );
    // ... and the change log brings the rotation.
    second.sync().await.unwrap();
    let newest = first.other.signing_keys().await.unwrap();
    let new_kid = second
        .keys()
        .ring()
        .signing_key(NOW + 20)
        .unwrap()
        .kid()
        .to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        Some(new_kid.as_str()),
        newest.first().map(|k| k.kid.as_str())
    );
}

/// Another instance rotated the keys a moment ago and signs with the new
/// one; this process has not read that from the change log yet. A token
/// with the new kid is not refused meanwhile: the keys are read again (at
/// most once a second, so that made-up kids cost nothing).
#[tokio::test]
async fn a_token_signed_with_a_key_another_process_just_put_in_service_is_accepted() {
    let w = world().await;
    let alice = sign_up(&w.authority, "alice").await;
    // This process: opened before the rotation, and never syncing here.
    let here = Authority::open(
        w.authority.settings().clone(),
        Arc::new(w.other.clone()),
        Arc::new(FixedClock::new(NOW)),
    )
    .await
    .unwrap();
    w.authority
        .keys()
        .rotate(tessera_core::Algorithm::HS256, KeyStart::AfterLead)
        .await
        .unwrap();
    let pair = w
        .authority
        .sessions()
        .begin_session(&alice, Transport::Header, &test_origin())
        .await
        .unwrap();
    let new_kid = tessera_core::token::peek_kid(&pair.access.token).unwrap();
    assert!(
        here.keys().ring().get(&new_kid, NOW).is_none(),
        "not synced yet"
    );
    let (claims, _) = here.tokens().check(&pair.access.token, None).await.unwrap();
    assert_eq!(claims.user_id, alice.id);
    // Refresh tokens too.
    assert!(
        here.tokens()
            .refresh(&pair.refresh.token, Transport::Header, None, &test_origin())
            .await
            .is_ok()
    );
}
