//! Group commit for refresh-token writes, on either engine: one writer task
//! per store takes them from a channel and commits as many as are waiting
//! in one transaction, so that a burst of refreshes costs one commit (one
//! fsync, one turn of PostgreSQL's change-log lock) per batch instead of one
//! each, and never queues on SQLite's write lock by polling (each
//! transaction would otherwise wait for the last in `busy_timeout`'s
//! sleep-and-retry loop).
//!
//! Each caller is answered only once the transaction that holds its write
//! has committed (durably: SQLite's `synchronous = FULL`, PostgreSQL's
//! defaults). A write that fails is undone alone and the others still
//! commit (the batch runs again, each write in a savepoint). The writes of
//! a batch are grouped into a few multi-row statements (`grouped`), with
//! the outcome each would have had applied one after another in order: the
//! conditional upsert that lets exactly one rotation of a token win works
//! inside a batch as across batches.

mod grouped;

use crate::engine::for_each_engine;
use crate::queue::Consumer;
use crate::{
    ExpectedUser, RefreshRecord, Rotation, SealedSuccessor, SessionRecord, StoreError, StoreResult,
};
use async_trait::async_trait;
use sqlx::Transaction;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 256;
/// The histogram of how many writes each committed batch held (the
/// `metrics` facade; the server's `/metrics` shows it).
pub const BATCH_WRITES: &str = "tessera_store_batch_writes";
/// The histogram of how long each batch took, from its first statement to
/// its commit, seconds.
pub const BATCH_SECONDS: &str = "tessera_store_batch_seconds";
/// Writes waiting for the writer before callers wait to hand theirs over.
const QUEUE: usize = 4096;

/// A refresh-token write.
#[derive(Debug)]
pub(crate) enum Write {
    /// Record a new refresh token of an existing session (a refresh
    /// without blacklisting), and note the refresh in the session; answers
    /// true.
    Record(RefreshRecord),
    /// Record a new session and its first refresh token; answers true.
    Begin {
        token: RefreshRecord,
        session: SessionRecord,
    },
    /// Blacklist `old` and record `new` if `old` was not blacklisted yet,
    /// noting the refresh in the session and keeping `successor` for `old`;
    /// answers whether it was done. With `expected`, first checks that the
    /// user and `old`'s family are as the caller assumed, answering
    /// [`Applied::Stale`] (nothing written) when not.
    Rotate {
        old: RefreshRecord,
        new: RefreshRecord,
        successor: Option<SealedSuccessor>,
        now: i64,
        expected: Option<ExpectedUser>,
    },
    /// Note a refresh that wrote nothing else (no rotation); answers true.
    Touch { family_id: String, at: i64 },
}

/// What one write of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Written.
    Done,
    /// A rotation of a token already blacklisted: nothing written.
    NotDone,
    /// A guarded rotation whose assumptions the database refutes: nothing
    /// written.
    Stale,
}

struct Job {
    write: Write,
    done: oneshot::Sender<StoreResult<Applied>>,
}

/// How an engine applies a batch: the writes in one transaction, returning
/// the result of each (one that failed undone alone), or the error that
/// undid the whole transaction.
#[async_trait]
pub(crate) trait Batches: Send + Sync + 'static {
    async fn apply_all(&self, writes: &[Write]) -> StoreResult<Vec<StoreResult<Applied>>>;
}

