//! Session records (`sessions`): written by the batched writer with the
//! family's refresh tokens (see `batch`), read for the sessions list. A
//! session's last use and expiry only ever move forward.

use crate::engine::{ROWS_PER_STATEMENT, for_each_engine, value_rows};
use crate::{SessionRecord, StoreResult};

const COLUMNS: &str = "s.family_id, s.user_id, s.created_at, s.last_used, s.expires_at, \
                       s.token_version, s.ip, s.user_agent, s.method";

for_each_engine! {
    impl Engine {
        /// Inserts `session`, in the transaction of its first refresh token.
        pub(crate) async fn insert_session<'e, E>(
            executor: E,
            session: &SessionRecord,
        ) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            sqlx::query(
                "INSERT INTO sessions (family_id, user_id, created_at, last_used, expires_at, \
                 token_version, ip, user_agent, method) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
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
        pub(crate) async fn note_session_use<'e, E>(
            executor: E,
            family_id: &str,
            at: i64,
            expires_at: i64,
        ) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            sqlx::query(&format!(
                "UPDATE sessions SET last_used = {max}(last_used, $1), \
                 expires_at = {max}(expires_at, $2) WHERE family_id = $3",
                max = Db::GREATEST
            ))
            .bind(at)
            .bind(expires_at)
            .bind(family_id)
            .execute(executor)
            .await?;
            Ok(())
        }

        /// [`Engine::insert_session`] for the sessions begun in a batch, in
        /// as few statements as [`ROWS_PER_STATEMENT`] allows.
        pub(crate) async fn insert_sessions(
            tx: &mut sqlx::Transaction<'_, Db>,
            sessions: &[&SessionRecord],
        ) -> StoreResult<()> {
            for chunk in sessions.chunks(ROWS_PER_STATEMENT) {
                let text = format!(
                    "INSERT INTO sessions (family_id, user_id, created_at, last_used, expires_at, \
                     token_version, ip, user_agent, method) VALUES {}",
                    value_rows(chunk.len(), 9)
                );
                let mut query = sqlx::query(&text).persistent(false);
                for session in chunk {
                    query = query
                        .bind(&session.family_id)
                        .bind(session.user_id)
                        .bind(session.created_at)
                        .bind(session.last_used)
                        .bind(session.expires_at)
                        .bind(session.token_version)
                        .bind(&session.ip)
                        .bind(&session.user_agent)
                        .bind(&session.method);
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// [`Engine::note_session_use`] for the sessions a batch refreshed:
        /// `uses` holds (family, at, expires_at), one a session (the
        /// caller merges a session's uses: one row is updated once per
        /// statement).
        pub(crate) async fn note_sessions_use(
            tx: &mut sqlx::Transaction<'_, Db>,
            uses: &[(&str, i64, i64)],
        ) -> StoreResult<()> {
            for chunk in uses.chunks(ROWS_PER_STATEMENT) {
                let text = format!(
                    "UPDATE sessions SET last_used = {max}(last_used, v.column2), \
                     expires_at = {max}(expires_at, v.column3) \
                     FROM (VALUES {rows}) AS v WHERE sessions.family_id = v.column1",
                    max = Db::GREATEST,
                    rows = value_rows(chunk.len(), 3)
                );
                let mut query = sqlx::query(&text).persistent(false);
                for (family_id, at, expires_at) in chunk {
                    query = query.bind(*family_id).bind(*at).bind(*expires_at);
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// The user's sessions not ended (revoked family, older token
        /// version) and not expired at `now`, most recently used first.
        pub(crate) async fn live_sessions_of<'e, E>(
            executor: E,
            user_id: i64,
            now: i64,
        ) -> StoreResult<Vec<SessionRecord>>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.user_id = $1 AND s.expires_at > $2 \
                   AND s.token_version = u.token_version \
                   AND NOT EXISTS (SELECT 1 FROM revoked_families r WHERE r.family_id = s.family_id) \
                 ORDER BY s.last_used DESC, s.created_at DESC, s.family_id"
            ))
            .bind(user_id)
            .bind(now)
            .fetch_all(executor)
            .await?)
        }
    }
}
