//! The outbox (`outbox`): mails leased to a sender, marked sent or
//! failed (retried or given up on, their text forgotten), released, and
//! counted.

use crate::engine::for_each_engine;
use crate::{OutboxCounts, QueuedMail, StoreResult};

for_each_engine! {
    impl Engine {
        /// Takes up to `limit` mails due at `now`, moving their next
        /// try to `lease_until` so that no other sender takes them
        /// meanwhile; `attempts` counts this try.
        pub(crate) async fn lease_mail<'e, E>(
            executor: E,
            now: i64,
            lease_until: i64,
            limit: i64,
        ) -> StoreResult<Vec<QueuedMail>>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            // The conditions again outside the subquery: on PostgreSQL a
            // concurrent sender's update is re-checked against them.
            Ok(sqlx::query_as(
                "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM outbox \
                              WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
                              ORDER BY next_attempt_at, id LIMIT $3) \
                   AND sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
                 RETURNING id, recipient, subject, body, attempts, expires_at",
            )
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(executor)
            .await?)
        }

        /// Marks mail `id` sent, forgetting its text.
        pub(crate) async fn mark_sent<'e, E>(executor: E, id: i64, now: i64) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            sqlx::query("UPDATE outbox SET sent_at = $1, body = '', last_error = '' WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(executor)
                .await?;
            Ok(())
        }

        /// Records a failed try of mail `id`: tried again at
        /// `retry_at`, or given up on (its text forgotten).
        pub(crate) async fn mark_failed<'e, E>(
            executor: E,
            id: i64,
            retry_at: Option<i64>,
            error: &str,
            now: i64,
        ) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let error: String = error.chars().take(500).collect();
            let query = match retry_at {
                Some(at) => sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $1, last_error = $2 WHERE id = $3",
                )
                .bind(at),
                None => sqlx::query(
                    "UPDATE outbox SET failed_at = $1, body = '', last_error = $2 WHERE id = $3",
                )
                .bind(now),
            };
            query.bind(error).bind(id).execute(executor).await?;
            Ok(())
        }

        /// Makes the unsent mails `ids` due at `now`.
        pub(crate) async fn release_leased<'e, E>(
            executor: E,
            ids: &[i64],
            now: i64,
        ) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = Db> + Copy,
        {
            for id in ids {
                sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $1 \
                     WHERE id = $2 AND sent_at IS NULL AND failed_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(executor)
                .await?;
            }
            Ok(())
        }

        /// How many mails wait, were sent, were given up on.
        pub(crate) async fn count_outbox<'e, E>(executor: E) -> StoreResult<OutboxCounts>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let (pending, sent, failed): (i64, i64, i64) = sqlx::query_as(
                "SELECT \
                   COUNT(CASE WHEN sent_at IS NULL AND failed_at IS NULL THEN 1 END), \
                   COUNT(sent_at), COUNT(failed_at) FROM outbox",
            )
            .fetch_one(executor)
            .await?;
            Ok(OutboxCounts {
                pending,
                sent,
                failed,
            })
        }
    }
}
