//! How each setting is read: serde `deserialize_with` functions that take the
//! value as the file holds it (a TOML value) or as the environment gives it
//! (text), check it, and fail with the words for what the setting accepts.
//! The loader adds the setting's name.

use super::{CompatSet, EmailVerification, LogFormat, MfaPolicy, Rate, SameSite, TokenLocation};
use serde::de::{Deserialize, Deserializer, Error as _};
use std::net::IpAddr;
use std::time::Duration;
use tessera_core::Algorithm;
use tessera_core::claims::{ClaimNames, ExtraClaim, RESERVED_CLAIMS, SubjectClaim, UserClaim};
use tessera_core::keys::{ALGORITHM_NAMES, parse_algorithm};
use toml::Value;

/// The largest clock skew tolerated.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// A setting's reader: the raw value in, the setting's value or what it accepts out.
type Read<T> = fn(Value) -> Result<T, String>;

/// Runs `read` on whatever value the setting was given.
fn with<'de, D: Deserializer<'de>, T>(d: D, read: Read<T>) -> Result<T, D::Error> {
    read(Value::deserialize(d)?).map_err(D::Error::custom)
}

/// Declares `pub fn $name(deserializer)` for each reader.
macro_rules! readers {
    ($($name:ident -> $ty:ty = $read:expr;)+) => {$(
        pub fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            with(d, $read)
        }
    )+};
}

readers! {
    bind -> String = read_bind;
    database_url -> String = read_database_url;
    redis_url -> Option<String> = read_redis_url;
    lifetime -> Duration = read_lifetime;
    leeway -> Duration = read_leeway;
    grace_period -> Duration = read_grace_period;
    publish_lead -> Duration = read_publish_lead;
    positive_duration -> Duration = read_positive_duration;
    boolean -> bool = read_bool;
    algorithm -> Algorithm = read_algorithm;
    optional_string -> Option<String> = |v| read_string(v).map(optional);
    string -> String = read_string;
    public_url -> Option<String> = read_public_url;
    smtp_url -> Option<String> = read_smtp_url;
    mail_from -> String = read_mail_from;
    totp_issuer -> String = read_totp_issuer;
    email_verification -> EmailVerification = read_email_verification;
    mfa -> MfaPolicy = read_mfa;
    link_lifetime -> Duration = read_link_lifetime;
    auth_header_types -> Vec<String> = read_auth_header_types;
    user_id_claim -> String = read_user_id_claim;
    extra_claims -> Vec<ExtraClaim> = |v| read_choices(v, &ExtraClaim::ALL.map(|c| (c.name(), c)));
    claim_names -> ClaimNames = read_claim_names;
    token_locations -> Vec<TokenLocation> = read_token_locations;
    compat -> Vec<CompatSet> = |v| read_choices(v, &CompatSet::ALL.map(|c| (c.name(), c)));
    subject -> SubjectClaim = read_subject;
    samesite -> SameSite = read_samesite;
    log_format -> LogFormat = read_log_format;
    origins -> Vec<String> = read_origins;
    rate -> Option<Rate> = read_rate;
    addresses -> Vec<IpAddr> = read_addresses;
    password_min_length -> usize = |v| read_int_in(v, 1, 4096);
    max_connections -> usize = |v| read_int_in(v, 1, 1_000_000);
    max_sessions -> usize = |v| read_int_in(v, 1, 100_000);
    database_max_connections -> usize = |v| read_int_in(v, 1, 1000);
}

/// The `issuer` of otpauth URIs: the Key URI format takes no `:` in it
/// (the label's separator), and an app shows it, so no control characters.
fn read_totp_issuer(v: Value) -> Result<String, String> {
    let issuer = read_string(v)?;
    let length = issuer.chars().count();
    if !(1..=100).contains(&length) || issuer.chars().any(|c| c == ':' || c.is_control()) {
        return Err("1 to 100 characters, without `:` or control characters".into());
    }
    Ok(issuer)
}

fn optional(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

fn read_string(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err("a string".into()),
    }
}

/// `true`/`false`: a TOML boolean, or the text from the environment.
fn read_bool(v: Value) -> Result<bool, String> {
    match v {
        Value::Boolean(b) => Ok(b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err("true or false".into()),
    }
}

fn read_int_in(v: Value, min: usize, max: usize) -> Result<usize, String> {
    let n = match v {
        Value::Integer(n) => usize::try_from(n).ok(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("an integer from {min} to {max}"))
}

/// A list: a TOML array of strings, or comma-separated text from the environment.
fn read_list(v: Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err("a list of strings".to_owned()),
            })
            .collect(),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        _ => Err("a list of strings".into()),
    }
}

