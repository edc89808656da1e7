//! The revocation feed's server side: what other services follow to refuse
//! revoked tokens without a request per token (docs/API.md, "Revocation
//! feed"). Owns the channel the sync publishes on and the count of streams
//! each client holds.
//!
//! Promises:
//! - the feed is the shared change log's, so any instance serves any
//!   follower and a cursor from one instance resumes on another;
//! - a snapshot holds every marker that can still refuse a token (those of
//!   the last [`Feed::window`] seconds), exact at its cursor;
//! - a stream sends every change after its cursor in log order, without a
//!   gap between what it reads back from the database and what the sync
//!   publishes, and the database is read once per change batch however many
//!   followers are connected (by the sync; a follower reads it only to catch
//!   up when it connects);
//! - nothing is buffered per follower beyond a fixed-size channel: a
//!   follower that falls [`CHANNEL`] events behind is dropped, and resumes
//!   from its cursor.

mod stream;

pub use stream::Following;

use super::common::Common;
use crate::telemetry;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use tessera_core::feed::{
    ClientEntry, Cursor, FamilyEntry, FeedEvent, Snapshot, TokenEntry, UserEntry,
};
use tessera_store::{Change, ChangeKind, StoreError, UserRecord};
use tokio::sync::{broadcast, watch};

/// Events a follower may fall behind the sync before it is dropped.
const CHANNEL: usize = 4096;

/// An event as the sync published it: the change-log position it leads to.
#[derive(Debug)]
pub(super) struct Published {
    cursor: Cursor,
    event: FeedEvent,
}

/// Why a stream cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FeedRefusal {
    /// The cursor names a position the change log has not reached.
    #[error("the cursor is ahead of the change log")]
    FutureCursor,
    /// The client holds as many streams as it may.
    #[error("too many streams for this client")]
    TooManyStreams,
    /// The database could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The feed (see the module documentation).
pub struct Feed {
    common: Arc<Common>,
    published: broadcast::Sender<Arc<Published>>,
    /// Open streams per client id.
    streams: Mutex<HashMap<String, usize>>,
    /// True once the server shuts down: every stream ends, so that the
    /// graceful shutdown, which waits for open answers, is not held by
    /// answers that never end (followers resume at another instance, or
    /// at this one once restarted).
    closing: watch::Sender<bool>,
}

impl Feed {
    pub(super) fn new(common: Arc<Common>) -> Self {
        Self {
            common,
            published: broadcast::channel(CHANNEL).0,
            streams: Mutex::default(),
            closing: watch::Sender::new(false),
        }
    }

