//! The three requests a follower makes to Tessera: a client token
//! (`POST /oauth/token`, the `client_credentials` grant), the snapshot
//! (`GET /api/revocations`) and the stream (`GET /api/revocations/stream`).

use serde::Deserialize;
use std::time::{Duration, Instant};
use tessera_core::feed::{Cursor, Snapshot};

/// How long a token or snapshot request may take; the stream has no such
/// limit (it is meant to stay open), only the follower's idle timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request to Tessera failed, as far as the follower acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    /// 401: the client token is not (or no longer) accepted.
    #[error("the client token was refused (401)")]
    Unauthorized,
    /// 400 on the stream: the cursor is not one (load the snapshot again).
    #[error("the cursor was refused (400)")]
    BadCursor,
    /// Anything else: the network, another status, an unreadable body.
    #[error("{0}")]
    Other(String),
}

/// A client token and when to renew it.
#[derive(Debug, Clone)]
pub(crate) struct ClientToken {
    pub(crate) value: String,
    /// 80% of its lifetime: renewed before Tessera refuses it.
    pub(crate) renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

/// Tessera's origin and this client's credentials.
pub(crate) struct Tessera {
    origin: String,
    client_id: String,
    secret: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Tessera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Tessera")
            .field("origin", &self.origin)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Tessera {
    /// Tessera at `origin` (e.g. `http://127.0.0.1:8000`), which must be an
    /// http or https URL.
    pub(crate) fn new(origin: &str, client_id: &str, secret: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(origin).map_err(|e| format!("base URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("base URL: not http or https".into());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            origin: origin.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// A new client token.
    pub(crate) async fn token(&self) -> Result<ClientToken, CallError> {
        // RFC 6749 2.3.1: both form-url-encoded before they go into Basic.
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let asked = Instant::now();
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .timeout(REQUEST_TIMEOUT)
            .basic_auth(encode(&self.client_id), Some(encode(&self.secret)))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(other)?;
        let answer: TokenAnswer = checked(response).await?.json().await.map_err(other)?;
        let lifetime = Duration::from_secs(answer.expires_in);
        Ok(ClientToken {
            value: answer.access_token,
            renew_at: asked + lifetime.mul_f64(0.8),
        })
    }

    /// The snapshot.
    pub(crate) async fn snapshot(&self, token: &str) -> Result<Snapshot, CallError> {
        let response = self
            .http
            .get(self.url("/api/revocations"))
            .timeout(REQUEST_TIMEOUT)
            .bearer_auth(token)
            .send()
            .await
            .map_err(other)?;
        checked(response).await?.json().await.map_err(other)
    }

    /// The stream of events after `after`, once Tessera answered 200.
    pub(crate) async fn stream(
        &self,
        token: &str,
        after: Cursor,
    ) -> Result<reqwest::Response, CallError> {
        let response = self
            .http
            .get(self.url("/api/revocations/stream"))
            .bearer_auth(token)
            .header("Last-Event-ID", after.to_string())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            // Only the time to the answer's head is bounded here.
            .await
            .map_err(other)?;
        let response = checked(response).await?;
        // A proxy's error page with a 200 is not the feed: better said at
        // once than found out after the idle timeout.
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !is_stream {
            return Err(CallError::Other(
                "the stream answered without Content-Type text/event-stream".into(),
            ));
        }
        Ok(response)
    }
}

fn other(e: reqwest::Error) -> CallError {
    // reqwest's errors name the URL, never the headers (no credentials).
    CallError::Other(e.to_string())
}

/// The response when it is a 2xx, else the error its status means.
async fn checked(response: reqwest::Response) -> Result<reqwest::Response, CallError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let url = response.url().path().to_owned();
    // A few words of the body help the operator (403 insufficient_scope,
    // 401 invalid_client); at most 200 characters of it.
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(match status.as_u16() {
        401 if !url.ends_with("/oauth/token") => CallError::Unauthorized,
        400 if url.ends_with("/stream") => CallError::BadCursor,
        code => CallError::Other(format!("{url} answered {code}: {body}")),
    })
}
