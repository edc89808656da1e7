//! The server's background tasks, owned in one place: every long-lived task
//! (the sync, the followers of other instances' writes, the mail sender,
//! the audit writer, the batched writer, the upkeep) is started through
//! [`Supervisor::start`] as a name and a factory that makes the task's
//! future, so that it can be made again.
//!
//! What it promises:
//! - A task that panics, returns an error, or ends when nobody asked it to
//!   is logged, marked down, and started again after a pause: 100 ms,
//!   doubled at each failure in a row up to 5 s, and back to 100 ms once a
//!   run lasted a minute. It is never given up on.
//! - While a task is down, [`TaskHealth::down`] names it: `/readyz` answers 503
//!   with that name, and `/metrics` says `tessera_task_up{task="..."} 0`;
//!   `tessera_task_restarts_total{task="..."}` counts its restarts.
//! - [`Supervisor::stop`] stops one task: it asks the task to end (through
//!   the [`Stop`] its factory was given), lets it finish for up to a grace
//!   period, then cuts it short. The server stops them in its own order
//!   (`server::serve`). Dropping the supervisor cuts every task short.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first pause before a failed task is started again.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest pause.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A run that lasted this long was healthy: the next failure pauses
/// [`BACKOFF_MIN`] again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What a run of a task comes to: `Ok` when it ended, an error saying why
/// it failed otherwise. Either is a failure unless it was asked to stop.
pub type Outcome = Result<(), String>;

/// Makes one run of a task, given the signal that asks it to stop.
pub type Factory = Box<dyn Fn(Stop) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync>;

