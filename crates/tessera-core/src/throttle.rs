//! Login throttling as docs/API.md defines it: failed logins counted in a
//! sliding window per key (a username, a client address); at the limit, the
//! next attempt is refused before any password is checked.
//!
//! This is a failure log, not a token bucket: only failures count, and a
//! check must not count as one, which is why it is not a general-purpose
//! rate limiter. Memory stays bounded: entries expire with their window, and
//! a hard cap on keys evicts the least recently failed first.

use std::collections::{HashMap, VecDeque};

/// Failures allowed per window, and the window in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Failures allowed within one window.
    pub failures: u32,
    /// The window, milliseconds.
    pub window_ms: i64,
}

/// One counted attempt: a failure, or an attempt counted before its outcome
/// is known (`pending`), which a success takes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attempt {
    at: i64,
    pending: bool,
}

/// Counted attempts per key, oldest first.
#[derive(Debug)]
pub struct FailureLog {
    limit: Limit,
    max_keys: usize,
    failures: HashMap<String, VecDeque<Attempt>>,
}

impl FailureLog {
    /// A log allowing `limit`, remembering at most `max_keys` keys.
    pub fn new(limit: Limit, max_keys: usize) -> Self {
        Self {
            limit,
            max_keys: max_keys.max(1),
            failures: HashMap::new(),
        }
    }

    /// `None` when `key` may try now (at `now_ms`); otherwise how many whole
    /// seconds until it may, at least 1.
    pub fn retry_after(&self, key: &str, now_ms: i64) -> Option<u64> {
        let times = self.failures.get(key)?;
        let recent = times
            .iter()
            .filter(|a| a.at > now_ms - self.limit.window_ms);
        if recent.count() < self.limit.failures as usize {
            return None;
        }
        // The attempt is allowed again once the oldest failure that keeps
        // the count at the limit leaves the window.
        let excess = times.len() - self.limit.failures as usize;
        let oldest_counted = times.get(excess).map_or(now_ms, |a| a.at);
        let wait_ms = (oldest_counted + self.limit.window_ms - now_ms).max(0);
        Some(((wait_ms + 999) / 1000).max(1) as u64)
    }

    /// Records a failure of `key` at `now_ms`.
    pub fn record(&mut self, key: &str, now_ms: i64) {
        self.push(key, now_ms, false);
    }

    /// Counts an attempt of `key` at `now_ms` before its outcome is known,
    /// so that attempts arriving together cannot all pass [`Self::retry_after`]
    /// before any of them is counted. Its outcome is then given by
    /// [`Self::settle`] (a failure) or [`Self::release`] (a success).
    pub fn record_pending(&mut self, key: &str, now_ms: i64) {
        self.push(key, now_ms, true);
    }

    /// The attempt of `key` counted at `at_ms` failed: it stays counted.
    pub fn settle(&mut self, key: &str, at_ms: i64) {
        if let Some(attempt) = self
            .failures
            .get_mut(key)
            .and_then(|times| times.iter_mut().rev().find(|a| a.pending && a.at == at_ms))
        {
            attempt.pending = false;
        }
    }

    /// The attempt of `key` counted at `at_ms` succeeded: it no longer
    /// counts. Nothing happens if it is no longer held.
    pub fn release(&mut self, key: &str, at_ms: i64) {
        if let Some(times) = self.failures.get_mut(key) {
            if let Some(i) = times.iter().rposition(|a| a.pending && a.at == at_ms) {
                times.remove(i);
            }
            if times.is_empty() {
                self.failures.remove(key);
            }
        }
    }

