//! Following the other processes: the sync task, which applies the change
//! log to the live state ([`super::Live::sync`] through the front's
//! [`Authority::sync`]) at once when a hint says the log grew and every
//! [`SYNC_INTERVAL`] whatever the hints say, and the tasks that give those
//! hints (the store's change notifications, and Redis with `redis_url`:
//! [`super::redis`]). The server's supervisor runs them all; this module
//! names them and says how each is made.

use crate::authority::Authority;
use crate::supervisor::{Outcome, Supervisor};
use std::sync::Arc;
use std::time::Duration;

/// How often the change log is read whatever the hints say: the bound on how
/// long a revocation made elsewhere (the CLI, another instance) takes to
/// apply here when its announcement was lost.
const SYNC_INTERVAL: Duration = Duration::from_millis(250);
/// The longest pause between two attempts of a failing sync.
const SYNC_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Task names, as `/readyz` and `/metrics` give them.
const SYNC: &str = "sync";
const DATABASE_FOLLOWER: &str = "database_follower";
const REDIS_FOLLOWER: &str = "redis_follower";
const REDIS_ANNOUNCER: &str = "redis_announcer";

/// The tasks [`start`] may start, in the order a stopping server stops them.
pub const FOLLOWING_TASKS: [&str; 4] = [SYNC, DATABASE_FOLLOWER, REDIS_FOLLOWER, REDIS_ANNOUNCER];

/// Starts, under `tasks`, the sync and what wakes it: the database's
/// notifications, and with `redis_url` the Redis follower and announcer.
pub fn start(tasks: &mut Supervisor, authority: &Arc<Authority>) {
    // Woken by whatever learns that other instances wrote; the sync reads
    // the change log when it is.
    let hints = Arc::new(tokio::sync::Notify::new());
    tasks.start(SYNC, {
        let (authority, hints) = (authority.clone(), hints.clone());
        Box::new(move |_| Box::pin(keep_in_step(authority.clone(), hints.clone())))
    });
    tasks.start(DATABASE_FOLLOWER, {
        let (store, hints) = (authority.store().clone(), hints.clone());
        Box::new(move |_| {
            let (store, hints) = (store.clone(), hints.clone());
            Box::pin(async move {
                store.follow_changes(hints).await;
                Ok(())
            })
        })
    });
    let settings = authority.settings();
    if let Some(url) = &settings.redis_url
        && let Ok(client) = redis::Client::open(url.as_str())
    {
        let channel = super::redis::channel(&settings.redis_prefix);
        tasks.start(REDIS_FOLLOWER, {
            let (client, channel, hints) = (client.clone(), channel.clone(), hints.clone());
            Box::new(move |_| {
                let run =
                    super::redis::follow_redis(client.clone(), channel.clone(), hints.clone());
                Box::pin(async move {
                    run.await;
                    Ok(())
                })
            })
        });
        tasks.start(REDIS_ANNOUNCER, {
            let writes = authority.writes();
            Box::new(move |_| {
                let run =
                    super::redis::announce_redis(client.clone(), channel.clone(), writes.clone());
                Box::pin(async move {
                    run.await;
                    Ok(())
                })
            })
        });
    }
}

/// Applies other processes' writes, for as long as the server runs: at
/// once when a hint says the change log grew ([`super::redis`], the store's notifications), and
/// every [`SYNC_INTERVAL`] whatever the hints say. A failing sync marks the
/// process not ready (`/readyz` says `sync`) and is retried with a growing
/// pause, up to [`SYNC_BACKOFF_MAX`]; the first success marks it ready
/// again.
async fn keep_in_step(authority: Arc<Authority>, hints: Arc<tokio::sync::Notify>) -> Outcome {
    let mut sync = tokio::time::interval(SYNC_INTERVAL);
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = SYNC_INTERVAL;
    loop {
        tokio::select! {
            _ = sync.tick() => {}
            _ = hints.notified() => {}
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
