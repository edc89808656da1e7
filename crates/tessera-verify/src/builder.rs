//! The settings of a [`Verifier`] and how it is built.

use crate::feed::Follower;
use crate::following::{FollowerTask, Staleness};
use crate::introspect::Introspector;
use crate::jwks::JwksCache;
use crate::verifier::{Inner, Source, Verifier};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::Algorithm;
use tessera_core::claims::{SubjectClaim, TokenType, UserClaim};
use tessera_core::clock::{Clock, SystemClock};
use tessera_core::keys::{Key, KeyMaterial, KeyRing};
use tessera_core::token::TokenPolicy;
use tessera_core::verified::VerifiedTokens;

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No key source was given.
    #[error("a key source is required: jwks_url, public_key_pem or hmac_secret")]
    NoKeySource,
    /// The key given is unusable.
    #[error("unusable key: {0}")]
    Key(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The revocation feed cannot be followed: a base URL that is not
    /// http(s), or no tokio runtime to run the follower on.
    #[error("revocation feed: {0}")]
    Feed(String),
    /// The claim names given by [`VerifierBuilder::claim_name`] would make
    /// two claims one (the same rules as Tessera's `claim_names`).
    #[error("claim names: {0}")]
    ClaimNames(String),
}

/// The revocation feed to follow.
struct FeedSettings {
    origin: String,
    client_id: String,
    secret: String,
}

enum KeySource {
    None,
    Jwks(String),
    Pem(Algorithm, Vec<u8>),
    Hmac(Algorithm, Vec<u8>),
}

/// Settings of a [`Verifier`].
pub struct VerifierBuilder {
    keys: KeySource,
    policy: TokenPolicy,
    token_type: TokenType,
    algorithms: Option<Vec<Algorithm>>,
    jwks_min_interval: Duration,
    jwks_default_max_age: Duration,
    introspection: Option<(String, Duration)>,
    clock: Arc<dyn Clock>,
    feed: Option<FeedSettings>,
    max_staleness: Duration,
    fail_open: bool,
    trust_start: bool,
    feed_idle_timeout: Duration,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            keys: KeySource::None,
            policy: TokenPolicy::new(),
            token_type: TokenType::Access,
            algorithms: None,
            jwks_min_interval: Duration::from_secs(10),
            jwks_default_max_age: Duration::from_secs(300),
            introspection: None,
            clock: Arc::new(SystemClock),
            feed: None,
            max_staleness: Duration::from_secs(60),
            fail_open: false,
            trust_start: false,
            feed_idle_timeout: Duration::from_secs(45),
        }
    }
}

