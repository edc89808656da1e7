//! Settings written back as TOML values, as a file would hold them, with
//! secrets masked: what `tessera config` prints.

use super::*;

impl Settings {
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
            "public_url" => self.public_url.as_deref().and_then(string),
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