fn read_choices<T: Copy + PartialEq>(v: Value, choices: &[(&str, T)]) -> Result<Vec<T>, String> {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for item in read_list(v)? {
        let value = choices
            .iter()
            .find(|(n, _)| *n == item)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("a list of: {}, got `{item}`", names.join(", ")))?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

fn read_duration(v: Value) -> Result<Duration, String> {
    let expected =
        |got: &dyn std::fmt::Display| format!("a duration such as 30s, 5m, 1h or 1d, got `{got}`");
    match &v {
        Value::String(text) => humantime::parse_duration(text).map_err(|_| expected(text)),
        // A bare number has no unit: say which one was meant.
        other => Err(expected(other)),
    }
}

fn read_lifetime(v: Value) -> Result<Duration, String> {
    let d = read_duration(v)?;
    // Tokens carry whole seconds; a lifetime must be at least one and fit a NumericDate.
    if d < Duration::from_secs(1) || d > Duration::from_secs(10 * 365 * 86_400) {
        return Err("a duration from 1s to 3650d".into());
    }
    Ok(d)
}

fn read_leeway(v: Value) -> Result<Duration, String> {
    let d = read_duration(v)?;
    // Clock skew is seconds; minutes of leeway would keep expired tokens
    // (and tokens revoked by their expiry) alive that long.
    if d > MAX_LEEWAY {
        return Err("a duration from 0s to 5m".into());
    }
    Ok(d)
}

fn read_grace_period(v: Value) -> Result<Duration, String> {
    let d = read_duration(v)?;
    // Within the period a rotated token still yields a live one: minutes
    // would let a stolen token be used that long without tripping reuse
    // detection.
    if d > Duration::from_secs(300) {
        return Err("a duration from 0s to 5m".into());
    }
    Ok(d)
}

fn read_publish_lead(v: Value) -> Result<Duration, String> {
    let d = read_duration(v)?;
    // A week covers any verifier's cache; longer only keeps a retiring
    // key signing for no one's sake.
    if d > Duration::from_secs(7 * 86_400) {
        return Err("a duration from 0s to 7d, such as 5m".into());
    }
    Ok(d)
}

fn read_positive_duration(v: Value) -> Result<Duration, String> {
    let d = read_duration(v)?;
    if d.is_zero() {
        return Err("a duration of at least 1ms, such as 30s".into());
    }
    Ok(d)
}

fn read_bind(v: Value) -> Result<String, String> {
    let text = read_string(v)?;
    let ok = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !ok {
        return Err(format!("HOST:PORT such as 127.0.0.1:8000, got `{text}`"));
    }
    Ok(text)
}

fn read_database_url(v: Value) -> Result<String, String> {
    let url = read_string(v)?;
    if ["sqlite://", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        Ok(url)
    } else {
        Err("sqlite://PATH, sqlite:///ABSOLUTE/PATH or postgres://...".into())
    }
}

fn read_redis_url(v: Value) -> Result<Option<String>, String> {
    let Some(url) = optional(read_string(v)?) else {
        return Ok(None);
    };
    // Checked here so that a mistyped URL stops the start, not every login.
    match redis::Client::open(url.as_str()) {
        Ok(_) if url.starts_with("redis://") => Ok(Some(url)),
        _ => Err(format!(
            "a Redis URL such as redis://127.0.0.1:6379/0, got `{}`",
            super::redact_url(&url)
        )),
    }
}

fn read_algorithm(v: Value) -> Result<Algorithm, String> {
    let name = read_string(v)?;
    parse_algorithm(&name).ok_or_else(|| {
        format!(
            "one of {} (case-sensitive), got `{name}`",
            ALGORITHM_NAMES.join(", ")
        )
    })
}

fn read_public_url(v: Value) -> Result<Option<String>, String> {
    let Some(url) = optional(read_string(v)?).map(|u| u.trim_end_matches('/').to_owned()) else {
        return Ok(None);
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if rest.is_some_and(|r| {
        !r.is_empty() && r.bytes().all(|b| b.is_ascii_graphic()) && !r.contains(['?', '#'])
    }) {
        Ok(Some(url))
    } else {
        Err(format!(
            "an absolute http:// or https:// URL such as https://auth.example.com, got `{url}`"
        ))
    }
}

fn read_smtp_url(v: Value) -> Result<Option<String>, String> {
    let Some(url) = optional(read_string(v)?) else {
        return Ok(None);
    };
    crate::mail::SmtpTarget::parse(&url).map_err(|why| {
        format!(
            "`smtp://HOST:PORT` or `smtps://HOST:PORT` ({why}), got `{}`",
            super::redact_url(&url)
        )
    })?;
    Ok(Some(url))
}

fn read_mail_from(v: Value) -> Result<String, String> {
    let from = read_string(v)?;
    match from.parse::<lettre::message::Mailbox>() {
        Ok(_) => Ok(from),
        Err(_) => Err(format!(
            "an address or `Name <address>` such as `Tessera <noreply@example.com>`, got `{}`",
            from.escape_debug()
        )),
    }
}

fn read_email_verification(v: Value) -> Result<EmailVerification, String> {
    match read_string(v)?.as_str() {
        "off" => Ok(EmailVerification::Off),
        "optional" => Ok(EmailVerification::Optional),
        "required" => Ok(EmailVerification::Required),
        other => Err(format!("`off`, `optional` or `required`, got `{other}`")),
    }
}

fn read_mfa(v: Value) -> Result<MfaPolicy, String> {
    match read_string(v)?.as_str() {
        "optional" => Ok(MfaPolicy::Optional),
        "required_for_staff" => Ok(MfaPolicy::RequiredForStaff),
        "required" => Ok(MfaPolicy::Required),
        other => Err(format!(
            "`optional`, `required_for_staff` or `required`, got `{other}`"
        )),
    }
}

fn read_link_lifetime(v: Value) -> Result<Duration, String> {
    let d = read_duration(v)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(7 * 86_400) {
        return Err("a duration from 1s to 7d, such as 1h".into());
    }
    Ok(d)
}

fn read_auth_header_types(v: Value) -> Result<Vec<String>, String> {
    let types = read_list(v)?;
    if types.is_empty()
        || types
            .iter()
            .any(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err("a non-empty list of schemes such as [\"Bearer\"]".into());
    }
    Ok(types)
}

fn read_user_id_claim(v: Value) -> Result<String, String> {
    let claim = read_string(v)?;
    if claim.is_empty() || RESERVED_CLAIMS.contains(&claim.as_str()) {
        return Err(format!(
            "a claim name Tessera does not use itself (not {}), got `{claim}`",
            RESERVED_CLAIMS.join(", ")
        ));
    }
    Ok(claim)
}

/// A table of claim -> name: a TOML table, or `claim=name,claim=name`
/// from the environment. What the names collide with beyond each other and
/// the reserved claims (`user_id_claim`, `extra_claims`) is checked once
/// every setting is read ([`super::Settings::load`]).
fn read_claim_names(v: Value) -> Result<ClaimNames, String> {
    let keys = UserClaim::ALL.map(UserClaim::name).join(", ");
    let pairs: Vec<(String, String)> = match v {
        Value::Table(table) => table
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(name) => Ok((key, name)),
                other => Err(format!(
                    "a claim name (a string) for `{key}`, got `{other}`"
                )),
            })
            .collect::<Result<_, _>>()?,
        Value::String(text) => text
            .split(',')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((key, name)) => Ok((key.trim().to_owned(), name.trim().to_owned())),
                None => Err(format!(
                    "`claim=name` pairs separated by commas, got `{pair}`"
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("a table of claim names with keys among {keys}")),
    };
    let mut names = ClaimNames::default();
    let mut seen = Vec::new();
    for (key, name) in pairs {
        let claim = UserClaim::named(&key)
            .ok_or_else(|| format!("keys among {keys}: `{key}` is not a claim to rename"))?;
        if seen.contains(&claim) {
            return Err(format!("one name per claim: `{key}` is named twice"));
        }
        seen.push(claim);
        names.set(claim, name);
    }
    Ok(names)
}

fn read_token_locations(v: Value) -> Result<Vec<TokenLocation>, String> {
    let locations = read_choices(v, &TokenLocation::ALL.map(|l| (l.name(), l)))?;
    if locations.is_empty() {
        return Err("at least one of headers, cookies, query_string, json".into());
    }
    Ok(locations)
}

fn read_subject(v: Value) -> Result<SubjectClaim, String> {
    let name = read_string(v)?;
    SubjectClaim::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| format!("`id` or `username`, got `{name}`"))
}

