//! Keys put in service by another process while this one starts or runs.

use super::*;
use crate::authority::keys::KeyStart;

/// A key store that lets another process rotate the keys right after the
/// first read of them: the moment at which a start that read the change-log
/// position after the keys would miss the rotation for good.
struct RotatesAfterKeyRead {
    inner: SqliteStore,
    other: SqliteStore,
    settings: Settings,
    rotated: std::sync::atomic::AtomicBool,
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
    let second = Authority::open_with_key_store(
        settings,
        Arc::new(SqliteStore::connect(&url).await.unwrap()),
        Arc::new(store),
        clock,
    )
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
