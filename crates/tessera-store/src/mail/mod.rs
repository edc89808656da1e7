//! Password-reset and verification links (`email_tokens`), the requests
//! the mail limits count (`mail_requests`) and the outbox, for both
//! engines: one SQL text each (`$N` placeholders, which SQLite reads too),
//! run on each engine's transaction, which the store begins as it must
//! (on PostgreSQL under the change-log lock when a user changes).
//! `link_store.rs` implements [`crate::LinkStore`] on both stores with them.

mod link_store;

use crate::{Letter, LinkKind, LinkRecord, MailRequest, OutboxCounts, PendingRequest, QueuedMail};
use crate::{StoreResult, USER_COLUMNS, UserRecord};

/// How long a mail's record outlives its sending (or giving up), and a
/// request its counting, before `prune` deletes them: long enough for an
/// operator to look into a complaint.
pub(crate) const KEPT_FOR: i64 = 7 * 24 * 3600;

fn kind_named(name: &str) -> LinkKind {
    if name == LinkKind::Verify.as_str() {
        LinkKind::Verify
    } else {
        LinkKind::Reset
    }
}

type LinkRow = (String, i64, String, String, i64, i64);

fn link_from(row: LinkRow) -> LinkRecord {
    let (token_hash, user_id, kind, email, created_at, expires_at) = row;
    LinkRecord {
        token_hash,
        user_id,
        kind: kind_named(&kind),
        email,
        created_at,
        expires_at,
    }
}

/// Voids every link of user `$1` mailed to an address other than `$2`
/// (the user's address now), run in the transaction that changes it: a
/// link proves only that its reader has the address it went to, which
/// tells nothing about the account once its address is another. Deleted,
/// not merely refused, so that setting the old address back later does
/// not bring them back.
pub(crate) const VOID_LINKS_TO_OTHER_ADDRESSES: &str =
    "DELETE FROM email_tokens WHERE user_id = $1 AND email <> $2";

