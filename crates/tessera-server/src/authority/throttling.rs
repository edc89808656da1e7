//! Login throttling, the signup limit and the per-user limit behind one
//! type: what counts attempts per username, per client address and per user.
//! With `redis_url` the counts are kept in Redis and shared by every instance
//! ([`SharedCounts`]); while Redis cannot be reached, and without it, they are
//! this process's own.

use super::AuthError;
use super::shared_counts::SharedCounts;
use crate::config::{Rate, Settings};
use crate::telemetry;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tessera_core::claims::new_token_id;
use tessera_core::clock::{Clock, RateLimitClock};
use tessera_core::ids::UserId;
use tessera_core::throttle::{FailureLog, Limit};

/// Keys remembered per failure log, whatever an attacker invents; far above
/// what hashing lets through in a minute.
const MAX_THROTTLE_KEYS: usize = 100_000;

/// Attempts remembered per failure log in all (about 16 bytes each): a key
/// holds up to the limit's count, so a large limit remembers fewer keys.
const MAX_REMEMBERED_ATTEMPTS: usize = 1_000_000;

/// How many keys a log of `limit` may remember within the bounds above.
fn keys_for(limit: Limit) -> usize {
    (MAX_REMEMBERED_ATTEMPTS / limit.failures.max(1) as usize).clamp(100, MAX_THROTTLE_KEYS)
}

/// The two failure logs of login throttling: a key of one never meets the other's.
struct LoginFailures {
    by_username: FailureLog,
    by_address: FailureLog,
}

/// A login attempt counted in advance (see [`Throttle::reserve_login`]).
#[must_use = "a successful login gives its reservation back"]
pub(super) struct LoginAttempt {
    at_ms: i64,
    /// Its entry in Redis, when it was counted there.
    shared: Option<String>,
}

type Limiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, RateLimitClock, NoOpMiddleware<Duration>>;

/// `rate` as a keyed limiter on `clock`: `count` at once, then one every
/// `per / count`.
fn limiter<K: std::hash::Hash + Eq + Clone>(
    rate: crate::config::Rate,
    clock: &Arc<dyn Clock>,
) -> Option<Limiter<K>> {
    let burst = NonZeroU32::new(rate.count)?;
    let quota = Quota::with_period(rate.per / rate.count)?.allow_burst(burst);
    Some(RateLimiter::new(
        quota,
        DefaultKeyedStateStore::default(),
        RateLimitClock(clock.clone()),
    ))
}

/// Refused by `limiter` for `key`: the seconds to wait, at least 1.
fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &Limiter<K>,
    key: &K,
    clock: &Arc<dyn Clock>,
) -> Result<(), AuthError> {
    if let Err(not_until) = limiter.check_key(key) {
        let now = governor::clock::Clock::now(&RateLimitClock(clock.clone()));
        telemetry::throttled();
        return Err(AuthError::Throttled(
            not_until.wait_time_from(now).as_secs().max(1),
        ));
    }
    Ok(())
}

/// Failed logins by username and by client address, and signups by client
/// address, each off when its setting says `off`.
pub(super) struct Throttle {
    clock: Arc<dyn Clock>,
    logins: Option<Mutex<LoginFailures>>,
    signups: Option<Limiter<IpAddr>>,
    /// Logins and refreshes per user id.
    tokens: Option<Limiter<i64>>,
    /// The login limit, as Redis counts it too.
    login_limit: Option<Limit>,
    signup_rate: Option<Rate>,
    user_rate: Option<Rate>,
    shared: Option<SharedCounts>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A failure log stays usable after a panic elsewhere: refusing service
    // would be worse than a count that is off by one.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Throttle {
    /// The limits of `settings`, on `clock`.
    pub(super) fn new(settings: &Settings, clock: Arc<dyn Clock>) -> Self {
        // Counted over the limit's own period: 3/h is three an hour.
        let login_limit = settings.login_rate_limit.map(|rate| Limit {
            failures: rate.count,
            window_ms: i64::try_from(rate.per.as_millis()).unwrap_or(i64::MAX),
        });
        let logins = login_limit.map(|limit| {
            Mutex::new(LoginFailures {
                by_username: FailureLog::new(limit, keys_for(limit)),
                by_address: FailureLog::new(limit, keys_for(limit)),
            })
        });
        let signups = settings
            .signup_rate_limit
            .and_then(|rate| limiter(rate, &clock));
        let tokens = settings
            .user_rate_limit
            .and_then(|rate| limiter(rate, &clock));
        let shared = settings
            .redis_url
            .as_deref()
            .and_then(|url| SharedCounts::new(url, &settings.redis_prefix));
        Self {
            clock,
            logins,
            signups,
            tokens,
            login_limit,
            signup_rate: settings.signup_rate_limit,
            user_rate: settings.user_rate_limit,
            shared,
        }
    }

