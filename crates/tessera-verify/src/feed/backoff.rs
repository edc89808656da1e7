//! Reconnection delays: exponential from a floor to a cap, with jitter, so
//! that the followers a Tessera restart drops all at once do not all come
//! back in the same instant.

use rand::Rng;
use std::time::Duration;

/// The delays between failed attempts to follow the feed.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    floor: Duration,
    cap: Duration,
    /// The upper bound of the next delay.
    next: Duration,
}

impl Backoff {
    /// Delays starting at `floor` and doubling up to `cap`.
    pub(crate) fn new(floor: Duration, cap: Duration) -> Self {
        let floor = floor.max(Duration::from_millis(1));
        Self {
            floor,
            cap: cap.max(floor),
            next: floor,
        }
    }

    /// The delay before the next attempt: a random point between half the
    /// current bound and the bound ("equal jitter"), which then doubles.
    pub(crate) fn delay(&mut self) -> Duration {
        let bound = self.next;
        self.next = bound.saturating_mul(2).min(self.cap);
        let half = bound / 2;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::thread_rng().gen_range(0..=spread))
    }

    /// Back to the floor, after the feed was followed again.
    pub(crate) fn reset(&mut self) {
        self.next = self.floor;
    }

    /// The longest delay there can be.
    pub(crate) fn cap(&self) -> Duration {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(5000));
        for bound in [100, 200, 400, 800, 1600, 3200, 5000, 5000] {
            let d = backoff.delay();
            assert!(d >= ms(bound / 2) && d <= ms(bound), "{d:?} for {bound}");
        }
        backoff.reset();
        assert!(backoff.delay() <= ms(100));
        assert_eq!(backoff.cap(), ms(5000));
    }
}
