//! Redis hints: how instances learn of each other's writes at once, rather
//! than at the next poll of the change log (hints that wake the sync of
//! [`super::follow`]). On PostgreSQL a
//! trigger notifies every listener when a change commits
//! ([`Store::follow_changes`](tessera_store::Store::follow_changes)); with
//! `redis_url`, each instance also publishes on the channel
//! `{redis_prefix}changes` after its own writes, and listens there.
//!
//! A hint carries nothing but "read the change log now": what other
//! instances accept is never taken from Redis (anyone who can publish there
//! could otherwise revoke or restore tokens), and a hint that is lost costs
//! only the wait for the periodic read. After a lost connection the hint is
//! given once it is back, since what happened meanwhile went unannounced.

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a publish or a connection attempt may take.
const TIMEOUT: Duration = Duration::from_millis(500);
/// The first pause after a lost subscription, doubled up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The Redis channel instances announce writes on.
pub fn channel(prefix: &str) -> String {
    format!("{prefix}changes")
}

/// Listens on `channel` until the process ends, waking `hint` on every
/// message and whenever the subscription is made (again).
pub async fn follow_redis(client: redis::Client, channel: String, hint: Arc<Notify>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let e = match subscribed(&client, &channel, &hint, &mut backoff).await {
            Err(e) => e.to_string(),
            Ok(never) => match never {},
        };
        tracing::warn!(error = %e, retry_in = ?backoff, "lost the Redis change announcements; polling until they are back");
        hint.notify_one();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One subscription, for as long as it lasts; resets `backoff` once made.
async fn subscribed(
    client: &redis::Client,
    channel: &str,
    hint: &Notify,
    backoff: &mut Duration,
) -> Result<Infallible, redis::RedisError> {
    let mut pubsub = tokio::time::timeout(TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    pubsub.subscribe(channel).await?;
    *backoff = BACKOFF_MIN;
    hint.notify_one();
    let mut messages = pubsub.on_message();
    while messages.next().await.is_some() {
        hint.notify_one();
    }
    Err(redis::RedisError::from((
        redis::ErrorKind::Io,
        "the subscription ended",
    )))
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "timed out"))
}

/// Publishes on `channel` after each wake-up of `writes` (bursts fold into
/// one message), until the process ends. A publish that fails is dropped:
/// the others read the change log at their next poll anyway.
pub async fn announce_redis(client: redis::Client, channel: String, writes: Arc<Notify>) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(1);
    let mut connection: Option<ConnectionManager> = None;
    loop {
        writes.notified().await;
        if connection.is_none() {
            let made = tokio::time::timeout(
                TIMEOUT * 2,
                ConnectionManager::new_with_config(client.clone(), config.clone()),
            )
            .await;
            connection = made.ok().and_then(Result::ok);
        }
        let Some(manager) = connection.as_mut() else {
            continue;
        };
        let sent = tokio::time::timeout(
            TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg("")
                .query_async::<i64>(manager),
        )
        .await;
        if !matches!(sent, Ok(Ok(_))) {
            tracing::debug!("could not announce a write through Redis");
        }
    }
}
