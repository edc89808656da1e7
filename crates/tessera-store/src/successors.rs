//! The sealed successors of rotated refresh tokens (`refresh_successors`):
//! kept in the transaction of the rotation, read when the rotated token is
//! presented again, pruned once their grace period has passed.

use crate::engine::{ROWS_PER_STATEMENT, for_each_engine, value_rows};
use crate::{SealedSuccessor, StoreResult};

/// The pruning statement and its bound at `now` (Unix seconds): rows whose
/// grace period has passed.
pub(crate) fn prune_statement(now: i64) -> (&'static str, i64) {
    (
        "DELETE FROM refresh_successors WHERE usable_until < $1",
        now.saturating_mul(1000),
    )
}

for_each_engine! {
    impl Engine {
        /// Keeps the successor of the rotated token `jti`, in the
        /// transaction of its rotation.
        pub(crate) async fn keep_successor<'e, E>(
            executor: E,
            jti: &str,
            successor: &SealedSuccessor,
        ) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            sqlx::query(
                "INSERT INTO refresh_successors (jti, sealed, usable_until) VALUES ($1, $2, $3)",
            )
            .bind(jti)
            .bind(&successor.sealed)
            .bind(successor.usable_until_ms)
            .execute(executor)
            .await?;
            Ok(())
        }

        /// [`Engine::keep_successor`] for several rotations of a batch, in
        /// as few statements as [`ROWS_PER_STATEMENT`] allows.
        pub(crate) async fn keep_successors(
            tx: &mut sqlx::Transaction<'_, Db>,
            kept: &[(&str, &SealedSuccessor)],
        ) -> StoreResult<()> {
            for chunk in kept.chunks(ROWS_PER_STATEMENT) {
                let text = format!(
                    "INSERT INTO refresh_successors (jti, sealed, usable_until) VALUES {}",
                    value_rows(chunk.len(), 3)
                );
                let mut query = sqlx::query(&text).persistent(false);
                for (jti, successor) in chunk {
                    query = query
                        .bind(*jti)
                        .bind(&successor.sealed)
                        .bind(successor.usable_until_ms);
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// The successor kept for the rotated token `jti`, if any.
        pub(crate) async fn successor_of<'e, E>(
            executor: E,
            jti: &str,
        ) -> StoreResult<Option<SealedSuccessor>>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let row: Option<(Vec<u8>, i64)> =
                sqlx::query_as("SELECT sealed, usable_until FROM refresh_successors WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(executor)
                    .await?;
            Ok(row.map(|(sealed, usable_until_ms)| SealedSuccessor {
                sealed,
                usable_until_ms,
            }))
        }
    }
}
