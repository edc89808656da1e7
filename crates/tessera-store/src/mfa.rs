//! Second factors (`mfa_totp`, `mfa_recovery_codes`, `mfa_challenges`): a
//! user's TOTP factor from enrolment to removal, its recovery codes, and
//! the challenges of logins waiting for a second factor.
//!
//! Every use of a proof is one conditional write whose rows affected
//! decide, so that of concurrent uses (on any instance sharing the
//! database) exactly one wins: a TOTP code's time step is accepted only
//! above the last one accepted, a recovery code only while unused, a
//! challenge only while live. Each transaction begins with its write, so
//! that SQLite takes its one write lock first (a transaction that read
//! first could find another had written since, and fail).

use crate::engine::{ROWS_PER_STATEMENT, for_each_engine, value_rows};
use crate::{ChallengeAnswer, ChallengeRecord, FactorProof, StoreResult, TotpRecord};
use async_trait::async_trait;

const TOTP_COLUMNS: &str = "user_id, secret, created_at, confirmed_at, last_step";

const CHALLENGE_COLUMNS: &str = "token_hash, user_id, token_version, method, transport, ip, \
                                 user_agent, created_at, expires_at, purpose";

/// Accepts a TOTP time step (`$1`) of user `$2`'s confirmed factor, once.
const ACCEPT_STEP: &str = "UPDATE mfa_totp SET last_step = $1 \
     WHERE user_id = $2 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $1)";

/// Uses user `$2`'s unused recovery code of hash `$1` at `$3`, once.
const USE_RECOVERY_CODE: &str = "UPDATE mfa_recovery_codes SET used_at = $3 \
     WHERE code_hash = $1 AND user_id = $2 AND used_at IS NULL";

/// The pruning statement of this concern, bound to `now`: challenges past
/// their expiry.
pub(crate) const PRUNE: &str = "DELETE FROM mfa_challenges WHERE expires_at <= $1";

/// Second factors, with the promises of [`Store`](crate::Store): each
/// method atomic, and durable once it returns.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// The user's TOTP factor, pending or confirmed.
    async fn totp_factor(&self, user_id: i64) -> StoreResult<Option<TotpRecord>>;

    /// Begins (or begins again) the user's TOTP enrolment with `secret`:
    /// a pending factor, replacing a pending one. False (nothing written)
    /// when the user has a confirmed factor.
    async fn begin_totp_enrolment(
        &self,
        user_id: i64,
        secret: &[u8],
        now: i64,
    ) -> StoreResult<bool>;

    /// Confirms the user's pending factor of `secret` with a code of time
    /// step `step` (which counts as used), and replaces the user's recovery
    /// codes with `recovery_hashes` (unused), in one transaction. False
    /// (nothing written) when there is no pending factor of that secret.
    async fn confirm_totp(
        &self,
        user_id: i64,
        secret: &[u8],
        step: i64,
        recovery_hashes: &[String],
        now: i64,
    ) -> StoreResult<bool>;

    /// Uses `proof` (a code of the user's confirmed factor, or one of its
    /// recovery codes) and removes the factor, and its recovery codes
    /// unless the user has a passkey, in one transaction. False (nothing written) when the proof was used
    /// already or there is no confirmed factor.
    async fn remove_totp(
        &self,
        user_id: i64,
        proof: FactorProof<'_>,
        now: i64,
    ) -> StoreResult<bool>;

    /// Replaces the user's recovery codes with `hashes` (unused), the old
    /// ones void, in one transaction. False (nothing written) when the user
    /// has no factor (no confirmed TOTP factor, no passkey).
    async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[String],
        now: i64,
    ) -> StoreResult<bool>;

    /// Removes the user's TOTP factor (pending or confirmed), its
    /// recovery codes, its passkeys, its challenges and its passkey
    /// ceremonies, in one transaction (a staff
    /// user's reset, for a lost device). Whether the user had any of them.
    async fn reset_factors(&self, user_id: i64) -> StoreResult<bool>;

    /// How many of the user's recovery codes are unused.
    async fn recovery_codes_left(&self, user_id: i64) -> StoreResult<i64>;

    /// Stores `challenge`, first deleting the user's expired challenges
    /// and, beyond the newest `max_live - 1` live ones, the oldest: a user
    /// has at most `max_live` live challenges (at least one, this).
    async fn create_challenge(&self, challenge: &ChallengeRecord, max_live: i64)
    -> StoreResult<()>;

    /// The challenge of hash `token_hash`, if it is live at `now`.
    async fn challenge(&self, token_hash: &str, now: i64) -> StoreResult<Option<ChallengeRecord>>;

    /// Answers the live challenge of hash `token_hash` of user `user_id`
    /// with `proof`: both used up in one transaction, or neither (see
    /// [`ChallengeAnswer`]).
    async fn answer_challenge(
        &self,
        token_hash: &str,
        user_id: i64,
        proof: FactorProof<'_>,
        now: i64,
    ) -> StoreResult<ChallengeAnswer>;
}

