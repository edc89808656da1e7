//! Tessera's settings: one typed struct, read from a TOML file and
//! `TESSERA_<SETTING>` environment variables (which win), checked at start.
//! What each one means, for people, is in [`reference`].

mod parse;
pub mod reference;
mod render;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use tessera_core::Algorithm;
use tessera_core::claims::{ExtraClaim, RESERVED_CLAIMS};
use tessera_core::keys::{ALGORITHM_NAMES, parse_algorithm};

/// Where a request may carry its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLocation {
    /// `Authorization: Bearer ...`.
    Headers,
    /// `access_token_cookie`.
    Cookies,
    /// `?access_token=`.
    QueryString,
    /// Top-level `access_token` in a JSON body.
    Json,
}

impl TokenLocation {
    /// Every location, in the order the setting documents them.
    pub const ALL: [TokenLocation; 4] = [
        TokenLocation::Headers,
        TokenLocation::Cookies,
        TokenLocation::QueryString,
        TokenLocation::Json,
    ];

    /// The location's name in `token_locations`.
    pub fn name(self) -> &'static str {
        match self {
            TokenLocation::Headers => "headers",
            TokenLocation::Cookies => "cookies",
            TokenLocation::QueryString => "query_string",
            TokenLocation::Json => "json",
        }
    }
}

/// The `SameSite` attribute of cookies in cookie mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `Lax`.
    Lax,
    /// `Strict`.
    Strict,
    /// `None` (requires `Secure` in browsers).
    None,
}

/// A rate: `count` events per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed in one window.
    pub count: u32,
    /// The window.
    pub per: Duration,
}

/// Every setting, validated. Built only by [`Settings::load`] or [`Settings::default`].
#[derive(Clone)]
pub struct Settings {
    /// Listen address, `HOST:PORT`.
    pub bind: String,
    /// `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    /// Optional Redis for shared revocations and rate limits.
    pub redis_url: Option<String>,
    /// Access token lifetime.
    pub access_token_lifetime: Duration,
    /// Refresh token lifetime.
    pub refresh_token_lifetime: Duration,
    /// Refresh also returns a new refresh token.
    pub rotate_refresh_tokens: bool,
    /// The old refresh token is blacklisted on rotation.
    pub blacklist_after_rotation: bool,
    /// A blacklisted refresh token presented again revokes its family.
    pub reuse_detection: bool,
    /// The signing algorithm.
    pub algorithm: Algorithm,
    /// HMAC secret or path of a PEM private key; generated and stored when absent.
    pub signing_key: Option<String>,
    /// `iss` to set and require.
    pub issuer: Option<String>,
    /// `aud` to set and require.
    pub audience: Option<String>,
    /// The address users reach the server at, for absolute URLs it gives out.
    pub public_url: Option<String>,
    /// Clock skew tolerance.
    pub leeway: Duration,
    /// Accepted schemes in `Authorization`.
    pub auth_header_types: Vec<String>,
    /// Claim carrying the user id.
    pub user_id_claim: String,
    /// User fields copied into access tokens.
    pub extra_claims: Vec<ExtraClaim>,
    /// Where access tokens are looked for, in order.
    pub token_locations: Vec<TokenLocation>,
    /// `Secure` on cookies.
    pub cookie_secure: bool,
    /// `SameSite` on cookies.
    pub cookie_samesite: SameSite,
    /// Origins allowed for browser clients.
    pub cors_allowed_origins: Vec<String>,
    /// Failed logins allowed per window; `None` is `off`.
    pub login_rate_limit: Option<Rate>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Whether signup is open.
    pub signup_enabled: bool,
    /// Minimum password length.
    pub password_min_length: usize,
    /// Signups allowed per client address; `None` is `off`.
    pub signup_rate_limit: Option<Rate>,
    /// Open connections served at once; more wait in the backlog.
    pub max_connections: usize,
    /// How long a request body may take to arrive before a 408.
    pub request_timeout: Duration,
}

