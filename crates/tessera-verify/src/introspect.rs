//! Online mode: ask Tessera's `/oauth/introspect` whether a token is still
//! active, caching each answer briefly so that a busy service does not ask
//! for every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tessera_core::clock::Clock;

/// Answers remembered at most; past that, the oldest are dropped.
const MAX_CACHED: usize = 10_000;

pub(crate) struct Introspector {
    url: String,
    client: reqwest::Client,
    ttl_ms: i64,
    /// Each answer and when it came (milliseconds on `clock`).
    answers: Mutex<HashMap<String, (bool, i64)>>,
    clock: Arc<dyn Clock>,
}

impl Introspector {
    pub(crate) fn new(
        url: String,
        client: reqwest::Client,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            url,
            client,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            answers: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Whether Tessera says the token is active. Fails closed: no answer is "no".
    pub(crate) async fn is_active(&self, token: &str, jti: &str, _exp: i64) -> bool {
        let fresh = |at: i64| self.clock.now_ms().saturating_sub(at) < self.ttl_ms;
        if let Some((active, at)) = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(jti)
            && fresh(*at)
        {
            return *active;
        }
        let active = self.ask(token).await.unwrap_or(false);
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.len() >= MAX_CACHED {
            answers.retain(|_, (_, at)| fresh(*at));
            if answers.len() >= MAX_CACHED {
                answers.clear();
            }
        }
        answers.insert(jti.to_owned(), (active, self.clock.now_ms()));
        active
    }

    async fn ask(&self, token: &str) -> Result<bool, reqwest::Error> {
        let body: serde_json::Value = self
            .client
            .post(&self.url)
            .form(&[("token", token)])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body
            .get("active")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false))
    }
}
