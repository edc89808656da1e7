//! The audit log's writer: requests hand their events to a bounded queue
//! and go on; one task appends what is waiting in batches. A login storm
//! therefore costs one insert per batch, and no request ever waits on the
//! audit log. Should the queue ever fill, the events that do not fit are
//! counted (`tessera_audit_events_dropped_total`) and logged, never lost
//! silently.
//!
//! The writer runs under the server's supervisor ([`crate::supervisor`]):
//! events queued while it is down (a panic, until it is started again) wait
//! in the queue; a stopping server writes what is queued before it ends.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tessera_store::queue::Consumer;
use tessera_store::{AuditEvent, Store};
use tokio::sync::{mpsc, oneshot};

/// Events waiting for the writer at most.
const QUEUE: usize = 65_536;
/// Events per insert.
const BATCH: usize = 1000;
/// The pause after a batch that was not full, so that a storm's events
/// gather into a few large inserts (each a commit, and a disk flush)
/// rather than many small ones competing with the requests' own writes.
const LINGER: Duration = Duration::from_millis(10);
/// Attempts at one batch while the database fails, before it is dropped.
const ATTEMPTS: u32 = 5;

enum Job {
    Event(Box<AuditEvent>),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// Where events go; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Job>,
    writer: Consumer<Job>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens the log on `store`: the queue now, spawning nothing. The
    /// writer is [`AuditLog::run_writer`], which the server's supervisor
    /// runs; until one runs it (a command of the CLI, a test), a writer is
    /// started on demand when an event is queued.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        let (queue, writer) = Consumer::new(
            QUEUE,
            BATCH,
            Arc::new(move |jobs| {
                let store = store.clone();
                let dropped = counted.clone();
                Box::pin(async move { write(store.as_ref(), jobs, &dropped).await })
            }),
        );
        Self {
            queue,
            writer,
            dropped,
        }
    }

    /// One run of the writer: appends batches until `stop` resolves, then
    /// what is queued at that moment, and returns. Events queued while no
    /// run is under way wait for the next.
    pub fn run_writer<S: Future<Output = ()> + Send + 'static>(
        &self,
        stop: S,
    ) -> impl Future<Output = ()> + Send + use<S> {
        let writer = self.writer.clone();
        async move { writer.run(stop).await }
    }

    /// The supervisor stopped the writer for good: what is queued later is
    /// written by a writer started on demand.
    pub fn release_writer(&self) {
        self.writer.release();
    }

    /// Queues `event`, without waiting.
    pub fn record(&self, event: AuditEvent) {
        if self.queue.try_send(Job::Event(Box::new(event))).is_err() {
            self.lost(1);
        } else {
            self.writer.nudge();
        }
    }

    /// Waits until every event recorded before this call is written (or
    /// given up on): at shutdown, and for tests.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Job::Flush(done)).await.is_ok() {
            self.writer.nudge();
            let _ = written.await;
        }
    }

    fn lost(&self, count: u64) {
        note_lost(&self.dropped, count);
    }
}

fn note_lost(dropped: &AtomicU64, count: u64) {
    let before = dropped.fetch_add(count, Ordering::Relaxed);
    metrics::counter!("tessera_audit_events_dropped_total").increment(count);
    // Once per thousand, not once per event: a storm must not flood the log.
    if before / 1000 != (before + count) / 1000 || before == 0 {
        tracing::error!(
            lost = before + count,
            "audit events lost (the audit queue was full or the database failed)"
        );
    }
}

/// Appends one batch of events and answers its flushes.
async fn write(store: &dyn Store, jobs: Vec<Job>, dropped: &AtomicU64) {
    let mut events = Vec::with_capacity(jobs.len());
    let mut flushes = Vec::new();
    for job in jobs {
        match job {
            Job::Event(event) => events.push(*event),
            Job::Flush(done) => flushes.push(done),
        }
    }
    let full = events.len() >= BATCH;
    append(store, &events, dropped).await;
    let flushed = !flushes.is_empty();
    for done in flushes {
        let _ = done.send(());
    }
    if !full && !flushed {
        tokio::time::sleep(LINGER).await;
    }
}

async fn append(store: &dyn Store, events: &[AuditEvent], dropped: &AtomicU64) {
    if events.is_empty() {
        return;
    }
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let started = std::time::Instant::now();
        match store.append_audit(events).await {
            Ok(()) => {
                crate::telemetry::audit_written(events.len(), started.elapsed());
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, events = events.len(), "could not write audit events; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => {
                tracing::error!(error = %e, "could not write audit events; giving up on them")
            }
        }
    }
    note_lost(dropped, events.len() as u64);
}
