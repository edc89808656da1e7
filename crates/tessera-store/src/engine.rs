//! The two engines, SQLite and PostgreSQL: how this crate writes each
//! operation once for both, and the few places where they really differ.
//!
//! Every statement is one SQL text with `$N` placeholders, which SQLite
//! reads too (as the N-th argument, which may appear several times, as on
//! PostgreSQL). The code that runs statements is written once, inside
//! [`for_each_engine!`], which instantiates it for each engine: every module
//! that touches a table does so that one way. What the engines do
//! differently is asked of [`Dialect`], implemented below for both side by
//! side: the advisory locks PostgreSQL needs where SQLite's single writer
//! already excludes, `GREATEST` and `MAX`, the bytewise collation, the
//! database's clock and change-log position, and the error codes of a taken
//! username or an exhausted id sequence.

use crate::{CHANGE_LOG_LOCK, StoreError, StoreResult};
use sqlx::{Pool, Postgres, Sqlite, Transaction};

/// Instantiates the items given once per engine: in a module `sqlite` and
/// a module `postgres` inside the invoking module, each seeing that
/// module's items (`use super::*`), [`Dialect`], and two names: `Db`, the
/// engine's sqlx database, and `Engine`, its store type
/// ([`SqliteStore`](crate::SqliteStore) or [`PgStore`](crate::PgStore)).
/// What another module needs from these items is an associated function of
/// `Engine` (an `impl Engine` block), so that every module reaches the code
/// of its own engine by the same name.
macro_rules! for_each_engine {
    ($($item:item)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::engine::Dialect as _;
            /// This engine's sqlx database.
            #[allow(dead_code)]
            type Db = sqlx::Sqlite;
            /// This engine's store.
            #[allow(dead_code)]
            type Engine = $crate::SqliteStore;
            $($item)*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::engine::Dialect as _;
            /// This engine's sqlx database.
            #[allow(dead_code)]
            type Db = sqlx::Postgres;
            /// This engine's store.
            #[allow(dead_code)]
            type Engine = $crate::PgStore;
            $($item)*
        }
    };
}
pub(crate) use for_each_engine;

/// What differs between the engines, for code written once for both.
pub(crate) trait Dialect: sqlx::Database {
    /// The two-argument maximum: SQLite's `MAX`, PostgreSQL's `GREATEST`.
    const GREATEST: &'static str;

    /// The collation that orders text by its bytes, for ties that must
    /// fall the same way on both engines: SQLite's `BINARY` (its default),
    /// PostgreSQL's `"C"` (its default follows the database's locale).
    const BYTEWISE: &'static str;

    /// A query of the database's clock, in Unix milliseconds.
    const CLOCK_MS: &'static str;

    /// The id a new user gets when none is given, in an insert that gives
    /// ids: `NULL` on SQLite (its `INTEGER PRIMARY KEY` then takes the next
    /// one), the sequence's next value on PostgreSQL (which refuses NULL).
    const NEXT_USER_ID: &'static str;

    /// Whether pruning deletes in one transaction. On PostgreSQL it does
    /// (one commit). On SQLite each delete commits alone, so that writers
    /// queue behind one statement at a time rather than the whole prune.
    const PRUNE_IN_ONE_TRANSACTION: bool;

    /// Takes the transaction advisory lock `key` in `tx`, held until `tx`
    /// ends, so that the transactions taking it run one at a time. Nothing
    /// on SQLite, where one write transaction already excludes every other.
    async fn lock(tx: &mut Transaction<'_, Self>, key: i64) -> StoreResult<()>;

    /// The id of the newest change ever handed out (kept when pruning
    /// empties the table), 0 if none, such that every id up to it has
    /// committed or never will.
    async fn latest_change(pool: &Pool<Self>) -> StoreResult<i64>;

    /// What the failure `e` of inserting a new user in `tx` means: the
    /// username taken, no id left, or `e` itself. Ends `tx`.
    async fn user_insert_error(tx: Transaction<'_, Self>, e: sqlx::Error) -> StoreError;

    /// Runs first in an import's transaction `tx`, whose highest given id
    /// is `highest`, and which commits if `commit`.
    async fn before_import(
        tx: &mut Transaction<'_, Self>,
        highest: Option<i64>,
        commit: bool,
    ) -> StoreResult<()>;
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether `e` carries the error code `code`.
fn has_code(e: &sqlx::Error, code: &str) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == code))
}

impl Dialect for Sqlite {
    const GREATEST: &'static str = "MAX";
    const BYTEWISE: &'static str = "BINARY";
    // SQLite has no clock of its own: this is the clock of the machine
    // holding the file, which every process sharing it reads alike.
    const CLOCK_MS: &'static str =
        "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";
    const NEXT_USER_ID: &'static str = "NULL";
    const PRUNE_IN_ONE_TRANSACTION: bool = false;

    async fn lock(_: &mut Transaction<'_, Self>, _: i64) -> StoreResult<()> {
        Ok(())
    }