    /// Ends every open stream, and every stream opened from now on at its
    /// start: the server is shutting down.
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Self::close_streams`] has been called.
    pub(super) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// How far back a snapshot reaches, seconds: the longest an access
    /// token or a client token is accepted after it is issued (its
    /// lifetime plus the leeway). An older marker concerns no valid token.
    pub fn window(&self) -> i64 {
        let policy = self.common.policy();
        let clients = self.common.settings().client_token_lifetime.as_secs();
        let clients = i64::try_from(clients).unwrap_or(i64::MAX);
        policy
            .access_lifetime
            .max(clients)
            .saturating_add(policy.leeway)
    }

    /// Every marker that can still refuse a token, exact at its cursor.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let store = self.common.store();
        let upto = store.latest_change().await?;
        let window = self.window();
        let since = self.common.now().saturating_sub(window);
        let changes = store.window_changes(since, upto).await?;
        let mut snapshot = Snapshot {
            cursor: Cursor::at(upto),
            window,
            families: Vec::new(),
            users: Vec::new(),
            tokens: Vec::new(),
            clients: Vec::new(),
        };
        // A marker written twice (a family ended on two instances at once)
        // is listed once, at its latest.
        let mut seen = HashSet::new();
        let mut markers: Vec<&Change> = changes
            .markers
            .iter()
            .rev()
            .filter(|c| seen.insert((c.kind.map(ChangeKind::as_str), c.subject.as_str())))
            .collect();
        markers.reverse();
        for event in markers.into_iter().filter_map(|c| event_of(c, None)) {
            match event {
                FeedEvent::FamilyRevoked(e) => snapshot.families.push(e),
                FeedEvent::TokenRevoked(e) => snapshot.tokens.push(e),
                FeedEvent::ClientRemoved(e) => snapshot.clients.push(e),
                FeedEvent::UserChanged(_) | FeedEvent::KeysChanged | FeedEvent::Reset => {}
            }
        }
        snapshot.users = changes
            .users
            .iter()
            .map(|u| UserEntry {
                user_id: u.id,
                ver: u.token_version,
                active: u.is_active,
                cver: u.claims_version,
                at: u.changed_at,
            })
            .collect();
        Ok(snapshot)
    }

    /// Starts a stream for client `client_id` after `after` (from the
    /// present without one), ending by `until` (the client token's expiry:
    /// the follower renews it and resumes). The stream counts against the
    /// client's limit until it is dropped.
    pub async fn follow(
        self: &Arc<Self>,
        client_id: &str,
        after: Option<Cursor>,
        until: i64,
    ) -> Result<Following, FeedRefusal> {
        let admitted = self.admit(client_id)?;
        // Subscribe before reading the database: whatever the sync
        // publishes from now on is either read back below or received.
        let receiver = self.published.subscribe();
        let latest = self.common.store().latest_change().await?;
        let position = match after {
            Some(cursor) if cursor.position() > latest => return Err(FeedRefusal::FutureCursor),
            Some(cursor) => cursor.position(),
            None => latest,
        };
        Ok(Following::new(
            self.clone(),
            admitted,
            receiver,
            position,
            until,
        ))
    }

    /// How many streams are open.
    pub fn followers(&self) -> usize {
        self.counts().values().sum()
    }

    /// Publishes the event of change-log position `position` to every
    /// stream (the sync's, after it applied the change).
    pub(super) fn publish(&self, position: i64, event: FeedEvent) {
        telemetry::feed_published();
        // No receiver is no follower: nothing to do.
        let _ = self.published.send(Arc::new(Published {
            cursor: Cursor::at(position),
            event,
        }));
    }

    /// Counts one more stream of `client_id`, refusing past the limit.
    fn admit(self: &Arc<Self>, client_id: &str) -> Result<Admitted, FeedRefusal> {
        let limit = self.common.settings().feed_streams_per_client;
        let mut counts = self.counts();
        match counts.entry(client_id.to_owned()) {
            Entry::Occupied(e) if *e.get() >= limit => return Err(FeedRefusal::TooManyStreams),
            Entry::Occupied(mut e) => *e.get_mut() += 1,
            Entry::Vacant(e) => {
                e.insert(1);
            }
        }
        let total = counts.values().sum::<usize>();
        drop(counts);
        telemetry::feed_followers(total);
        Ok(Admitted {
            feed: self.clone(),
            client_id: client_id.to_owned(),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store, for a stream catching up.
    fn common(&self) -> &Common {
        &self.common
    }
}

/// A stream counted against its client's limit until dropped.
struct Admitted {
    feed: Arc<Feed>,
    client_id: String,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.feed.counts();
        if let Entry::Occupied(mut e) = counts.entry(std::mem::take(&mut self.client_id)) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        let total = counts.values().sum::<usize>();
        drop(counts);
        telemetry::feed_followers(total);
    }
}

/// What change `change` tells a follower, if anything: `user` is the
/// user of a user entry as the database holds it now (`None`: no longer
/// there, so every token of theirs is refused). A refresh token's
/// blacklisting tells services nothing (they accept access tokens only).
pub(super) fn event_of(change: &Change, user: Option<&UserRecord>) -> Option<FeedEvent> {
    let at = change.created_at;
    Some(match change.kind? {
        ChangeKind::User => {
            let user_id = change.subject.parse().ok()?;
            FeedEvent::UserChanged(UserEntry {
                user_id,
                ver: user.map_or(0, |u| u.token_version),
                active: user.is_some_and(|u| u.is_active),
                cver: user.map_or(0, |u| u.claims_version),
                at,
            })
        }
        ChangeKind::Family => FeedEvent::FamilyRevoked(FamilyEntry {
            fid: change.subject.clone(),
            user_id: change.user_id.unwrap_or_default(),
            at,
        }),
        ChangeKind::Jti if change.refresh_token => return None,
        ChangeKind::Jti => FeedEvent::TokenRevoked(TokenEntry {
            jti: change.subject.clone(),
            exp: change.expires_at.unwrap_or(i64::MAX),
        }),
        ChangeKind::Client => FeedEvent::ClientRemoved(ClientEntry {
            client_id: change.subject.clone(),
            at,
        }),
        ChangeKind::Keys => FeedEvent::KeysChanged,
    })
}
