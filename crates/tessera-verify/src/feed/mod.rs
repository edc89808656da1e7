//! Following Tessera's revocation feed: a client token, the snapshot, then
//! the stream of events, resumed after every drop where it stopped.
//!
//! [`Follower`] is the one implementation: a [`Verifier`](crate::Verifier)
//! built with [`VerifierBuilder::revocations`](crate::VerifierBuilder::revocations)
//! runs one in a task of its own, and `tessera revocations follow` prints
//! what one sees. Use it directly to act on the feed yourself.
//!
//! ```no_run
//! use tessera_verify::feed::{Follower, Update};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let follower = Follower::new("http://127.0.0.1:8000", "tc_0123456789abcdef01234567", "SECRET")?;
//! follower
//!     .run(|update| {
//!         if let Update::Event { id, event } = update {
//!             println!("{id} {}", event.name());
//!         }
//!     })
//!     .await;
//! # Ok(()) }
//! ```

mod backoff;
mod tessera;

pub use tessera_core::feed::{Cursor, FeedEvent, FeedState, Snapshot};

use crate::BuildError;
use backoff::Backoff;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera::{CallError, ClientToken, Tessera};
use tessera_core::feed::FeedError;
use tokio::sync::Notify;

/// What a [`Follower`] tells its callback, in the order it happens.
#[derive(Debug)]
pub enum Update<'a> {
    /// A snapshot was loaded: replace whatever was held with it (the first
    /// one, and after each `reset`). The stream resumes after its cursor.
    Snapshot(&'a Snapshot),
    /// The stream is open: the follower is current.
    Connected,
    /// An event, with the cursor it leads to. A `reset` is followed by a
    /// new [`Update::Snapshot`].
    Event {
        /// Where the stream resumes after this event.
        id: Cursor,
        /// The event.
        event: &'a FeedEvent,
    },
    /// Tessera sent something on the open stream (a heartbeat or an
    /// event): it is still there.
    Heard,
    /// Following stopped for the reason given; the follower tries again
    /// (at once after a `reset` or a refused client token, else after a
    /// delay).
    Disconnected {
        /// What happened, for logs and [`FeedStatus`](crate::FeedStatus).
        error: &'a str,
    },
}

/// Follows one Tessera's revocation feed as a service client holding the
/// `revocations` scope. Promises: every event after the snapshot reaches the
/// callback once and in order, across any number of dropped connections
/// (each resumes with `Last-Event-ID`); a `reset` or an unreadable event
/// loads the snapshot again; the client token is renewed at 80% of its
/// lifetime and at once when Tessera refuses it; failed attempts are retried
/// after delays growing from 100 ms to 5 s, with jitter.
#[derive(Debug)]
pub struct Follower {
    tessera: Tessera,
    idle_timeout: Duration,
    backoff: Backoff,
}

/// Where following stands between attempts.
struct Session {
    token: Option<ClientToken>,
    /// Where to resume; `None`: load the snapshot first.
    cursor: Option<Cursor>,
    backoff: Backoff,
}

/// How an attempt ended.
enum Ended {
    /// Try again at once (`reset`, a renewed token).
    Again(String),
    /// Try again after the next delay.
    Later(String),
}

impl Follower {
    /// A follower of the Tessera at `origin` (its base URL, e.g.
    /// `http://127.0.0.1:8000`) as client `client_id`. Fails on a base URL
    /// that is not http(s). The secret is never logged.
    pub fn new(origin: &str, client_id: &str, client_secret: &str) -> Result<Self, BuildError> {
        Ok(Self {
            tessera: Tessera::new(origin, client_id, client_secret).map_err(BuildError::Feed)?,
            idle_timeout: Duration::from_secs(45),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
        })
    }