impl VerifierBuilder {
    /// Keys from Tessera's JWKS URL (`/.well-known/jwks.json`).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys = KeySource::Jwks(url.into());
        self
    }

    /// One PEM public key (SPKI) of algorithm `alg`.
    pub fn public_key_pem(mut self, alg: Algorithm, pem: impl Into<Vec<u8>>) -> Self {
        self.keys = KeySource::Pem(alg, pem.into());
        self
    }

    /// The shared HMAC secret (Tessera's `signing_key` with an HS algorithm).
    pub fn hmac_secret(mut self, alg: Algorithm, secret: impl Into<Vec<u8>>) -> Self {
        self.keys = KeySource::Hmac(alg, secret.into());
        self
    }

    /// Requires this `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.policy.issuer = Some(issuer.into());
        self
    }

    /// Requires this `aud`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.policy.audience = Some(audience.into());
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.policy.leeway = leeway.as_secs() as i64;
        self
    }

    /// The claim carrying the user id (Tessera's `user_id_claim`).
    pub fn user_id_claim(mut self, claim: impl Into<String>) -> Self {
        self.policy.user_id_claim = claim.into();
        self
    }

    /// The name `claim` carries in tokens (Tessera's `claim_names`): with
    /// `claim_name(UserClaim::Username, "user_name")`,
    /// [`Claims::username`](crate::Claims::username) is read from
    /// `user_name`, as is the username that backs `sub` under
    /// `subject(SubjectClaim::Username)`. Give the same table as Tessera's;
    /// [`build`](Self::build) refuses the names it would refuse.
    pub fn claim_name(mut self, claim: UserClaim, name: impl Into<String>) -> Self {
        self.policy.claim_names.set(claim, name);
        self
    }

    /// What `sub` carries (Tessera's `subject` setting): the user id (the
    /// default) or the username.
    pub fn subject(mut self, subject: SubjectClaim) -> Self {
        self.policy.subject = subject;
        self
    }

    /// The token type [`Verifier::verify`] accepts (default
    /// [`TokenType::Access`]: a refresh token presented as a bearer token is
    /// refused `wrong_type`, as Tessera refuses it).
    pub fn expected_type(mut self, token_type: TokenType) -> Self {
        self.token_type = token_type;
        self
    }

    /// The algorithms accepted, whatever a token says.
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = Some(algorithms.to_vec());
        self
    }

    /// At most one JWKS fetch per this interval, however many unknown kids
    /// arrive (default 10 s).
    pub fn jwks_min_interval(mut self, interval: Duration) -> Self {
        self.jwks_min_interval = interval;
        self
    }

    /// How long a fetched JWKS is used when its response names no
    /// `Cache-Control: max-age` (default 5 min).
    pub fn jwks_default_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_default_max_age = max_age;
        self
    }

    /// Online mode: after the local checks, ask Tessera's introspection
    /// endpoint whether the token is still active, caching answers for `ttl`.
    pub fn introspection(mut self, url: impl Into<String>, ttl: Duration) -> Self {
        self.introspection = Some((url.into(), ttl));
        self
    }

    /// The clock that expiry, the JWKS cache's age, its fetch limit and the
    /// introspection cache are measured on (default: the system's). Tests of a service move a
    /// [`FixedClock`](crate::FixedClock) or their own instead
    /// of waiting for tokens to expire.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Follows Tessera's revocation feed, so that a token revoked in
    /// Tessera (logout, password change, admin revoke, deactivation, RFC
    /// 7009 revocation, client removal) is refused here within about a
    /// second, with no request to Tessera per token. `origin` is Tessera's
    /// base URL (e.g. `http://127.0.0.1:8000`); the client must hold the
    /// `revocations` scope. [`build`](Self::build) then starts a task on the
    /// current tokio runtime (it must be called inside one), stopped when
    /// the last clone of the verifier is dropped. Until the first snapshot
    /// has loaded, and whenever the feed has not been current for
    /// [`max_staleness`](Self::max_staleness), verification answers
    /// [`VerifyError::Unavailable`](crate::VerifyError::Unavailable)
    /// unless [`fail_open`](Self::fail_open). A `keys_changed` event
    /// refetches the JWKS.
    pub fn revocations(
        mut self,
        origin: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.feed = Some(FeedSettings {
            origin: origin.into(),
            client_id: client_id.into(),
            secret: client_secret.into(),
        });
        self
    }

    /// How long the revocation feed may be out of reach before tokens are
    /// answered `Unavailable` (default 60 s): a revocation made meanwhile
    /// would go unseen.
    pub fn max_staleness(mut self, max_staleness: Duration) -> Self {
        self.max_staleness = max_staleness;
        self
    }

    /// Keeps accepting tokens that pass the local checks while the feed is
    /// stale or not loaded yet, refusing only what the last state held says
    /// is revoked (default false: availability over revocation).
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }

    /// Counts staleness from the follower's start instead of answering
    /// `Unavailable` until the first snapshot has loaded (default false).
    /// For processes that start following lazily, on their first request
    /// (the Python package, under forking servers): tokens are checked
    /// against whatever has loaded so far, and with Tessera unreachable
    /// from the start they are accepted for `max_staleness`, then answered
    /// `Unavailable`. A token revoked before the start can be accepted in
    /// that time; the default never accepts one.
    pub fn trust_start(mut self, trust_start: bool) -> Self {
        self.trust_start = trust_start;
        self
    }

    /// How long the feed's open stream may stay silent before it is taken
    /// for dead and reopened (default 45 s, three of Tessera's heartbeats).
    pub fn feed_idle_timeout(mut self, timeout: Duration) -> Self {
        self.feed_idle_timeout = timeout;
        self
    }

    /// Builds the verifier (a JWKS source fetches on first use, not here;
    /// the revocation feed's follower starts here).
    pub fn build(self) -> Result<Verifier, BuildError> {
        self.policy
            .claim_names
            .check(&self.policy.user_id_claim)
            .map_err(BuildError::ClaimNames)?;
        let key_error = |e: tessera_core::keys::KeyError| BuildError::Key(e.to_string());
        let client = || {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| BuildError::Client(e.to_string()))
        };
        // Only keys of accepted algorithms enter the ring, and a key verifies
        // only its own algorithm: a token cannot pick another.
        let (source, algorithms) = match self.keys {
            KeySource::None => return Err(BuildError::NoKeySource),
            KeySource::Pem(alg, pem) => {
                let key = Key::from_public_pem(alg, &pem).map_err(key_error)?;
                (
                    Source::Static(Arc::new(KeyRing::verifying([key]))),
                    vec![alg],
                )
            }
            KeySource::Hmac(alg, secret) => {
                let key = KeyMaterial::from_bytes(alg, secret)
                    .and_then(KeyMaterial::into_key)
                    .map_err(key_error)?;
                (
                    Source::Static(Arc::new(KeyRing::verifying([key]))),
                    vec![alg],
                )
            }
            KeySource::Jwks(url) => {
                let algorithms = self.algorithms.clone().unwrap_or_else(|| {
                    vec![
                        Algorithm::ES256,
                        Algorithm::ES384,
                        Algorithm::EdDSA,
                        Algorithm::RS256,
                        Algorithm::PS256,
                    ]
                });
                let cache = JwksCache::new(
                    url,
                    client()?,
                    algorithms.clone(),
                    self.jwks_min_interval,
                    self.jwks_default_max_age,
                    self.clock.clone(),
                );
                (Source::Jwks(Arc::new(cache)), algorithms)
            }
        };
        if let Some(wanted) = &self.algorithms
            && !algorithms.iter().all(|a| wanted.contains(a))
        {
            return Err(BuildError::Key(
                "the key's algorithm is not among the accepted ones".into(),
            ));
        }
        let introspector = match self.introspection {
            Some((url, ttl)) => Some(Introspector::new(url, client()?, ttl, self.clock.clone())),
            None => None,
        };
        let feed = match self.feed {
            None => None,
            Some(settings) => {
                let follower =
                    Follower::new(&settings.origin, &settings.client_id, &settings.secret)?
                        .idle_timeout(self.feed_idle_timeout);
                let jwks = match &source {
                    Source::Jwks(cache) => Some(cache.clone()),
                    Source::Static(_) => None,
                };
                Some(
                    FollowerTask::start(
                        follower,
                        Staleness {
                            max: self.max_staleness,
                            fail_open: self.fail_open,
                            trust_start: self.trust_start,
                        },
                        jwks,
                        self.clock.clone(),
                    )
                    .map_err(BuildError::Feed)?,
                )
            }
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                policy: self.policy,
                token_type: self.token_type,
                algorithms,
                source,
                introspector,
                clock: self.clock,
                verified: VerifiedTokens::default(),
                feed,
            }),
        })
    }
}
