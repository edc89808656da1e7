//! Running the server: open the store, load the state, listen, keep the
//! state in step with other processes, stop cleanly.

use crate::authority::{Authority, KeyUse, StartError};
use crate::config::{Settings, redact_url};
use crate::mail::{self, sender::MailSender};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::clock::SystemClock;
use tessera_store::{PgStore, SqliteStore, Store, StoreError};
use tokio::net::TcpListener;

/// How often the change log is read whatever the hints say: the bound on how
/// long a revocation made elsewhere (the CLI, another instance) takes to
/// apply here when its announcement was lost.
const SYNC_INTERVAL: Duration = Duration::from_millis(250);
/// How often expired revocation markers are forgotten.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Storage could not be opened or migrated.
    #[error("database {url}: {source}")]
    Store {
        /// The URL, without password.
        url: String,
        /// What failed.
        source: StoreError,
    },
    /// The state could not be loaded.
    #[error(transparent)]
    Start(#[from] StartError),
    /// Could not listen.
    #[error("cannot listen on {bind}: {}", bind_reason(source))]
    Bind {
        /// The address.
        bind: String,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The mail settings cannot be used.
    #[error("{0}")]
    Mail(String),
}

/// Why a bind failed, in the words an operator acts on.
fn bind_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "the address is already in use (is another server running? set `bind`)".into()
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "no network interface has this address (set `bind`)".into()
        }
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need privileges; set `bind`)".into()
        }
        _ => error.to_string(),
    }
}

/// Opens the database named by the settings and brings its schema up to date.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, ServeError> {
    let url = &settings.database_url;
    let wrap = |source| ServeError::Store {
        url: redact_url(url),
        source,
    };
    let store: Arc<dyn Store> = if url.starts_with("postgres") {
        let pool = u32::try_from(settings.database_max_connections).unwrap_or(u32::MAX);
        Arc::new(PgStore::connect(url, pool).await.map_err(wrap)?)
    } else {
        Arc::new(SqliteStore::connect(url).await.map_err(wrap)?)
    };
    store.migrate().await.map_err(wrap)?;
    Ok(store)
}

/// Opens the store and loads the authority for a command other than
/// `serve`: with the keys in service, never putting one in service.
pub async fn open_authority(settings: Settings) -> Result<Arc<Authority>, ServeError> {
    let store = open_store(&settings).await?;
    Ok(Arc::new(
        Authority::open_with(settings, store, Arc::new(SystemClock), KeyUse::Existing).await?,
    ))
}

/// Runs the server until SIGINT or SIGTERM. Prints `listening on HOST:PORT`
/// once the socket is bound.
pub async fn run(settings: Settings) -> Result<(), ServeError> {
    let bind = settings.bind.clone();
    crate::telemetry::install();
    let store = open_store(&settings).await?;
    let authority = Arc::new(Authority::open(settings, store, Arc::new(SystemClock)).await?);
    // Compute the dummy hash before the first unknown-user login needs it.
    tokio::task::spawn_blocking(tessera_core::password::warm_up);
    let listener = crate::http::listener::bind(&bind)
        .await
        .map_err(|source| ServeError::Bind {
            bind: bind.clone(),
            source,
        })?;
    let addr = listener.local_addr()?;
    println!("Tessera listening on {addr}");
    tracing::info!(%addr, "listening");
    if tessera_core::password::insecure_test_cost() {
        tracing::warn!("passwords are hashed at an insecure test cost (a test build, asked for)");
    }
    serve(authority, listener, shutdown_signal()).await
}

/// Serves `authority` on `listener`, following the change log meanwhile,
/// until `shutdown` resolves and the open requests are answered. [`run`] is
/// this with the settings' address, the system clock and the process's
/// signals; tests embed it with a clock of their own.
pub async fn serve(
    authority: Arc<Authority>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let background = tokio::spawn(supervise(authority.clone()));
    let mail = match authority.mail_sender() {
        Some(Ok(sender)) => Some(MailTask::start(authority.clone(), Arc::new(sender))),
        Some(Err(e)) => return Err(ServeError::Mail(e.to_string())),
        None => None,
    };
    let result = crate::http::serve(listener, authority.clone(), shutdown).await;
    if let Some(mail) = mail {
        mail.stop().await;
    }
    // Dropping the supervisor aborts the task it watches too.
    background.abort();
    let _ = background.await;
    // The answered requests' audit events are written before the process
    // ends, unless the database is gone (then at most a few seconds' retries).
    let _ = tokio::time::timeout(Duration::from_secs(5), authority.audit_log().flush()).await;
    tracing::info!("stopped");
    Ok(result?)
}

/// The longest pause between two attempts of a failing sync.
const SYNC_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Keeps [`keep_in_step`] running for as long as the server runs: if its task
/// dies (a panic), the process is marked not ready and the task is started
/// again after a pause, so that revocations from other processes never
/// silently stop arriving.
pub async fn supervise(authority: Arc<Authority>) {
    loop {
        let mut task = AbortOnDrop(tokio::spawn(keep_in_step(authority.clone())));
        match (&mut task.0).await {
            Err(e) if e.is_panic() => {
                authority.set_synced(false);
                tracing::error!("the sync task died; starting it again");
                tokio::time::sleep(SYNC_INTERVAL).await;
            }
            // Cancelled (shutdown), or returned (it does not).
            _ => return,
        }
    }
}

