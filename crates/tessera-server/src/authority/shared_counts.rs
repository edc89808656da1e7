//! The throttling counts kept in Redis (`redis_url`), so that every instance
//! counts every attempt: failed logins per username and per address (a
//! sliding window, taken before the hash as locally), signups per address and
//! logins and refreshes per user (GCRA, as governor counts them locally).
//! Each operation is one Lua script, atomic in Redis.
//!
//! Redis is a help, never a dependency: an operation that fails or takes
//! longer than [`TIMEOUT`] returns an error, the caller counts locally, and
//! the first failure is logged; a later success says the counts are shared
//! again. Keys expire with their window.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

/// The longest a throttling decision waits for Redis.
const TIMEOUT: Duration = Duration::from_millis(300);

/// How long after a failed connection attempt the next is made, ms.
const RECONNECT_AFTER_MS: i64 = 2_000;

/// Checks both keys and, when neither is at its limit, adds the attempt
/// (pending) to both. Returns 0, or the milliseconds until one is allowed.
const RESERVE: &str = r"
local now, window, limit, member = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local wait = 0
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[i])
  if n >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], n - limit, n - limit, 'WITHSCORES')
    local w = math.max(tonumber(oldest[2]) + window - now, 1)
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, 'p:' .. member)
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
";

/// The attempt failed: its pending entry becomes a failure in both keys.
const SETTLE: &str = r"
for i = 1, 2 do
  local at = redis.call('ZSCORE', KEYS[i], 'p:' .. ARGV[1])
  if at then
    redis.call('ZREM', KEYS[i], 'p:' .. ARGV[1])
    redis.call('ZADD', KEYS[i], at, 'f:' .. ARGV[1])
  end
end
return 0
";

/// The attempt succeeded: it no longer counts, and the username's earlier
/// failures are forgotten (not the address's; attempts still pending stay).
const SUCCEED: &str = r"
redis.call('ZREM', KEYS[1], 'p:' .. ARGV[1])
redis.call('ZREM', KEYS[2], 'p:' .. ARGV[1])
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 1, 2) == 'f:' then redis.call('ZREM', KEYS[1], member) end
end
return 0
";

/// The attempt no longer counts; nothing else is forgotten.
const RELEASE: &str = r"
redis.call('ZREM', KEYS[1], 'p:' .. ARGV[1])
redis.call('ZREM', KEYS[2], 'p:' .. ARGV[1])
return 0
";

/// GCRA: `burst` at once, then one every `emission` ms. Returns 0 (counted),
/// or the milliseconds until one is allowed.
const GCRA: &str = r"
local now, emission, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + emission - emission * burst
if allow_at > now then return math.max(allow_at - now, 1) end
redis.call('SET', KEYS[1], tat + emission, 'PX', tat + emission - now)
return 0
";

/// A script's answer as the caller's `Retry-After`: `None` for 0 (counted),
/// else the milliseconds it returned in whole seconds, at least 1.
fn wait_seconds(wait_ms: i64) -> Option<u64> {
    (wait_ms > 0).then(|| u64::try_from(wait_ms).unwrap_or(1).div_ceil(1000).max(1))
}

/// Counts in Redis, reached through a connection manager that reconnects.
pub(super) struct SharedCounts {
    client: Client,
    prefix: String,
    connection: tokio::sync::Mutex<Option<ConnectionManager>>,
    next_connect_ms: AtomicI64,
    shared: AtomicBool,
    reserve: Script,
    settle: Script,
    succeed: Script,
    release: Script,
    gcra: Script,
}

/// Redis did not answer in time, or refused: count locally this time.
#[derive(Debug)]
pub(super) struct Unavailable;

impl SharedCounts {
    /// Counts at `url` under `prefix`; connects on first use. `None` (and a
    /// log line) when the URL cannot be read.
    pub(super) fn new(url: &str, prefix: &str) -> Option<Self> {
        match Client::open(url) {
            Ok(client) => Some(Self {
                client,
                prefix: prefix.to_owned(),
                connection: tokio::sync::Mutex::new(None),
                next_connect_ms: AtomicI64::new(0),
                shared: AtomicBool::new(true),
                reserve: Script::new(RESERVE),
                settle: Script::new(SETTLE),
                succeed: Script::new(SUCCEED),
                release: Script::new(RELEASE),
                gcra: Script::new(GCRA),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "redis_url cannot be used; throttling counts locally");
                None
            }
        }
    }

