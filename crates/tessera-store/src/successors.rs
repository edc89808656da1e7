//! The sealed successors of rotated refresh tokens (`refresh_successors`),
//! one SQL text per operation for both engines (`$N` placeholders, which
//! SQLite accepts too).

use crate::{SealedSuccessor, StoreResult};

const INSERT: &str =
    "INSERT INTO refresh_successors (jti, sealed, usable_until) VALUES ($1, $2, $3)";
const FIND: &str = "SELECT sealed, usable_until FROM refresh_successors WHERE jti = $1";

/// The pruning statement and its bound at `now` (Unix seconds): rows whose
/// grace period has passed.
pub(crate) fn prune_statement(now: i64) -> (&'static str, i64) {
    (
        "DELETE FROM refresh_successors WHERE usable_until < $1",
        now.saturating_mul(1000),
    )
}

macro_rules! engine {
    ($name:ident, $db:ty) => {
        pub(crate) mod $name {
            use super::*;

            /// Keeps the successor of the rotated token `jti`, in the
            /// transaction of its rotation.
            pub(crate) async fn insert<'e, E>(
                executor: E,
                jti: &str,
                successor: &SealedSuccessor,
            ) -> StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(INSERT)
                    .bind(jti)
                    .bind(&successor.sealed)
                    .bind(successor.usable_until_ms)
                    .execute(executor)
                    .await?;
                Ok(())
            }

            /// The successor kept for the rotated token `jti`, if any.
            pub(crate) async fn find<'e, E>(
                executor: E,
                jti: &str,
            ) -> StoreResult<Option<SealedSuccessor>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row: Option<(Vec<u8>, i64)> = sqlx::query_as(FIND)
                    .bind(jti)
                    .fetch_optional(executor)
                    .await?;
                Ok(row.map(|(sealed, usable_until_ms)| SealedSuccessor {
                    sealed,
                    usable_until_ms,
                }))
            }
        }
    };
}

engine!(sqlite, sqlx::Sqlite);
engine!(postgres, sqlx::Postgres);
