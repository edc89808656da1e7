//! Tessera's settings: one typed struct, read from a TOML file and
//! `TESSERA_<SETTING>` environment variables (which win), checked at start.
//! What each one means, for people, is in [`reference`].

pub mod reference;

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
pub const SETTING_NAMES: [&str; 27] = [
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

    fn from_raw(mut raw: BTreeMap<String, Raw>) -> Result<Self, ConfigError> {
        let mut s = Settings::default();
        let mut take = |name: &'static str| raw.remove(name).map(|v| (name, v));
        if let Some(v) = take("bind") {
            s.bind = parse_bind(v)?;
        }
        if let Some(v) = take("database_url") {
            s.database_url = parse_string(v)?;
            if !(s.database_url.starts_with("sqlite://")
                || s.database_url.starts_with("postgres://")
                || s.database_url.starts_with("postgresql://"))
            {
                return Err(invalid(
                    "database_url",
                    "sqlite://PATH, sqlite:///ABSOLUTE/PATH or postgres://...",
                ));
            }
        }
        if let Some(v) = take("redis_url") {
            s.redis_url = optional(parse_string(v)?);
        }
        if let Some(v) = take("access_token_lifetime") {
            s.access_token_lifetime = parse_lifetime(v)?;
        }
        if let Some(v) = take("refresh_token_lifetime") {
            s.refresh_token_lifetime = parse_lifetime(v)?;
        }
        if let Some(v) = take("rotate_refresh_tokens") {
            s.rotate_refresh_tokens = parse_bool(v)?;
        }
        if let Some(v) = take("blacklist_after_rotation") {
            s.blacklist_after_rotation = parse_bool(v)?;
        }
        if let Some(v) = take("reuse_detection") {
            s.reuse_detection = parse_bool(v)?;
        }
        if let Some(v) = take("algorithm") {
            let name = parse_string(v.clone())?;
            s.algorithm = parse_algorithm(&name).ok_or_else(|| {
                invalid(
                    "algorithm",
                    format!(
                        "one of {} (case-sensitive), got `{name}`",
                        ALGORITHM_NAMES.join(", ")
                    ),
                )
            })?;
        }
        if let Some(v) = take("signing_key") {
            s.signing_key = optional(parse_string(v)?);
        }
        if let Some(v) = take("issuer") {
            s.issuer = optional(parse_string(v)?);
        }
        if let Some(v) = take("audience") {
            s.audience = optional(parse_string(v)?);
        }
        if let Some(v) = take("leeway") {
            s.leeway = parse_duration(v)?;
        }
        if let Some(v) = take("auth_header_types") {
            s.auth_header_types = parse_list(v)?;
            if s.auth_header_types.is_empty()
                || s.auth_header_types
                    .iter()
                    .any(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(invalid(
                    "auth_header_types",
                    "a non-empty list of schemes such as [\"Bearer\"]",
                ));
            }
        }
        if let Some(v) = take("user_id_claim") {
            s.user_id_claim = parse_string(v)?;
            if s.user_id_claim.is_empty() || RESERVED_CLAIMS.contains(&s.user_id_claim.as_str()) {
                return Err(invalid(
                    "user_id_claim",
                    format!(
                        "a claim name Tessera does not use itself (not {}), got `{}`",
                        RESERVED_CLAIMS.join(", "),
                        s.user_id_claim
                    ),
                ));
            }
        }
        if let Some(v) = take("extra_claims") {
            s.extra_claims = parse_choices(v, &ExtraClaim::ALL.map(|c| (c.name(), c)))?;
        }
        if let Some(v) = take("token_locations") {
            s.token_locations = parse_choices(v, &TokenLocation::ALL.map(|l| (l.name(), l)))?;
            if s.token_locations.is_empty() {
                return Err(invalid(
                    "token_locations",
                    "at least one of headers, cookies, query_string, json",
                ));
            }
        }
        if let Some(v) = take("cookie_secure") {
            s.cookie_secure = parse_bool(v)?;
        }
        if let Some(v) = take("cookie_samesite") {
            let name = parse_string(v)?;
            s.cookie_samesite = match name.as_str() {
                "Lax" => SameSite::Lax,
                "Strict" => SameSite::Strict,
                "None" => SameSite::None,
                _ => {
                    return Err(invalid(
                        "cookie_samesite",
                        format!("one of Lax, Strict, None, got `{name}`"),
                    ));
                }
            };
        }
        if let Some(v) = take("cors_allowed_origins") {
            s.cors_allowed_origins = parse_list(v)?;
            for origin in &s.cors_allowed_origins {
                if !(origin.starts_with("http://") || origin.starts_with("https://"))
                    || origin.ends_with('/')
                {
                    return Err(invalid(
                        "cors_allowed_origins",
                        format!("exact origins such as https://app.example.com, got `{origin}`"),
                    ));
                }
            }
        }
        if let Some(v) = take("login_rate_limit") {
            s.login_rate_limit = parse_rate(v)?;
        }
        if let Some(v) = take("trusted_proxies") {
            s.trusted_proxies = parse_list(v)?
                .iter()
                .map(|a| a.parse::<IpAddr>())
                .collect::<Result<_, _>>()
                .map_err(|_| invalid("trusted_proxies", "a list of IP addresses"))?;
        }
        if let Some(v) = take("signup_enabled") {
            s.signup_enabled = parse_bool(v)?;
        }
        if let Some(v) = take("password_min_length") {
            let n = parse_int(v)?;
            s.password_min_length = usize::try_from(n)
                .ok()
                .filter(|n| (1..=4096).contains(n))
                .ok_or_else(|| invalid("password_min_length", "an integer from 1 to 4096"))?;
        }
        if let Some(v) = take("signup_rate_limit") {
            s.signup_rate_limit = parse_rate(v)?;
        }
        if let Some(v) = take("max_connections") {
            let n = parse_int(v)?;
            s.max_connections = usize::try_from(n)
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| invalid("max_connections", "an integer from 1 to 1000000"))?;
        }
        if let Some(v) = take("request_timeout") {
            s.request_timeout = parse_duration(v)?;
            if s.request_timeout.is_zero() {
                return Err(invalid(
                    "request_timeout",
                    "a duration of at least 1ms, such as 30s",
                ));
            }
        }
        if s.blacklist_after_rotation && !s.rotate_refresh_tokens {
            tracing::debug!("blacklist_after_rotation has no effect without rotate_refresh_tokens");
        }
        Ok(s)
    }

    /// The setting `name` as a TOML value, as a file would hold it; `None`
    /// when it is unset. Secrets come out masked: an HMAC signing key as
    /// `********`, passwords in URLs as `***`.
    pub fn value(&self, name: &str) -> Option<toml::Value> {
        use toml::Value;
        let string = |s: &str| Some(Value::String(s.to_owned()));
        let list = |items: Vec<&str>| {
            Some(Value::Array(
                items.into_iter().map(|i| Value::String(i.into())).collect(),
            ))
        };
        let duration = |d: Duration| string(&format_duration(d));
        let rate = |r: Option<Rate>| string(&format_rate(r));
        match name {
            "bind" => string(&self.bind),
            "database_url" => string(&redact_url(&self.database_url)),
            "redis_url" => self
                .redis_url
                .as_deref()
                .and_then(|u| string(&redact_url(u))),
            "access_token_lifetime" => duration(self.access_token_lifetime),
            "refresh_token_lifetime" => duration(self.refresh_token_lifetime),
            "rotate_refresh_tokens" => Some(Value::Boolean(self.rotate_refresh_tokens)),
            "blacklist_after_rotation" => Some(Value::Boolean(self.blacklist_after_rotation)),
            "reuse_detection" => Some(Value::Boolean(self.reuse_detection)),
            "algorithm" => string(tessera_core::keys::algorithm_name(self.algorithm)),
            "signing_key" => self.signing_key.as_deref().and_then(|key| {
                // A PEM path is not a secret; an HMAC secret is.
                if tessera_core::keys::is_hmac(self.algorithm) {
                    string("********")
                } else {
                    string(key)
                }
            }),
            "issuer" => self.issuer.as_deref().and_then(string),
            "audience" => self.audience.as_deref().and_then(string),
            "leeway" => duration(self.leeway),
            "auth_header_types" => {
                list(self.auth_header_types.iter().map(String::as_str).collect())
            }
            "user_id_claim" => string(&self.user_id_claim),
            "extra_claims" => list(self.extra_claims.iter().map(|c| c.name()).collect()),
            "token_locations" => list(self.token_locations.iter().map(|l| l.name()).collect()),
            "cookie_secure" => Some(Value::Boolean(self.cookie_secure)),
            "cookie_samesite" => string(match self.cookie_samesite {
                SameSite::Lax => "Lax",
                SameSite::Strict => "Strict",
                SameSite::None => "None",
            }),
            "cors_allowed_origins" => list(
                self.cors_allowed_origins
                    .iter()
                    .map(String::as_str)
                    .collect(),
            ),
            "login_rate_limit" => rate(self.login_rate_limit),
            "trusted_proxies" => Some(Value::Array(
                self.trusted_proxies
                    .iter()
                    .map(|a| Value::String(a.to_string()))
                    .collect(),
            )),
            "signup_enabled" => Some(Value::Boolean(self.signup_enabled)),
            "password_min_length" => Some(Value::Integer(self.password_min_length as i64)),
            "signup_rate_limit" => rate(self.signup_rate_limit),
            "max_connections" => Some(Value::Integer(self.max_connections as i64)),
            "request_timeout" => duration(self.request_timeout),
            _ => None,
        }
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

/// A duration in the largest unit that divides it: `5m`, `1d`, `90s`, `250ms`.
fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A rate as the setting is written: `10/min`, `5/s`, `100/h`, or `off`.
fn format_rate(rate: Option<Rate>) -> String {
    let Some(rate) = rate else {
        return "off".into();
    };
    let unit = match rate.per.as_secs() {
        1 => "s",
        3600 => "h",
        _ => "min",
    };
    format!("{}/{unit}", rate.count)
}

fn invalid(setting: &'static str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        expected: expected.into(),
    }
}

