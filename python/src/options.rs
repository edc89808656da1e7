//! The `Verifier`'s keyword arguments, read once at construction into the
//! settings of `tessera_verify::VerifierBuilder`, which every process that
//! verifies builds its verifier from.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::str::FromStr;
use std::time::Duration;
use tessera_verify::{Algorithm, SubjectClaim, TokenType, UserClaim, VerifierBuilder};

/// Where the keys come from.
#[derive(Clone)]
enum Keys {
    Jwks(String),
    Secret(Algorithm, Vec<u8>),
    PublicKey(Algorithm, Vec<u8>),
}

/// The revocation feed to follow (`revocations={...}`).
#[derive(Clone)]
pub struct Feed {
    url: String,
    client_id: String,
    client_secret: String,
    max_staleness: Duration,
    fail_open: bool,
    idle_timeout: Duration,
}

/// Everything a `Verifier` was constructed with.
#[derive(Clone)]
pub struct Options {
    keys: Keys,
    algorithms: Option<Vec<Algorithm>>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    token_type: TokenType,
    user_id_claim: Option<String>,
    subject: SubjectClaim,
    claim_names: Vec<(UserClaim, String)>,
    jwks_min_interval: Duration,
    jwks_max_age: Duration,
    introspection: Option<(String, Duration)>,
    feed: Option<Feed>,
}

/// The keyword arguments as received, before they are checked.
pub struct Given<'a, 'py> {
    pub jwks_url: Option<String>,
    pub secret: Option<&'a Bound<'py, PyAny>>,
    pub public_key: Option<&'a Bound<'py, PyAny>>,
    pub algorithm: Option<String>,
    pub algorithms: Option<Vec<String>>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: f64,
    pub token_type: String,
    pub user_id_claim: Option<String>,
    pub subject: String,
    pub claim_names: Option<&'a Bound<'py, PyDict>>,
    pub jwks_min_interval: f64,
    pub jwks_max_age: f64,
    pub introspection_url: Option<String>,
    pub introspection_ttl: f64,
    pub revocations: Option<&'a Bound<'py, PyDict>>,
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{name} must be a number of seconds, 0 or more (got {value})"))
}

fn algorithm(name: &str) -> Result<Algorithm, String> {
    Algorithm::from_str(name).map_err(|_| format!("unknown algorithm {name:?}"))
}

/// A key given as `str` or `bytes`.
fn key_bytes(what: &str, value: &Bound<'_, PyAny>) -> Result<Vec<u8>, String> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    value
        .extract::<String>()
        .map(String::into_bytes)
        .map_err(|_| format!("{what} must be str or bytes"))
}

/// `claim_names={"username": "user_name", ...}`: Tessera's `claim_names`
/// table; what the names may be is checked when the builder is built.
fn read_claim_names(names: &Bound<'_, PyDict>) -> Result<Vec<(UserClaim, String)>, String> {
    let keys = UserClaim::ALL.map(UserClaim::name).join(", ");
    names
        .iter()
        .map(|(key, name)| {
            let key = key
                .extract::<String>()
                .map_err(|_| format!("claim_names keys must be among {keys}"))?;
            let claim = UserClaim::named(&key)
                .ok_or_else(|| format!("claim_names keys must be among {keys}, not {key:?}"))?;
            let name = name
                .extract::<String>()
                .map_err(|_| format!("claim_names[{key:?}] must be a string"))?;
            Ok((claim, name))
        })
        .collect()
}

impl Feed {
    fn read(revocations: &Bound<'_, PyDict>) -> Result<Feed, String> {
        let text = |key: &str| -> Result<String, String> {
            match revocations.get_item(key) {
                Ok(Some(value)) => value
                    .extract::<String>()
                    .map_err(|_| format!("revocations[{key:?}] must be a string")),
                _ => Err(format!("revocations needs {key:?}")),
            }
        };
        let number = |key: &str, default: f64| -> Result<Duration, String> {
            match revocations.get_item(key) {
                Ok(Some(value)) => {
                    let value = value
                        .extract::<f64>()
                        .map_err(|_| format!("revocations[{key:?}] must be a number of seconds"))?;
                    seconds(&format!("revocations[{key:?}]"), value)
                }
                _ => seconds(key, default),
            }
        };
        let fail_open = match revocations.get_item("fail_open") {
            Ok(Some(value)) => value
                .extract::<bool>()
                .map_err(|_| "revocations[\"fail_open\"] must be True or False".to_owned())?,
            _ => false,
        };
        for key in revocations.keys() {
            let key = key.extract::<String>().unwrap_or_default();
            if ![
                "url",
                "client_id",
                "client_secret",
                "max_staleness",
                "fail_open",
                "idle_timeout",
            ]
            .contains(&key.as_str())
            {
                return Err(format!("revocations has an unknown key {key:?}"));
            }
        }
        let feed = Feed {
            url: text("url")?,
            client_id: text("client_id")?,
            client_secret: text("client_secret")?,
            max_staleness: number("max_staleness", 60.0)?,
            fail_open,
            idle_timeout: number("idle_timeout", 45.0)?,
        };
        // The URL and credentials' shape are checked now, not at the first
        // verification.
        tessera_verify::feed::Follower::new(&feed.url, &feed.client_id, &feed.client_secret)
            .map_err(|e| e.to_string())?;
        Ok(feed)
    }
}