/// Tells a task its supervisor asks it to stop. A task that ignores it is
/// cut short at the end of the grace period.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether the stop was asked for.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is asked for (never, if it never is).
    pub fn requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut signal = self.0.clone();
        async move {
            if signal.wait_for(|stop| *stop).await.is_err() {
                // The supervisor is gone: it cuts its tasks short anyway.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The tasks' state, for `/readyz` and `/metrics`; cheap to clone.
#[derive(Clone, Default)]
pub struct TaskHealth {
    tasks: Arc<std::sync::RwLock<Vec<Arc<TaskState>>>>,
}

struct TaskState {
    name: &'static str,
    up: AtomicBool,
    restarts: AtomicU64,
}

impl TaskHealth {
    /// The first task (in the order they were started) that is down.
    pub fn down(&self) -> Option<&'static str> {
        self.read()
            .iter()
            .find(|task| !task.up.load(Ordering::Acquire))
            .map(|task| task.name)
    }

    /// `tessera_task_up` and `tessera_task_restarts_total` for each task,
    /// in Prometheus text format.
    pub fn metrics(&self) -> String {
        let tasks = self.read();
        let mut text = String::new();
        if tasks.is_empty() {
            return text;
        }
        text.push_str(
            "# HELP tessera_task_up Whether each background task runs (1) or is down, waiting to be started again (0)\n# TYPE tessera_task_up gauge\n",
        );
        for task in tasks.iter() {
            let up = u8::from(task.up.load(Ordering::Acquire));
            let _ = writeln!(text, "tessera_task_up{{task=\"{}\"}} {up}", task.name);
        }
        text.push_str(
            "# HELP tessera_task_restarts_total Background tasks started again after a panic, an error or an unexpected end\n# TYPE tessera_task_restarts_total counter\n",
        );
        for task in tasks.iter() {
            let restarts = task.restarts.load(Ordering::Acquire);
            let _ = writeln!(
                text,
                "tessera_task_restarts_total{{task=\"{}\"}} {restarts}",
                task.name
            );
        }
        text
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<TaskState>>> {
        self.tasks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Owns the background tasks: their handles, their stop signals, their
/// state.
pub struct Supervisor {
    tasks: HashMap<&'static str, Supervised>,
    health: TaskHealth,
    #[cfg(test)]
    faults: faults::Faults,
}

/// One task: the loop that runs it (and runs it again), and its stop signal.
struct Supervised {
    watcher: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// A supervisor with no task yet.
    pub fn new() -> Self {
        Self {
            tasks: HashMap::new(),
            health: TaskHealth::default(),
            #[cfg(test)]
            faults: faults::Faults::default(),
        }
    }

    /// The tasks' state, for `/readyz` and `/metrics`.
    pub fn health(&self) -> TaskHealth {
        self.health.clone()
    }

    /// Starts the task `name` (on the current runtime), made by `factory`
    /// now and again after each failure, until [`Supervisor::stop`].
    pub fn start(&mut self, name: &'static str, factory: Factory) {
        let state = Arc::new(TaskState {
            name,
            up: AtomicBool::new(true),
            restarts: AtomicU64::new(0),
        });
        self.health
            .tasks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(state.clone());
        let (stop, stopping) = watch::channel(false);
        #[cfg(test)]
        let factory = self.faults.wrap(name, factory);
        let watcher = tokio::spawn(keep_running(state, factory, stopping));
        if let Some(old) = self.tasks.insert(name, Supervised { watcher, stop }) {
            old.watcher.abort();
        }
    }

    /// Whether a task of that name was started (and not stopped).
    pub fn has(&self, name: &str) -> bool {
        self.tasks.contains_key(name)
    }

    /// Stops the task `name`: asks it to, waits up to `grace` for it to
    /// end, then cuts it short. Does nothing for a task it does not run.
    pub async fn stop(&mut self, name: &str, grace: Duration) {
        let Some(mut task) = self.tasks.remove(name) else {
            return;
        };
        let _ = task.stop.send(true);
        if tokio::time::timeout(grace, &mut task.watcher)
            .await
            .is_err()
        {
            task.watcher.abort();
            let _ = task.watcher.await;
        }
    }

    /// The switches that make its tasks panic (tests only).
    #[cfg(test)]
    pub(crate) fn faults(&self) -> faults::Faults {
        self.faults.clone()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.watcher.abort();
        }
    }
}

/// A run of a task, aborted when dropped (when its watcher is).
struct AbortOnDrop(JoinHandle<Outcome>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `factory`'s task until `stopping` says true, starting it again
/// after a growing pause whenever it fails.
async fn keep_running(
    state: Arc<TaskState>,
    factory: Factory,
    mut stopping: watch::Receiver<bool>,
) {
    let name = state.name;
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let mut run = AbortOnDrop(tokio::spawn(factory(Stop(stopping.clone()))));
        let ended = (&mut run.0).await;
        if *stopping.borrow() {
            return;
        }
        state.up.store(false, Ordering::Release);
        match ended {
            Ok(Ok(())) => {
                tracing::error!(task = name, "a background task ended; starting it again")
            }
            Ok(Err(e)) => {
                tracing::error!(task = name, error = %e, "a background task failed; starting it again")
            }
            Err(e) if e.is_panic() => {
                tracing::error!(task = name, "a background task panicked; starting it again")
            }
            Err(_) => tracing::error!(
                task = name,
                "a background task was cut short; starting it again"
            ),
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = BACKOFF_MIN;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
        state.restarts.fetch_add(1, Ordering::AcqRel);
        state.up.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod faults {
    //! Fault injection for tests: a switch per task that makes its runs
    //! panic. Compiled into test builds only.

    use super::{Factory, Stop};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::sync::Notify;

    #[derive(Default)]
    struct Switch {
        broken: AtomicBool,
        thrown: Notify,
    }

    /// The switches, by task name.
    #[derive(Clone, Default)]
    pub(crate) struct Faults {
        switches: Arc<Mutex<HashMap<&'static str, Arc<Switch>>>>,
    }

    impl Faults {
        /// Makes the task `name`'s run under way panic now, and each later
        /// run at its start, until [`Faults::mend`].
        pub(crate) fn break_down(&self, name: &str) {
            let switch = self.switch(name);
            switch.broken.store(true, Ordering::SeqCst);
            switch.thrown.notify_waiters();
        }

        /// Lets the task `name`'s next runs be.
        pub(crate) fn mend(&self, name: &str) {
            self.switch(name).broken.store(false, Ordering::SeqCst);
        }

        fn switch(&self, name: &str) -> Arc<Switch> {
            let switches = self.switches.lock().unwrap();
            switches.get(name).cloned().expect("no such task")
        }

        /// `factory`, each of whose runs panics while the switch is thrown.
        pub(super) fn wrap(&self, name: &'static str, factory: Factory) -> Factory {
            let switch = Arc::new(Switch::default());
            self.switches.lock().unwrap().insert(name, switch.clone());
            Box::new(move |stop: Stop| {
                let run = factory(stop);
                let switch = switch.clone();
                Box::pin(async move {
                    let thrown = switch.thrown.notified();
                    tokio::pin!(thrown);
                    thrown.as_mut().enable();
                    if switch.broken.load(Ordering::SeqCst) {
                        panic!("fault injected into {name}");
                    }
                    tokio::select! {
                        biased;
                        () = thrown => panic!("fault injected into {name}"),
                        outcome = run => outcome,
                    }
                })
            })
        }
    }
}
