//! Reading each setting from its raw value (TOML or environment text) and
//! checking it, with errors that name the setting and list its choices.

use super::*;

/// The largest clock skew tolerated.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

impl Settings {
    pub(super) fn from_raw(mut raw: BTreeMap<String, Raw>) -> Result<Self, ConfigError> {
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
            // Refused until it does something: a deployment that sets it
            // expects revocations and limits shared between instances.
            if s.redis_url.is_some() {
                return Err(invalid(
                    "redis_url",
                    "nothing yet: sharing revocations and limits through Redis is not supported \
                     in this version; leave redis_url unset",
                ));
            }
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
        if let Some(v) = take("public_url") {
            s.public_url = optional(parse_string(v)?).map(|u| u.trim_end_matches('/').to_owned());
            if let Some(url) = &s.public_url {
                let rest = url
                    .strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"));
                if !rest.is_some_and(|r| {
                    !r.is_empty()
                        && r.bytes().all(|b| b.is_ascii_graphic())
                        && !r.contains(['?', '#'])
                }) {
                    return Err(invalid(
                        "public_url",
                        format!(
                            "an absolute http:// or https:// URL such as https://auth.example.com, got `{url}`"
                        ),
                    ));
                }
            }
        }
        if let Some(v) = take("leeway") {
            s.leeway = parse_duration(v)?;
            // Clock skew is seconds; minutes of leeway would keep expired
            // and revoked-by-expiry tokens alive that long.
            if s.leeway > MAX_LEEWAY {
                return Err(invalid("leeway", "a duration from 0s to 5m"));
            }
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

pub(super) fn parse_rate(named: Named) -> Result<Option<Rate>, ConfigError> {
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