/// How long a stopping server lets the mail sender finish the try it is
/// in (an SMTP exchange takes well under a second) before cutting it short.
const MAIL_STOP_GRACE: Duration = Duration::from_secs(2);

/// The running mail sender, until [`MailTask::stop`].
struct MailTask {
    task: AbortOnDrop,
    stopping: tokio::sync::watch::Sender<bool>,
    sender: Arc<MailSender>,
}

impl MailTask {
    fn start(authority: Arc<Authority>, sender: Arc<MailSender>) -> MailTask {
        let (stopping, stop) = tokio::sync::watch::channel(false);
        let task = AbortOnDrop(tokio::spawn(deliver_mail(authority, sender.clone(), stop)));
        MailTask {
            task,
            stopping,
            sender,
        }
    }

    /// Lets the try under way end (up to [`MAIL_STOP_GRACE`]), then stops
    /// the sender and gives back the mail it took and did not finish, so
    /// that the next instance sends it at once, not when its lease ends.
    async fn stop(mut self) {
        let _ = self.stopping.send(true);
        let _ = tokio::time::timeout(MAIL_STOP_GRACE, &mut self.task.0).await;
        drop(self.task);
        match tokio::time::timeout(Duration::from_secs(5), self.sender.release_taken()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "mail taken could not be given back; it is sent when its lease ends")
            }
            Err(_) => tracing::warn!(
                "mail taken could not be given back in time; it is sent when its lease ends"
            ),
        }
    }
}

/// Runs [`send_mail`] until `stop` says true, starting it again after a
/// pause should its task die: mail waits in the outbox meanwhile.
async fn deliver_mail(
    authority: Arc<Authority>,
    sender: Arc<MailSender>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let mut task = AbortOnDrop(tokio::spawn(send_mail(
            authority.clone(),
            sender.clone(),
            stop.clone(),
        )));
        match (&mut task.0).await {
            Err(e) if e.is_panic() => {
                tracing::error!("the mail sender died; starting it again");
                tokio::time::sleep(SYNC_INTERVAL).await;
            }
            _ => return,
        }
    }
}

/// Turns reset requests into mail and delivers the outbox: at once when
/// this process writes either, and every [`mail::sender::POLL`] (another
/// instance's writes, retries coming due). Storage failures are logged and
/// tried again: mail waits, never lost.
async fn send_mail(
    authority: Arc<Authority>,
    sender: Arc<MailSender>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let wake = authority.mail_wake();
    loop {
        if *stop.borrow() {
            return;
        }
        let dispatched = authority
            .dispatch_mail_requests()
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "reset requests could not be read; trying again");
                0
            });
        let sent = sender.deliver_due().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the outbox could not be read; trying again");
            0
        });
        if dispatched == 0 && sent == 0 {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(mail::sender::POLL) => {}
                Ok(()) = stop.changed() => {}
            }
        }
    }
}

/// A task that is aborted when its handle is dropped (when the supervisor is).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies other processes' writes and prunes expired markers, for as long
/// as the server runs: at once when a hint says the change log grew
/// ([`crate::propagation`]), and every [`SYNC_INTERVAL`] whatever the hints
/// say. A failing sync marks the process not ready (`/readyz` says `sync`)
/// and is retried with a growing pause, up to [`SYNC_BACKOFF_MAX`]; the first
/// success marks it ready again.
async fn keep_in_step(authority: Arc<Authority>) {
    let hints = Arc::new(tokio::sync::Notify::new());
    // Owned by this task: restarted with it, and stopped with it.
    let _followers = follow_others(&authority, &hints);
    let mut sync = tokio::time::interval(SYNC_INTERVAL);
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    let mut backoff = SYNC_INTERVAL;
    loop {
        tokio::select! {
            _ = sync.tick() => {}
            _ = hints.notified() => {}
            _ = prune.tick() => {
                authority.prune();
                crate::telemetry::upkeep();
                if let Err(e) = authority.prune_store().await {
                    tracing::warn!(error = %e, "could not delete expired rows; retrying later");
                }
                continue;
            }
        }
        match authority.sync().await {
            Ok(_) => {
                if !authority.synced() {
                    tracing::info!("the change log is readable again");
                }
                authority.set_synced(true);
                backoff = SYNC_INTERVAL;
            }
            Err(e) => {
                authority.set_synced(false);
                tracing::warn!(error = %e, retry_in = ?backoff, "could not read the change log");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(SYNC_BACKOFF_MAX);
            }
        }
    }
}

/// Starts what wakes `hints` when other instances write (the database's
/// notifications; Redis's with `redis_url`) and what announces this
/// instance's writes through Redis. They stop when the result is dropped.
fn follow_others(authority: &Arc<Authority>, hints: &Arc<tokio::sync::Notify>) -> Vec<AbortOnDrop> {
    let store = authority.store().clone();
    let database = {
        let hints = hints.clone();
        tokio::spawn(async move { store.follow_changes(hints).await })
    };
    let mut tasks = vec![AbortOnDrop(database)];
    let settings = authority.settings();
    if let Some(url) = &settings.redis_url
        && let Ok(client) = redis::Client::open(url.as_str())
    {
        let channel = crate::propagation::channel(&settings.redis_prefix);
        tasks.push(AbortOnDrop(tokio::spawn(crate::propagation::follow_redis(
            client.clone(),
            channel.clone(),
            hints.clone(),
        ))));
        tasks.push(AbortOnDrop(tokio::spawn(
            crate::propagation::announce_redis(client, channel, authority.writes()),
        )));
    }
    tasks
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
