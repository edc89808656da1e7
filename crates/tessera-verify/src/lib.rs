//! Verify tokens issued by a Tessera server in your own service, without a
//! call to Tessera per request: the same validation code as the server
//! (`tessera-core`), keys from Tessera's JWKS (cached, refetched when an
//! unknown `kid` arrives, rate-limited), a PEM public key or a shared HMAC
//! secret, and an axum extractor and tower layer that answer exactly like
//! Tessera does.
//!
//! ```no_run
//! use axum::{Router, routing::get, Json};
//! use serde::Deserialize;
//! use tessera_verify::{Authenticated, Verifier};
//!
//! /// Claims this service reads beyond Tessera's own (set `extra_claims` on Tessera).
//! #[derive(Deserialize)]
//! struct Extra {
//!     #[serde(default)]
//!     is_staff: bool,
//! }
//!
//! async fn orders(Authenticated(claims): Authenticated<Extra>) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "user_id": claims.user_id, "staff": claims.custom.is_staff }))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder()
//!     .jwks_url("http://127.0.0.1:8000/.well-known/jwks.json")
//!     .issuer("https://auth.example.com")
//!     .build()?;
//! let app = Router::new().route("/orders", get(orders)).with_state(verifier);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! A rejected request gets Tessera's own 401: `{"detail": ..., "code":
//! "not_authenticated"}` without credentials, or `{"detail": ..., "code":
//! "token_not_valid", "reason": "invalid" | "expired" | "wrong_type" |
//! "revoked"}` with `WWW-Authenticate: Bearer realm="api", error="invalid_token"`.
//!
//! # Revocations
//!
//! A verifier on its own cannot see a token revoked before it expires
//! (logout, password change, admin revoke, deactivation, RFC 7009
//! revocation). [`VerifierBuilder::revocations`] follows Tessera's
//! revocation feed instead: a task keeps the markers Tessera holds (a
//! snapshot, then each event as it happens), and [`Verifier::verify`] refuses
//! a revoked token with [`Refusal::Revoked`] within about a second of its
//! revocation, with no request to Tessera per token. It needs a service
//! client with the `revocations` scope, and a tokio runtime when
//! [`VerifierBuilder::build`] is called.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use tessera_verify::Verifier;
//! # async fn run() -> Result<(), tessera_verify::BuildError> {
//! let verifier = Verifier::builder()
//!     .jwks_url("http://127.0.0.1:8000/.well-known/jwks.json")
//!     .revocations("http://127.0.0.1:8000", "tc_0123456789abcdef01234567", "SECRET")
//!     .max_staleness(Duration::from_secs(60))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! Until the first snapshot has loaded, and while the feed has been out of
//! reach for longer than `max_staleness`, a token that passes every local
//! check gets [`VerifyError::Unavailable`], which the extractor and the
//! layer answer `503 {"detail": "Service temporarily unavailable, try again
//! later."}` with `Retry-After`; [`VerifierBuilder::fail_open`] accepts such
//! tokens instead. [`Verifier::feed_status`] tells where the follower
//! stands; [`feed::Follower`] follows the feed for code of your own. Without
//! the feed, [`VerifierBuilder::introspection`] asks Tessera's
//! `/oauth/introspect` about each token, with a short cache.
#![deny(missing_docs)]

mod builder;
mod extract;
pub mod feed;
mod following;
mod introspect;
mod jwks;
mod verifier;

pub use extract::{Authenticated, AuthenticatedClient, Rejection, VerifyLayer, VerifyService};
pub use following::FeedStatus;
pub use tessera_core::Algorithm;
pub use tessera_core::Refusal;
pub use tessera_core::claims::{SubjectClaim, TokenType, UserClaim};
pub use tessera_core::client::ClientClaims;
pub use tessera_core::clock::{Clock, FixedClock, SystemClock};
pub use tessera_core::ids::{FamilyId, Jti, UserId};
pub use verifier::{BuildError, Claims, Verifier, VerifierBuilder, VerifyError};
