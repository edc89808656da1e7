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
//! Revocation: a stateless verifier cannot see a blacklisted token before it
//! expires (keep access tokens short). Services that must see revocations at
//! once turn on [`VerifierBuilder::introspection`], which asks Tessera's
//! `/oauth/introspect` with a short cache.
#![deny(missing_docs)]

mod builder;
mod extract;
pub mod feed;
mod following;
mod introspect;
mod jwks;
mod verifier;

pub use extract::{Authenticated, Rejection, VerifyLayer, VerifyService};
pub use following::FeedStatus;
pub use tessera_core::Algorithm;
pub use tessera_core::Refusal;
pub use tessera_core::claims::SubjectClaim;
pub use tessera_core::client::ClientClaims;
pub use tessera_core::clock::{Clock, FixedClock, SystemClock};
pub use verifier::{BuildError, Claims, Verifier, VerifierBuilder, VerifyError};
