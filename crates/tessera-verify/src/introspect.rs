//! Online mode: ask Tessera's `/oauth/introspect` whether a token is still
//! active, caching each answer briefly so that a busy service does not ask
//! for every request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Answers remembered at most; past that, the oldest are dropped.
const MAX_CACHED: usize = 10_000;

pub(crate) struct Introspector {
    url: String,
    client: reqwest::Client,
    ttl: Duration,
    answers: Mutex<HashMap<String, (bool, Instant)>>,
}

impl Introspector {
    pub(crate) fn new(url: String, client: reqwest::Client, ttl: Duration) -> Self {
        Self {
            url,
            client,
            ttl,
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// Whether Tessera says the token is active. Fails closed: no answer is "no".
    pub(crate) async fn is_active(&self, token: &str, jti: &str, _exp: i64) -> bool {
        if let Some((active, at)) = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(jti)
            && at.elapsed() < self.ttl
        {
            return *active;
        }
        let active = self.ask(token).await.unwrap_or(false);
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.len() >= MAX_CACHED {
            let ttl = self.ttl;
            answers.retain(|_, (_, at)| at.elapsed() < ttl);
            if answers.len() >= MAX_CACHED {
                answers.clear();
            }
        }
        answers.insert(jti.to_owned(), (active, Instant::now()));
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
