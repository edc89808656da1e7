//! One follower's stream: the changes after its cursor read back from the
//! database, then those the sync publishes, with no gap and no repeat
//! between the two (see [`super::Feed::follow`]).

use super::{Admitted, Feed, Published, event_of};
use crate::telemetry;
use futures_util::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tessera_core::feed::{Cursor, FeedEvent};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

/// Changes read back from the database at a time while catching up.
const BATCH: i64 = 500;

/// The events of one follower, each with the cursor it leads to. Ends when
/// the follower must act: after a `reset` (fetch the snapshot), after its
/// own client's removal, when its token expires, when it fell too far
/// behind, or when the database cannot be read; it then resumes from its
/// cursor.
pub struct Following {
    inner: Pin<Box<dyn Stream<Item = (Cursor, FeedEvent)> + Send>>,
}

impl Following {
    pub(super) fn new(
        feed: Arc<Feed>,
        admitted: Admitted,
        receiver: broadcast::Receiver<Arc<Published>>,
        position: i64,
        until: i64,
    ) -> Self {
        let closing = feed.closing();
        let state = State {
            closing,
            feed,
            admitted,
            receiver,
            position,
            until,
            caught_up: false,
            pending: VecDeque::new(),
            done: false,
        };
        Self {
            inner: Box::pin(futures_util::stream::unfold(state, State::next)),
        }
    }
}

impl Stream for Following {
    type Item = (Cursor, FeedEvent);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct State {
    /// True once the server shuts down (the stream then ends).
    closing: watch::Receiver<bool>,
    feed: Arc<Feed>,
    /// Keeps the stream counted against its client's limit.
    admitted: Admitted,
    receiver: broadcast::Receiver<Arc<Published>>,
    /// The last change-log position sent or passed over.
    position: i64,
    /// The client token's expiry, Unix seconds.
    until: i64,
    /// Whether the database has been read up to the present.
    caught_up: bool,
    /// Read and not yet sent.
    pending: VecDeque<(Cursor, FeedEvent)>,
    /// Whether the stream ends once `pending` is sent.
    done: bool,
}

impl State {
    async fn next(mut self) -> Option<((Cursor, FeedEvent), Self)> {
        loop {
            if let Some((cursor, event)) = self.pending.pop_front() {
                if self.ends_after(&event) {
                    self.pending.clear();
                    self.done = true;
                }
                return Some(((cursor, event), self));
            }
            if self.done || *self.closing.borrow() {
                return None;
            }
            let more = if self.caught_up {
                self.receive().await
            } else {
                self.catch_up().await
            };
            if !more {
                self.done = true;
            }
        }
    }

    /// A `reset` sends the follower to the snapshot; its own client's
    /// removal ends its right to the feed.
    fn ends_after(&self, event: &FeedEvent) -> bool {
        match event {
            FeedEvent::Reset => true,
            FeedEvent::ClientRemoved(e) => e.client_id == self.feed_client(),
            _ => false,
        }
    }

    fn feed_client(&self) -> &str {
        &self.admitted.client_id
    }

    /// Reads one batch back from the database; false when the stream must end.
    async fn catch_up(&mut self) -> bool {
        let store = self.feed.common().store().clone();
        if self.pending.is_empty() && !self.caught_up {
            // Pruned past the cursor (or ids rolled back right after it: a
            // reset costs a snapshot, never a missed change).
            match store.oldest_change().await {
                Ok(Some(oldest)) if oldest > self.position + 1 => {
                    self.pending
                        .push_back((Cursor::at(self.position), FeedEvent::Reset));
                    return true;
                }
                Ok(_) => {}
                Err(e) => return self.failed(&e),
            }
        }
        let changes = match store.changes_since(self.position, BATCH).await {
            Ok(changes) => changes,
            Err(e) => return self.failed(&e),
        };
        for change in &changes {
            let user = match change.kind {
                Some(tessera_store::ChangeKind::User) => {
                    let Ok(id) = change.subject.parse::<i64>() else {
                        continue;
                    };
                    match store.user_by_id(id).await {
                        Ok(user) => user,
                        Err(e) => return self.failed(&e),
                    }
                }
                _ => None,
            };
            if let Some(event) = event_of(change, user.as_ref()) {
                self.pending.push_back((Cursor::at(change.id), event));
            }
            self.position = change.id;
        }
        if (changes.len() as i64) < BATCH {
            self.caught_up = true;
        }
        true
    }

    /// Waits for the sync's next event; false when the stream must end.
    async fn receive(&mut self) -> bool {
        let expiry = self.until.saturating_sub(self.feed.common().now()).max(0);
        let expiry = tokio::time::sleep(std::time::Duration::from_secs(expiry as u64));
        tokio::select! {
            received = self.receiver.recv() => match received {
                Ok(published) => {
                    telemetry::feed_backlog(self.receiver.len());
                    let position = published.cursor.position();
                    // Read back from the database already.
                    if position > self.position {
                        self.position = position;
                        self.pending.push_back((published.cursor, published.event.clone()));
                    }
                    true
                }
                Err(RecvError::Lagged(_)) => {
                    telemetry::feed_dropped("lagged");
                    false
                }
                Err(RecvError::Closed) => false,
            },
            _ = expiry => false,
            _ = self.closing.wait_for(|closing| *closing) => false,
        }
    }

    fn failed(&self, error: &tessera_store::StoreError) -> bool {
        tracing::warn!(%error, "a revocation stream could not read the change log; it ends");
        telemetry::feed_dropped("database");
        false
    }
}