    fn push(&mut self, key: &str, now_ms: i64, pending: bool) {
        let horizon = now_ms - self.limit.window_ms;
        if !self.failures.contains_key(key) && self.failures.len() >= self.max_keys {
            self.prune(now_ms);
            if self.failures.len() >= self.max_keys {
                self.evict_oldest();
            }
        }
        let times = self.failures.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|a| a.at <= horizon) {
            times.pop_front();
        }
        times.push_back(Attempt {
            at: now_ms,
            pending,
        });
        // Only the newest `failures` entries can ever matter.
        while times.len() > self.limit.failures as usize {
            times.pop_front();
        }
    }

    /// Forgets `key`'s failures (after a successful login). Attempts still
    /// in flight stay counted: a success must not open the door to the rest
    /// of a burst.
    pub fn clear(&mut self, key: &str) {
        if let Some(times) = self.failures.get_mut(key) {
            times.retain(|a| a.pending);
            if times.is_empty() {
                self.failures.remove(key);
            }
        }
    }

    /// Drops every failure that left its window.
    pub fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms - self.limit.window_ms;
        self.failures
            .retain(|_, times| times.back().is_some_and(|a| a.at > horizon));
    }

    /// Forgets the least recently failed tenth of the keys. A tenth at once,
    /// so that the scan is paid once per many new keys, not on each: a flood
    /// of invented usernames must not make every login walk the whole map.
    fn evict_oldest(&mut self) {
        let batch = (self.max_keys / 10).clamp(1, self.failures.len().max(1));
        let mut ages: Vec<(i64, &String)> = self
            .failures
            .iter()
            .map(|(key, times)| (times.back().map_or(i64::MIN, |a| a.at), key))
            .collect();
        if ages.is_empty() {
            return;
        }
        ages.select_nth_unstable_by_key(batch - 1, |(at, _)| *at);
        let victims: Vec<String> = ages[..batch].iter().map(|(_, k)| (*k).clone()).collect();
        for key in victims {
            self.failures.remove(&key);
        }
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_PER_MINUTE: Limit = Limit {
        failures: 10,
        window_ms: 60_000,
    };

    #[test]
    fn the_eleventh_attempt_within_the_window_waits() {
        let mut log = FailureLog::new(TEN_PER_MINUTE, 100);
        for i in 0..10 {
            assert_eq!(log.retry_after("alice", i * 1000), None, "attempt {i}");
            log.record("alice", i * 1000);
        }
        // The first failure (t=0) leaves the window at t=60s.
        assert_eq!(log.retry_after("alice", 10_000), Some(50));
        assert_eq!(log.retry_after("alice", 59_500), Some(1));
        assert_eq!(log.retry_after("alice", 60_001), None);
        assert_eq!(log.retry_after("bob", 10_000), None);
    }

    #[test]
    fn retry_after_is_between_1_and_the_window() {
        let mut log = FailureLog::new(TEN_PER_MINUTE, 100);
        for _ in 0..30 {
            log.record("k", 5_000);
        }
        let wait = log.retry_after("k", 5_000).unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }

    #[test]
    fn success_clears_and_old_failures_expire() {
        let mut log = FailureLog::new(TEN_PER_MINUTE, 100);
        for _ in 0..10 {
            log.record("k", 0);
        }
        log.clear("k");
        assert_eq!(log.retry_after("k", 1), None);
        log.record("x", 0);
        log.prune(60_000);
        assert!(log.is_empty());
    }

    #[test]
    fn attempts_count_before_their_outcome_and_a_success_forgives_only_the_settled() {
        let mut log = FailureLog::new(TEN_PER_MINUTE, 100);
        for i in 0..10 {
            assert!(log.retry_after("k", i).is_none());
            log.record_pending("k", i);
        }
        // The eleventh, before any outcome is known, waits.
        assert!(log.retry_after("k", 10).is_some());
        // Attempt 9 succeeded; 0..3 failed; 4..8 are still in flight.
        for i in 0..4 {
            log.settle("k", i);
        }
        log.release("k", 9);
        log.clear("k");
        // The success forgave the four failures, not the five in flight.
        assert_eq!(log.failures["k"].len(), 5);
        assert!(log.failures["k"].iter().all(|a| a.pending));
        for i in 4..9 {
            log.release("k", i);
        }
        assert!(log.is_empty());
        log.release("other", 0);
        log.settle("other", 0);
        assert!(log.is_empty());
    }

    #[test]
    fn memory_is_bounded_however_many_keys_arrive() {
        let mut log = FailureLog::new(TEN_PER_MINUTE, 1000);
        for i in 0..50_000 {
            log.record(&format!("user{i}"), i);
        }
        assert!(log.len() <= 1000);
        // The most recent keys are the ones kept.
        log.record("target", 50_000);
        assert!(log.failures.contains_key("target"));
    }
}