fn read_log_format(v: Value) -> Result<LogFormat, String> {
    match read_string(v)?.as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("`text` or `json`, got `{other}`")),
    }
}

fn read_samesite(v: Value) -> Result<SameSite, String> {
    let name = read_string(v)?;
    match name.as_str() {
        "Lax" => Ok(SameSite::Lax),
        "Strict" => Ok(SameSite::Strict),
        "None" => Ok(SameSite::None),
        _ => Err(format!("one of Lax, Strict, None, got `{name}`")),
    }
}

fn read_origins(v: Value) -> Result<Vec<String>, String> {
    let origins = read_list(v)?;
    if let Some(origin) = origins
        .iter()
        .find(|o| !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/'))
    {
        return Err(format!(
            "exact origins such as https://app.example.com, got `{origin}`"
        ));
    }
    Ok(origins)
}

fn read_addresses(v: Value) -> Result<Vec<IpAddr>, String> {
    read_list(v)?
        .iter()
        .map(|a| a.parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .map_err(|_| "a list of IP addresses".into())
}

/// `N/s`, `N/min`, `N/h` or `off` (`None`).
pub(super) fn read_rate(v: Value) -> Result<Option<Rate>, String> {
    let text = read_string(v)?;
    if text == "off" {
        return Ok(None);
    }
    let expected = || format!("N/s, N/min, N/h or off, got `{text}`");
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
