//! The driver's calls to Tessera: one login, access tokens minted by
//! refreshes, and RFC 7009 revocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long one request to Tessera may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one Tessera, logged in as the bench user.
#[derive(Clone)]
pub struct Tessera {
    origin: String,
    http: reqwest::Client,
}

impl Tessera {
    /// A client of the Tessera at `origin` (e.g. `http://127.0.0.1:8000`),
    /// keeping up to `connections` connections alive.
    pub fn new(origin: &str, connections: usize) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(connections)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            origin: origin.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// Tessera's base URL.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Where Tessera publishes its keys.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.origin)
    }

    /// Logs in once; the refresh token (Tessera runs with rotation off, so
    /// it mints any number of access tokens).
    pub async fn login(&self, username: &str, password: &str) -> Result<String, String> {
        let body = serde_json::json!({"username": username, "password": password});
        let answer = self
            .http
            .post(format!("{}/api/token/", self.origin))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("login: {e}"))?;
        field(answer, "refresh")
            .await
            .map_err(|e| format!("login: {e}"))
    }

    /// One new access token, by a refresh.
    async fn access_token(&self, refresh: &str) -> Result<String, String> {
        let answer = self
            .http
            .post(format!("{}/api/token/refresh/", self.origin))
            .json(&serde_json::json!({"refresh": refresh}))
            .send()
            .await
            .map_err(|e| format!("refresh: {e}"))?;
        field(answer, "access")
            .await
            .map_err(|e| format!("refresh: {e}"))
    }

    /// `count` distinct access tokens, minted by `tasks` concurrent
    /// refreshes; fails at the first failed refresh or past `deadline`.
    pub async fn mint(
        &self,
        refresh: &str,
        count: usize,
        tasks: usize,
        deadline: Duration,
    ) -> Result<Vec<String>, String> {
        let next = Arc::new(AtomicUsize::new(0));
        let until = Instant::now() + deadline;
        let mut workers = Vec::with_capacity(tasks);
        for _ in 0..tasks {
            let (tessera, refresh, next) = (self.clone(), refresh.to_owned(), next.clone());
            workers.push(tokio::spawn(async move {
                let mut minted = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    if Instant::now() > until {
                        return Err(format!("minting {count} tokens took over {deadline:?}"));
                    }
                    minted.push(tessera.access_token(&refresh).await?);
                }
                Ok(minted)
            }));
        }
        let mut tokens = Vec::with_capacity(count);
        for worker in workers {
            let minted = worker.await.map_err(|e| format!("minting task: {e}"))??;
            tokens.extend(minted);
        }
        Ok(tokens)
    }

    /// Revokes `token` (RFC 7009); Tessera answers 200 whatever the token,
    /// so anything else is a failure.
    pub async fn revoke(&self, token: &str) -> Result<(), String> {
        let answer = self
            .http
            .post(format!("{}/oauth/revoke", self.origin))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(|e| format!("revoke: {e}"))?;
        match answer.status() {
            reqwest::StatusCode::OK => Ok(()),
            status => Err(format!("revoke answered {status}")),
        }
    }
}

/// The string field `name` of a 200 JSON answer.
async fn field(answer: reqwest::Response, name: &str) -> Result<String, String> {
    let status = answer.status();
    if status != reqwest::StatusCode::OK {
        return Err(format!("answered {status}"));
    }
    let body: serde_json::Value = answer.json().await.map_err(|e| e.to_string())?;
    body.get(name)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("no `{name}` in the answer"))
}
