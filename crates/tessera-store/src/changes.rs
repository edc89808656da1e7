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

use crate::engine::for_each_engine;
use crate::{CHANGE_LOG_LOCK, Change, ChangeKind, StoreResult};
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
    impl Engine {
        /// Begins a transaction that will append to the change log: on
        /// PostgreSQL its first statement takes the change-log lock, held
        /// until it commits or rolls back.
        pub(crate) async fn begin_logged(pool: &Pool<Db>) -> StoreResult<Transaction<'static, Db>> {
            let mut tx = pool.begin().await?;
            Db::lock(&mut tx, CHANGE_LOG_LOCK).await?;
            Ok(tx)
        }

        /// Appends a change; `tx` must come from `begin_logged`.
        pub(crate) async fn log_change(
            tx: &mut Transaction<'_, Db>,
            kind: ChangeKind,
            subject: &str,
            expires_at: Option<i64>,
            now: i64,
        ) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO changes (kind, subject, expires_at, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(kind.as_str())
            .bind(subject)
            .bind(expires_at)
            .bind(now)
            .execute(&mut **tx)
            .await?;
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
            let rows = sqlx::query(
                "SELECT id, kind, subject, expires_at FROM changes WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(crate::engine::limit(limit))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|row| Change {
                    id: row.get(0),
                    kind: ChangeKind::parse(row.get::<&str, _>(1)),
                    subject: row.get(2),
                    expires_at: row.get(3),
                })
                .collect())
        }

        async fn follow_changes(&self, hint: Arc<Notify>) {
            self.listen_for_changes(hint).await;
        }
    }
}
