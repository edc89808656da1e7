//! The verifier: what it holds, and the calls that check a token.

use crate::following::{FeedStatus, FollowerTask};
use crate::introspect::Introspector;
use crate::jwks::JwksCache;
use serde::de::{DeserializeOwned, IgnoredAny, IntoDeserializer};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::Algorithm;
use tessera_core::Refusal;
use tessera_core::claims::TokenType;
use tessera_core::client::{ClientClaims, validate_client};
use tessera_core::clock::Clock;
use tessera_core::ids::{FamilyId, Jti, UserId};
use tessera_core::keys::KeyRing;
use tessera_core::reload::validate_with_reload;
use tessera_core::token::TokenPolicy;
use tessera_core::verified::VerifiedTokens;

pub use crate::builder::{BuildError, VerifierBuilder};

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The token is refused, for the reason Tessera itself would give
    /// (answered 401 `token_not_valid`).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The token passed every local check, but whether it was revoked
    /// cannot be told: the revocation feed has not been current for longer
    /// than `max_staleness`, or its snapshot has not loaded yet (answered
    /// 503 with `Retry-After`). Only with
    /// [`VerifierBuilder::revocations`] and without `fail_open`.
    #[error("revocations cannot be checked now; try again in {retry_after:?}")]
    Unavailable {
        /// When to try again.
        retry_after: Duration,
    },
}

/// The claims of a verified access token: Tessera's own, typed, and the
/// application's (`custom`, deserialised from the whole claims object).
#[derive(Debug, Clone)]
pub struct Claims<T = IgnoredAny> {
    /// The user's id (`user_id.get()` is the integer).
    pub user_id: UserId,
    /// The username claim.
    pub username: Option<String>,
    /// The token's id (`jti.as_str()` is its 32 hex characters).
    pub jti: Jti,
    /// The login (family) it descends from.
    pub fid: FamilyId,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Whether it comes straight from a password login.
    pub fresh: bool,
    /// Every claim, as carried.
    pub raw: Map<String, Value>,
    /// The application's claims.
    pub custom: T,
}

pub(crate) enum Source {
    Static(Arc<KeyRing>),
    Jwks(Arc<JwksCache>),
}

pub(crate) struct Inner {
    pub(crate) policy: TokenPolicy,
    /// The type [`Verifier::verify`] accepts.
    pub(crate) token_type: TokenType,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) source: Source,
    pub(crate) introspector: Option<Introspector>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Tokens already verified against the key ring in force (signature and
    /// claims only; revocation is checked on every call).
    pub(crate) verified: VerifiedTokens,
    /// The revocation feed's follower, stopped when the last clone goes.
    pub(crate) feed: Option<FollowerTask>,
}

/// Checks Tessera's tokens. Cheap to clone; share one per service. With a
/// revocation feed, its follower task lives as long as one clone does.
#[derive(Clone)]
pub struct Verifier {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.inner.algorithms)
            .field("follows_feed", &self.inner.feed.is_some())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts building a verifier. Defaults are the strict ones: access
    /// tokens only, no leeway, algorithms ES256, ES384, EdDSA, RS256 and PS256
    /// for key sets (HMAC only with a shared secret).
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Checks a token's signature, type and claims with the keys in force
    /// (looking for a new key once when it names an unknown `kid`), and
    /// passes `validate`'s result through.
    async fn validated<T>(
        &self,
        token: &str,
        now: i64,
        validate: impl Fn(&KeyRing) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        match &self.inner.source {
            Source::Static(ring) => validate(ring),
            Source::Jwks(cache) => {
                // A kid we do not know may be a new key of the issuer: look
                // again (the cache decides whether a fetch is allowed).
                validate_with_reload(cache.ring().await, token, now, validate, |kid| async move {
                    Some(cache.ring_with(&kid).await)
                })
                .await
            }
        }
    }

    /// Verifies a user's access token (or the type set by
    /// [`VerifierBuilder::expected_type`]) and returns its claims. Local checks
    /// come first (a forged or expired token is refused whatever the feed
    /// says); then revocation, through the feed or introspection when
    /// configured.
    pub async fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<Claims<T>, VerifyError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let claims = self
            .validated(token, now, |ring| {
                inner
                    .verified
                    .validate(&inner.policy, ring, token, Some(inner.token_type), now)
            })
            .await?;
        if let Some(feed) = &inner.feed {
            feed.following.check(&claims)?;
        }
        if let Some(introspector) = &inner.introspector
            && !introspector
                .is_active(token, claims.jti.as_str(), claims.exp)
                .await
        {
            return Err(Refusal::Revoked.into());
        }
        // Read from the claims in place: a copy of the whole map per call
        // only to deserialise from it (and, for `IgnoredAny`, to drop it).
        let custom =
            T::deserialize((&claims.raw).into_deserializer()).map_err(|_| Refusal::Invalid)?;
        Ok(Claims {
            user_id: claims.user_id,
            username: claims.username.clone(),
            jti: claims.jti,
            fid: claims.fid,
            iat: claims.iat,
            exp: claims.exp,
            fresh: claims.fresh,
            raw: claims.raw.clone(),
            custom,
        })
    }

    /// Verifies a service client's token (Tessera's `client_credentials`
    /// grant), for services that accept other services' calls: the same
    /// signature, time, issuer and audience rules, then, with the feed,
    /// whether the client was removed or the token revoked. Check the
    /// scopes you need with [`ClientClaims::has_scope`].
    pub async fn verify_client(&self, token: &str) -> Result<ClientClaims, VerifyError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let claims = self
            .validated(token, now, |ring| {
                validate_client(&inner.policy, ring, token, now)
            })
            .await?;
        if let Some(feed) = &inner.feed {
            feed.following.check_client(&claims)?;
        }
        Ok(claims)
    }

    /// Where the revocation feed's follower stands; `None` without
    /// [`VerifierBuilder::revocations`]. For health checks and dashboards
    /// (the `metrics` crate also receives `tessera_verify_feed_connected`,
    /// `tessera_verify_feed_markers`, `tessera_verify_feed_events_total`,
    /// `tessera_verify_feed_disconnects_total` and
    /// `tessera_verify_feed_unavailable_total` when a recorder is installed).
    pub fn feed_status(&self) -> Option<FeedStatus> {
        self.inner.feed.as_ref().map(|feed| feed.following.status())
    }
}
