//! Session records (`sessions` table) for both engines: written by the
//! batched writer with the family's refresh tokens (see `batch`), read
//! here.

use crate::{SessionRecord, StoreResult};

const COLUMNS: &str = "s.family_id, s.user_id, s.created_at, s.last_used, s.expires_at, \
                       s.token_version, s.ip, s.user_agent, s.method";

/// The SQL of one engine: its placeholders and its two-argument maximum.
macro_rules! engine {
    ($name:ident, $db:ty, $p:expr, $max:literal) => {
        pub(crate) mod $name {
            use super::*;

            /// Inserts `session`, in the transaction of its first refresh token.
            pub(crate) async fn insert<'e, E>(executor: E, session: &SessionRecord) -> StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(&format!(
                    "INSERT INTO sessions (family_id, user_id, created_at, last_used, expires_at, \
                     token_version, ip, user_agent, method) VALUES ({})",
                    $p(9)
                ))
                .bind(&session.family_id)
                .bind(session.user_id)
                .bind(session.created_at)
                .bind(session.last_used)
                .bind(session.expires_at)
                .bind(session.token_version)
                .bind(&session.ip)
                .bind(&session.user_agent)
                .bind(&session.method)
                .execute(executor)
                .await?;
                Ok(())
            }

            /// Notes a refresh of the session at `at`, whose newest refresh
            /// token expires at `expires_at` (0: unchanged). Never moves
            /// either back: batched writes may commit out of order.
            pub(crate) async fn touch<'e, E>(
                executor: E,
                family_id: &str,
                at: i64,
                expires_at: i64,
            ) -> StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let p = $p(3);
                let p: Vec<&str> = p.split(", ").collect();
                sqlx::query(&format!(
                    "UPDATE sessions SET last_used = {max}(last_used, {}), \
                     expires_at = {max}(expires_at, {}) WHERE family_id = {}",
                    p[0],
                    p[1],
                    p[2],
                    max = $max
                ))
                .bind(at)
                .bind(expires_at)
                .bind(family_id)
                .execute(executor)
                .await?;
                Ok(())
            }

            /// The user's sessions not ended (revoked family, older token
            /// version) and not expired at `now`, most recently used first.
            pub(crate) async fn live<'e, E>(
                executor: E,
                user_id: i64,
                now: i64,
            ) -> StoreResult<Vec<SessionRecord>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let p = $p(2);
                let p: Vec<&str> = p.split(", ").collect();
                Ok(sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.user_id = {} AND s.expires_at > {} \
                       AND s.token_version = u.token_version \
                       AND NOT EXISTS (SELECT 1 FROM revoked_families r WHERE r.family_id = s.family_id) \
                     ORDER BY s.last_used DESC, s.created_at DESC, s.family_id",
                    p[0], p[1]
                ))
                .bind(user_id)
                .bind(now)
                .fetch_all(executor)
                .await?)
            }
        }
    };
}

/// `?, ?, ?` for SQLite.
fn question_marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// `$1, $2, $3` for PostgreSQL.
fn numbered(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

engine!(sqlite, sqlx::Sqlite, question_marks, "MAX");
engine!(postgres, sqlx::Postgres, numbered, "GREATEST");
