//! The clock of the servers a test starts in process.

use std::time::Duration;

/// The wall clock plus an offset a test moves forward: time passes as usual,
/// and an expiry is reached without waiting for it.
#[derive(Default)]
pub struct TestClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

impl TestClock {
    /// Moves this clock `by` ahead of the wall clock (further than before).
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl tessera_core::clock::Clock for TestClock {
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    fn now_ms(&self) -> i64 {
        tessera_core::clock::SystemClock.now_ms()
            + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}
