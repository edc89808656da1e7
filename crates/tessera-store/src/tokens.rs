//! Refresh tokens (`refresh_tokens`) and ended sessions
//! (`revoked_families`), with the sessions and sealed successors that go
//! with them (`sessions`, `successors`): recorded, rotated, blacklisted,
//! revoked, and read back as the markers every process holds. Writes on a
//! refresh's path go through the batched writer (`batch`); a blacklisting
//! or a revocation is logged in the change log in its transaction.

use crate::batch::Applied;
use crate::changes::Logged;
use crate::engine::{ROWS_PER_STATEMENT, for_each_engine, value_rows};
use crate::users::USER_COLUMNS;
use crate::{
    ExpectedUser, RefreshRecord, RefreshStanding, Revocations, Rotation, SealedSuccessor,
    SessionRecord, StoreResult, UserRecord,
};
use async_trait::async_trait;
use sqlx::{Pool, Transaction};

/// Refresh tokens and sessions, with the promises of
/// [`Store`](crate::Store): each method atomic, and durable once it returns.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Records a newly issued refresh token.
    async fn record_refresh_token(&self, token: &RefreshRecord) -> StoreResult<()>;

    /// Records a new session and its first refresh token, in one
    /// transaction.
    async fn begin_session(
        &self,
        token: &RefreshRecord,
        session: &SessionRecord,
    ) -> StoreResult<()>;

    /// Notes that session `family_id` was refreshed at `at` by a refresh
    /// that wrote nothing else. Best effort and without waiting: it may be
    /// lost (a full queue, a crash), never a refresh held back by it.
    fn touch_session(&self, family_id: &str, at: i64);

    /// The user's sessions not ended (revoked family, older token version)
    /// and not expired at `now`, most recently used first.
    async fn live_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<SessionRecord>>;

    /// Blacklists `token` unless it already is; true when this call did it.
    /// Among concurrent calls for one token exactly one returns true.
    async fn blacklist_refresh_token(&self, token: &RefreshRecord, now: i64) -> StoreResult<bool>;

    /// [`Self::blacklist_refresh_token`] for an access token (RFC 7009
    /// revocation): the same record and answer; the change log says it was
    /// an access token, which the revocation feed tells other services.
    async fn blacklist_access_token(&self, token: &RefreshRecord, now: i64) -> StoreResult<bool>;

    /// Rotation with blacklisting: blacklists `old` and records `new` in one
    /// transaction, only if `old` was not blacklisted yet (then returns true),
    /// keeping `successor` (`new` sealed) for `old`'s grace period in the
    /// same transaction.
    async fn rotate_refresh_token(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        successor: Option<&SealedSuccessor>,
        now: i64,
    ) -> StoreResult<bool>;

    /// [`Self::rotate_refresh_token`] for a refresh that minted its tokens
    /// from what its process holds in memory: done only if the database
    /// agrees, in the same statement's transaction, that `expected`'s user
    /// exists, is active and is at its versions, and that `old`'s family
    /// was not ended ([`Rotation::Stale`] otherwise, writing nothing). So a
    /// refresh costs one trip to the writer when nothing changed, and is
    /// decided on the database when something did.
    async fn rotate_if_current(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        successor: Option<&SealedSuccessor>,
        now: i64,
        expected: &ExpectedUser,
    ) -> StoreResult<Rotation>;

    /// The sealed successor the refresh token `jti` was rotated into, if one
    /// was kept and not pruned yet (whether its grace period has passed is
    /// the caller's to decide, from `usable_until_ms`).
    async fn refresh_successor(&self, jti: &str) -> StoreResult<Option<SealedSuccessor>>;

    /// Revokes every token of family `family_id` until `expires_at`.
    async fn revoke_family(
        &self,
        family_id: &str,
        user_id: i64,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()>;

    /// Whether the refresh token `jti` of family `family_id` is blacklisted,
    /// and whether its family was ended, as the database has it now: a
    /// refresh is decided on this, not on a process's memory, so that what
    /// any instance decided holds on every other at once.
    async fn refresh_standing(&self, jti: &str, family_id: &str) -> StoreResult<RefreshStanding>;

    /// [`Self::refresh_standing`] and the user `user_id`, read in one
    /// statement; `None` when the user does not exist.
    async fn refresh_state(
        &self,
        jti: &str,
        family_id: &str,
        user_id: i64,
    ) -> StoreResult<Option<(UserRecord, RefreshStanding)>>;

    /// The user's live sessions (families with a refresh token unexpired at
    /// `now` and not revoked) beyond the `keep` most recently begun: the
    /// ones to end, oldest first.
    async fn sessions_beyond(&self, user_id: i64, keep: i64, now: i64) -> StoreResult<Vec<String>>;

    /// The revocation markers still in force at `now`.
    async fn revocations(&self, now: i64) -> StoreResult<Revocations>;
}