    async fn latest_change(pool: &Pool<Self>) -> StoreResult<i64> {
        // The last id handed out, which stays when pruning empties the
        // table: the next change is this + 1, so a reader starting here
        // sees no gap. One writer at a time: no id is drawn but uncommitted.
        Ok(sqlx::query_scalar(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)",
        )
        .fetch_one(pool)
        .await?)
    }

    async fn user_insert_error(mut tx: Transaction<'_, Self>, e: sqlx::Error) -> StoreError {
        if is_unique_violation(&e) {
            return StoreError::UsernameTaken;
        }
        // SQLITE_FULL (13): a full disk, or AUTOINCREMENT at its largest id.
        if has_code(&e, "13") {
            let exhausted: Result<Vec<bool>, _> = sqlx::query_scalar(
                "SELECT seq = 9223372036854775807 FROM sqlite_sequence WHERE name = 'users'",
            )
            .fetch_all(&mut *tx)
            .await;
            match exhausted {
                Ok(rows) if rows.first().copied().unwrap_or(false) => {
                    return StoreError::UserIdsExhausted;
                }
                Ok(_) => {}
                Err(other) => return other.into(),
            }
        }
        e.into()
    }

    async fn before_import(
        tx: &mut Transaction<'_, Self>,
        _: Option<i64>,
        _: bool,
    ) -> StoreResult<()> {
        // SQLite lets several transactions read at once but only one write;
        // one that read first and writes later may find another has
        // written since and fail. Taking the write lock first (a write that
        // changes nothing) makes concurrent writers wait their turn instead.
        // Its AUTOINCREMENT sequence follows the highest id inserted by
        // itself.
        sqlx::query("UPDATE users SET id = id WHERE 0")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

impl Dialect for Postgres {
    const GREATEST: &'static str = "GREATEST";
    const BYTEWISE: &'static str = "\"C\"";
    // The time now, not the transaction's start (`now()`), which a pooled
    // connection's open transaction could hold back.
    const CLOCK_MS: &'static str =
        "SELECT CAST(ROUND(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)";
    const NEXT_USER_ID: &'static str = "nextval('users_id_seq')";
    const PRUNE_IN_ONE_TRANSACTION: bool = true;

    async fn lock(tx: &mut Transaction<'_, Self>, key: i64) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn latest_change(pool: &Pool<Self>) -> StoreResult<i64> {
        // The last id handed out, which stays when pruning empties the table
        // (as SQLite's sqlite_sequence does). Read under the change-log lock,
        // shared, so that no writer is between drawing an id and ending its
        // transaction: every id up to this one has committed or never will.
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(CHANGE_LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        let latest: i64 = sqlx::query_scalar(
            "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('changes', 'id')::regclass), 0)",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(latest)
    }

    async fn user_insert_error(tx: Transaction<'_, Self>, e: sqlx::Error) -> StoreError {
        // SQLSTATE 2200H: `nextval` past the sequence's largest value.
        let meaning = if is_unique_violation(&e) {
            StoreError::UsernameTaken
        } else if has_code(&e, "2200H") {
            StoreError::UserIdsExhausted
        } else {
            return e.into();
        };
        match tx.rollback().await {
            Ok(()) => meaning,
            Err(e) => e.into(),
        }
    }

    async fn before_import(
        tx: &mut Transaction<'_, Self>,
        highest: Option<i64>,
        commit: bool,
    ) -> StoreResult<()> {
        // The id sequence is raised past the batch's highest id first (not
        // transactional, so only when committing): a signup meanwhile takes
        // an id after the imported ones instead of one the import is about
        // to use.
        if let (Some(highest), true) = (highest, commit) {
            sqlx::query(
                "SELECT setval('users_id_seq', GREATEST($1, last_value)) FROM users_id_seq",
            )
            .bind(highest)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// A `LIMIT` both engines read alike: a negative one is no limit, as SQLite
/// reads it (PostgreSQL refuses it).
pub(crate) fn limit(n: i64) -> i64 {
    if n < 0 { i64::MAX } else { n }
}

/// An `OFFSET` both engines read alike: a negative one is 0, as SQLite
/// reads it (PostgreSQL refuses it).
pub(crate) fn offset(n: i64) -> i64 {
    n.max(0)
}

/// The most rows one multi-row statement of a batch takes: at ten columns,
/// 640 bound values, far below both engines' limits (SQLite 32,766,
/// PostgreSQL 65,535), and few distinct statement texts.
pub(crate) const ROWS_PER_STATEMENT: usize = 64;

/// `rows` rows of `columns` placeholders each, numbered from `$1` row by
/// row, for a multi-row `VALUES` list: `($1, $2), ($3, $4)`. Inside
/// `(VALUES ...) AS v` both engines name the columns `column1`,
/// `column2`...
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    let mut text = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            text.push_str(", ");
        }
        text.push('(');
        for column in 0..columns {
            if column > 0 {
                text.push_str(", ");
            }
            text.push('$');
            text.push_str(&(row * columns + column + 1).to_string());
        }
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::value_rows;

    #[test]
    fn value_rows_number_the_placeholders_row_by_row() {
        assert_eq!(value_rows(1, 1), "($1)");
        assert_eq!(value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