for_each_engine! {
    impl Engine {
        /// Uses `proof` of user `user_id` in `tx`: whether it was accepted.
        pub(crate) async fn use_proof(
            tx: &mut sqlx::Transaction<'_, Db>,
            user_id: i64,
            proof: FactorProof<'_>,
            now: i64,
        ) -> StoreResult<bool> {
            let used = match proof {
                FactorProof::TotpStep(step) => {
                    sqlx::query(ACCEPT_STEP)
                        .bind(step)
                        .bind(user_id)
                        .execute(&mut **tx)
                        .await?
                }
                FactorProof::RecoveryCode(hash) => {
                    sqlx::query(USE_RECOVERY_CODE)
                        .bind(hash)
                        .bind(user_id)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?
                }
                FactorProof::Passkey {
                    id,
                    sign_count,
                    passkey,
                } => {
                    sqlx::query(crate::passkeys::USE_PASSKEY)
                        .bind(passkey)
                        .bind(sign_count)
                        .bind(now)
                        .bind(id)
                        .bind(user_id)
                        .execute(&mut **tx)
                        .await?
                }
            };
            Ok(used.rows_affected() == 1)
        }

        /// Writes `hashes` as the user's recovery codes in `tx`, after the
        /// old ones are deleted.
        pub(crate) async fn insert_recovery_codes(
            tx: &mut sqlx::Transaction<'_, Db>,
            user_id: i64,
            hashes: &[String],
            now: i64,
        ) -> StoreResult<()> {
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut **tx)
                .await?;
            for chunk in hashes.chunks(ROWS_PER_STATEMENT) {
                let text = format!(
                    "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES {}",
                    value_rows(chunk.len(), 3)
                );
                let mut query = sqlx::query(&text).persistent(false);
                for hash in chunk {
                    query = query.bind(user_id).bind(hash).bind(now);
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }
    }

    #[async_trait]
    impl MfaStore for Engine {
        async fn totp_factor(&self, user_id: i64) -> StoreResult<Option<TotpRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT {TOTP_COLUMNS} FROM mfa_totp WHERE user_id = $1"
            ))
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn begin_totp_enrolment(
            &self,
            user_id: i64,
            secret: &[u8],
            now: i64,
        ) -> StoreResult<bool> {
            // One statement: a confirmed factor is never replaced, whatever
            // enrolment runs beside it.
            let written = sqlx::query(
                "INSERT INTO mfa_totp (user_id, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
                   created_at = excluded.created_at, last_step = NULL \
                 WHERE mfa_totp.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(secret)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(written == 1)
        }

        async fn confirm_totp(
            &self,
            user_id: i64,
            secret: &[u8],
            step: i64,
            recovery_hashes: &[String],
            now: i64,
        ) -> StoreResult<bool> {
            let mut tx = self.pool.begin().await?;
            // The secret the code was checked against: an enrolment begun
            // again meanwhile replaced it, and this code proves nothing.
            let confirmed = sqlx::query(
                "UPDATE mfa_totp SET confirmed_at = $1, last_step = $2 \
                 WHERE user_id = $3 AND secret = $4 AND confirmed_at IS NULL",
            )
            .bind(now)
            .bind(step)
            .bind(user_id)
            .bind(secret)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if confirmed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            Engine::insert_recovery_codes(&mut tx, user_id, recovery_hashes, now).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn remove_totp(
            &self,
            user_id: i64,
            proof: FactorProof<'_>,
            now: i64,
        ) -> StoreResult<bool> {
            let mut tx = self.pool.begin().await?;
            if !Engine::use_proof(&mut tx, user_id, proof, now).await? {
                tx.rollback().await?;
                return Ok(false);
            }
            let removed = sqlx::query(
                "DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            // The codes stay while a passkey remains: they stand in for it.
            sqlx::query(crate::passkeys::DELETE_CODES_WITHOUT_FACTOR)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn replace_recovery_codes(
            &self,
            user_id: i64,
            hashes: &[String],
            now: i64,
        ) -> StoreResult<bool> {
            let mut tx = self.pool.begin().await?;
            // A write of the factor's row first: it holds the row (SQLite:
            // the write lock) against a removal running beside, which
            // would otherwise leave codes of a factor that is gone.
            let factor = sqlx::query(
                "UPDATE mfa_totp SET confirmed_at = confirmed_at \
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // Likewise the passkeys' rows, when there is no TOTP factor.
            let passkeys = if factor == 1 {
                0
            } else {
                sqlx::query("UPDATE mfa_passkeys SET name = name WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            };
            if factor != 1 && passkeys == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            Engine::insert_recovery_codes(&mut tx, user_id, hashes, now).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn reset_factors(&self, user_id: i64) -> StoreResult<bool> {
            let mut tx = self.pool.begin().await?;
            let mut removed = 0;
            let tables = [
                "mfa_totp",
                "mfa_recovery_codes",
                "mfa_challenges",
                "mfa_passkeys",
                "passkey_ceremonies",
            ];
            for table in tables {
                removed += sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(removed > 0)
        }

        async fn recovery_codes_left(&self, user_id: i64) -> StoreResult<i64> {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?)
        }

        async fn create_challenge(
            &self,
            challenge: &ChallengeRecord,
            max_live: i64,
        ) -> StoreResult<()> {
            let mut tx = self.pool.begin().await?;
            // The expired, then the oldest live beyond the newest
            // `max_live - 1`: with this one, `max_live` at most.
            sqlx::query(
                "DELETE FROM mfa_challenges WHERE user_id = $1 AND (expires_at <= $2 \
                   OR token_hash IN (SELECT token_hash FROM mfa_challenges WHERE user_id = $1 \
                     ORDER BY created_at DESC, token_hash LIMIT $3 OFFSET $4))",
            )
            .bind(challenge.user_id)
            .bind(challenge.created_at)
            .bind(crate::engine::limit(-1))
            .bind(crate::engine::offset(max_live - 1))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO mfa_challenges ({CHALLENGE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(&challenge.token_hash)
            .bind(challenge.user_id)
            .bind(challenge.token_version)
            .bind(&challenge.method)
            .bind(&challenge.transport)
            .bind(&challenge.ip)
            .bind(&challenge.user_agent)
            .bind(challenge.created_at)
            .bind(challenge.expires_at)
            .bind(&challenge.purpose)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn challenge(
            &self,
            token_hash: &str,
            now: i64,
        ) -> StoreResult<Option<ChallengeRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT {CHALLENGE_COLUMNS} FROM mfa_challenges \
                 WHERE token_hash = $1 AND expires_at > $2"
            ))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn answer_challenge(
            &self,
            token_hash: &str,
            user_id: i64,
            proof: FactorProof<'_>,
            now: i64,
        ) -> StoreResult<ChallengeAnswer> {
            let mut tx = self.pool.begin().await?;
            // Of two answers of one challenge, the second finds it deleted
            // (PostgreSQL: once the first commits; it reads the row again).
            let taken: Option<ChallengeRecord> = sqlx::query_as(&format!(
                "DELETE FROM mfa_challenges WHERE token_hash = $1 AND user_id = $2 \
                 AND expires_at > $3 RETURNING {CHALLENGE_COLUMNS}"
            ))
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(challenge) = taken else {
                tx.rollback().await?;
                return Ok(ChallengeAnswer::ChallengeGone);
            };
            if !Engine::use_proof(&mut tx, user_id, proof, now).await? {
                tx.rollback().await?;
                return Ok(ChallengeAnswer::ProofRefused);
            }
            tx.commit().await?;
            Ok(ChallengeAnswer::Completed(challenge))
        }
    }
}