impl fmt::Debug for Settings {
    // By hand, so that the signing key never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("algorithm", &self.algorithm)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .field("blacklist_after_rotation", &self.blacklist_after_rotation)
            .field("reuse_detection", &self.reuse_detection)
            .finish_non_exhaustive()
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            database_url: "sqlite://tessera.db".into(),
            redis_url: None,
            access_token_lifetime: Duration::from_secs(300),
            refresh_token_lifetime: Duration::from_secs(86_400),
            rotate_refresh_tokens: false,
            blacklist_after_rotation: false,
            reuse_detection: true,
            algorithm: Algorithm::HS256,
            signing_key: None,
            issuer: None,
            public_url: None,
            audience: None,
            leeway: Duration::ZERO,
            auth_header_types: vec!["Bearer".into()],
            user_id_claim: "user_id".into(),
            extra_claims: Vec::new(),
            token_locations: vec![TokenLocation::Headers],
            cookie_secure: true,
            cookie_samesite: SameSite::Lax,
            cors_allowed_origins: Vec::new(),
            login_rate_limit: Some(Rate {
                count: 10,
                per: Duration::from_secs(60),
            }),
            trusted_proxies: Vec::new(),
            signup_enabled: true,
            password_min_length: 8,
            signup_rate_limit: Some(Rate {
                count: 10,
                per: Duration::from_secs(60),
            }),
            max_connections: 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A configuration that cannot be used, naming the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read or is not TOML.
    #[error("cannot read configuration file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A key no setting has.
    #[error("unknown setting `{0}` (known settings: {known})", known = SETTING_NAMES.join(", "))]
    Unknown(String),
    /// A value the setting does not accept.
    #[error("invalid value for setting `{setting}`: {expected}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What it accepts.
        expected: String,
    },
}

/// Every setting's name, as in the TOML file (upper-cased after `TESSERA_` in the environment).
pub const SETTING_NAMES: [&str; 28] = [
    "bind",
    "database_url",
    "redis_url",
    "access_token_lifetime",
    "refresh_token_lifetime",
    "rotate_refresh_tokens",
    "blacklist_after_rotation",
    "reuse_detection",
    "algorithm",
    "signing_key",
    "issuer",
    "audience",
    "public_url",
    "leeway",
    "auth_header_types",
    "user_id_claim",
    "extra_claims",
    "token_locations",
    "cookie_secure",
    "cookie_samesite",
    "cors_allowed_origins",
    "login_rate_limit",
    "trusted_proxies",
    "signup_enabled",
    "password_min_length",
    "signup_rate_limit",
    "max_connections",
    "request_timeout",
];

/// Environment variables with the `TESSERA_` prefix that are not settings.
const NON_SETTING_ENV: [&str; 2] = ["TESSERA_CONFIG", "TESSERA_LOG"];

/// A raw value before parsing: from the file (typed) or the environment (text).
enum Raw {
    File(toml::Value),
    Env(String),
}

impl Settings {
    /// Reads `file` (if given), then applies `TESSERA_*` variables from `env`,
    /// and checks every value.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut raw: BTreeMap<String, Raw> = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: path.display().to_string(),
                        reason: toml_error_line(&text, &e),
                    })?;
            for (key, value) in table {
                if !SETTING_NAMES.contains(&key.as_str()) {
                    return Err(ConfigError::Unknown(key));
                }
                raw.insert(key, Raw::File(value));
            }
        }
        for (key, value) in env {
            let Some(name) = key.strip_prefix("TESSERA_") else {
                continue;
            };
            // The test suite's own switches (TESSERA_TEST_POSTGRES_URL, ...)
            // reach the servers it starts; they are not settings.
            if NON_SETTING_ENV.contains(&key.as_str()) || name.starts_with("TEST_") {
                continue;
            }
            let name = name.to_ascii_lowercase();
            if !SETTING_NAMES.contains(&name.as_str()) {
                return Err(ConfigError::Unknown(key));
            }
            raw.insert(name, Raw::Env(value));
        }
        Self::from_raw(raw)
    }

    /// The token rules these settings make.
    pub fn token_policy(&self) -> tessera_core::token::TokenPolicy {
        tessera_core::token::TokenPolicy {
            access_lifetime: self.access_seconds(),
            refresh_lifetime: self.refresh_seconds(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            leeway: self.leeway.as_secs() as i64,
            user_id_claim: self.user_id_claim.clone(),
            extra_claims: self.extra_claims.clone(),
        }
    }

    /// Access token lifetime in whole seconds.
    pub fn access_seconds(&self) -> i64 {
        self.access_token_lifetime.as_secs() as i64
    }

    /// The login limit as failures per sliding 60-second window
    /// (docs/API.md): `N/s`, `N/min` and `N/h` scaled to one minute, at least 1.
    pub fn login_failures_per_minute(&self) -> Option<u32> {
        self.login_rate_limit.map(|rate| {
            let per = rate.per.as_secs().max(1);
            (u64::from(rate.count) * 60)
                .div_ceil(per)
                .clamp(1, u64::from(u32::MAX)) as u32
        })
    }

    /// Refresh token lifetime in whole seconds.
    pub fn refresh_seconds(&self) -> i64 {
        self.refresh_token_lifetime.as_secs() as i64
    }
}

/// A TOML syntax error in one line (toml's own display spans several, with
/// a drawing of the line), so that a failed start ends with one clear line.
fn toml_error_line(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', "; ");
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("not TOML: {message} at line {line}, column {column}")
        }
        None => format!("not TOML: {message}"),
    }
}

#[cfg(test)]
mod tests;