    /// Takes one login attempt for both keys before its password is checked,
    /// or refuses it (with the seconds to wait) while either key is at its
    /// limit. The attempt counts as a failure from now on; one that succeeds
    /// is given back by [`Throttle::login_succeeded`]. Both keys are checked
    /// and counted under one lock, so a burst of attempts arriving together
    /// gets no more password checks than the limit.
    pub(super) async fn reserve_login(
        &self,
        user_key: &str,
        address_key: &str,
        now_ms: i64,
    ) -> Result<LoginAttempt, AuthError> {
        let Some(failures) = &self.logins else {
            return Ok(LoginAttempt {
                at_ms: now_ms,
                shared: None,
            });
        };
        if let (Some(shared), Some(limit)) = (&self.shared, self.login_limit) {
            let member = new_token_id();
            let keys = (user_key, address_key);
            let window = (limit.failures, limit.window_ms);
            match shared.reserve_login(keys, &member, now_ms, window).await {
                Ok(Some(seconds)) => {
                    telemetry::throttled();
                    return Err(AuthError::Throttled(seconds));
                }
                Ok(None) => {
                    // Redis decided; the local counts follow, for when it is gone.
                    let mut failures = lock(failures);
                    failures.by_username.record_pending(user_key, now_ms);
                    failures.by_address.record_pending(address_key, now_ms);
                    return Ok(LoginAttempt {
                        at_ms: now_ms,
                        shared: Some(member),
                    });
                }
                Err(_) => {}
            }
        }
        let mut failures = lock(failures);
        let wait = failures
            .by_username
            .retry_after(user_key, now_ms)
            .max(failures.by_address.retry_after(address_key, now_ms));
        if let Some(seconds) = wait {
            telemetry::throttled();
            return Err(AuthError::Throttled(seconds));
        }
        failures.by_username.record_pending(user_key, now_ms);
        failures.by_address.record_pending(address_key, now_ms);
        Ok(LoginAttempt {
            at_ms: now_ms,
            shared: None,
        })
    }

    /// The attempt failed: it stays counted against both keys.
    pub(super) async fn login_failed(
        &self,
        user_key: &str,
        address_key: &str,
        attempt: LoginAttempt,
    ) {
        if let Some(failures) = &self.logins {
            let mut failures = lock(failures);
            failures.by_username.settle(user_key, attempt.at_ms);
            failures.by_address.settle(address_key, attempt.at_ms);
        }
        if let (Some(shared), Some(member)) = (&self.shared, &attempt.shared) {
            shared
                .login_failed((user_key, address_key), member, self.clock.now_ms())
                .await;
        }
    }

    /// The attempt succeeded: it no longer counts, and the username's
    /// earlier failures are forgiven (not the attempts still in flight). The
    /// address's failures stay, or an attacker could reset them by logging in
    /// to an account of their own.
    pub(super) async fn login_succeeded(
        &self,
        user_key: &str,
        address_key: &str,
        attempt: LoginAttempt,
    ) {
        if let Some(failures) = &self.logins {
            let mut failures = lock(failures);
            failures.by_username.release(user_key, attempt.at_ms);
            failures.by_username.clear(user_key);
            failures.by_address.release(address_key, attempt.at_ms);
        }
        if let (Some(shared), Some(member)) = (&self.shared, &attempt.shared) {
            shared
                .login_succeeded((user_key, address_key), member, self.clock.now_ms())
                .await;
        }
    }

    /// The attempt's password was right but a second factor is still to
    /// come: it no longer counts, and nothing is forgiven (the username's
    /// failures, wrong codes among them, are forgiven only once the second
    /// factor is right, by [`Throttle::login_succeeded`]), so that the
    /// password alone does not buy more guesses of a code.
    pub(super) async fn first_factor_passed(
        &self,
        user_key: &str,
        address_key: &str,
        attempt: LoginAttempt,
    ) {
        if let Some(failures) = &self.logins {
            let mut failures = lock(failures);
            failures.by_username.release(user_key, attempt.at_ms);
            failures.by_address.release(address_key, attempt.at_ms);
        }
        if let (Some(shared), Some(member)) = (&self.shared, &attempt.shared) {
            shared
                .login_released((user_key, address_key), member, self.clock.now_ms())
                .await;
        }
    }

