//! `impl LinkStore` for both stores: each method begins the transaction
//! its engine needs and runs the engine's SQL in `super`.

use super::{postgres, sqlite};
use crate::{Letter, LinkKind, LinkRecord, MailRequest, OutboxCounts, PendingRequest, QueuedMail};
use crate::{StoreResult, UserRecord};

/// The key of the PostgreSQL transaction advisory lock that serialises
/// counting mail requests, so that concurrent requests for one address
/// cannot all see room under the limit.
pub const MAIL_REQUEST_LOCK: i64 = 0x5465_7373_6572_6102;

/// The same delegation for both stores: `$begin` starts a plain write
/// transaction, `$logged` one that may append to the change log.
macro_rules! link_store {
    ($store:ty, $engine:ident, |$s:ident| $begin:expr, $logged:expr, $lock:expr) => {
        #[async_trait::async_trait]
        impl crate::LinkStore for $store {
            async fn users_by_email(&self, email: &str) -> StoreResult<Vec<UserRecord>> {
                $engine::users_by_email(&self.pool, email).await
            }

            async fn request_links(
                &self,
                request: &MailRequest,
                letter: Option<&Letter>,
            ) -> StoreResult<bool> {
                let $s = self;
                let mut tx = $begin.await?;
                $lock(&mut tx).await?;
                let written = $engine::request_links(&mut tx, request, letter).await?;
                tx.commit().await?;
                Ok(written)
            }

            async fn pending_mail_requests(&self, limit: i64) -> StoreResult<Vec<PendingRequest>> {
                $engine::pending(&self.pool, limit).await
            }

            async fn fulfil_mail_request(
                &self,
                id: i64,
                letter: Option<&Letter>,
            ) -> StoreResult<bool> {
                let $s = self;
                let mut tx = $begin.await?;
                let done = $engine::fulfil(&mut tx, id, letter).await?;
                tx.commit().await?;
                Ok(done)
            }

            async fn link(
                &self,
                token_hash: &str,
                kind: LinkKind,
                now: i64,
            ) -> StoreResult<Option<LinkRecord>> {
                $engine::link(&self.pool, token_hash, kind, now).await
            }

            async fn reset_password(
                &self,
                token_hash: &str,
                password_hash: &str,
                now: i64,
            ) -> StoreResult<Option<UserRecord>> {
                let $s = self;
                let mut tx = $logged.await?;
                let user = $engine::reset_password(&mut tx, token_hash, password_hash, now).await?;
                self.finish_user_change(tx, user, now).await
            }

            async fn verify_email(
                &self,
                token_hash: &str,
                now: i64,
            ) -> StoreResult<Option<UserRecord>> {
                let $s = self;
                let mut tx = $logged.await?;
                let user = $engine::verify_email(&mut tx, token_hash, now).await?;
                self.finish_user_change(tx, user, now).await
            }

            async fn take_mail(
                &self,
                now: i64,
                lease_until: i64,
                limit: i64,
            ) -> StoreResult<Vec<QueuedMail>> {
                $engine::take_mail(&self.pool, now, lease_until, limit).await
            }

            async fn mail_sent(&self, id: i64, now: i64) -> StoreResult<()> {
                $engine::mail_sent(&self.pool, id, now).await
            }

            async fn mail_failed(
                &self,
                id: i64,
                retry_at: Option<i64>,
                error: &str,
                now: i64,
            ) -> StoreResult<()> {
                $engine::mail_failed(&self.pool, id, retry_at, error, now).await
            }

            async fn release_mail(&self, ids: &[i64], now: i64) -> StoreResult<()> {
                $engine::release_mail(&self.pool, ids, now).await
            }

            async fn outbox_counts(&self) -> StoreResult<OutboxCounts> {
                $engine::outbox_counts(&self.pool).await
            }
        }

        impl $store {
            /// Commits `tx` with a change-log entry when `user` changed;
            /// rolls it back (a used link stays unused) when not.
            async fn finish_user_change(
                &self,
                mut tx: sqlx::Transaction<'static, <$store as EngineOf>::Db>,
                user: Option<UserRecord>,
                now: i64,
            ) -> StoreResult<Option<UserRecord>> {
                let Some(user) = user else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                <$store>::log_change(
                    &mut tx,
                    crate::ChangeKind::User,
                    &user.id.to_string(),
                    None,
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(Some(user))
            }
        }
    };
}

/// The database type of each store.
trait EngineOf {
    type Db: sqlx::Database;
}

impl EngineOf for crate::SqliteStore {
    type Db = sqlx::Sqlite;
}

impl EngineOf for crate::PgStore {
    type Db = sqlx::Postgres;
}

async fn no_lock(_: &mut sqlx::Transaction<'static, sqlx::Sqlite>) -> StoreResult<()> {
    // SQLite has one writer at a time: the request's first statement (an
    // insert) takes the write lock for the whole transaction.
    Ok(())
}

async fn mail_request_lock(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MAIL_REQUEST_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

link_store!(
    crate::SqliteStore,
    sqlite,
    |s| s.pool.begin(),
    s.pool.begin(),
    no_lock
);
link_store!(
    crate::PgStore,
    postgres,
    |s| s.pool.begin(),
    s.begin_logged(),
    mail_request_lock
);
