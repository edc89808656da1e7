//! The SQLite implementation of [`Store`]: WAL, foreign keys on, full fsync
//! on commit (an acknowledged write survives a crash of the machine, not only
//! of the process). The methods of [`Store`] are in `store.rs`.

mod store;

use crate::batch::{Batches, Write, Writer, apply_in_savepoints};
use crate::sqlite_file;
use crate::{ChangeKind, KeyRecord, RefreshRecord, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A Tessera store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// The file, for messages.
    path: PathBuf,
    /// Refresh-token writes, committed in batches (see `batch`).
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if missing) the database named by a `sqlite://PATH`
    /// URL: relative to the working directory, or absolute as `sqlite:///PATH`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Writers queue behind each other (and behind the CLI) instead of
            // failing at once with SQLITE_BUSY.
            .busy_timeout(Duration::from_secs(10));
        let path = options.get_filename().to_owned();
        let in_memory = url.contains(":memory:");
        if !in_memory {
            sqlite_file::prepare(&path)?;
        }
        // Switching a fresh file to WAL takes an exclusive lock, for which
        // SQLite does not always wait (busy_timeout) when another process is
        // doing the same: processes started at once on a new file may see
        // "database is locked" here. It passes in milliseconds; try again.
        let mut attempt = 0;
        let pool = loop {
            let opened = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(15))
                .after_release(|conn, _| Box::pin(async { Ok(crate::pool::reusable(conn).await) }))
                .connect_with(options.clone())
                .await;
            match opened {
                Ok(pool) => break pool,
                Err(e) if attempt < 10 && is_busy(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                }
                Err(e) => return Err(sqlite_file::explain(&path, e)),
            }
        };
        let writer = Writer::start(SqliteBatches(pool.clone()));
        Ok(Self { pool, path, writer })
    }

    pub(crate) async fn log_change(
        tx: &mut Transaction<'_, Sqlite>,
        kind: ChangeKind,
        subject: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO changes (kind, subject, expires_at, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(kind.as_str())
        .bind(subject)
        .bind(expires_at)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Blacklists one token in `tx`; true when it was not blacklisted before.
    /// One statement, so that among concurrent callers exactly one sees true.
    async fn blacklist_in(
        tx: &mut Transaction<'_, Sqlite>,
        token: &RefreshRecord,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at, blacklisted_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (jti) DO UPDATE SET blacklisted_at = excluded.blacklisted_at \
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
        Self::log_change(tx, ChangeKind::Jti, &token.jti, Some(token.expires_at), now).await?;
        Ok(true)
    }
}

/// Records an issued refresh token, on the pool or inside a transaction.
async fn insert_refresh<'e, E>(executor: E, token: &RefreshRecord) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at) \
         VALUES (?, ?, ?, ?, ?)",
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

/// SQLITE_BUSY or SQLITE_LOCKED, in any extended form.
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6)))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// SQLITE_FULL (13): the disk is full, or an AUTOINCREMENT table has used
/// its largest id.
fn is_full(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|code| code == "13"))
}

/// SQLite's way with a batch of refresh-token writes.
struct SqliteBatches(SqlitePool);

#[async_trait]
impl Batches for SqliteBatches {
    async fn apply_all(&self, writes: &[Write]) -> StoreResult<Vec<StoreResult<bool>>> {
        let mut tx = self.0.begin().await?;
        apply_in_savepoints!(
            tx,
            writes,
            SqliteStore,
            crate::sessions::sqlite,
            crate::successors::sqlite
        )
    }
}

impl SqliteStore {
    async fn insert_key_in(tx: &mut Transaction<'_, Sqlite>, key: &KeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, signs_from, \
             retired_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_key)
        .bind(key.created_at)
        .bind(key.signs_from)
        .bind(key.retired_at)
        .execute(&mut **tx)
        .await?;
        Self::log_change(tx, ChangeKind::Keys, &key.kid, None, key.created_at).await?;
        Ok(())
    }
}