for_each_engine! {
    impl Engine {
        /// One write of a batch, in `tx` (the batch's transaction, or a
        /// savepoint of it).
        async fn apply_write(tx: &mut Transaction<'_, Db>, write: &Write) -> StoreResult<Applied> {
            match write {
                Write::Record(token) => {
                    Engine::insert_refresh(&mut **tx, token).await?;
                    let (at, until) = (token.issued_at, token.expires_at);
                    Engine::note_session_use(&mut **tx, &token.family_id, at, until).await?;
                }
                Write::Begin { token, session } => {
                    Engine::insert_session(&mut **tx, session).await?;
                    Engine::insert_refresh(&mut **tx, token).await?;
                }
                Write::Rotate {
                    old,
                    new,
                    successor,
                    now,
                    expected,
                } => {
                    let (successor, expected) = (successor.as_ref(), expected.as_ref());
                    return Engine::rotate_in(tx, old, new, successor, *now, expected).await;
                }
                Write::Touch { family_id, at } => {
                    Engine::note_session_use(&mut **tx, family_id, *at, 0).await?;
                }
            }
            Ok(Applied::Done)
        }
    }

    /// The engine's way with a batch: one transaction (on PostgreSQL under
    /// the change-log lock, taken once for the whole batch), rotations
    /// blacklisting as
    /// [`TokenStore::blacklist_refresh_token`](crate::TokenStore::blacklist_refresh_token)
    /// does. The writes are grouped into a few multi-row statements
    /// (`grouped`: each statement is a trip to the engine's connection);
    /// should one fail, the transaction is undone and the batch runs again
    /// one write at a time with a savepoint around each, so that only the
    /// one that failed is undone.
    #[async_trait]
    impl Batches for BatchConnection<Db> {
        async fn apply_all(&self, writes: &[Write]) -> StoreResult<Vec<StoreResult<Applied>>> {
            let mut kept = self.kept.lock().ok().and_then(|mut kept| kept.take());
            loop {
                let was_kept = kept.is_some();
                let mut conn = match kept.take() {
                    Some(conn) => conn,
                    None => self.pool.acquire().await?,
                };
                match Self::apply_on(&mut conn, writes).await {
                    Ok(results) => {
                        // Kept only after a commit: a connection that failed
                        // goes back to the pool, which closes it if it is
                        // unusable.
                        if let Ok(mut kept) = self.kept.lock() {
                            *kept = Some(conn);
                        }
                        return Ok(results);
                    }
                    // A kept connection cut since the last batch (a database
                    // restart) fails at BEGIN, before anything was written:
                    // the batch runs on a connection the pool checks.
                    Err(Failed::AtBegin(_)) if was_kept => {}
                    Err(Failed::AtBegin(e) | Failed::Later(e)) => return Err(e),
                }
            }
        }
    }

    impl BatchConnection<Db> {
        /// The batch in one transaction on `conn`: grouped, or, should
        /// that fail, one write at a time with a savepoint each.
        async fn apply_on(
            conn: &mut sqlx::pool::PoolConnection<Db>,
            writes: &[Write],
        ) -> Result<Vec<StoreResult<Applied>>, Failed> {
            let mut tx = Engine::begin_logged_on(conn).await.map_err(Failed::AtBegin)?;
            match Engine::apply_grouped(&mut tx, writes).await {
                Ok(results) => {
                    tx.commit().await.map_err(|e| Failed::Later(e.into()))?;
                    return Ok(results.into_iter().map(Ok).collect());
                }
                // One write failed (a user deleted under a login, say):
                // which one is found below.
                Err(e) => tracing::debug!(error = %e, "applying a batch's writes one at a time"),
            }
            tx.rollback().await.map_err(|e| Failed::Later(e.into()))?;
            Self::apply_one_by_one(conn, writes).await.map_err(Failed::Later)
        }

        /// The batch in one transaction on `conn`, each write in a
        /// savepoint, so that one that fails is undone alone.
        async fn apply_one_by_one(
            conn: &mut sqlx::pool::PoolConnection<Db>,
            writes: &[Write],
        ) -> StoreResult<Vec<StoreResult<Applied>>> {
            use sqlx::Acquire;
            let mut tx = Engine::begin_logged_on(conn).await?;
            let mut results = Vec::with_capacity(writes.len());
            for write in writes {
                let mut savepoint = (&mut tx).begin().await?;
                let done = Engine::apply_write(&mut savepoint, write).await;
                if done.is_ok() {
                    savepoint.commit().await?;
                } else {
                    savepoint.rollback().await?;
                }
                results.push(done);
            }
            tx.commit().await?;
            Ok(results)
        }
    }
}

/// Where a batch failed: at its BEGIN (nothing was sent that writes), or later.
enum Failed {
    AtBegin(StoreError),
    Later(StoreError),
}

/// Where an engine's batches run: one connection of `pool`, kept from one
/// batch to the next so that its statement and page caches stay warm (a
/// connection taken from the pool for each batch went round all of them),
/// and given back to the pool when a batch fails on it. The pool has one
/// connection fewer for everything else while it is kept.
pub(crate) struct BatchConnection<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    kept: std::sync::Mutex<Option<sqlx::pool::PoolConnection<DB>>>,
}

impl<DB: sqlx::Database> BatchConnection<DB> {
    /// Batches on connections of `pool`.
    pub(crate) fn new(pool: sqlx::Pool<DB>) -> Self {
        Self {
            pool,
            kept: std::sync::Mutex::new(None),
        }
    }
}

/// The handle callers submit writes through; the writer's runs end when the
/// last handle (the last clone of the store) is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    writer: BatchedWriter,
}

/// The batched writer's task, for a supervisor to run: see
/// [`Maintenance::batched_writer`](crate::Maintenance::batched_writer). Until one runs
/// it (and again after [`BatchedWriter::release`]), the writes are
/// committed by a task started on demand, so that a store used outside a
/// server (a command, a test) works alike.
#[derive(Debug, Clone)]
pub struct BatchedWriter {
    consumer: Consumer<Job>,
}

