//! The change log (`changes`): every write that affects whether a token is
//! accepted appends an entry in its own transaction ([`ChangeLog`] reads
//! them), so that every process sharing the database can bring its
//! in-memory state up to date.
//!
//! Change ids commit in id order on both engines: SQLite has one writer at
//! a time; on PostgreSQL, which hands out sequence values before commit,
//! every transaction that appends takes the advisory lock
//! [`CHANGE_LOG_LOCK`] first (see [`PgStore`](crate::PgStore)), which
//! `begin_logged` does.

use crate::engine::{ROWS_PER_STATEMENT, for_each_engine, value_rows};
use crate::{CHANGE_LOG_LOCK, Change, ChangeKind, ChangedUser, StoreResult, WindowChanges};
use async_trait::async_trait;
use sqlx::{Pool, Row, Transaction};
use std::sync::Arc;
use tokio::sync::Notify;

/// The change log as its readers see it: where it ends, what came after a
/// position, and hints that it grew. With the promises of
/// [`Store`](crate::Store).
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// The id of the newest change, 0 if none.
    async fn latest_change(&self) -> StoreResult<i64>;

    /// The markers written at or after `since` (Unix seconds) with an id at
    /// most `upto`, and the users named there as they stand now (see
    /// [`WindowChanges`]): the revocation feed's snapshot, exact at `upto`
    /// when `upto` was the newest id.
    async fn window_changes(&self, since: i64, upto: i64) -> StoreResult<WindowChanges>;

    /// Changes after `after`, oldest first, at most `limit`. Change ids
    /// commit in id order on both engines, so an id missing below one that
    /// was returned never appears later: it was rolled back (a request cut
    /// short; PostgreSQL draws ids before commit) or pruned.
    async fn changes_since(&self, after: i64, limit: i64) -> StoreResult<Vec<Change>>;

    /// The id of the oldest change still kept, `None` when none is. Pruning
    /// removes the oldest changes only (see
    /// [`Maintenance::prune`](crate::Maintenance::prune)), so while this is
    /// at most a reader's position, nothing after that position was pruned,
    /// and an id missing after it was rolled back.
    async fn oldest_change(&self) -> StoreResult<Option<i64>>;

    /// Wakes `hint` whenever the change log may have grown (some connection,
    /// of this process or another, committed a change), for as long as the
    /// future is polled; it never returns. A lost connection is made again
    /// by itself, and `hint` is woken once it is, since what was committed
    /// meanwhile was not announced. A hint is only a hint: the change log
    /// stays the truth, and the caller still reads it periodically. A store
    /// that cannot announce changes (SQLite) never wakes `hint`.
    async fn follow_changes(&self, hint: Arc<Notify>) {
        let _ = hint;
        std::future::pending::<()>().await;
    }
}

/// One entry to append, built by what it is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Logged<'a> {
    kind: ChangeKind,
    subject: &'a str,
    expires_at: Option<i64>,
    user_id: Option<i64>,
    token_type: Option<&'static str>,
}

impl<'a> Logged<'a> {
    /// User `id` was created or changed.
    pub(crate) fn user(id: i64, subject: &'a str) -> Self {
        Self {
            kind: ChangeKind::User,
            subject,
            expires_at: None,
            user_id: Some(id),
            token_type: None,
        }
    }

    /// The signing keys changed (`kid` the key concerned).
    pub(crate) fn keys(kid: &'a str) -> Self {
        Self {
            kind: ChangeKind::Keys,
            subject: kid,
            expires_at: None,
            user_id: None,
            token_type: None,
        }
    }

    /// Token `jti` of `user_id` was blacklisted until `until`; `refresh`
    /// says whether it is a refresh token (else an access token).
    pub(crate) fn jti(jti: &'a str, user_id: i64, until: i64, refresh: bool) -> Self {
        Self {
            kind: ChangeKind::Jti,
            subject: jti,
            expires_at: Some(until),
            user_id: Some(user_id),
            token_type: Some(if refresh { "refresh" } else { "access" }),
        }
    }

    /// Family `fid` of `user_id` was ended, its marker held until `until`.
    pub(crate) fn family(fid: &'a str, user_id: i64, until: i64) -> Self {
        Self {
            kind: ChangeKind::Family,
            subject: fid,
            expires_at: Some(until),
            user_id: Some(user_id),
            token_type: None,
        }
    }

    /// Client `client_id` was removed: its tokens are refused until `until`.
    pub(crate) fn client(client_id: &'a str, until: i64) -> Self {
        Self {
            kind: ChangeKind::Client,
            subject: client_id,
            expires_at: Some(until),
            user_id: None,
            token_type: None,
        }
    }
}

/// The columns a [`Change`] is read from, in the order each engine's
/// `change_of` reads them.
const CHANGE_COLUMNS: &str = "id, kind, subject, expires_at, user_id, token_type, created_at";

/// The pruning statement and its bound: the oldest entries only, up to the
/// first one written at or after `changes_before`, and never the newest, so
/// that a reader can tell a pruned id from a rolled-back one
/// ([`ChangeLog::oldest_change`]).
pub(crate) fn prune_statement(changes_before: i64) -> (&'static str, i64) {
    (
        "DELETE FROM changes WHERE id < COALESCE(\
           (SELECT MIN(id) FROM changes WHERE created_at >= $1), \
           (SELECT MAX(id) FROM changes))",
        changes_before,
    )
}