    /// How long an open stream may stay silent before it is taken for dead
    /// and reopened (default 45 s: three of Tessera's 15 s heartbeats).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout.max(Duration::from_millis(10));
        self
    }

    /// The longest delay between two attempts (5 s): how long after
    /// Tessera is back a follower is current again, at most.
    pub fn max_delay(&self) -> Duration {
        self.backoff.cap()
    }

    /// Follows the feed for ever, telling `on` each [`Update`]. Cancel it
    /// by dropping the future (or aborting its task).
    pub async fn run(self, mut on: impl FnMut(Update<'_>) + Send) -> Infallible {
        let mut session = Session {
            token: None,
            cursor: None,
            backoff: self.backoff.clone(),
        };
        // Attempts retried at once in a row: a server answering `reset` to
        // every snapshot's cursor must not be asked in a tight loop.
        let mut at_once = 0;
        loop {
            match self.attempt(&mut session, &mut on).await {
                Ended::Again(error) if at_once < 2 => {
                    at_once += 1;
                    on(Update::Disconnected { error: &error });
                }
                Ended::Again(error) | Ended::Later(error) => {
                    at_once = 0;
                    tracing::debug!(%error, "revocation feed: will try again");
                    on(Update::Disconnected { error: &error });
                    tokio::time::sleep(session.backoff.delay()).await;
                }
            }
        }
    }

    /// A client token, renewed when due.
    async fn token(&self, session: &mut Session) -> Result<(String, bool), Ended> {
        if let Some(token) = &session.token
            && Instant::now() < token.renew_at
        {
            return Ok((token.value.clone(), false));
        }
        session.token = None;
        let token = self
            .tessera
            .token()
            .await
            .map_err(|e| Ended::Later(format!("client token: {e}")))?;
        let value = token.value.clone();
        session.token = Some(token);
        Ok((value, true))
    }

    /// What to do after Tessera refused a token: renew it at once, unless
    /// it is the one just fetched (then wait).
    fn refused(session: &mut Session, fresh: bool, error: &CallError) -> Ended {
        session.token = None;
        if fresh {
            Ended::Later(error.to_string())
        } else {
            Ended::Again(error.to_string())
        }
    }

    /// One attempt: token, snapshot if needed, then the stream until it
    /// ends.
    async fn attempt(
        &self,
        session: &mut Session,
        on: &mut (impl FnMut(Update<'_>) + Send),
    ) -> Ended {
        let (token, fresh) = match self.token(session).await {
            Ok(t) => t,
            Err(ended) => return ended,
        };
        let cursor = match session.cursor {
            Some(cursor) => cursor,
            None => match self.tessera.snapshot(&token).await {
                Ok(snapshot) => {
                    on(Update::Snapshot(&snapshot));
                    session.cursor = Some(snapshot.cursor);
                    snapshot.cursor
                }
                Err(e @ CallError::Unauthorized) => return Self::refused(session, fresh, &e),
                Err(e) => return Ended::Later(format!("snapshot: {e}")),
            },
        };
        let response = match self.tessera.stream(&token, cursor).await {
            Ok(response) => response,
            Err(e @ CallError::Unauthorized) => return Self::refused(session, fresh, &e),
            Err(CallError::BadCursor) => {
                session.cursor = None;
                return Ended::Later("the cursor was refused; loading the snapshot again".into());
            }
            Err(e) => return Ended::Later(format!("stream: {e}")),
        };
        session.backoff.reset();
        on(Update::Connected);
        self.read(response, session, on).await
    }

    /// Reads the open stream until it ends, fails, falls silent or resets.
    async fn read(
        &self,
        response: reqwest::Response,
        session: &mut Session,
        on: &mut (impl FnMut(Update<'_>) + Send),
    ) -> Ended {
        // Comments (heartbeats) never come out of the event parser: any
        // bytes at all are what says Tessera is there.
        let heard = Arc::new(Notify::new());
        let ear = heard.clone();
        let mut events = response
            .bytes_stream()
            .inspect(move |_| ear.notify_one())
            .eventsource();
        loop {
            tokio::select! {
                biased;
                item = events.next() => match item {
                    None => return Ended::Later("the stream was closed".into()),
                    Some(Err(e)) => return Ended::Later(format!("stream: {e}")),
                    Some(Ok(raw)) => {
                        if let Some(ended) = self.event(&raw, session, on) {
                            return ended;
                        }
                    }
                },
                () = heard.notified() => on(Update::Heard),
                () = tokio::time::sleep(self.idle_timeout) => {
                    return Ended::Later(format!("nothing heard for {:?}", self.idle_timeout));
                }
            }
        }
    }

    /// Hands one event on; `Some` when the stream must be left.
    fn event(
        &self,
        raw: &eventsource_stream::Event,
        session: &mut Session,
        on: &mut (impl FnMut(Update<'_>) + Send),
    ) -> Option<Ended> {
        let Some(current) = session.cursor else {
            return Some(Ended::Again("no cursor".into()));
        };
        let id = Cursor::parse(&raw.id).unwrap_or(current);
        match FeedEvent::parse(&raw.event, &raw.data) {
            Ok(event) => {
                on(Update::Event { id, event: &event });
                if event == FeedEvent::Reset {
                    session.cursor = None;
                    return Some(Ended::Again("reset: loading the snapshot again".into()));
                }
                session.cursor = Some(id);
                None
            }
            // A newer server's event this version cannot act on.
            Err(FeedError::UnknownEvent(name)) => {
                tracing::debug!(event = %name, "revocation feed: skipping an unknown event");
                session.cursor = Some(id);
                None
            }
            // A revocation that cannot be read must not be skipped.
            Err(e @ FeedError::Malformed(_)) => {
                session.cursor = None;
                Some(Ended::Later(format!("{e}; loading the snapshot again")))
            }
        }
    }
}
