//! What the server says about itself: the origin of the absolute URLs it
//! gives out, whether the database refused a request a moment ago (which
//! `/readyz` reports), and whether the throttling counts are shared.
//!
//! Promises: the public origin is fixed once (the first call wins) and
//! never changes after; a refusal by the database is remembered for
//! [`STORE_REFUSAL_MEMORY_MS`].

use super::common::Common;
use super::throttling::Throttle;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

/// How long `/readyz` says unavailable after a request was refused for the
/// database's sake: long enough that a balancer's probe sees it, short
/// enough that the instance comes back soon after the database does.
pub(super) const STORE_REFUSAL_MEMORY_MS: i64 = 5_000;

/// The public origin, the memory of the database's refusals, and the
/// throttle's sharing.
pub struct Serving {
    common: Arc<Common>,
    throttle: Arc<Throttle>,
    /// When (ms) a request was last answered 503 because the database could
    /// not serve it (full disk, locked, unreachable).
    store_refused_ms: AtomicI64,
    /// The origin of the absolute URLs given out, fixed once serving begins.
    public_origin: OnceLock<Arc<str>>,
    /// The background tasks' state, once a supervisor runs them: read by
    /// `/readyz` and `/metrics` here rather than put into every request.
    tasks: OnceLock<crate::supervisor::TaskHealth>,
}

impl Serving {
    pub(super) fn new(common: Arc<Common>, throttle: Arc<Throttle>) -> Self {
        Self {
            common,
            throttle,
            store_refused_ms: AtomicI64::new(i64::MIN),
            public_origin: OnceLock::new(),
            tasks: OnceLock::new(),
        }
    }

    /// Notes the supervisor's task state, once serving begins (the first
    /// call wins).
    pub fn set_tasks(&self, tasks: crate::supervisor::TaskHealth) {
        let _ = self.tasks.set(tasks);
    }

    /// The background tasks' state; `None` where no supervisor runs them
    /// (a test calling the application directly, a command).
    pub fn tasks(&self) -> Option<&crate::supervisor::TaskHealth> {
        self.tasks.get()
    }

    /// Fixes the origin of the absolute URLs this authority gives out
    /// (discovery, paging links): `public_url` when set, else `fallback`, the
    /// address the server is bound to. The first call wins.
    pub fn set_public_origin(&self, fallback: std::net::SocketAddr) {
        let origin = match &self.common.settings().public_url {
            Some(url) => url.clone(),
            None => format!("http://{fallback}"),
        };
        let _ = self.public_origin.set(origin.into());
    }

    /// The origin fixed by [`Serving::set_public_origin`]; `public_url`
    /// (or `http://localhost`) before the server is bound.
    pub fn public_origin(&self) -> Arc<str> {
        match self.public_origin.get() {
            Some(origin) => origin.clone(),
            None => self
                .common
                .settings()
                .public_url
                .as_deref()
                .unwrap_or("http://localhost")
                .into(),
        }
    }

    /// Records that a request was answered 503 because the database could
    /// not serve it; `/readyz` says so for the next few seconds.
    pub fn note_store_refused(&self) {
        let now_ms = self.common.now_ms();
        self.store_refused_ms.store(now_ms, Ordering::Release);
    }

    /// Whether the database refused a request within the last
    /// [`STORE_REFUSAL_MEMORY_MS`].
    pub(super) fn store_refused_lately(&self) -> bool {
        let refused = self.store_refused_ms.load(Ordering::Acquire);
        self.common.now_ms().saturating_sub(refused) < STORE_REFUSAL_MEMORY_MS
    }

    /// With `redis_url`: whether the throttling counts are shared through
    /// Redis now (`false` while it cannot be reached); `None` without it.
    pub fn throttling_is_shared(&self) -> Option<bool> {
        self.throttle.is_shared()
    }
}