fn optional(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

type Named = (&'static str, Raw);

impl Clone for Raw {
    fn clone(&self) -> Self {
        match self {
            Raw::File(v) => Raw::File(v.clone()),
            Raw::Env(s) => Raw::Env(s.clone()),
        }
    }
}

fn parse_string((name, v): Named) -> Result<String, ConfigError> {
    match v {
        Raw::File(toml::Value::String(s)) | Raw::Env(s) => Ok(s),
        _ => Err(invalid(name, "a string")),
    }
}

fn parse_bool((name, v): Named) -> Result<bool, ConfigError> {
    match v {
        Raw::File(toml::Value::Boolean(b)) => Ok(b),
        Raw::Env(s) if s == "true" => Ok(true),
        Raw::Env(s) if s == "false" => Ok(false),
        _ => Err(invalid(name, "true or false")),
    }
}

fn parse_int((name, v): Named) -> Result<i64, ConfigError> {
    match v {
        Raw::File(toml::Value::Integer(n)) => Ok(n),
        Raw::Env(s) => s.trim().parse().map_err(|_| invalid(name, "an integer")),
        _ => Err(invalid(name, "an integer")),
    }
}

fn parse_duration(named: Named) -> Result<Duration, ConfigError> {
    let name = named.0;
    let text = parse_string(named)?;
    humantime::parse_duration(&text).map_err(|_| {
        invalid(
            name,
            format!("a duration such as 30s, 5m, 1h or 1d, got `{text}`"),
        )
    })
}

fn parse_lifetime(named: Named) -> Result<Duration, ConfigError> {
    let name = named.0;
    let d = parse_duration(named)?;
    // Tokens carry whole seconds; a lifetime must be at least one and fit a NumericDate.
    if d < Duration::from_secs(1) || d > Duration::from_secs(10 * 365 * 86_400) {
        return Err(invalid(name, "a duration from 1s to 3650d"));
    }
    Ok(d)
}

fn parse_list((name, v): Named) -> Result<Vec<String>, ConfigError> {
    match v {
        Raw::File(toml::Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                toml::Value::String(s) => Ok(s),
                _ => Err(invalid(name, "a list of strings")),
            })
            .collect(),
        Raw::Env(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        _ => Err(invalid(name, "a list of strings")),
    }
}

fn parse_choices<T: Copy + PartialEq>(
    named: Named,
    choices: &[(&str, T)],
) -> Result<Vec<T>, ConfigError> {
    let name = named.0;
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for item in parse_list(named)? {
        let value = choices
            .iter()
            .find(|(n, _)| *n == item)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                invalid(
                    name,
                    format!("a list of: {}, got `{item}`", names.join(", ")),
                )
            })?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

fn parse_rate(named: Named) -> Result<Option<Rate>, ConfigError> {
    let name = named.0;
    let text = parse_string(named)?;
    if text == "off" {
        return Ok(None);
    }
    let expected = || invalid(name, format!("N/s, N/min, N/h or off, got `{text}`"));
    let (count, unit) = text.split_once('/').ok_or_else(expected)?;
    let count: u32 = count
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(expected)?;
    let per = match unit.trim() {
        "s" => 1,
        "min" => 60,
        "h" => 3600,
        _ => return Err(expected()),
    };
    Ok(Some(Rate {
        count,
        per: Duration::from_secs(per),
    }))
}

fn parse_bind(named: Named) -> Result<String, ConfigError> {
    let name = named.0;
    let text = parse_string(named)?;
    let ok = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !ok {
        return Err(invalid(
            name,
            format!("HOST:PORT such as 127.0.0.1:8000, got `{text}`"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8000");
        assert_eq!(s.database_url, "sqlite://tessera.db");
        assert_eq!(s.access_token_lifetime, Duration::from_secs(300));
        assert_eq!(s.refresh_token_lifetime, Duration::from_secs(86_400));
        assert_eq!(s.algorithm, Algorithm::HS256);
        assert!(s.reuse_detection && !s.rotate_refresh_tokens);
        assert_eq!(s.login_rate_limit.unwrap().count, 10);
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = file(
            "algorithm = \"ES256\"\naccess_token_lifetime = \"10m\"\nextra_claims = [\"email\"]\n",
        );
        let s = Settings::load(
            Some(f.path()),
            env(&[
                ("TESSERA_ALGORITHM", "EdDSA"),
                ("TESSERA_TOKEN_LOCATIONS", "cookies, headers"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(s.algorithm, Algorithm::EdDSA);
        assert_eq!(s.access_token_lifetime, Duration::from_secs(600));
        assert_eq!(s.extra_claims, vec![ExtraClaim::Email]);
        assert_eq!(
            s.token_locations,
            vec![TokenLocation::Cookies, TokenLocation::Headers]
        );
    }

    #[test]
    fn errors_name_the_setting_and_the_choices() {
        let f = file("algoritm = \"HS256\"\n");
        let e = Settings::load(Some(f.path()), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`algoritm`"), "{e}");
        let e = Settings::load(None, env(&[("TESSERA_ALGORITHM", "hs256")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`algorithm`") && e.contains("HS256, HS384"),
            "{e}"
        );
        let e = Settings::load(None, env(&[("TESSERA_COOKIE_SAMESITE", "lax")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Lax, Strict, None"), "{e}");
        let e = Settings::load(None, env(&[("TESSERA_LOGIN_RATE_LIMIT", "10/day")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`login_rate_limit`"), "{e}");
        let e = Settings::load(None, env(&[("TESSERA_ROTATE_REFRESH_TOKENS", "yes")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("true or false"), "{e}");
        assert!(Settings::load(None, env(&[("TESSERA_TEST_REQUIRE_TOOLS", "1")])).is_ok());
        let e = Settings::load(None, env(&[("TESSERA_NOPE", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("TESSERA_NOPE"), "{e}");
        assert!(Settings::load(None, env(&[("TESSERA_BIND", "nowhere")])).is_err());
        assert!(Settings::load(None, env(&[("TESSERA_LEEWAY", "soon")])).is_err());
    }

    #[test]
    fn every_reserved_claim_is_refused_as_user_id_claim() {
        for claim in RESERVED_CLAIMS {
            let e = Settings::load(
                None,
                env(&[
                    ("TESSERA_USER_ID_CLAIM", claim),
                    ("TESSERA_AUDIENCE", "api"),
                ]),
            )
            .err()
            .unwrap_or_else(|| panic!("user_id_claim = {claim} was accepted"))
            .to_string();
            assert!(e.contains("`user_id_claim`") && e.contains(claim), "{e}");
        }
        for fine in ["user_id", "uid", "account"] {
            assert!(Settings::load(None, env(&[("TESSERA_USER_ID_CLAIM", fine)])).is_ok());
        }
        assert!(Settings::load(None, env(&[("TESSERA_USER_ID_CLAIM", "")])).is_err());
    }

    #[test]
    fn rates_parse() {
        let rate = |t: &str| parse_rate(("login_rate_limit", Raw::Env(t.into())));
        assert_eq!(rate("off").unwrap(), None);
        assert_eq!(rate("5/s").unwrap().unwrap().per, Duration::from_secs(1));
        assert_eq!(rate("100/h").unwrap().unwrap().count, 100);
        assert!(rate("0/min").is_err());
    }

    #[test]
    fn the_signing_key_never_shows_in_debug() {
        let s = Settings::load(
            None,
            env(&[("TESSERA_SIGNING_KEY", "super-secret-value-0123456789abcdef")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("super-secret"));
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    }
}
