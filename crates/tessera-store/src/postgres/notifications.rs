//! Listening for change-log commits (a trigger notifies the channel
//! `tessera:SCHEMA`, see the migration `change_notifications`), so that
//! other processes' writes are read at once rather than at the next poll.

use super::PgStore;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The channel the change-log trigger notifies: the one named after the
/// schema that holds this store's `changes` table, as the trigger names it.
const CHANNEL: &str = "SELECT left('tessera:' || n.nspname, 63) FROM pg_class c \
                       JOIN pg_namespace n ON n.oid = c.relnamespace \
                       WHERE c.oid = 'changes'::regclass";

/// The first pause after a failed attempt to listen, doubled up to
/// [`BACKOFF_MAX`] while attempts keep failing.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl PgStore {
    /// Listens until the process ends, on a connection of its own (the pool's
    /// connections come and go; a listening one must stay), making it again
    /// whenever it is lost.
    pub(crate) async fn listen_for_changes(&self, hint: Arc<Notify>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let Err(e) = self.listen(&hint, &mut backoff).await;
            tracing::warn!(error = %e, retry_in = ?backoff, "lost the change-log notifications; polling until they are back");
            // Whatever was committed since the last notification went unheard.
            hint.notify_one();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One listening connection, for as long as it lasts; resets `backoff`
    /// once it listens.
    async fn listen(
        &self,
        hint: &Notify,
        backoff: &mut Duration,
    ) -> Result<Infallible, sqlx::Error> {
        // A pool of one, which PgListener uses to reconnect by itself after
        // the connection ends with an I/O error.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(self.options.clone())
            .await?;
        let channel: String = sqlx::query_scalar(CHANNEL).fetch_one(&pool).await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(&channel).await?;
        *backoff = BACKOFF_MIN;
        // Anything committed before LISTEN took effect was not announced.
        hint.notify_one();
        loop {
            // `None`: the connection was lost and made again (sqlx listens
            // anew before returning); what was committed meanwhile went
            // unannounced, so it is a hint too.
            let _ = listener.try_recv().await?;
            hint.notify_one();
        }
    }
}