/// The statements prune runs, each bound to one time.
pub(crate) fn prune_statements(now: i64) -> [(&'static str, i64); 4] {
    [
        ("DELETE FROM email_tokens WHERE expires_at < $1", now),
        ("DELETE FROM mail_requests WHERE at < $1", now - KEPT_FOR),
        ("DELETE FROM outbox WHERE sent_at < $1", now - KEPT_FOR),
        ("DELETE FROM outbox WHERE failed_at < $1", now - KEPT_FOR),
    ]
}

macro_rules! engine {
    ($name:ident, $db:ty) => {
        pub(crate) mod $name {
            use super::*;
            use sqlx::Transaction;

            /// Active or not, the users whose address is `email`, ignoring case.
            pub(crate) async fn users_by_email<'e, E>(
                executor: E,
                email: &str,
            ) -> StoreResult<Vec<UserRecord>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                Ok(sqlx::query_as(&format!(
                    "SELECT {USER_COLUMNS} FROM users \
                     WHERE lower(email) = lower($1) AND email <> '' ORDER BY id"
                ))
                .bind(email)
                .fetch_all(executor)
                .await?)
            }

            /// Counts `request`; unless it is past a limit, writes its
            /// letter (its links, voiding each user's older ones of the
            /// kind, and its one mail). True when the letter was written.
            pub(crate) async fn request_links(
                tx: &mut Transaction<'_, $db>,
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
            pub(crate) async fn pending<'e, E>(
                executor: E,
                limit: i64,
            ) -> StoreResult<Vec<PendingRequest>>
            where
                E: sqlx::Executor<'e, Database = $db>,
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
            pub(crate) async fn fulfil(
                tx: &mut Transaction<'_, $db>,
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

            /// The letter's links (a reset link voiding its user's older
            /// ones: [`LinkKind::newer_voids_older`]) and its one mail.
            async fn write_letter(
                tx: &mut Transaction<'_, $db>,
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

            /// The link with this token hash and kind, unused and unexpired at `now`.
            pub(crate) async fn link<'e, E>(
                executor: E,
                token_hash: &str,
                kind: LinkKind,
                now: i64,
            ) -> StoreResult<Option<LinkRecord>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row: Option<LinkRow> = sqlx::query_as(
                    "SELECT token_hash, user_id, kind, email, created_at, expires_at \
                     FROM email_tokens WHERE token_hash = $1 AND kind = $2 \
                       AND used_at IS NULL AND expires_at > $3",
                )
                .bind(token_hash)
                .bind(kind.as_str())
                .bind(now)
                .fetch_optional(executor)
                .await?;
                Ok(row.map(link_from))
            }

            /// Uses the link: its user and address, unless it was used,
            /// voided or expired (one statement, so one of several
            /// concurrent uses wins).
            async fn use_link(
                tx: &mut Transaction<'_, $db>,
                token_hash: &str,
                kind: LinkKind,
                now: i64,
            ) -> StoreResult<Option<(i64, String)>> {
                Ok(sqlx::query_as(
                    "UPDATE email_tokens SET used_at = $1 \
                     WHERE token_hash = $2 AND kind = $3 AND used_at IS NULL AND expires_at > $1 \
                     RETURNING user_id, email",
                )
                .bind(now)
                .bind(token_hash)
                .bind(kind.as_str())
                .fetch_optional(&mut **tx)
                .await?)
            }

            /// Uses a reset link: the user's new password hash, a raised
            /// token version, and the address verified (the link was read
            /// there). `None` (nothing changed) for a bad link, an
            /// inactive user, or one whose address is no longer the one
            /// the link went to.
            pub(crate) async fn reset_password(
                tx: &mut Transaction<'_, $db>,
                token_hash: &str,
                password_hash: &str,
                now: i64,
            ) -> StoreResult<Option<UserRecord>> {
                let Some((user_id, email)) = use_link(tx, token_hash, LinkKind::Reset, now).await?
                else {
                    return Ok(None);
                };
                Ok(sqlx::query_as(&format!(
                    "UPDATE users SET password_hash = $1, token_version = token_version + 1, \
                       email_verified = TRUE, revision = revision + 1 \
                     WHERE id = $3 AND is_active AND email = $2 RETURNING {USER_COLUMNS}"
                ))
                .bind(password_hash)
                .bind(email)
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?)
            }

            /// Uses a verification link: the user's address verified, if
            /// it is still the one the link went to, and the user's other
            /// verification links voided (they have done their work).
            /// `None` otherwise.
            pub(crate) async fn verify_email(
                tx: &mut Transaction<'_, $db>,
                token_hash: &str,
                now: i64,
            ) -> StoreResult<Option<UserRecord>> {
                let Some((user_id, email)) = use_link(tx, token_hash, LinkKind::Verify, now).await?
                else {
                    return Ok(None);
                };
                let user: Option<UserRecord> = sqlx::query_as(&format!(
                    "UPDATE users SET email_verified = TRUE, revision = revision + 1 \
                     WHERE id = $1 AND email = $2 AND is_active RETURNING {USER_COLUMNS}"
                ))
                .bind(user_id)
                .bind(email)
                .fetch_optional(&mut **tx)
                .await?;
                if user.is_some() {
                    sqlx::query(
                        "DELETE FROM email_tokens \
                         WHERE user_id = $1 AND kind = $2 AND used_at IS NULL",
                    )
                    .bind(user_id)
                    .bind(LinkKind::Verify.as_str())
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(user)
            }

            /// Takes up to `limit` mails due at `now`, moving their next
            /// try to `lease_until` so that no other sender takes them
            /// meanwhile; `attempts` counts this try.
            pub(crate) async fn take_mail<'e, E>(
                executor: E,
                now: i64,
                lease_until: i64,
                limit: i64,
            ) -> StoreResult<Vec<QueuedMail>>
            where
                E: sqlx::Executor<'e, Database = $db>,
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
            pub(crate) async fn mail_sent<'e, E>(executor: E, id: i64, now: i64) -> StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
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
            pub(crate) async fn mail_failed<'e, E>(
                executor: E,
                id: i64,
                retry_at: Option<i64>,
                error: &str,
                now: i64,
            ) -> StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db>,
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
            pub(crate) async fn release_mail<'e, E>(executor: E, ids: &[i64], now: i64) -> StoreResult<()>
            where
                E: sqlx::Executor<'e, Database = $db> + Copy,
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
            pub(crate) async fn outbox_counts<'e, E>(executor: E) -> StoreResult<OutboxCounts>
            where
                E: sqlx::Executor<'e, Database = $db>,
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
    };
}

engine!(sqlite, sqlx::Sqlite);
engine!(postgres, sqlx::Postgres);
