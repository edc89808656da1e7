//! Argon2's working memory, kept between password hashes while they come
//! and given back once they stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tessera_core::password::HashMemory;
// The runtime's clock, which a test can pause and move.
use tokio::time::Instant;

/// How long the pool keeps memory nobody uses. Logins in a burst (or a
/// test suite) find it warm; an idle server holds none of it a moment later.
const IDLE: Duration = Duration::from_millis(500);

/// At most one [`HashMemory`] per hashing permit: memory is bounded by the
/// permits (× 19 MiB) however many logins come, and allocating 19 MiB anew
/// for each hash (page faults and all) is avoided while they come.
#[derive(Default)]
pub(super) struct HashPool {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The blocks and when one was last given back.
    blocks: Mutex<(Vec<HashMemory>, Option<Instant>)>,
    /// Whether a task will empty the pool once it is idle.
    release_scheduled: AtomicBool,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, (Vec<HashMemory>, Option<Instant>)> {
        self.blocks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HashPool {
    /// Memory for one hash: a pooled block, or a new one.
    pub(super) fn take(&self) -> HashMemory {
        self.inner.lock().0.pop().unwrap_or_default()
    }

    /// Gives `memory` back, and makes sure it is freed after [`IDLE`]
    /// without use. Call from within the async runtime.
    pub(super) fn give_back(&self, memory: HashMemory) {
        let mut blocks = self.inner.lock();
        blocks.0.push(memory);
        blocks.1 = Some(Instant::now());
        // Decided under the lock the release task also takes, so that a
        // block given back as the task ends is never left without one.
        if !self.inner.release_scheduled.swap(true, Ordering::AcqRel) {
            tokio::spawn(release_when_idle(self.inner.clone()));
        }
    }

    /// Bytes held now (for tests).
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.inner.lock().0.iter().map(HashMemory::bytes).sum()
    }
}

async fn release_when_idle(inner: Arc<Inner>) {
    let mut wait = IDLE;
    loop {
        tokio::time::sleep(wait).await;
        let mut blocks = inner.lock();
        let idle_for = blocks.1.map_or(IDLE, |at| at.elapsed());
        if idle_for >= IDLE {
            blocks.0.clear();
            inner.release_scheduled.store(false, Ordering::Release);
            return;
        }
        wait = IDLE - idle_for;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The runtime's clock moves only when every task waits: each sleep
    // below takes no time, and the release task runs exactly as it would.
    #[tokio::test(start_paused = true)]
    async fn memory_is_reused_while_hashes_come_and_freed_when_they_stop() {
        let pool = HashPool::default();
        let memory = pool.take();
        let bytes = memory.bytes();
        pool.give_back(memory);
        assert_eq!(pool.bytes(), bytes);
        // Taken again within IDLE: the same block, nothing new allocated.
        tokio::time::sleep(IDLE / 2).await;
        let memory = pool.take();
        assert_eq!(pool.bytes(), 0);
        pool.give_back(memory);
        tokio::time::sleep(IDLE * 3 / 4).await;
        assert_eq!(pool.bytes(), bytes, "used a moment ago: kept");
        tokio::time::sleep(IDLE).await;
        assert_eq!(pool.bytes(), 0, "idle: freed");
        // And kept again after the next use.
        pool.give_back(HashMemory::new());
        assert_eq!(pool.bytes(), bytes);
    }
}
