//! The PostgreSQL implementation of [`Store`](crate::Store): the same schema
//! and the same semantics as [`SqliteStore`](crate::SqliteStore), method by
//! method (each written once for both engines, in its concern's module).
//! Connecting, migrating and listening for changes are here.
//!
//! Two things differ underneath (see `engine::Dialect`):
//!
//! * **The change log.** PostgreSQL hands out sequence values before commit,
//!   so without care a change could commit after one with a higher id, and a
//!   reader whose cursor is "the highest id seen" would skip it. Every
//!   transaction that appends to `changes` therefore takes the transaction
//!   advisory lock [`CHANGE_LOG_LOCK`] as its first statement: such
//!   transactions run one at a time (as every write transaction does on
//!   SQLite), a change id is drawn only while the lock is held, and the lock
//!   is released only when the transaction has ended, so change ids commit
//!   in id order. Taking it first also gives one lock order (the change-log
//!   lock, then rows), so these transactions cannot deadlock with each other.
//!   Audit appends take [`AUDIT_LOG_LOCK`] alike, for the same reason.
//! * **Conditional writes.** PostgreSQL runs at READ COMMITTED, where a
//!   single `INSERT … ON CONFLICT DO UPDATE … WHERE` (or `UPDATE … WHERE`)
//!   locks the row and re-evaluates its condition on the newest version, so
//!   among concurrent blacklistings of one token exactly one changes the row.
//!
//! Durability is the server's: with PostgreSQL's defaults (`fsync`,
//! `synchronous_commit = on`) a commit is on disk when it returns.

use crate::batch::{BatchConnection, Writer};
use crate::{StoreError, StoreResult};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use std::time::Duration;

mod notifications;
pub(crate) mod tls;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The key of the transaction advisory lock that serialises change-log
/// writes (`pg_advisory_xact_lock`), shared by every process using the
/// database. It is `b"Tessera\x01"` read as a big-endian integer; sqlx's
/// migration lock keys are multiples of `0x3d32ad9e`, which this is not.
pub const CHANGE_LOG_LOCK: i64 = 0x5465_7373_6572_6101;

const _: () = assert!(CHANGE_LOG_LOCK % 0x3d32_ad9e != 0);

/// The key of the transaction advisory lock that serialises appends to the
/// audit log, for the same reason as [`CHANGE_LOG_LOCK`]: so that audit
/// event ids commit in id order, and a reader following the log by id
/// (`tessera audit --follow`) skips none. It is `b"Tessera\x02"`; a lock of
/// its own, so that audit writes never wait on change-log writes.
pub const AUDIT_LOG_LOCK: i64 = 0x5465_7373_6572_6102;

const _: () = assert!(AUDIT_LOG_LOCK % 0x3d32_ad9e != 0);

/// Server-side TCP keepalive for our sessions, unless the URL sets it. sqlx
/// cannot turn keepalive on for its own sockets; this way the server notices
/// within about two minutes (rather than the system default of two hours)
/// that a client machine vanished, and ends its transaction, so that a dead
/// client cannot hold the change-log lock and stall every writer.
const KEEPALIVE: [(&str, &str); 3] = [
    ("tcp_keepalives_idle", "60"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "6"),
];

/// How long connecting to the server may take before the start gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Tessera store in a PostgreSQL database, through a pool of connections.
#[derive(Debug, Clone)]
pub struct PgStore {
    /// The pool of connections.
    pub(crate) pool: PgPool,
    /// How the pool connects, for the connection that listens for changes.
    options: PgConnectOptions,
    /// Refresh-token writes, committed in batches (see `batch`).
    pub(crate) writer: Writer,
}

impl PgStore {
    /// Connects to the database named by a `postgres://` (or `postgresql://`)
    /// URL with a pool of at most `max_connections` (at least 1) connections,
    /// opening one now so that a wrong URL or an unreachable server fails
    /// here. Any other scheme is [`StoreError::UnsupportedUrl`]. The database
    /// must exist; [`Maintenance::migrate`](crate::Maintenance::migrate) creates the tables.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        // TLS as the URL's sslmode and sslrootcert say, for the pool and the
        // connection that listens for changes alike (both use `options`).
        let mut options = tls::connect_options(url)?;
        let given = options.get_options().unwrap_or_default().to_owned();
        let keepalive: Vec<_> = KEEPALIVE
            .into_iter()
            .filter(|(name, _)| !given.contains(name))
            .collect();
        if !keepalive.is_empty() {
            options = options.options(keepalive);
        }
        if options.get_application_name().is_none() {
            options = options.application_name("tessera");
        }
        // One connection first, on its own: the pool would retry a refused
        // connection until its timeout and then report only that it timed
        // out, where an operator needs "connection refused" or "role does
        // not exist" at once (and a TLS failure in the words of the URL).
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?
            .map_err(|e| tls::explain_connect_error(e, &options))?;
        first.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(15))
            .after_release(|conn, _| Box::pin(async { Ok(crate::pool::reusable(conn).await) }))
            .connect_with(options.clone())
            .await?;
        let writer = Writer::new(BatchConnection::new(pool.clone()));
        Ok(Self {
            pool,
            options,
            writer,
        })
    }

    /// Brings the schema up to date: [`Maintenance::migrate`](crate::Maintenance::migrate).
    pub(crate) async fn run_migrations(&self) -> StoreResult<()> {
        // sqlx holds a session advisory lock (keyed by the database name)
        // while migrating, so concurrent migrations of one database queue.
        // A failed run may leave that lock held by the session: close the
        // connection instead of returning it to the pool.
        let mut conn = self.pool.acquire().await?;
        match MIGRATOR.run_direct(&mut *conn).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = conn.close().await;
                Err(StoreError::Migration(e))
            }
        }
    }
}
