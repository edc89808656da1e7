//! Passkeys (`mfa_passkeys`) and the WebAuthn ceremonies under way
//! (`passkey_ceremonies`): a user's credentials from registration to
//! removal, each assertion's signature counter accepted only upwards, and
//! each ceremony finished once.
//!
//! As in [`mfa`](crate::mfa), every use is one conditional write whose rows
//! affected decide (a ceremony is taken by deleting it; an assertion's
//! counter by the update that raises it), so that of concurrent uses on any
//! instance sharing the database exactly one wins; and each transaction
//! begins with its write.

use crate::engine::for_each_engine;
use crate::{CeremonyRecord, PasskeyAdded, PasskeyRecord, StoreResult};
use async_trait::async_trait;

const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, user_handle, name, passkey, \
                               sign_count, created_at, last_used_at";

const CEREMONY_COLUMNS: &str =
    "challenge, purpose, user_id, mfa_token_hash, state, ip, created_at, expires_at";

/// Accepts an assertion of passkey `$4` of user `$5` with counter `$2`,
/// once, leaving the credential as `$1` and its last use at `$3`: only a
/// counter above the last one accepted, or zero after zero (an
/// authenticator without a counter, whose replays the single-use
/// ceremony refuses).
pub(crate) const USE_PASSKEY: &str = "UPDATE mfa_passkeys \
     SET passkey = $1, sign_count = $2, last_used_at = $3 \
     WHERE id = $4 AND user_id = $5 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))";

/// Deletes user `$1`'s recovery codes if they have no factor left (no
/// confirmed TOTP factor, no passkey): the codes stand in for a factor.
pub(crate) const DELETE_CODES_WITHOUT_FACTOR: &str = "DELETE FROM mfa_recovery_codes \
     WHERE user_id = $1 \
     AND NOT EXISTS (SELECT 1 FROM mfa_passkeys WHERE user_id = $1) \
     AND NOT EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL)";

/// The pruning statement of this concern, bound to `now`: ceremonies past
/// their expiry.
pub(crate) const PRUNE: &str = "DELETE FROM passkey_ceremonies WHERE expires_at <= $1";

/// The purpose of a ceremony with at most one per user.
const REGISTER: &str = "register";
/// The purpose of a ceremony with at most one per `mfa_token`.
const SECOND_FACTOR: &str = "second_factor";
/// The purpose of a ceremony with no user, bounded in all.
const LOGIN: &str = "login";

/// The most passwordless logins' ceremonies live at once: per client
/// address, and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CeremonyLimits {
    /// Of one address.
    pub per_address: i64,
    /// Of all addresses.
    pub in_all: i64,
}

/// Passkeys and ceremonies, with the promises of [`Store`](crate::Store):
/// each method atomic, and durable once it returns.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// The user's passkeys, oldest first.
    async fn passkeys(&self, user_id: i64) -> StoreResult<Vec<PasskeyRecord>>;

    /// The passkey of credential id `credential_id` (base64url), whoever's.
    async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> StoreResult<Option<PasskeyRecord>>;

    /// Stores `passkey`, unless its user has `max_per_user` passkeys
    /// already or its credential id is known; when it is the user's first
    /// factor (no confirmed TOTP factor, no other passkey), with
    /// `recovery_hashes` as their recovery codes, in one transaction.
    async fn add_passkey(
        &self,
        passkey: &PasskeyRecord,
        max_per_user: i64,
        recovery_hashes: &[String],
    ) -> StoreResult<PasskeyAdded>;

    /// Removes the user's passkey `id`, and the user's recovery codes when
    /// it was their last factor, in one transaction. Whether it existed.
    async fn remove_passkey(&self, user_id: i64, id: &str) -> StoreResult<bool>;

    /// Accepts an assertion of the user's passkey `id` with counter
    /// `sign_count`, once (see [`FactorProof::Passkey`](crate::FactorProof)),
    /// leaving the credential as `passkey` says. Whether it was accepted.
    async fn use_passkey(
        &self,
        user_id: i64,
        id: &str,
        sign_count: i64,
        passkey: &str,
        now: i64,
    ) -> StoreResult<bool>;

    /// Stores `ceremony` (its `created_at` is now), first deleting the
    /// expired ones and the one it replaces (a user's registration; an
    /// `mfa_token`'s second factor). False (nothing written) for a
    /// passwordless login's when its address has `limits.per_address` live
    /// already, or all addresses `limits.in_all`.
    async fn create_ceremony(
        &self,
        ceremony: &CeremonyRecord,
        limits: CeremonyLimits,
    ) -> StoreResult<bool>;

    /// Takes (deletes and returns) the live ceremony of `challenge` for
    /// `purpose`: each is finished at most once.
    async fn take_ceremony(
        &self,
        challenge: &str,
        purpose: &str,
        now: i64,
    ) -> StoreResult<Option<CeremonyRecord>>;
}