    /// Counts one event against `rate` in Redis: `None` when Redis could not
    /// decide (the caller counts locally).
    async fn shared_count(
        &self,
        kind: &str,
        id: &str,
        rate: Option<Rate>,
    ) -> Option<Result<(), AuthError>> {
        let (shared, rate) = (self.shared.as_ref()?, rate?);
        match shared.count((kind, id), rate, self.clock.now_ms()).await {
            Ok(None) => Some(Ok(())),
            Ok(Some(seconds)) => {
                telemetry::throttled();
                Some(Err(AuthError::Throttled(seconds)))
            }
            Err(_) => None,
        }
    }

    /// Takes one signup from `client`'s allowance, or refuses with the
    /// seconds to wait. Signups from the CLI (`None`) are not limited.
    pub(super) async fn check_signup(&self, client: Option<IpAddr>) -> Result<(), AuthError> {
        let (Some(limiter), Some(client)) = (&self.signups, client) else {
            return Ok(());
        };
        if let Some(decided) = self
            .shared_count("signup", &client.to_string(), self.signup_rate)
            .await
        {
            return decided;
        }
        check(limiter, &client, &self.clock)
    }

    /// Counts one login or refresh of `user_id`, or refuses it (with the
    /// seconds to wait) past `user_rate_limit`.
    pub(super) async fn check_tokens(&self, user: UserId) -> Result<(), AuthError> {
        let user_id = user.get();
        let Some(limiter) = &self.tokens else {
            return Ok(());
        };
        if let Some(decided) = self
            .shared_count("tokens", &user_id.to_string(), self.user_rate)
            .await
        {
            return decided;
        }
        check(limiter, &user_id, &self.clock)
    }

    /// `Some(true)` while the counts are shared through Redis, `Some(false)`
    /// while Redis cannot be reached, `None` without `redis_url`.
    pub(super) fn is_shared(&self) -> Option<bool> {
        self.shared.as_ref().map(SharedCounts::is_shared)
    }

    /// Forgets counts that no longer matter.
    pub(super) fn prune(&self, now_ms: i64) {
        if let Some(failures) = &self.logins {
            let mut failures = lock(failures);
            failures.by_username.prune(now_ms);
            failures.by_address.prune(now_ms);
        }
        if let Some(signups) = &self.signups {
            signups.retain_recent();
            signups.shrink_to_fit();
        }
        if let Some(tokens) = &self.tokens {
            tokens.retain_recent();
            tokens.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rate;
    use tessera_core::clock::FixedClock;

    #[tokio::test]
    async fn the_signup_limit_runs_on_the_injected_clock() {
        let settings = Settings {
            signup_rate_limit: Some(Rate {
                count: 2,
                per: Duration::from_secs(60),
            }),
            ..Settings::default()
        };
        let clock = Arc::new(FixedClock::new(1_800_000_000));
        let throttle = Throttle::new(&settings, clock.clone());
        let client = Some(IpAddr::from([192, 0, 2, 1]));
        assert!(throttle.check_signup(client).await.is_ok());
        assert!(throttle.check_signup(client).await.is_ok());
        // Two a minute: the next one in 30 s.
        match throttle.check_signup(client).await {
            Err(AuthError::Throttled(seconds)) => assert_eq!(seconds, 30),
            other => panic!("{other:?}"),
        }
        assert!(
            throttle
                .check_signup(Some(IpAddr::from([192, 0, 2, 2])))
                .await
                .is_ok()
        );
        assert!(
            throttle.check_signup(None).await.is_ok(),
            "the CLI is not limited"
        );
        clock.advance(30);
        assert!(throttle.check_signup(client).await.is_ok());
        assert!(throttle.check_signup(client).await.is_err());
    }

    #[test]
    fn remembered_attempts_are_bounded_whatever_the_limit() {
        for failures in [1, 10, 1000, 100_000, u32::MAX] {
            let keys = keys_for(Limit {
                failures,
                window_ms: 3_600_000,
            });
            assert!(
                (100..=MAX_THROTTLE_KEYS).contains(&keys),
                "{failures}: {keys}"
            );
            // The bound holds whenever the limit is below what 100 keys allow.
            if failures <= 10_000 {
                assert!(
                    keys * failures as usize <= MAX_REMEMBERED_ATTEMPTS,
                    "{failures}"
                );
            }
        }
        assert_eq!(
            keys_for(Limit {
                failures: 10,
                window_ms: 60_000
            }),
            MAX_THROTTLE_KEYS
        );
    }
}
