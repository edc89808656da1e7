//! Settings written back as TOML values, as a file would hold them, with
//! secrets masked: what `tessera config` prints.

use super::{
    CompatSet, EmailVerification, LogFormat, MfaPolicy, Rate, SameSite, Settings, TokenLocation,
    redact_url,
};
use std::net::IpAddr;
use std::time::Duration;
use tessera_core::Algorithm;
use tessera_core::claims::{ClaimNames, ExtraClaim, SubjectClaim};
use toml::Value;

// Each takes the whole settings as well as its own value: what is secret
// about one setting can depend on another (the signing key on the algorithm).

pub(super) fn string(_: &Settings, v: &str) -> Option<Value> {
    Some(Value::String(v.to_owned()))
}

pub(super) fn optional_string(_: &Settings, v: &Option<String>) -> Option<Value> {
    v.as_deref().map(|v| Value::String(v.to_owned()))
}

pub(super) fn url(_: &Settings, v: &str) -> Option<Value> {
    Some(Value::String(redact_url(v)))
}

pub(super) fn optional_url(_: &Settings, v: &Option<String>) -> Option<Value> {
    v.as_deref().map(|v| Value::String(redact_url(v)))
}

pub(super) fn signing_key(s: &Settings, v: &Option<String>) -> Option<Value> {
    // A PEM path is not a secret; an HMAC secret is.
    v.as_deref().map(|key| {
        Value::String(if tessera_core::keys::is_hmac(s.algorithm) {
            "********".into()
        } else {
            key.to_owned()
        })
    })
}

pub(super) fn boolean(_: &Settings, v: &bool) -> Option<Value> {
    Some(Value::Boolean(*v))
}

pub(super) fn integer(_: &Settings, v: &usize) -> Option<Value> {
    Some(Value::Integer(i64::try_from(*v).unwrap_or(i64::MAX)))
}

pub(super) fn duration(_: &Settings, v: &Duration) -> Option<Value> {
    Some(Value::String(format_duration(*v)))
}

pub(super) fn rate(_: &Settings, v: &Option<Rate>) -> Option<Value> {
    Some(Value::String(format_rate(*v)))
}

pub(super) fn algorithm(_: &Settings, v: &Algorithm) -> Option<Value> {
    Some(Value::String(
        tessera_core::keys::algorithm_name(*v).to_owned(),
    ))
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> Option<Value> {
    Some(Value::Array(
        items
            .into_iter()
            .map(|i| Value::String(i.to_owned()))
            .collect(),
    ))
}

pub(super) fn strings(_: &Settings, v: &[String]) -> Option<Value> {
    list(v.iter().map(String::as_str))
}

pub(super) fn extra_claims(_: &Settings, v: &[ExtraClaim]) -> Option<Value> {
    list(v.iter().map(|c| c.name()))
}

pub(super) fn claim_names(_: &Settings, v: &ClaimNames) -> Option<Value> {
    // Only the renamed claims, as a file would hold them: `{}` when none is.
    Some(Value::Table(
        v.renamed()
            .map(|(claim, name)| (claim.name().to_owned(), Value::String(name.to_owned())))
            .collect(),
    ))
}

pub(super) fn compat(_: &Settings, v: &[CompatSet]) -> Option<Value> {
    list(v.iter().map(|c| c.name()))
}

pub(super) fn subject(_: &Settings, v: &SubjectClaim) -> Option<Value> {
    Some(Value::String(v.name().into()))
}

pub(super) fn token_locations(_: &Settings, v: &[TokenLocation]) -> Option<Value> {
    list(v.iter().map(|l| l.name()))
}

pub(super) fn log_format(_: &Settings, v: &LogFormat) -> Option<Value> {
    Some(Value::String(
        match v {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
        .into(),
    ))
}

pub(super) fn email_verification(_: &Settings, v: &EmailVerification) -> Option<Value> {
    Some(Value::String(v.name().to_owned()))
}

pub(super) fn mfa(_: &Settings, v: &MfaPolicy) -> Option<Value> {
    Some(Value::String(v.name().to_owned()))
}

pub(super) fn samesite(_: &Settings, v: &SameSite) -> Option<Value> {
    Some(Value::String(
        match v {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
        .to_owned(),
    ))
}

pub(super) fn addresses(_: &Settings, v: &[IpAddr]) -> Option<Value> {
    Some(Value::Array(
        v.iter().map(|a| Value::String(a.to_string())).collect(),
    ))
}

/// A duration in the largest unit that divides it: `5m`, `1d`, `90s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
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
