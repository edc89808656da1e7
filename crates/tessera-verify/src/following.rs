//! A verifier's side of the revocation feed: the state its follower task
//! keeps current, whether that state can be trusted now, and the status the
//! service can report.

use crate::feed::{Cursor, FeedEvent, FeedState, Follower, Update};
use crate::jwks::JwksCache;
use crate::verifier::VerifyError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tessera_core::Refusal;
use tessera_core::claims::VerifiedClaims;
use tessera_core::client::ClientClaims;
use tessera_core::clock::Clock;

/// How often the markers no valid token can concern are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// "Never": no moment heard from the feed yet.
const NEVER: u64 = u64::MAX;

/// Where a verifier's follower stands (see [`crate::Verifier::feed_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedStatus {
    /// Whether the snapshot is loaded and the stream open.
    pub connected: bool,
    /// Time since the feed was last heard from (an event, a heartbeat, the
    /// snapshot); `None` before it ever was.
    pub lag: Option<Duration>,
    /// Where the stream resumes; `None` before the first snapshot.
    pub cursor: Option<Cursor>,
    /// Markers held: revoked token ids, ended families, removed clients,
    /// changed users.
    pub markers: usize,
    /// Why following last stopped, if it did.
    pub last_error: Option<String>,
    /// Whether verification can rely on the feed now: connected, or heard
    /// from within `max_staleness`.
    pub current: bool,
}

/// When the follower's state may be relied on (the builder's settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Staleness {
    /// How long the feed may go unheard.
    pub(crate) max: Duration,
    /// Accept tokens the state does not refuse even when it is stale.
    pub(crate) fail_open: bool,
    /// Count staleness from the start, before the first snapshot.
    pub(crate) trust_start: bool,
}

/// The state a follower task keeps and verification reads.
pub(crate) struct Following {
    state: RwLock<FeedState>,
    loaded: AtomicBool,
    connected: AtomicBool,
    /// When the feed was last heard from, milliseconds after `epoch`.
    heard_ms: AtomicU64,
    epoch: Instant,
    max_staleness: Duration,
    fail_open: bool,
    retry_after: Duration,
    details: Mutex<Details>,
}

struct Details {
    cursor: Option<Cursor>,
    last_error: Option<String>,
    pruned: Instant,
}

/// Stops the follower task when the last verifier holding it is dropped.
pub(crate) struct FollowerTask {
    pub(crate) following: Arc<Following>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FollowerTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FollowerTask {
    /// Starts `follower` on the current tokio runtime. The task holds no
    /// verifier, only the state it writes and the JWKS cache it refreshes.
    pub(crate) fn start(
        follower: Follower,
        staleness: Staleness,
        jwks: Option<Arc<JwksCache>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "following the revocation feed needs a tokio runtime".to_owned())?;
        let retry_after = follower.max_delay().max(Duration::from_secs(1));
        let following = Arc::new(Following {
            state: RwLock::new(FeedState::default()),
            // Trusting the start: as if a snapshot had loaded now.
            loaded: AtomicBool::new(staleness.trust_start),
            connected: AtomicBool::new(false),
            heard_ms: AtomicU64::new(if staleness.trust_start { 0 } else { NEVER }),
            epoch: Instant::now(),
            max_staleness: staleness.max,
            fail_open: staleness.fail_open,
            retry_after,
            details: Mutex::new(Details {
                cursor: None,
                last_error: None,
                pruned: Instant::now(),
            }),
        });
        let writer = following.clone();
        let task = runtime.spawn(async move {
            follower
                .run(move |update| writer.update(update, jwks.as_ref(), clock.as_ref()))
                .await;
        });
        Ok(Self { following, task })
    }
}

impl Following {
    fn details(&self) -> std::sync::MutexGuard<'_, Details> {
        self.details.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn heard(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(NEVER - 1);
        self.heard_ms.store(ms, Ordering::Relaxed);
    }

    fn since_heard(&self) -> Option<Duration> {
        match self.heard_ms.load(Ordering::Relaxed) {
            NEVER => None,
            ms => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms)),
            ),
        }
    }

    /// Whether the state can be relied on now.
    fn current(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
            && (self.connected.load(Ordering::Acquire)
                || self.since_heard().is_some_and(|d| d <= self.max_staleness))
    }

    /// Refuses what the feed says is revoked; `Unavailable` when the state
    /// cannot be relied on (unless failing open).
    fn decide(
        &self,
        check: impl FnOnce(&FeedState) -> Result<(), Refusal>,
    ) -> Result<(), VerifyError> {
        if !self.current() && !self.fail_open {
            metrics::counter!("tessera_verify_feed_unavailable_total").increment(1);
            return Err(VerifyError::Unavailable {
                retry_after: self.retry_after,
            });
        }
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        check(&state).map_err(VerifyError::Refused)
    }

    /// A user's token against the feed.
    pub(crate) fn check(&self, claims: &VerifiedClaims) -> Result<(), VerifyError> {
        self.decide(|state| state.check(claims))
    }

    /// A client's token against the feed.
    pub(crate) fn check_client(&self, claims: &ClientClaims) -> Result<(), VerifyError> {
        self.decide(|state| state.check_client(claims))
    }

    /// What [`crate::Verifier::feed_status`] reports.
    pub(crate) fn status(&self) -> FeedStatus {
        let markers = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let details = self.details();
        FeedStatus {
            connected: self.connected.load(Ordering::Acquire),
            lag: self.since_heard(),
            cursor: details.cursor,
            markers,
            last_error: details.last_error.clone(),
            current: self.current(),
        }
    }

    /// Applies what the follower saw.
    fn update(&self, update: Update<'_>, jwks: Option<&Arc<JwksCache>>, clock: &dyn Clock) {
        match update {
            Update::Snapshot(snapshot) => {
                let state = FeedState::from_snapshot(snapshot);
                metrics::gauge!("tessera_verify_feed_markers").set(state.len() as f64);
                *self.state.write().unwrap_or_else(PoisonError::into_inner) = state;
                self.details().cursor = Some(snapshot.cursor);
                self.heard();
                self.loaded.store(true, Ordering::Release);
            }
            Update::Connected => {
                self.heard();
                self.connected.store(true, Ordering::Release);
                metrics::gauge!("tessera_verify_feed_connected").set(1.0);
            }
            Update::Heard => self.heard(),
            Update::Event { id, event } => {
                self.state
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .apply(event);
                self.details().cursor = Some(id);
                self.heard();
                metrics::counter!("tessera_verify_feed_events_total", "event" => event.name())
                    .increment(1);
                if *event == FeedEvent::KeysChanged
                    && let Some(cache) = jwks
                {
                    let cache = cache.clone();
                    tokio::spawn(async move { cache.refresh().await });
                }
            }
            Update::Disconnected { error } => {
                // Current until this moment: staleness counts from here.
                if self.connected.swap(false, Ordering::AcqRel) {
                    self.heard();
                }
                tracing::warn!(%error, "revocation feed: not following; trying again");
                self.details().last_error = Some(error.to_owned());
                metrics::gauge!("tessera_verify_feed_connected").set(0.0);
                metrics::counter!("tessera_verify_feed_disconnects_total").increment(1);
            }
        }
        self.prune_when_due(clock);
    }

    fn prune_when_due(&self, clock: &dyn Clock) {
        {
            let mut details = self.details();
            if details.pruned.elapsed() < PRUNE_EVERY {
                return;
            }
            details.pruned = Instant::now();
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.prune(clock.now());
        metrics::gauge!("tessera_verify_feed_markers").set(state.len() as f64);
    }
}
