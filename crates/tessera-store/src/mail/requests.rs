//! The requests the mail limits count (`mail_requests`): counted against
//! their limits, kept (within them) until their letter is written, each
//! letter's links and mail written in the request's transaction.

use crate::engine::for_each_engine;
use crate::{Letter, MailRequest, PendingRequest, StoreResult};
use sqlx::Transaction;

for_each_engine! {
    /// The letter's links (a reset link voiding its user's older
    /// ones: [`crate::LinkKind::newer_voids_older`]) and its one mail.
    async fn write_letter(
        tx: &mut Transaction<'_, Db>,
        letter: Option<&Letter>,
    ) -> StoreResult<()> {
        let Some(Letter { links, mail }) = letter else {
            return Ok(());
        };
        for link in links {
            if link.kind.newer_voids_older() {
                sqlx::query("DELETE FROM email_tokens WHERE user_id = $1 AND kind = $2")
                    .bind(link.user_id)
                    .bind(link.kind.as_str())
                    .execute(&mut **tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO email_tokens \
                 (token_hash, user_id, kind, email, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&link.token_hash)
            .bind(link.user_id)
            .bind(link.kind.as_str())
            .bind(&link.email)
            .bind(link.created_at)
            .bind(link.expires_at)
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO outbox \
             (recipient, subject, body, created_at, expires_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $4)",
        )
        .bind(&mail.recipient)
        .bind(&mail.subject)
        .bind(&mail.body)
        .bind(mail.created_at)
        .bind(mail.expires_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    impl Engine {
        /// Counts `request`; unless it is past a limit, writes its
        /// letter (its links, voiding each user's older ones of the
        /// kind, and its one mail). True when the letter was written.
        pub(crate) async fn count_request(
            tx: &mut Transaction<'_, Db>,
            request: &MailRequest,
            letter: Option<&Letter>,
        ) -> StoreResult<bool> {
            // The insert first: on SQLite it takes the write lock for
            // the whole transaction (a read first could not upgrade).
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO mail_requests (kind, limit_key, client, at, address) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(request.kind.as_str())
            .bind(&request.limit_key)
            .bind(&request.client)
            .bind(request.at)
            .bind(&request.address)
            .fetch_one(&mut **tx)
            .await?;
            let since = request.at - request.window;
            let for_key: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM mail_requests \
                 WHERE limit_key = $1 AND kind = $2 AND at > $3",
            )
            .bind(&request.limit_key)
            .bind(request.kind.as_str())
            .bind(since)
            .fetch_one(&mut **tx)
            .await?;
            let from_client: i64 = if request.client.is_empty() {
                0
            } else {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM mail_requests \
                     WHERE client = $1 AND kind = $2 AND at > $3",
                )
                .bind(&request.client)
                .bind(request.kind.as_str())
                .bind(since)
                .fetch_one(&mut **tx)
                .await?
            };
            if for_key > request.per_key || from_client > request.per_client {
                // Refused requests are not kept: an unauthenticated
                // client could otherwise add a row per request for ever.
                // The table then holds at most `per_client` requests
                // per client in a window.
                sqlx::query("DELETE FROM mail_requests WHERE id = $1")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                return Ok(false);
            }
            write_letter(tx, letter).await?;
            Ok(true)
        }

        /// Pending requests, oldest first.
        pub(crate) async fn pending_requests<'e, E>(
            executor: E,
            limit: i64,
        ) -> StoreResult<Vec<PendingRequest>>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            Ok(sqlx::query_as(
                "SELECT id, address, client, at FROM mail_requests \
                 WHERE address <> '' ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(executor)
            .await?)
        }

        /// Claims pending request `id` (one statement: one claimer
        /// wins) and writes its letter; false when it was not pending.
        pub(crate) async fn claim_request(
            tx: &mut Transaction<'_, Db>,
            id: i64,
            letter: Option<&Letter>,
        ) -> StoreResult<bool> {
            let claimed = sqlx::query(
                "UPDATE mail_requests SET address = '' WHERE id = $1 AND address <> ''",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                return Ok(false);
            }
            write_letter(tx, letter).await?;
            Ok(true)
        }
    }
}
