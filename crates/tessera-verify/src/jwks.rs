//! Keys from Tessera's JWKS URL: cached for the response's `max-age`,
//! fetched again when a token names an unknown `kid`, with at most one fetch
//! in flight and at most one per interval, so that tokens with forged kids
//! cannot make this service hammer the issuer.

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use jsonwebtoken::jwk::JwkSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tessera_core::Algorithm;
use tessera_core::clock::{Clock, RateLimitClock};
use tessera_core::keys::{Key, KeyRing};

struct Cached {
    ring: Arc<KeyRing>,
    /// When the set must be fetched again (milliseconds on the verifier's
    /// clock); `None` before the first fetch.
    expires_ms: Option<i64>,
}

type FetchLimiter = RateLimiter<NotKeyed, InMemoryState, RateLimitClock, NoOpMiddleware<Duration>>;

pub(crate) struct JwksCache {
    url: String,
    client: reqwest::Client,
    algorithms: Vec<Algorithm>,
    default_max_age: Duration,
    cached: RwLock<Arc<Cached>>,
    /// Held while fetching: concurrent callers wait for that one fetch.
    fetching: tokio::sync::Mutex<()>,
    fetches: FetchLimiter,
    clock: Arc<dyn Clock>,
}

impl JwksCache {
    pub(crate) fn new(
        url: String,
        client: reqwest::Client,
        algorithms: Vec<Algorithm>,
        min_interval: Duration,
        default_max_age: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let quota = Quota::with_period(min_interval.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(std::num::NonZeroU32::MIN));
        Self {
            url,
            client,
            algorithms,
            default_max_age,
            cached: RwLock::new(Arc::new(Cached {
                ring: Arc::new(KeyRing::verifying([])),
                expires_ms: None,
            })),
            fetching: tokio::sync::Mutex::new(()),
            fetches: RateLimiter::direct_with_clock(quota, RateLimitClock(clock.clone())),
            clock,
        }
    }

    /// Whether `cached` may still be used without asking the issuer.
    fn is_fresh(&self, cached: &Cached) -> bool {
        cached.expires_ms.is_some_and(|e| self.clock.now_ms() < e)
    }

    fn current(&self) -> Arc<Cached> {
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The keys to verify with now: the cached set while it is fresh.
    pub(crate) async fn ring(&self) -> Arc<KeyRing> {
        let cached = self.current();
        if self.is_fresh(&cached) {
            return cached.ring.clone();
        }
        self.refetch(None).await
    }

    /// The keys after looking for `kid`: fetched again if the cache lacks it
    /// and the rate limit allows.
    pub(crate) async fn ring_with(&self, kid: &str) -> Arc<KeyRing> {
        self.refetch(Some(kid)).await
    }

    /// Fetches the set now, whatever its age and the fetch limit: Tessera
    /// said its keys changed (the feed's `keys_changed`), which forged
    /// tokens cannot make it say.
    pub(crate) async fn refresh(&self) {
        let _one_at_a_time = self.fetching.lock().await;
        self.store(self.fetch().await, self.current());
    }

    async fn refetch(&self, kid: Option<&str>) -> Arc<KeyRing> {
        let _one_at_a_time = self.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        let cached = self.current();
        let fresh = self.is_fresh(&cached);
        let has_kid = kid.is_none_or(|k| cached.ring.get(k, self.clock.now()).is_some());
        if fresh && has_kid {
            return cached.ring.clone();
        }
        if self.fetches.check().is_err() {
            return cached.ring.clone();
        }
        self.store(self.fetch().await, cached)
    }

    /// Keeps a fetched set, or the one we have when the fetch failed.
    fn store(
        &self,
        fetched: Result<(KeyRing, Duration), reqwest::Error>,
        cached: Arc<Cached>,
    ) -> Arc<KeyRing> {
        match fetched {
            Ok((ring, max_age)) => {
                let next =
                    Arc::new(Cached {
                        ring: Arc::new(ring),
                        expires_ms: Some(self.clock.now_ms().saturating_add(
                            i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
                        )),
                    });
                *self.cached.write().unwrap_or_else(PoisonError::into_inner) = next.clone();
                next.ring.clone()
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "could not fetch the JWKS; keeping the keys we have");
                cached.ring.clone()
            }
        }
    }

    async fn fetch(&self) -> Result<(KeyRing, Duration), reqwest::Error> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?;
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(self.default_max_age);
        let set: JwkSet = response.json().await?;
        let keys: Vec<Key> = set
            .keys
            .iter()
            .filter_map(|jwk| Key::from_jwk(jwk, None).ok())
            .filter(|key| self.algorithms.contains(&key.algorithm()))
            .collect();
        Ok((KeyRing::verifying(keys), max_age))
    }
}

/// The `max-age` directive of a Cache-Control value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| value.trim().parse().ok().map(Duration::from_secs))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("Max-Age = 5"), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
