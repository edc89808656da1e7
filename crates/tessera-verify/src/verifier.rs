//! The verifier: settings, key source, and the one call that checks a token.

use crate::introspect::Introspector;
use crate::jwks::JwksCache;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tessera_core::Algorithm;
use tessera_core::Refusal;
use tessera_core::claims::SubjectClaim;
use tessera_core::claims::TokenType;
use tessera_core::clock::{Clock, SystemClock};
use tessera_core::keys::{Key, KeyMaterial, KeyRing};
use tessera_core::reload::validate_with_reload;
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
}

/// The claims of a verified access token: Tessera's own, typed, and the
/// application's (`custom`, deserialised from the whole claims object).
#[derive(Debug, Clone)]
pub struct Claims<T = IgnoredAny> {
    /// The user's id.
    pub user_id: i64,
    /// The username claim.
    pub username: Option<String>,
    /// The token's id.
    pub jti: String,
    /// The login (family) it descends from.
    pub fid: String,
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

enum Source {
    Static(Arc<KeyRing>),
    Jwks(JwksCache),
}

struct Inner {
    policy: TokenPolicy,
    algorithms: Vec<Algorithm>,
    source: Source,
    introspector: Option<Introspector>,
    clock: Arc<dyn Clock>,
    /// Tokens already verified against the key ring in force (signature and
    /// claims only; the introspection check, when configured, runs always).
    verified: VerifiedTokens,
}

/// Checks Tessera's tokens. Cheap to clone; share one per service.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.inner.algorithms)
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

    /// Verifies an access token and returns its claims.
    pub async fn verify<T: DeserializeOwned>(&self, token: &str) -> Result<Claims<T>, Refusal> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let claims = match &inner.source {
            Source::Static(ring) => {
                inner
                    .verified
                    .validate(&inner.policy, ring, token, Some(TokenType::Access), now)?
            }
            Source::Jwks(cache) => {
                // A kid we do not know may be a new key of the issuer: look
                // again (the cache decides whether a fetch is allowed).
                let validate = |ring: &KeyRing| {
                    inner.verified.validate(
                        &inner.policy,
                        ring,
                        token,
                        Some(TokenType::Access),
                        now,
                    )
                };
                validate_with_reload(cache.ring().await, token, now, validate, |kid| async move {
                    Some(cache.ring_with(&kid).await)
                })
                .await?
            }
        };
        if let Some(introspector) = &inner.introspector
            && !introspector.is_active(token, &claims.jti, claims.exp).await
        {
            return Err(Refusal::Revoked);
        }
        let custom = serde_json::from_value(Value::Object(claims.raw.clone()))
            .map_err(|_| Refusal::Invalid)?;
        Ok(Claims {
            user_id: claims.user_id,
            username: claims.username.clone(),
            jti: claims.jti.clone(),
            fid: claims.fid.clone(),
            iat: claims.iat,
            exp: claims.exp,
            fresh: claims.fresh,
            raw: claims.raw.clone(),
            custom,
        })
    }
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
    algorithms: Option<Vec<Algorithm>>,
    jwks_min_interval: Duration,
    jwks_default_max_age: Duration,
    introspection: Option<(String, Duration)>,
    clock: Arc<dyn Clock>,
}

impl Default for VerifierBuilder {
    fn default() -> Self {
        Self {
            keys: KeySource::None,
            policy: TokenPolicy::new(),
            algorithms: None,
            jwks_min_interval: Duration::from_secs(10),
            jwks_default_max_age: Duration::from_secs(300),
            introspection: None,
            clock: Arc::new(SystemClock),
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

    /// What `sub` carries (Tessera's `subject` setting): the user id (the
    /// default) or the username.
    pub fn subject(mut self, subject: SubjectClaim) -> Self {
        self.policy.subject = subject;
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

    /// Builds the verifier (a JWKS source fetches on first use, not here).
    pub fn build(self) -> Result<Verifier, BuildError> {
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
                (Source::Jwks(cache), algorithms)
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
        Ok(Verifier {
            inner: Arc::new(Inner {
                policy: self.policy,
                algorithms,
                source,
                introspector,
                clock: self.clock,
                verified: VerifiedTokens::default(),
            }),
        })
    }
}
