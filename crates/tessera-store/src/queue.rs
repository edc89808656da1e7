//! A work queue whose consumer is run by a supervisor, or on its own when
//! there is none: the batched writer's (`batch`) and the server's audit
//! writer's. Whoever holds the queue's consumer runs the one loop that
//! takes jobs in batches; the jobs wait in the channel meanwhile.
//!
//! What it promises:
//! - The constructor spawns nothing. A server runs [`Consumer::run`] under
//!   its supervisor, which starts it again should it panic or end: the jobs
//!   still queued are taken by the next run, never lost; the jobs of the
//!   batch the failed run held are dropped with it, so each of their
//!   callers is answered (with an error) rather than left waiting.
//! - A queue that no supervisor runs (a command of the CLI, a test, a server
//!   that stopped) is consumed by a task started on demand by
//!   [`Consumer::nudge`] after a job is queued, which hands the queue over
//!   as soon as a supervised run asks for it.
//! - [`Consumer::run`] asked to stop takes what is queued at that moment
//!   before it returns: a stopping server loses none of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Notify, mpsc};

/// What one batch of jobs costs: the consumer's work.
pub type Process<J> = Arc<dyn Fn(Vec<J>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The consuming side of a queue; cheap to clone (every clone is the same
/// consumer).
pub struct Consumer<J> {
    shared: Arc<Shared<J>>,
}

impl<J> Clone for Consumer<J> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<J> std::fmt::Debug for Consumer<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

struct Shared<J> {
    /// Held by the one run that consumes; a run that fails lets go of it
    /// with the jobs still queued inside.
    jobs: tokio::sync::Mutex<mpsc::Receiver<J>>,
    process: Process<J>,
    max_batch: usize,
    /// A supervisor runs the consumer (from its first run until
    /// [`Consumer::release`]): no run is started on demand meanwhile. An
    /// atomic, read without a lock by every [`Consumer::nudge`].
    supervised: AtomicBool,
    /// A run started on demand is under way.
    on_demand: Mutex<bool>,
    /// Asks a run started on demand to hand the queue over.
    hand_over: Notify,
}

impl<J: Send + 'static> Consumer<J> {
    /// A queue of `capacity` jobs, consumed `max_batch` at a time by
    /// `process`: the senders, and its consumer (not running yet).
    pub fn new(capacity: usize, max_batch: usize, process: Process<J>) -> (mpsc::Sender<J>, Self) {
        let (sender, jobs) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            jobs: tokio::sync::Mutex::new(jobs),
            process,
            max_batch,
            supervised: AtomicBool::new(false),
            on_demand: Mutex::new(false),
            hand_over: Notify::new(),
        });
        (sender, Self { shared })
    }

    /// Called after queueing a job: when no supervisor runs the consumer
    /// and no run is under way, starts one (on the current runtime) that
    /// consumes until a supervised run asks for the queue.
    pub fn nudge(&self) {
        // Orders the job just queued before the read of `supervised`, as
        // `release` orders its write before its look at the queue: either
        // this sees the supervision ended, or `release` sees the job.
        fence(Ordering::SeqCst);
        if self.shared.supervised.load(Ordering::Relaxed) {
            return;
        }
        let mut on_demand = self.shared.on_demand();
        if !*on_demand && !self.shared.supervised.load(Ordering::SeqCst) {
            *on_demand = true;
            tokio::spawn(on_demand_run(self.shared.clone()));
        }
    }

    /// One supervised run: takes the queue (from a run started on demand,
    /// once it finished its batch), consumes until `stop` resolves, then
    /// consumes what is queued at that moment and returns. Returns early
    /// only when every sender is gone.
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        self.shared.supervised.store(true, Ordering::SeqCst);
        self.shared.hand_over.notify_waiters();
        let mut jobs = self.shared.jobs.lock().await;
        let mut batch = Vec::with_capacity(self.shared.max_batch);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                taken = jobs.recv_many(&mut batch, self.shared.max_batch) => {
                    if taken == 0 {
                        return;
                    }
                    (self.shared.process)(std::mem::take(&mut batch)).await;
                }
            }
        }
        // Stopping: what was queued before is still done.
        loop {
            while batch.len() < self.shared.max_batch {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            (self.shared.process)(std::mem::take(&mut batch)).await;
        }
    }

    /// Ends the supervision (the supervisor stopped its last run): from
    /// now on jobs are consumed on demand, those already queued included.
    pub fn release(&self) {
        let mut on_demand = self.shared.on_demand();
        self.shared.supervised.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let waiting = self
            .shared
            .jobs
            .try_lock()
            .map_or(true, |jobs| !jobs.is_empty());
        if waiting && !*on_demand {
            *on_demand = true;
            tokio::spawn(on_demand_run(self.shared.clone()));
        }
    }
}

