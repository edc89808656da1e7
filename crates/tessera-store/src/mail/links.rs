//! Password-reset and verification links (`email_tokens`): found, used
//! once (of concurrent uses one wins), and the user changes a use makes;
//! and the users an address belongs to.

use crate::engine::for_each_engine;
use crate::users::USER_COLUMNS;
use crate::{LinkKind, LinkRecord, StoreResult, UserRecord};
use sqlx::Transaction;

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

for_each_engine! {
    /// Uses the link: its user and address, unless it was used,
    /// voided or expired (one statement, so one of several
    /// concurrent uses wins).
    async fn use_link(
        tx: &mut Transaction<'_, Db>,
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

    impl Engine {
        /// Active or not, the users whose address is `email`, ignoring case.
        pub(crate) async fn users_with_address<'e, E>(
            executor: E,
            email: &str,
        ) -> StoreResult<Vec<UserRecord>>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            Ok(sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM users \
                 WHERE lower(email) = lower($1) AND email <> '' ORDER BY id"
            ))
            .bind(email)
            .fetch_all(executor)
            .await?)
        }

        /// The link with this token hash and kind, unused and unexpired at `now`.
        pub(crate) async fn find_link<'e, E>(
            executor: E,
            token_hash: &str,
            kind: LinkKind,
            now: i64,
        ) -> StoreResult<Option<LinkRecord>>
        where
            E: sqlx::Executor<'e, Database = Db>,
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

        /// Uses a reset link: the user's new password hash, a raised
        /// token version, and the address verified (the link was read
        /// there). `None` (nothing changed) for a bad link, an
        /// inactive user, or one whose address is no longer the one
        /// the link went to.
        pub(crate) async fn reset_with_link(
            tx: &mut Transaction<'_, Db>,
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
        pub(crate) async fn verify_with_link(
            tx: &mut Transaction<'_, Db>,
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
    }
}
