//! What both engines' pools check when a connection is handed back: that it
//! is not left inside a transaction. A commit or rollback that fails (a
//! full disk, a dropped link) can leave a connection so; reused, a SQLite
//! connection in that state would hold the file's write lock for ever, and
//! every later write, the batched writer's and the audit log's included,
//! would fail with "database is locked" until a restart. Such a connection
//! is closed instead, and the pool opens a fresh one when it needs one.

use sqlx::Connection;

/// Whether `conn`, handed back to its pool, may serve again. Costs nothing
/// for a connection outside a transaction (the common case); otherwise one
/// round trip, which lets a rollback queued by a dropped transaction run
/// before the connection is judged.
pub(crate) async fn reusable<C: Connection>(conn: &mut C) -> bool {
    if !conn.is_in_transaction() {
        return true;
    }
    if conn.ping().await.is_err() {
        return false;
    }
    let settled = !conn.is_in_transaction();
    if !settled {
        tracing::warn!(
            "a database connection was left inside a transaction (a commit or rollback failed); \
             closing it"
        );
    }
    settled
}