for_each_engine! {
    /// Reads a row of [`CHANGE_COLUMNS`].
    fn change_of(row: <Db as sqlx::Database>::Row) -> Change {
        Change {
            id: row.get(0),
            kind: ChangeKind::parse(row.get::<&str, _>(1)),
            subject: row.get(2),
            expires_at: row.get(3),
            user_id: row.get(4),
            refresh_token: row.get::<Option<&str>, _>(5) == Some("refresh"),
            created_at: row.get(6),
        }
    }

    impl Engine {
        /// Begins a transaction that will append to the change log: on
        /// PostgreSQL its first statement takes the change-log lock, held
        /// until it commits or rolls back.
        pub(crate) async fn begin_logged(pool: &Pool<Db>) -> StoreResult<Transaction<'static, Db>> {
            let mut tx = pool.begin().await?;
            Db::lock(&mut tx, CHANGE_LOG_LOCK).await?;
            Ok(tx)
        }

        /// [`Engine::begin_logged`] on a connection the caller holds.
        pub(crate) async fn begin_logged_on(
            conn: &mut <Db as sqlx::Database>::Connection,
        ) -> StoreResult<Transaction<'_, Db>> {
            use sqlx::Connection;
            let mut tx = conn.begin().await?;
            Db::lock(&mut tx, CHANGE_LOG_LOCK).await?;
            Ok(tx)
        }

        /// Appends a change; `tx` must come from `begin_logged`.
        pub(crate) async fn log_change(
            tx: &mut Transaction<'_, Db>,
            entry: Logged<'_>,
            now: i64,
        ) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO changes (kind, subject, expires_at, user_id, token_type, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(entry.kind.as_str())
            .bind(entry.subject)
            .bind(entry.expires_at)
            .bind(entry.user_id)
            .bind(entry.token_type)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// [`Engine::log_change`] for several entries (each with its
        /// `now`), appended in their order, in as few statements as
        /// [`ROWS_PER_STATEMENT`] allows.
        pub(crate) async fn log_changes(
            tx: &mut Transaction<'_, Db>,
            entries: &[(Logged<'_>, i64)],
        ) -> StoreResult<()> {
            for chunk in entries.chunks(ROWS_PER_STATEMENT) {
                let text = format!(
                    "INSERT INTO changes (kind, subject, expires_at, user_id, token_type, created_at) \
                     VALUES {}",
                    value_rows(chunk.len(), 6)
                );
                let mut query = sqlx::query(&text).persistent(false);
                for (entry, now) in chunk {
                    query = query
                        .bind(entry.kind.as_str())
                        .bind(entry.subject)
                        .bind(entry.expires_at)
                        .bind(entry.user_id)
                        .bind(entry.token_type)
                        .bind(*now);
                }
                query.execute(&mut **tx).await?;
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ChangeLog for Engine {
        async fn latest_change(&self) -> StoreResult<i64> {
            Db::latest_change(&self.pool).await
        }

        async fn oldest_change(&self) -> StoreResult<Option<i64>> {
            Ok(sqlx::query_scalar("SELECT MIN(id) FROM changes")
                .fetch_one(&self.pool)
                .await?)
        }

        async fn changes_since(&self, after: i64, limit: i64) -> StoreResult<Vec<Change>> {
            // Exact without a lock: change ids commit in id order, so when
            // this statement's snapshot holds an id it holds every lower one.
            let rows = sqlx::query(&format!(
                "SELECT {CHANGE_COLUMNS} FROM changes WHERE id > $1 ORDER BY id LIMIT $2"
            ))
            .bind(after)
            .bind(crate::engine::limit(limit))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(change_of).collect())
        }

        async fn window_changes(&self, since: i64, upto: i64) -> StoreResult<WindowChanges> {
            let markers = sqlx::query(&format!(
                "SELECT {CHANGE_COLUMNS} FROM changes \
                 WHERE created_at >= $1 AND id <= $2 AND kind IN ('family', 'jti', 'client') \
                 AND (token_type IS NULL OR token_type <> 'refresh') ORDER BY id"
            ))
            .bind(since)
            .bind(upto)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(change_of)
            .collect();
            // A user at token and claims version 0 and active refuses
            // nothing: a follower that never heard of them accepts the same
            // tokens.
            let users = sqlx::query_as::<_, ChangedUser>(
                "SELECT u.id, u.token_version, u.is_active, u.claims_version, \
                 MAX(c.created_at) AS changed_at \
                 FROM changes c JOIN users u ON u.id = c.user_id \
                 WHERE c.kind = 'user' AND c.created_at >= $1 AND c.id <= $2 \
                 AND (u.token_version > 0 OR NOT u.is_active OR u.claims_version > 0) \
                 GROUP BY u.id, u.token_version, u.is_active, u.claims_version ORDER BY u.id",
            )
            .bind(since)
            .bind(upto)
            .fetch_all(&self.pool)
            .await?;
            Ok(WindowChanges { markers, users })
        }

        async fn follow_changes(&self, hint: Arc<Notify>) {
            self.listen_for_changes(hint).await;
        }
    }
}