/// The statements prune runs for these tables, each bound to `now`.
pub(crate) const PRUNE: [&str; 3] = [
    "DELETE FROM refresh_tokens WHERE expires_at < $1",
    "DELETE FROM revoked_families WHERE expires_at < $1",
    "DELETE FROM sessions WHERE expires_at < $1",
];

/// A row of [`TokenStore::refresh_state`].
#[derive(sqlx::FromRow)]
struct RefreshState {
    #[sqlx(flatten)]
    user: UserRecord,
    blacklisted: bool,
    family_revoked: bool,
}

/// The condition a guarded rotation is done under
/// ([`TokenStore::rotate_if_current`]), with its parameters at these
/// places: the user as the caller assumed it (id, token version, claims
/// version), and the family not ended.
fn still_current(user: &str, token_version: &str, claims_version: &str, family: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM users WHERE id = {user} AND is_active \
         AND token_version = {token_version} AND claims_version = {claims_version}) \
         AND NOT EXISTS (SELECT 1 FROM revoked_families WHERE family_id = {family})"
    )
}

for_each_engine! {
    impl Engine {
        /// Records an issued refresh token, on the pool or inside a transaction.
        pub(crate) async fn insert_refresh<'e, E>(
            executor: E,
            token: &RefreshRecord,
        ) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            sqlx::query(
                "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&token.jti)
            .bind(token.user_id)
            .bind(&token.family_id)
            .bind(token.issued_at)
            .bind(token.expires_at)
            .execute(executor)
            .await?;
            Ok(())
        }

        /// [`Engine::insert_refresh`] for the tokens of a batch, in as few
        /// statements as [`ROWS_PER_STATEMENT`] allows.
        pub(crate) async fn insert_refreshes(
            tx: &mut Transaction<'_, Db>,
            tokens: &[&RefreshRecord],
        ) -> StoreResult<()> {
            for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
                let text = format!(
                    "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at) \
                     VALUES {}",
                    value_rows(chunk.len(), 5)
                );
                let mut query = sqlx::query(&text).persistent(false);
                for token in chunk {
                    query = query
                        .bind(&token.jti)
                        .bind(token.user_id)
                        .bind(&token.family_id)
                        .bind(token.issued_at)
                        .bind(token.expires_at);
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// The blacklisting step of several rotations of a batch at once,
        /// each as [`Engine::blacklist_in`] (`expected` `None`) or
        /// `blacklist_if_current` would do it, in as few statements as
        /// [`ROWS_PER_STATEMENT`] allows; answers the jtis blacklisted now.
        /// Appends nothing to the change log (the caller does, for those).
        /// No jti may appear twice (PostgreSQL's upsert refuses to touch a
        /// row twice in one statement).
        pub(crate) async fn blacklist_rotated(
            tx: &mut Transaction<'_, Db>,
            rotations: &[(&RefreshRecord, i64, Option<&ExpectedUser>)],
        ) -> StoreResult<std::collections::HashSet<String>> {
            let mut blacklisted = std::collections::HashSet::with_capacity(rotations.len());
            for chunk in rotations.chunks(ROWS_PER_STATEMENT) {
                // column7 = 0: no assumption to check (a rotation that was
                // not minted from memory).
                let text = format!(
                    "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at, blacklisted_at) \
                     SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6 \
                     FROM (VALUES {}) AS v WHERE v.column7 = 0 OR ({}) \
                     ON CONFLICT (jti) DO UPDATE SET blacklisted_at = EXCLUDED.blacklisted_at \
                     WHERE refresh_tokens.blacklisted_at IS NULL \
                     RETURNING jti",
                    value_rows(chunk.len(), 10),
                    still_current("v.column8", "v.column9", "v.column10", "v.column3")
                );
                let mut query = sqlx::query_scalar::<_, String>(&text).persistent(false);
                for (token, now, expected) in chunk {
                    let (guarded, user, version, claims) = match expected {
                        Some(e) => (1_i64, e.user_id, e.token_version, e.claims_version),
                        None => (0, 0, 0, 0),
                    };
                    query = query
                        .bind(&token.jti)
                        .bind(token.user_id)
                        .bind(&token.family_id)
                        .bind(token.issued_at)
                        .bind(token.expires_at)
                        .bind(*now)
                        .bind(guarded)
                        .bind(user)
                        .bind(version)
                        .bind(claims);
                }
                blacklisted.extend(query.fetch_all(&mut **tx).await?);
            }
            Ok(blacklisted)
        }

        /// Whether the assumptions of a guarded rotation still hold
        /// (`still_current`): what tells a rotation refused by the guard
        /// from one of a token blacklisted already.
        pub(crate) async fn is_still_current(
            tx: &mut Transaction<'_, Db>,
            token: &RefreshRecord,
            expected: &ExpectedUser,
        ) -> StoreResult<bool> {
            Ok(sqlx::query_scalar(&format!("SELECT {}", still_current("$1", "$2", "$3", "$4")))
                .bind(expected.user_id)
                .bind(expected.token_version)
                .bind(expected.claims_version)
                .bind(&token.family_id)
                .fetch_one(&mut **tx)
                .await?)
        }

        /// Blacklists one token in a transaction of its own (see `blacklist_in`).
        async fn blacklist(
            pool: &Pool<Db>,
            token: &RefreshRecord,
            refresh: bool,
            now: i64,
        ) -> StoreResult<bool> {
            let mut tx = Engine::begin_logged(pool).await?;
            let done = Engine::blacklist_in(&mut tx, token, refresh, now).await?;
            if done {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(done)
        }

        /// Blacklists one token in `tx` (from `begin_logged`), a refresh
        /// token when `refresh` (else an access token); true when it was not
        /// blacklisted before. One statement, so that among
        /// concurrent callers exactly one sees true: on PostgreSQL the
        /// upsert locks the row and checks `blacklisted_at IS NULL` on its
        /// newest version; SQLite has one writer.
        /// One rotation of a batch, in its savepoint `tx`: with `expected`,
        /// nothing unless [`still_current`] holds ([`Applied::Stale`]); then
        /// `old` blacklisted unless it already was ([`Applied::NotDone`]),
        /// `new` recorded, `successor` kept for `old`, and the refresh noted
        /// in the session.
        pub(crate) async fn rotate_in(
            tx: &mut Transaction<'_, Db>,
            old: &RefreshRecord,
            new: &RefreshRecord,
            successor: Option<&SealedSuccessor>,
            now: i64,
            expected: Option<&ExpectedUser>,
        ) -> StoreResult<Applied> {
            let blacklisted = match expected {
                None => Engine::blacklist_in(tx, old, true, now).await?,
                Some(expected) => match Engine::blacklist_if_current(tx, old, now, expected).await? {
                    Some(done) => done,
                    None => return Ok(Applied::Stale),
                },
            };
            if !blacklisted {
                return Ok(Applied::NotDone);
            }
            Engine::insert_refresh(&mut **tx, new).await?;
            if let Some(successor) = successor {
                Engine::keep_successor(&mut **tx, &old.jti, successor).await?;
            }
            Engine::note_session_use(&mut **tx, &new.family_id, new.issued_at, new.expires_at)
                .await?;
            Ok(Applied::Done)
        }

        /// [`Engine::blacklist_in`] for a rotation, under [`still_current`]
        /// in the same statement: a write first, so that on SQLite the
        /// transaction takes the write lock before it reads anything (a read
        /// first would fail at once, not wait, once another process
        /// committed). `None` when the guard does not hold.
        async fn blacklist_if_current(
            tx: &mut Transaction<'_, Db>,
            token: &RefreshRecord,
            now: i64,
            expected: &ExpectedUser,
        ) -> StoreResult<Option<bool>> {
            let done = sqlx::query(&format!(
                "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at, blacklisted_at) \
                 SELECT $1, $2, $3, $4, $5, $6 WHERE {} \
                 ON CONFLICT (jti) DO UPDATE SET blacklisted_at = EXCLUDED.blacklisted_at \
                 WHERE refresh_tokens.blacklisted_at IS NULL",
                still_current("$7", "$8", "$9", "$3")
            ))
            .bind(&token.jti)
            .bind(token.user_id)
            .bind(&token.family_id)
            .bind(token.issued_at)
            .bind(token.expires_at)
            .bind(now)
            .bind(expected.user_id)
            .bind(expected.token_version)
            .bind(expected.claims_version)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                // Rare (a race lost, or something changed): which it was.
                let current = Engine::is_still_current(tx, token, expected).await?;
                return Ok(current.then_some(false));
            }
            let entry = Logged::jti(&token.jti, token.user_id, token.expires_at, true);
            Engine::log_change(tx, entry, now).await?;
            Ok(Some(true))
        }

        pub(crate) async fn blacklist_in(
            tx: &mut Transaction<'_, Db>,
            token: &RefreshRecord,
            refresh: bool,
            now: i64,
        ) -> StoreResult<bool> {
            let done = sqlx::query(
                "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at, blacklisted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (jti) DO UPDATE SET blacklisted_at = EXCLUDED.blacklisted_at \
                 WHERE refresh_tokens.blacklisted_at IS NULL",
            )
            .bind(&token.jti)
            .bind(token.user_id)
            .bind(&token.family_id)
            .bind(token.issued_at)
            .bind(token.expires_at)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            let entry = Logged::jti(&token.jti, token.user_id, token.expires_at, refresh);
            Engine::log_change(tx, entry, now).await?;
            Ok(true)
        }
    }

    #[async_trait]
    impl TokenStore for Engine {
        async fn record_refresh_token(&self, token: &RefreshRecord) -> StoreResult<()> {
            self.writer.record(token).await
        }

        async fn begin_session(
            &self,
            token: &RefreshRecord,
            session: &SessionRecord,
        ) -> StoreResult<()> {
            self.writer.begin(token, session).await
        }

        fn touch_session(&self, family_id: &str, at: i64) {
            self.writer.touch(family_id, at);
        }

        async fn live_sessions(&self, user_id: i64, now: i64) -> StoreResult<Vec<SessionRecord>> {
            Engine::live_sessions_of(&self.pool, user_id, now).await
        }

        async fn blacklist_refresh_token(
            &self,
            token: &RefreshRecord,
            now: i64,
        ) -> StoreResult<bool> {
            Engine::blacklist(&self.pool, token, true, now).await
        }

        async fn blacklist_access_token(
            &self,
            token: &RefreshRecord,
            now: i64,
        ) -> StoreResult<bool> {
            Engine::blacklist(&self.pool, token, false, now).await
        }

        async fn rotate_refresh_token(
            &self,
            old: &RefreshRecord,
            new: &RefreshRecord,
            successor: Option<&SealedSuccessor>,
            now: i64,
        ) -> StoreResult<bool> {
            // Through the writer: concurrent rotations commit together (on
            // PostgreSQL under one turn of the change-log lock), and the
            // first of one token's rotations in the log of writes wins.
            let rotation = self.writer.rotate(old, new, successor, now, None).await?;
            Ok(rotation == Rotation::Rotated)
        }

        async fn rotate_if_current(
            &self,
            old: &RefreshRecord,
            new: &RefreshRecord,
            successor: Option<&SealedSuccessor>,
            now: i64,
            expected: &ExpectedUser,
        ) -> StoreResult<Rotation> {
            let expected = Some(expected);
            self.writer.rotate(old, new, successor, now, expected).await
        }

        async fn refresh_successor(&self, jti: &str) -> StoreResult<Option<SealedSuccessor>> {
            Engine::successor_of(&self.pool, jti).await
        }

        async fn revoke_family(
            &self,
            family_id: &str,
            user_id: i64,
            expires_at: i64,
            now: i64,
        ) -> StoreResult<()> {
            let mut tx = Engine::begin_logged(&self.pool).await?;
            sqlx::query(&format!(
                "INSERT INTO revoked_families (family_id, user_id, revoked_at, expires_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (family_id) DO UPDATE \
                 SET expires_at = {}(revoked_families.expires_at, EXCLUDED.expires_at)",
                Db::GREATEST
            ))
            .bind(family_id)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            Engine::log_change(&mut tx, Logged::family(family_id, user_id, expires_at), now)
                .await?;
            tx.commit().await?;
            Ok(())
        }

        async fn refresh_standing(
            &self,
            jti: &str,
            family_id: &str,
        ) -> StoreResult<RefreshStanding> {
            let (blacklisted, family_revoked): (bool, bool) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE jti = $1 AND blacklisted_at IS NOT NULL), \
                        EXISTS (SELECT 1 FROM revoked_families WHERE family_id = $2)",
            )
            .bind(jti)
            .bind(family_id)
            .fetch_one(&self.pool)
            .await?;
            Ok(RefreshStanding {
                blacklisted,
                family_revoked,
            })
        }

        async fn refresh_state(
            &self,
            jti: &str,
            family_id: &str,
            user_id: i64,
        ) -> StoreResult<Option<(UserRecord, RefreshStanding)>> {
            let row = sqlx::query_as::<_, RefreshState>(&format!(
                "SELECT {USER_COLUMNS}, \
                   EXISTS (SELECT 1 FROM refresh_tokens WHERE jti = $1 AND blacklisted_at IS NOT NULL) \
                     AS blacklisted, \
                   EXISTS (SELECT 1 FROM revoked_families WHERE family_id = $2) AS family_revoked \
                 FROM users WHERE id = $3"
            ))
            .bind(jti)
            .bind(family_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.map(|r| {
                let standing = RefreshStanding {
                    blacklisted: r.blacklisted,
                    family_revoked: r.family_revoked,
                };
                (r.user, standing)
            }))
        }

        async fn sessions_beyond(
            &self,
            user_id: i64,
            keep: i64,
            now: i64,
        ) -> StoreResult<Vec<String>> {
            // Ties broken by bytes on both engines; a LIMIT of no bound,
            // since SQLite takes an OFFSET only after a LIMIT.
            let mut beyond: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT family_id FROM refresh_tokens r \
                 WHERE user_id = $1 AND expires_at > $2 \
                   AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = r.family_id) \
                 GROUP BY family_id ORDER BY MIN(issued_at) DESC, family_id COLLATE {} \
                 LIMIT $3 OFFSET $4",
                Db::BYTEWISE
            ))
            .bind(user_id)
            .bind(now)
            .bind(i64::MAX)
            .bind(crate::engine::offset(keep))
            .fetch_all(&self.pool)
            .await?;
            beyond.reverse();
            Ok(beyond)
        }

        async fn revocations(&self, now: i64) -> StoreResult<Revocations> {
            // Decoded row by row as they arrive (`query_as`): with a million
            // markers, holding every raw row first would triple the peak
            // memory of a start.
            let jtis = sqlx::query_as::<_, (String, i64)>(
                "SELECT jti, expires_at FROM refresh_tokens \
                 WHERE blacklisted_at IS NOT NULL AND expires_at >= $1",
            )
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
            let families = sqlx::query_as::<_, (String, i64)>(
                "SELECT family_id, expires_at FROM revoked_families WHERE expires_at >= $1",
            )
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
            Ok(Revocations { jtis, families })
        }
    }
}