impl<J> Shared<J> {
    fn on_demand(&self) -> std::sync::MutexGuard<'_, bool> {
        // The flag stays meaningful whatever panicked while it was held.
        self.on_demand
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Consumes until a supervised run asks for the queue, or every sender is
/// gone.
async fn on_demand_run<J: Send + 'static>(shared: Arc<Shared<J>>) {
    {
        let mut jobs = shared.jobs.lock().await;
        let mut batch = Vec::with_capacity(shared.max_batch);
        loop {
            let handed = shared.hand_over.notified();
            tokio::pin!(handed);
            handed.as_mut().enable();
            if shared.supervised.load(Ordering::SeqCst) {
                break;
            }
            tokio::select! {
                biased;
                () = &mut handed => break,
                taken = jobs.recv_many(&mut batch, shared.max_batch) => {
                    if taken == 0 {
                        break;
                    }
                    (shared.process)(std::mem::take(&mut batch)).await;
                }
            }
        }
    }
    *shared.on_demand() = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::oneshot;

    /// A number, and where its answer goes.
    type Job = (u32, oneshot::Sender<u32>);

    /// Jobs answer their caller; a job of 0 makes the consumer panic while
    /// it holds the batch (the first time only).
    fn queue() -> (mpsc::Sender<Job>, Consumer<Job>) {
        let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        Consumer::new(
            16,
            4,
            Arc::new(move |batch: Vec<Job>| {
                let panicked = panicked.clone();
                Box::pin(async move {
                    if batch.iter().any(|(n, _)| *n == 0)
                        && !panicked.swap(true, std::sync::atomic::Ordering::SeqCst)
                    {
                        panic!("a consumer that fails mid-batch");
                    }
                    for (n, answer) in batch {
                        let _ = answer.send(n * 10);
                    }
                })
            }),
        )
    }

    async fn ask(sender: &mpsc::Sender<Job>, n: u32) -> oneshot::Receiver<u32> {
        let (done, answer) = oneshot::channel();
        sender.send((n, done)).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn nothing_spawns_until_a_job_is_queued_then_a_run_on_demand_answers() {
        let (sender, consumer) = queue();
        let answer = ask(&sender, 1).await;
        consumer.nudge();
        assert_eq!(answer.await.unwrap(), 10);
    }

    #[tokio::test]
    async fn a_run_that_panics_mid_batch_answers_its_batch_with_an_error_and_the_next_run_takes_the_rest()
     {
        let (sender, consumer) = queue();
        let failing = ask(&sender, 0).await;
        let run = tokio::spawn({
            let consumer = consumer.clone();
            async move { consumer.run(std::future::pending()).await }
        });
        // The failed batch's caller is answered (its sender was dropped).
        assert!(
            tokio::time::timeout(Duration::from_secs(5), failing)
                .await
                .unwrap()
                .is_err()
        );
        assert!(run.await.unwrap_err().is_panic());
        // Queued while no run is under way (a supervisor's backoff): kept.
        let waiting = ask(&sender, 2).await;
        consumer.nudge();
        let (stop, stopped) = oneshot::channel::<()>();
        let again = tokio::spawn({
            let consumer = consumer.clone();
            async move {
                consumer
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), waiting)
                .await
                .unwrap()
                .unwrap(),
            20
        );
        let _ = stop.send(());
        again.await.unwrap();
    }

    #[tokio::test]
    async fn a_run_on_demand_hands_the_queue_to_a_supervised_one_and_back_on_release() {
        let (sender, consumer) = queue();
        let first = ask(&sender, 1).await;
        consumer.nudge();
        assert_eq!(first.await.unwrap(), 10);
        let (stop, stopped) = oneshot::channel::<()>();
        let run = tokio::spawn({
            let consumer = consumer.clone();
            async move {
                consumer
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            }
        });
        assert_eq!(ask(&sender, 3).await.await.unwrap(), 30);
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .unwrap()
            .unwrap();
        consumer.release();
        let later = ask(&sender, 4).await;
        consumer.nudge();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), later)
                .await
                .unwrap()
                .unwrap(),
            40
        );
    }

    #[tokio::test]
    async fn a_stopping_run_takes_what_was_queued_before_it_returns() {
        let (sender, consumer) = queue();
        let answers = [ask(&sender, 5).await, ask(&sender, 6).await];
        // Asked to stop before it even started: still consumes the queue.
        consumer.run(async {}).await;
        for (answer, n) in answers.into_iter().zip([50, 60]) {
            assert_eq!(answer.await.unwrap(), n);
        }
    }
}
