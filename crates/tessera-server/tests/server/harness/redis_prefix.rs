//! A Redis key prefix of a test's own.

pub const REDIS: &str = "redis://127.0.0.1:6379/0";

/// A Redis key prefix of this test's own (`redis_prefix`), its keys deleted when dropped; `None`
/// (skipped) when Redis does not answer.
pub struct RedisPrefix(String);

impl RedisPrefix {
    pub async fn new() -> Option<RedisPrefix> {
        let answered = match redis::Client::open(REDIS) {
            Ok(client) => tokio::time::timeout(
                std::time::Duration::from_secs(2),
                client.get_multiplexed_async_connection(),
            )
            .await
            .is_ok_and(|c| c.is_ok()),
            Err(_) => false,
        };
        if !answered {
            let message = "Redis not reachable at 127.0.0.1:6379";
            if std::env::var_os("TESSERA_TEST_REQUIRE_TOOLS").is_some() {
                panic!("{message} (TESSERA_TEST_REQUIRE_TOOLS is set)");
            }
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "skipped: {message}");
            return None;
        }
        let id = tessera_core::claims::new_token_id();
        Some(RedisPrefix(format!("tessera-test-{id}:")))
    }

    /// The prefix itself.
    pub fn name(&self) -> &str {
        &self.0
    }

    pub fn config(&self, extra: &str) -> String {
        format!(
            "redis_url = \"{REDIS}\"\nredis_prefix = \"{}\"\n{extra}",
            self.0
        )
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        // Synchronously, so that it also runs when a test fails.
        if let Ok(client) = redis::Client::open(REDIS)
            && let Ok(mut connection) = client.get_connection()
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.0))
                .query(&mut connection)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut connection);
            }
        }
    }
}
