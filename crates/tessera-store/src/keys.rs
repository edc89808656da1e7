//! The signing keys (`signing_keys`): stored, put in service, rotated (a
//! key published ahead of the moment it starts signing, the others retired
//! at that moment), each change logged in the change log in its
//! transaction; and the database's clock, on which those moments are.
//! Key writes hold the change-log lock on PostgreSQL, so they run one at a
//! time on both engines.

use crate::changes::Logged;
use crate::engine::for_each_engine;
use crate::{KeyRecord, StoreResult};
use async_trait::async_trait;
use sqlx::Transaction;

/// The signing keys, with the promises of [`Store`](crate::Store): each
/// method atomic, and durable once it returns.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every signing key, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<KeyRecord>>;

    /// Stores a new signing key.
    async fn insert_signing_key(&self, key: &KeyRecord) -> StoreResult<()>;

    /// Stores `key` as the key in service, signing from when it is stored
    /// (its `signs_from` and `retired_at` are not used), only if no key is
    /// in service: of several processes starting on an empty database at
    /// once exactly one succeeds (true); the others load its key.
    async fn put_first_signing_key(&self, key: &KeyRecord) -> StoreResult<bool>;

    /// Stores `key`, which signs from `key.signs_from` (from
    /// `key.created_at` when `None`), and retires every other key at that
    /// moment: each key not retired by then gets that moment as its
    /// retirement, so a key published but not yet signing whose moment is
    /// later never signs. Rotations run one at a time.
    async fn rotate_signing_key(&self, key: &KeyRecord) -> StoreResult<()>;

    /// The database's clock: milliseconds since the Unix epoch. The moments
    /// keys start signing are on this clock, so that every instance
    /// switches at the same moment whatever its own clock says.
    async fn database_time_ms(&self) -> StoreResult<i64>;
}

for_each_engine! {
    /// Stores `key` in `tx` (from `begin_logged`) unless its kid exists,
    /// and logs the change.
    async fn insert_key_in(tx: &mut Transaction<'_, Db>, key: &KeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, signs_from, \
             retired_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(key.created_at)
        .bind(key.signs_from)
        .bind(key.retired_at)
        .execute(&mut **tx)
        .await?;
        Engine::log_change(tx, Logged::keys(&key.kid), key.created_at).await
    }

    #[async_trait]
    impl KeyStore for Engine {
        async fn signing_keys(&self) -> StoreResult<Vec<KeyRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT kid, algorithm, private_key, created_at, signs_from, retired_at \
                 FROM signing_keys ORDER BY created_at DESC, kid COLLATE {} DESC",
                Db::BYTEWISE
            ))
            .fetch_all(&self.pool)
            .await?)
        }

        async fn insert_signing_key(&self, key: &KeyRecord) -> StoreResult<()> {
            let mut tx = Engine::begin_logged(&self.pool).await?;
            insert_key_in(&mut tx, key).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn put_first_signing_key(&self, key: &KeyRecord) -> StoreResult<bool> {
            // One statement decides, in a transaction that excludes every
            // other key write (SQLite's write lock, taken by the statement;
            // PostgreSQL's change-log lock, taken first): the look and the
            // insert are one step among every process.
            let mut tx = Engine::begin_logged(&self.pool).await?;
            let inserted = sqlx::query(
                "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, signs_from, \
                 retired_at) SELECT $1, $2, $3, $4, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) \
                 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL) \
                 ON CONFLICT (kid) DO NOTHING",
            )
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.private_key)
            .bind(key.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !inserted {
                tx.rollback().await?;
                return Ok(false);
            }
            Engine::log_change(&mut tx, Logged::keys(&key.kid), key.created_at).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn rotate_signing_key(&self, key: &KeyRecord) -> StoreResult<()> {
            // Rotations run one at a time (the write transaction excludes
            // the others): each retires the key the one before it put in
            // service. Every key not retired by the new key's moment is
            // retired then.
            let mut tx = Engine::begin_logged(&self.pool).await?;
            sqlx::query(
                "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL OR retired_at > $1",
            )
            .bind(key.signs_from.unwrap_or(key.created_at))
            .execute(&mut *tx)
            .await?;
            insert_key_in(&mut tx, key).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn database_time_ms(&self) -> StoreResult<i64> {
            Ok(sqlx::query_scalar(Db::CLOCK_MS).fetch_one(&self.pool).await?)
        }
    }
}