impl BatchedWriter {
    /// One run of the writer: commits batches until `stop` resolves, then
    /// commits what is queued at that moment and returns. Should a run
    /// panic, the writes of its batch are answered with an error, and the
    /// next run commits those still queued.
    pub fn run<S: Future<Output = ()> + Send + 'static>(
        &self,
        stop: S,
    ) -> impl Future<Output = ()> + Send + use<S> {
        let consumer = self.consumer.clone();
        async move { consumer.run(stop).await }
    }

    /// The supervisor stopped the writer for good: later writes are
    /// committed by a task started on demand.
    pub fn release(&self) {
        self.consumer.release();
    }
}

impl Writer {
    /// The writer of `engine`'s batches; nothing runs until a supervisor
    /// runs [`Writer::task`] or a write arrives.
    pub(crate) fn new(engine: impl Batches) -> Self {
        let engine = Arc::new(engine);
        let (jobs, consumer) = Consumer::new(
            QUEUE,
            MAX_BATCH,
            Arc::new(move |jobs| {
                let engine = engine.clone();
                Box::pin(async move { commit(engine.as_ref(), jobs).await })
            }),
        );
        Self {
            jobs,
            writer: BatchedWriter { consumer },
        }
    }

    /// The writer's task, for a supervisor.
    pub(crate) fn task(&self) -> BatchedWriter {
        self.writer.clone()
    }

    /// Records a new refresh token, once its batch has committed.
    pub(crate) async fn record(&self, token: &RefreshRecord) -> StoreResult<()> {
        self.submit(Write::Record(token.clone())).await.map(drop)
    }

    /// Records a new session and its first refresh token, once their batch
    /// has committed.
    pub(crate) async fn begin(
        &self,
        token: &RefreshRecord,
        session: &SessionRecord,
    ) -> StoreResult<()> {
        self.submit(Write::Begin {
            token: token.clone(),
            session: session.clone(),
        })
        .await
        .map(drop)
    }

    /// Notes a refresh of a session, without waiting for it (and without
    /// it, should the queue be full): when a session was last used is for
    /// people to read, not a decision anyone waits on.
    pub(crate) fn touch(&self, family_id: &str, at: i64) {
        let (done, _) = oneshot::channel();
        let write = Write::Touch {
            family_id: family_id.to_owned(),
            at,
        };
        if self.jobs.try_send(Job { write, done }).is_ok() {
            self.writer.consumer.nudge();
        }
    }

    /// A rotation ([`TokenStore::rotate_refresh_token`](crate::TokenStore::rotate_refresh_token),
    /// or with `expected`
    /// [`TokenStore::rotate_if_current`](crate::TokenStore::rotate_if_current)),
    /// answered once its batch has committed.
    pub(crate) async fn rotate(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        successor: Option<&SealedSuccessor>,
        now: i64,
        expected: Option<&ExpectedUser>,
    ) -> StoreResult<Rotation> {
        let write = Write::Rotate {
            old: old.clone(),
            new: new.clone(),
            successor: successor.cloned(),
            now,
            expected: expected.copied(),
        };
        Ok(match self.submit(write).await? {
            Applied::Done => Rotation::Rotated,
            Applied::NotDone => Rotation::AlreadyBlacklisted,
            Applied::Stale => Rotation::Stale,
        })
    }

    /// Hands `write` to the writer and waits until its batch has committed.
    async fn submit(&self, write: Write) -> StoreResult<Applied> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, done })
            .await
            .map_err(|_| gone())?;
        self.writer.consumer.nudge();
        answer.await.map_err(|_| gone())?
    }
}

/// The writer stopped with this write in hand (it panicked, or its runtime
/// is shutting down).
fn gone() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// Commits `jobs` in one transaction and answers each.
async fn commit(engine: &impl Batches, jobs: Vec<Job>) {
    let (writes, answers): (Vec<Write>, Vec<_>) =
        jobs.into_iter().map(|job| (job.write, job.done)).unzip();
    let started = std::time::Instant::now();
    let applied = engine.apply_all(&writes).await;
    metrics::histogram!(BATCH_WRITES).record(writes.len() as f64);
    metrics::histogram!(BATCH_SECONDS).record(started.elapsed().as_secs_f64());
    match applied {
        Ok(results) => {
            for (answer, result) in answers.into_iter().zip(results) {
                let _ = answer.send(result);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, writes = writes.len(), "a batch of refresh-token writes failed");
            for answer in answers {
                let _ = answer.send(Err(like(&e)));
            }
        }
    }
}

/// An error for every caller of a failed batch (sqlx's errors cannot be
/// cloned): unavailable if it was, so that each answers 503 alike; else the
/// message.
fn like(e: &StoreError) -> StoreError {
    if e.is_unavailable() {
        StoreError::Database(sqlx::Error::PoolTimedOut)
    } else {
        StoreError::Database(sqlx::Error::Protocol(e.to_string()))
    }
}