    /// Whether the last operation was counted in Redis.
    pub(super) fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Acquire)
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// A connection, made now if there is none and the last attempt is old.
    async fn connection(&self, now_ms: i64) -> Result<ConnectionManager, Unavailable> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        if now_ms < self.next_connect_ms.load(Ordering::Acquire) {
            return Err(Unavailable);
        }
        self.next_connect_ms
            .store(now_ms + RECONNECT_AFTER_MS, Ordering::Release);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            TIMEOUT * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await;
        match made {
            Ok(Ok(connection)) => {
                *slot = Some(connection.clone());
                Ok(connection)
            }
            _ => Err(Unavailable),
        }
    }

    /// Runs `script` with `keys` and `args`, within [`TIMEOUT`].
    async fn run(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[String],
        now_ms: i64,
    ) -> Result<i64, Unavailable> {
        let outcome = match self.connection(now_ms).await {
            Ok(mut connection) => {
                let mut invocation = script.prepare_invoke();
                for key in keys {
                    invocation.key(*key);
                }
                for arg in args {
                    invocation.arg(arg);
                }
                match tokio::time::timeout(TIMEOUT, invocation.invoke_async::<i64>(&mut connection))
                    .await
                {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "redis refused a throttling script");
                        Err(Unavailable)
                    }
                    Err(_) => Err(Unavailable),
                }
            }
            Err(e) => Err(e),
        };
        let was_shared = self.shared.swap(outcome.is_ok(), Ordering::AcqRel);
        match (&outcome, was_shared) {
            (Err(_), true) => {
                tracing::warn!("Redis is unreachable: throttling counts on this instance alone");
            }
            (Ok(_), false) => tracing::info!("Redis is back: throttling counts are shared again"),
            _ => {}
        }
        outcome
    }

    /// Takes a login attempt for both keys, or the seconds to wait.
    pub(super) async fn reserve_login(
        &self,
        (user, address): (&str, &str),
        member: &str,
        now_ms: i64,
        (failures, window_ms): (u32, i64),
    ) -> Result<Option<u64>, Unavailable> {
        let keys = [
            &*self.key("login:user", user),
            &*self.key("login:addr", address),
        ];
        let args = [
            now_ms.to_string(),
            window_ms.to_string(),
            failures.to_string(),
            member.to_owned(),
        ];
        let wait_ms = self.run(&self.reserve, &keys, &args, now_ms).await?;
        Ok(wait_seconds(wait_ms))
    }

    /// The reserved attempt `member` failed.
    pub(super) async fn login_failed(&self, keys: (&str, &str), member: &str, now_ms: i64) {
        self.settle_login(&self.settle, keys, member, now_ms).await;
    }

    /// The reserved attempt `member` succeeded.
    pub(super) async fn login_succeeded(&self, keys: (&str, &str), member: &str, now_ms: i64) {
        self.settle_login(&self.succeed, keys, member, now_ms).await;
    }

    /// The reserved attempt `member` no longer counts, and nothing is
    /// forgiven (a password right, a second factor to come).
    pub(super) async fn login_released(&self, keys: (&str, &str), member: &str, now_ms: i64) {
        self.settle_login(&self.release, keys, member, now_ms).await;
    }

    /// Runs `script` on the attempt `member` of both login keys. Its outcome
    /// matters little: a failure was counted already, and an unforgiven one
    /// expires with its window.
    async fn settle_login(
        &self,
        script: &Script,
        (user, address): (&str, &str),
        member: &str,
        now_ms: i64,
    ) {
        let keys = [
            &*self.key("login:user", user),
            &*self.key("login:addr", address),
        ];
        let _ = self.run(script, &keys, &[member.to_owned()], now_ms).await;
    }

    /// Counts one event of `kind`/`id` against `count` per `per`, or the
    /// seconds to wait.
    pub(super) async fn count(
        &self,
        (kind, id): (&str, &str),
        rate: crate::config::Rate,
        now_ms: i64,
    ) -> Result<Option<u64>, Unavailable> {
        let emission =
            i64::try_from((rate.per / rate.count.max(1)).as_millis()).unwrap_or(i64::MAX);
        let keys = [&*self.key(kind, id)];
        let args = [
            now_ms.to_string(),
            emission.max(1).to_string(),
            rate.count.to_string(),
        ];
        let wait_ms = self.run(&self.gcra, &keys, &args, now_ms).await?;
        Ok(wait_seconds(wait_ms))
    }
}
