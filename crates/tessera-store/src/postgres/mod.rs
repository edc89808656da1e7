//! The PostgreSQL implementation of [`Store`](crate::Store): the same schema
//! and the same semantics as [`SqliteStore`](crate::SqliteStore), method by
//! method.
//!
//! Two things differ underneath and are handled here:
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

use crate::batch::{Batches, Write, Writer, apply_in_savepoints};
use crate::{ChangeKind, KeyRecord, RefreshRecord, StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};
use std::time::Duration;

mod notifications;
mod store;
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
    pub(crate) pool: PgPool,
    /// How the pool connects, for the connection that listens for changes.
    options: PgConnectOptions,
    /// Refresh-token writes, committed in batches (see `batch`).
    writer: Writer,
}

impl PgStore {
    /// Connects to the database named by a `postgres://` (or `postgresql://`)
    /// URL with a pool of at most `max_connections` (at least 1) connections,
    /// opening one now so that a wrong URL or an unreachable server fails
    /// here. Any other scheme is [`StoreError::UnsupportedUrl`]. The database
    /// must exist; [`Store::migrate`](crate::Store::migrate) creates the tables.
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
        let writer = Writer::start(PgBatches(pool.clone()));
        Ok(Self {
            pool,
            options,
            writer,
        })
    }

    /// Begins a transaction that will append to the change log: its first
    /// statement takes the change-log lock, held until it commits or rolls
    /// back.
    pub(crate) async fn begin_logged(&self) -> StoreResult<Transaction<'static, Postgres>> {
        begin_logged(&self.pool).await
    }

    /// Appends a change; `tx` must come from [`Self::begin_logged`].
    pub(crate) async fn log_change(
        tx: &mut Transaction<'_, Postgres>,
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

    /// Blacklists one token in `tx`; true when it was not blacklisted before.
    /// One statement, so that among concurrent callers exactly one sees true:
    /// the upsert locks the row and checks `blacklisted_at IS NULL` on its
    /// newest version.
    async fn blacklist_in(
        tx: &mut Transaction<'_, Postgres>,
        token: &RefreshRecord,
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
        Self::log_change(tx, ChangeKind::Jti, &token.jti, Some(token.expires_at), now).await?;
        Ok(true)
    }

    async fn insert_key_in(tx: &mut Transaction<'_, Postgres>, key: &KeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, signs_from, \
             retired_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kid) DO NOTHING",
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

/// [`PgStore::begin_logged`] on `pool`.
async fn begin_logged(pool: &PgPool) -> StoreResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHANGE_LOG_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// PostgreSQL's way with a batch of refresh-token writes: one transaction
/// under the change-log lock (taken once for the whole batch).
struct PgBatches(PgPool);

#[async_trait::async_trait]
impl Batches for PgBatches {
    async fn apply_all(&self, writes: &[Write]) -> StoreResult<Vec<StoreResult<bool>>> {
        let mut tx = begin_logged(&self.0).await?;
        apply_in_savepoints!(
            tx,
            writes,
            PgStore,
            crate::sessions::postgres,
            crate::successors::postgres
        )
    }
}

/// Records an issued refresh token, on the pool or inside a transaction.
async fn insert_refresh<'e, E>(executor: E, token: &RefreshRecord) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = Postgres>,
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

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// SQLSTATE 2200H: `nextval` past the sequence's largest value.
fn is_sequence_exhausted(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|code| code == "2200H"))
}

/// SQLite reads a negative LIMIT as "no limit"; PostgreSQL refuses it, and
/// reads NULL so.
fn limit(n: i64) -> Option<i64> {
    (n >= 0).then_some(n)
}

/// SQLite reads a negative OFFSET as 0; PostgreSQL refuses it.
fn offset(n: i64) -> i64 {
    n.max(0)
}