impl Options {
    /// Checks the arguments: exactly one key source, known algorithms and
    /// names, durations that are durations.
    pub fn read(given: Given<'_, '_>) -> Result<Options, String> {
        let sources = [
            given.jwks_url.is_some(),
            given.secret.is_some(),
            given.public_key.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err("give exactly one of jwks_url, secret and public_key".into());
        }
        let keys = if let Some(url) = given.jwks_url {
            if given.algorithm.is_some() {
                return Err(
                    "algorithm goes with secret or public_key; with jwks_url, use algorithms"
                        .into(),
                );
            }
            Keys::Jwks(url)
        } else if let Some(secret) = given.secret {
            let alg = algorithm(given.algorithm.as_deref().unwrap_or("HS256"))?;
            Keys::Secret(alg, key_bytes("secret", secret)?)
        } else if let Some(pem) = given.public_key {
            let alg = given
                .algorithm
                .as_deref()
                .ok_or("public_key needs its algorithm (e.g. algorithm=\"ES256\")")?;
            Keys::PublicKey(algorithm(alg)?, key_bytes("public_key", pem)?)
        } else {
            return Err("give exactly one of jwks_url, secret and public_key".into());
        };
        let algorithms = given
            .algorithms
            .map(|names| {
                names
                    .iter()
                    .map(|n| algorithm(n))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let token_type = match given.token_type.as_str() {
            "access" => TokenType::Access,
            "refresh" => TokenType::Refresh,
            other => {
                return Err(format!(
                    "token_type must be \"access\" or \"refresh\", not {other:?}"
                ));
            }
        };
        let subject = match given.subject.as_str() {
            "user_id" => SubjectClaim::Id,
            "username" => SubjectClaim::Username,
            other => {
                return Err(format!(
                    "subject must be \"user_id\" or \"username\", not {other:?}"
                ));
            }
        };
        let introspection = match given.introspection_url {
            Some(url) => Some((url, seconds("introspection_ttl", given.introspection_ttl)?)),
            None => None,
        };
        let feed = given.revocations.map(Feed::read).transpose()?;
        let claim_names = given
            .claim_names
            .map(read_claim_names)
            .transpose()?
            .unwrap_or_default();
        Ok(Options {
            keys,
            algorithms,
            issuer: given.issuer,
            audience: given.audience,
            leeway: seconds("leeway", given.leeway)?,
            token_type,
            user_id_claim: given.user_id_claim,
            subject,
            claim_names,
            jwks_min_interval: seconds("jwks_min_interval", given.jwks_min_interval)?,
            jwks_max_age: seconds("jwks_max_age", given.jwks_max_age)?,
            introspection,
            feed,
        })
    }

    /// Whether the revocation feed is followed.
    pub fn follows_feed(&self) -> bool {
        self.feed.is_some()
    }

    /// The builder of these options; with `feed`, following the feed (its
    /// `build` must then run inside the process's runtime).
    pub fn builder(&self, feed: bool) -> VerifierBuilder {
        let mut builder = match &self.keys {
            Keys::Jwks(url) => tessera_verify::Verifier::builder().jwks_url(url),
            Keys::Secret(alg, secret) => {
                tessera_verify::Verifier::builder().hmac_secret(*alg, secret.clone())
            }
            Keys::PublicKey(alg, pem) => {
                tessera_verify::Verifier::builder().public_key_pem(*alg, pem.clone())
            }
        };
        if let Some(algorithms) = &self.algorithms {
            builder = builder.algorithms(algorithms);
        }
        if let Some(issuer) = &self.issuer {
            builder = builder.issuer(issuer);
        }
        if let Some(audience) = &self.audience {
            builder = builder.audience(audience);
        }
        if let Some(claim) = &self.user_id_claim {
            builder = builder.user_id_claim(claim);
        }
        for (claim, name) in &self.claim_names {
            builder = builder.claim_name(*claim, name);
        }
        builder = builder
            .leeway(self.leeway)
            .expected_type(self.token_type)
            .subject(self.subject)
            .jwks_min_interval(self.jwks_min_interval)
            .jwks_default_max_age(self.jwks_max_age);
        if let Some((url, ttl)) = &self.introspection {
            builder = builder.introspection(url, *ttl);
        }
        if feed && let Some(f) = &self.feed {
            builder = builder
                .revocations(&f.url, &f.client_id, &f.client_secret)
                .max_staleness(f.max_staleness)
                .fail_open(f.fail_open)
                .feed_idle_timeout(f.idle_timeout)
                // Each process starts following on its first verification:
                // its first requests are not refused while the snapshot loads.
                .trust_start(true);
        }
        builder
    }
}
