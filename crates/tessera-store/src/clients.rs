//! Service clients (`clients`): OAuth2 confidential clients, added, listed,
//! given a new secret and removed. A removal is soft: the row stays, with
//! the moment until which the client's tokens are refused, and a change-log
//! entry says so in the same transaction, so that every process refuses
//! them at once and a process starting later loads the marker.

use crate::changes::Logged;
use crate::engine::for_each_engine;
use crate::{ClientRecord, StoreResult};
use async_trait::async_trait;

const COLUMNS: &str = "client_id, name, secret_digest, scope, created_at";

/// Service clients, with the promises of [`Store`](crate::Store): each
/// method atomic, and durable once it returns. Every read but
/// [`ClientStore::removed_clients`] sees only clients not removed.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Stores a new client; false (nothing written) when a client not
    /// removed already has its name (or, vanishingly unlikely, its id).
    async fn insert_client(&self, client: &ClientRecord) -> StoreResult<bool>;

    /// Every client not removed, oldest first (by name when added together).
    async fn clients(&self) -> StoreResult<Vec<ClientRecord>>;

    /// The client with this id, unless removed.
    async fn client_by_id(&self, client_id: &str) -> StoreResult<Option<ClientRecord>>;

    /// The client with this name, unless removed.
    async fn client_by_name(&self, name: &str) -> StoreResult<Option<ClientRecord>>;

    /// Replaces the secret digest of a client not removed; false when there
    /// is no such client.
    async fn set_client_secret(&self, client_id: &str, secret_digest: &str) -> StoreResult<bool>;

    /// Removes a client at `now`, its tokens refused until `refused_until`,
    /// and logs that in the change log in the same transaction; false (and
    /// nothing logged) when there is no such client or it was removed.
    async fn remove_client(
        &self,
        client_id: &str,
        now: i64,
        refused_until: i64,
    ) -> StoreResult<bool>;

    /// The removed clients whose tokens are still refused at `now`, with
    /// until when: the markers a starting process loads.
    async fn removed_clients(&self, now: i64) -> StoreResult<Vec<(String, i64)>>;
}

/// The pruning statement of this table, bound to `now`: removed clients
/// whose tokens have all expired.
pub(crate) const PRUNE: &str = "DELETE FROM clients WHERE refused_until < $1";

for_each_engine! {
    #[async_trait]
    impl ClientStore for Engine {
        async fn insert_client(&self, client: &ClientRecord) -> StoreResult<bool> {
            // The unique index on live names decides between concurrent adds.
            let inserted = sqlx::query(
                "INSERT INTO clients (client_id, name, secret_digest, scope, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(&client.client_id)
            .bind(&client.name)
            .bind(&client.secret_digest)
            .bind(&client.scope)
            .bind(client.created_at)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(inserted == 1)
        }

        async fn clients(&self) -> StoreResult<Vec<ClientRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM clients WHERE removed_at IS NULL \
                 ORDER BY created_at, name COLLATE {}",
                Db::BYTEWISE
            ))
            .fetch_all(&self.pool)
            .await?)
        }

        async fn client_by_id(&self, client_id: &str) -> StoreResult<Option<ClientRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM clients WHERE client_id = $1 AND removed_at IS NULL"
            ))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn client_by_name(&self, name: &str) -> StoreResult<Option<ClientRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM clients WHERE name = $1 AND removed_at IS NULL"
            ))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn set_client_secret(&self, client_id: &str, secret_digest: &str) -> StoreResult<bool> {
            let updated = sqlx::query(
                "UPDATE clients SET secret_digest = $1 WHERE client_id = $2 AND removed_at IS NULL",
            )
            .bind(secret_digest)
            .bind(client_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(updated == 1)
        }

        async fn remove_client(
            &self,
            client_id: &str,
            now: i64,
            refused_until: i64,
        ) -> StoreResult<bool> {
            let mut tx = Engine::begin_logged(&self.pool).await?;
            let removed = sqlx::query(
                "UPDATE clients SET removed_at = $1, refused_until = $2 \
                 WHERE client_id = $3 AND removed_at IS NULL",
            )
            .bind(now)
            .bind(refused_until)
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            Engine::log_change(&mut tx, Logged::client(client_id, refused_until), now).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn removed_clients(&self, now: i64) -> StoreResult<Vec<(String, i64)>> {
            Ok(sqlx::query_as(
                "SELECT client_id, refused_until FROM clients \
                 WHERE removed_at IS NOT NULL AND refused_until >= $1",
            )
            .bind(now)
            .fetch_all(&self.pool)
            .await?)
        }
    }
}
