//! The SQLite implementation of [`Store`]: WAL, foreign keys on, full fsync
//! on commit (an acknowledged write survives a crash of the machine, not only
//! of the process). Opening the file and migrating it are here; the
//! methods of [`Store`](crate::Store) are written once for both engines, in
//! each concern's module.

use crate::batch::{BatchConnection, Writer};
use crate::sqlite_file;
use crate::{StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A Tessera store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The connections to the file.
    pub(crate) pool: SqlitePool,
    /// The file, for messages.
    path: PathBuf,
    /// Refresh-token writes, committed in batches (see `batch`).
    pub(crate) writer: Writer,
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
        let writer = Writer::new(BatchConnection::new(pool.clone()));
        Ok(Self { pool, path, writer })
    }

    /// Brings the schema up to date: [`Maintenance::migrate`](crate::Maintenance::migrate).
    pub(crate) async fn run_migrations(&self) -> StoreResult<()> {
        // sqlx takes no lock while migrating SQLite: of several processes
        // starting on a fresh file at once, one may try to create a table
        // another has just created. Its migration rolled back whole; run
        // again, it finds the migrations applied (or applies what is left).
        use sqlx::migrate::MigrateError;
        let mut attempt = 0;
        loop {
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(MigrateError::Execute(_) | MigrateError::ExecuteMigration(..))
                    if attempt < 5 =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                }
                Err(MigrateError::Execute(e)) => return Err(sqlite_file::explain(&self.path, e)),
                Err(other) => return Err(StoreError::Migration(other)),
            }
        }
    }

    /// [`ChangeLog::follow_changes`](crate::ChangeLog::follow_changes):
    /// SQLite cannot announce changes, so `hint` is never woken.
    pub(crate) async fn listen_for_changes(&self, hint: Arc<Notify>) {
        let _ = hint;
        std::future::pending::<()>().await;
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED, in any extended form.
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6)))
}