for_each_engine! {
    #[async_trait]
    impl PasskeyStore for Engine {
        async fn passkeys(&self, user_id: i64) -> StoreResult<Vec<PasskeyRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT {PASSKEY_COLUMNS} FROM mfa_passkeys WHERE user_id = $1 \
                 ORDER BY created_at, id"
            ))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?)
        }

        async fn passkey_by_credential(
            &self,
            credential_id: &str,
        ) -> StoreResult<Option<PasskeyRecord>> {
            Ok(sqlx::query_as(&format!(
                "SELECT {PASSKEY_COLUMNS} FROM mfa_passkeys WHERE credential_id = $1"
            ))
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn add_passkey(
            &self,
            passkey: &PasskeyRecord,
            max_per_user: i64,
            recovery_hashes: &[String],
        ) -> StoreResult<PasskeyAdded> {
            let mut tx = self.pool.begin().await?;
            // A write first, which counts the user's passkeys and holds
            // them (SQLite: the write lock) against a registration beside.
            let had = sqlx::query("UPDATE mfa_passkeys SET name = name WHERE user_id = $1")
                .bind(passkey.user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if i64::try_from(had).unwrap_or(i64::MAX) >= max_per_user {
                tx.rollback().await?;
                return Ok(PasskeyAdded::TooMany);
            }
            let inserted = sqlx::query(&format!(
                "INSERT INTO mfa_passkeys ({PASSKEY_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (credential_id) DO NOTHING"
            ))
            .bind(&passkey.id)
            .bind(passkey.user_id)
            .bind(&passkey.credential_id)
            .bind(&passkey.user_handle)
            .bind(&passkey.name)
            .bind(&passkey.passkey)
            .bind(passkey.sign_count)
            .bind(passkey.created_at)
            .bind(passkey.last_used_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted != 1 {
                tx.rollback().await?;
                return Ok(PasskeyAdded::Duplicate);
            }
            let totp: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            )
            .bind(passkey.user_id)
            .fetch_one(&mut *tx)
            .await?;
            let first_factor = had == 0 && totp == 0;
            if first_factor {
                let (user, now) = (passkey.user_id, passkey.created_at);
                Engine::insert_recovery_codes(&mut tx, user, recovery_hashes, now).await?;
            }
            tx.commit().await?;
            Ok(PasskeyAdded::Added { first_factor })
        }

        async fn remove_passkey(&self, user_id: i64, id: &str) -> StoreResult<bool> {
            let mut tx = self.pool.begin().await?;
            let removed = sqlx::query("DELETE FROM mfa_passkeys WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(DELETE_CODES_WITHOUT_FACTOR)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn use_passkey(
            &self,
            user_id: i64,
            id: &str,
            sign_count: i64,
            passkey: &str,
            now: i64,
        ) -> StoreResult<bool> {
            let used = sqlx::query(USE_PASSKEY)
                .bind(passkey)
                .bind(sign_count)
                .bind(now)
                .bind(id)
                .bind(user_id)
                .execute(&self.pool)
                .await?
                .rows_affected();
            Ok(used == 1)
        }

        async fn create_ceremony(
            &self,
            ceremony: &CeremonyRecord,
            limits: CeremonyLimits,
        ) -> StoreResult<bool> {
            let now = ceremony.created_at;
            let mut tx = self.pool.begin().await?;
            sqlx::query(PRUNE)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            match ceremony.purpose.as_str() {
                REGISTER => {
                    sqlx::query(
                        "DELETE FROM passkey_ceremonies WHERE purpose = $1 AND user_id = $2",
                    )
                    .bind(REGISTER)
                    .bind(ceremony.user_id)
                    .execute(&mut *tx)
                    .await?;
                }
                SECOND_FACTOR => {
                    sqlx::query(
                        "DELETE FROM passkey_ceremonies \
                         WHERE purpose = $1 AND mfa_token_hash = $2",
                    )
                    .bind(SECOND_FACTOR)
                    .bind(&ceremony.mfa_token_hash)
                    .execute(&mut *tx)
                    .await?;
                }
                LOGIN => {
                    let (of_address, in_all): (i64, i64) = sqlx::query_as(
                        "SELECT COUNT(CASE WHEN ip = $2 THEN 1 END), COUNT(*) \
                         FROM passkey_ceremonies WHERE purpose = $1",
                    )
                    .bind(LOGIN)
                    .bind(&ceremony.ip)
                    .fetch_one(&mut *tx)
                    .await?;
                    if of_address >= limits.per_address || in_all >= limits.in_all {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                _ => {}
            }
            sqlx::query(&format!(
                "INSERT INTO passkey_ceremonies ({CEREMONY_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(&ceremony.challenge)
            .bind(&ceremony.purpose)
            .bind(ceremony.user_id)
            .bind(&ceremony.mfa_token_hash)
            .bind(&ceremony.state)
            .bind(&ceremony.ip)
            .bind(ceremony.created_at)
            .bind(ceremony.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn take_ceremony(
            &self,
            challenge: &str,
            purpose: &str,
            now: i64,
        ) -> StoreResult<Option<CeremonyRecord>> {
            Ok(sqlx::query_as(&format!(
                "DELETE FROM passkey_ceremonies \
                 WHERE challenge = $1 AND purpose = $2 AND expires_at > $3 \
                 RETURNING {CEREMONY_COLUMNS}"
            ))
            .bind(challenge)
            .bind(purpose)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?)
        }
    }
}
