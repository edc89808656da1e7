//! Running the server: open the store, load the state, listen, keep the
//! state in step with other processes, stop cleanly. Every background task
//! runs under one [`Supervisor`]; this module says which tasks there are
//! and in what order they stop.

use crate::authority::{Authority, KeyUse, StartError};
use crate::config::{Settings, redact_url};
use crate::mail::{self, sender::MailSender};
use crate::supervisor::{Outcome, Stop, Supervisor};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::clock::SystemClock;
use tessera_store::{PgStore, SqliteStore, Store, StoreError};
use tokio::net::TcpListener;

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
    serve_supervised(Supervisor::new(), authority, listener, shutdown).await
}

/// [`serve`], its background tasks run by `tasks` (a test keeps a hand on
/// them through it).
pub(crate) async fn serve_supervised(
    mut tasks: Supervisor,
    authority: Arc<Authority>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let mail = match authority.mail_sender() {
        Some(Ok(sender)) => Some(Arc::new(sender)),
        Some(Err(e)) => return Err(ServeError::Mail(e.to_string())),
        None => None,
    };
    start_tasks(&mut tasks, &authority, mail.clone());
    // The revocation streams never end by themselves: they are ended when
    // the shutdown begins, or it would wait for them.
    let feed = authority.feed().clone();
    let shutdown = async move {
        shutdown.await;
        feed.close_streams();
    };
    let result = crate::http::serve(listener, authority.clone(), tasks.health(), shutdown).await;
    stop_tasks(&mut tasks, &authority, mail).await;
    tracing::info!("stopped");
    Ok(result?)
}

/// Task names, as `/readyz` and `/metrics` give them.
const MAIL_SENDER: &str = "mail_sender";
const UPKEEP: &str = "upkeep";
const AUDIT_WRITER: &str = "audit_writer";
const BATCHED_WRITER: &str = "batched_writer";

/// Starts every background task of a serving process under `tasks`.
fn start_tasks(tasks: &mut Supervisor, authority: &Arc<Authority>, mail: Option<Arc<MailSender>>) {
    let audit = authority.audit_log().clone();
    tasks.start(
        AUDIT_WRITER,
        Box::new(move |stop: Stop| {
            let run = audit.run_writer(stop.requested());
            Box::pin(async move {
                run.await;
                Ok(())
            })
        }),
    );
    if let Some(writer) = authority.store().batched_writer() {
        tasks.start(
            BATCHED_WRITER,
            Box::new(move |stop: Stop| {
                let run = writer.run(stop.requested());
                Box::pin(async move {
                    run.await;
                    Ok(())
                })
            }),
        );
    }
    tasks.start(UPKEEP, {
        let authority = authority.clone();
        Box::new(move |_| Box::pin(upkeep(authority.clone())))
    });
    crate::authority::start_following(tasks, authority);
    if let Some(sender) = mail {
        let authority = authority.clone();
        tasks.start(
            MAIL_SENDER,
            Box::new(move |stop| Box::pin(send_mail(authority.clone(), sender.clone(), stop))),
        );
    }
}

/// How long a stopping server lets the mail sender finish the try it is
/// in (an SMTP exchange takes well under a second) before cutting it short.
const MAIL_STOP_GRACE: Duration = Duration::from_secs(2);
/// How long a stopping server lets each writer write what is queued
/// (unless the database is gone, a few seconds' retries at most).
const WRITER_STOP_GRACE: Duration = Duration::from_secs(5);

/// Stops the background tasks once no request is left, in order: the mail
/// sender (its try under way ends; the mail it took and did not finish is
/// given back, so that the next instance sends it at once, not when its
/// lease ends); then what follows other instances; then the writers, once
/// they wrote what is queued (the answered requests' audit events, the
/// sessions' last use), so that nothing acknowledged is lost.
async fn stop_tasks(
    tasks: &mut Supervisor,
    authority: &Arc<Authority>,
    mail: Option<Arc<MailSender>>,
) {
    if let Some(sender) = mail {
        tasks.stop(MAIL_SENDER, MAIL_STOP_GRACE).await;
        match tokio::time::timeout(Duration::from_secs(5), sender.release_taken()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "mail taken could not be given back; it is sent when its lease ends")
            }
            Err(_) => tracing::warn!(
                "mail taken could not be given back in time; it is sent when its lease ends"
            ),
        }
    }
    for name in crate::authority::FOLLOWING_TASKS
        .into_iter()
        .chain([UPKEEP])
    {
        tasks.stop(name, Duration::ZERO).await;
    }
    tasks.stop(AUDIT_WRITER, WRITER_STOP_GRACE).await;
    authority.audit_log().release_writer();
    tasks.stop(BATCHED_WRITER, WRITER_STOP_GRACE).await;
    if let Some(writer) = authority.store().batched_writer() {
        writer.release();
    }
}

/// Turns reset requests into mail and delivers the outbox: at once when
/// this process writes either, and every [`mail::sender::POLL`] (another
/// instance's writes, retries coming due), until `stop`. Storage failures
/// are logged and tried again: mail waits, never lost.
async fn send_mail(authority: Arc<Authority>, sender: Arc<MailSender>, stop: Stop) -> Outcome {
    let wake = authority.mail_wake();
    let stopping = stop.requested();
    tokio::pin!(stopping);
    loop {
        if stop.is_requested() {
            return Ok(());
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
                () = &mut stopping => {}
            }
        }
    }
}

/// Every [`PRUNE_INTERVAL`] (and at once): forgets expired revocation
/// markers, deletes expired rows, and does the metrics exporter's
/// housekeeping.
async fn upkeep(authority: Arc<Authority>) -> Outcome {
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        prune.tick().await;
        authority.prune();
        crate::telemetry::upkeep();
        if let Err(e) = authority.prune_store().await {
            tracing::warn!(error = %e, "could not delete expired rows; retrying later");
        }
    }
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
