//! Tessera's settings: one typed struct, deserialised with serde from a TOML
//! file and `TESSERA_<SETTING>` environment variables (which win), layered by
//! figment, checked at start. Each setting is declared once, in
//! [`settings`](self::settings): its doc comment, type, default and reader.

mod define;
mod parse;
pub mod reference;
mod render;
mod settings;

pub use render::format_duration;
pub use settings::{SETTING_NAMES, SETTINGS, Settings};

use figment::Figment;
use figment::providers::Serialized;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

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

/// A set of drop-in routes for another stack's clients (`compat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatSet {
    /// `POST /login`, `POST /refresh` and `POST /logout`, with Flask-JWT-Extended's bodies.
    FlaskJwtExtended,
    /// `POST /token`, FastAPI's `OAuth2PasswordRequestForm` endpoint.
    Fastapi,
}

impl CompatSet {
    /// Every set, in the order the setting documents them.
    pub const ALL: [CompatSet; 2] = [CompatSet::FlaskJwtExtended, CompatSet::Fastapi];

    /// The set's name in `compat`.
    pub fn name(self) -> &'static str {
        match self {
            CompatSet::FlaskJwtExtended => "flask_jwt_extended",
            CompatSet::Fastapi => "fastapi",
        }
    }
}

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Whether users prove their email address (`email_verification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmailVerification {
    /// Never asked.
    #[default]
    Off,
    /// A link is mailed at signup; nothing depends on it.
    Optional,
    /// Logins of users whose address is not verified are refused.
    Required,
}

impl EmailVerification {
    /// Its name in the setting.
    pub fn name(self) -> &'static str {
        match self {
            EmailVerification::Off => "off",
            EmailVerification::Optional => "optional",
            EmailVerification::Required => "required",
        }
    }
}

/// Whose logins need a second factor (`mfa`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MfaPolicy {
    /// Users choose: a user with a factor is asked for it, one without
    /// logs in with the password.
    #[default]
    Optional,
    /// Staff users and superusers must have a factor; others choose.
    RequiredForStaff,
    /// Every user must have a factor.
    Required,
}

impl MfaPolicy {
    /// Its name in the setting.
    pub fn name(self) -> &'static str {
        match self {
            MfaPolicy::Optional => "optional",
            MfaPolicy::RequiredForStaff => "required_for_staff",
            MfaPolicy::Required => "required",
        }
    }

    /// Whether a user (staff or superuser when `staff`) must have a factor.
    pub fn requires_factor(self, staff: bool) -> bool {
        match self {
            MfaPolicy::Optional => false,
            MfaPolicy::RequiredForStaff => staff,
            MfaPolicy::Required => true,
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

impl Rate {
    /// `count` per minute.
    pub const fn per_minute(count: u32) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for Settings {
    // Every setting as `tessera config` shows it: secrets masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Settings");
        for name in SETTING_NAMES {
            match self.value(name) {
                Some(value) => out.field(name, &format_args!("{value}")),
                None => out.field(name, &format_args!("(not set)")),
            };
        }
        out.finish()
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
                }
                // No password: nothing to hide.
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
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

impl ConfigError {
    /// The first error of a failed extraction, named by its setting.
    fn from_layers(error: figment::Error) -> Self {
        use figment::error::Kind;
        let setting = error
            .path
            .first()
            .and_then(|key| SETTING_NAMES.iter().find(|name| *name == key));
        match (&error.kind, setting) {
            (Kind::UnknownField(key, _), _) => ConfigError::Unknown(key.clone()),
            (Kind::Message(expected), Some(setting)) => ConfigError::Invalid {
                setting,
                expected: expected.clone(),
            },
            (_, Some(setting)) => ConfigError::Invalid {
                setting,
                expected: error.kind.to_string(),
            },
            (_, None) => ConfigError::File {
                path: "configuration".into(),
                reason: error.kind.to_string(),
            },
        }
    }
}

/// Environment variables with the `TESSERA_` prefix that are not settings.
const NON_SETTING_ENV: [&str; 2] = ["TESSERA_CONFIG", "TESSERA_LOG"];

impl Settings {
    /// Reads `file` (if given), then applies `TESSERA_*` variables from `env`,
    /// and checks every value.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut layers = Figment::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            // Parsed here rather than by figment, for a one-line syntax error.
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: path.display().to_string(),
                        reason: toml_error_line(&text, &e),
                    })?;
            layers = layers.merge(Serialized::defaults(table));
        }
        // Variables stay text: each setting's reader parses its own syntax
        // (figment's own Env provider guesses types, and would turn an
        // all-digit secret into a number).
        let mut vars = BTreeMap::new();
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
            vars.insert(name, value);
        }
        let settings: Settings = layers
            .merge(Serialized::defaults(vars))
            .extract()
            .map_err(ConfigError::from_layers)?;
        settings.check_claim_names()?;
        Ok(settings)
    }

    /// Refuses `claim_names` that would make two claims one (see
    /// [`ClaimNames::check`](tessera_core::claims::ClaimNames::check)), or
    /// that rename a claim `extra_claims` does not write: most likely a
    /// mistake, and a service reading the new name would find nothing.
    fn check_claim_names(&self) -> Result<(), ConfigError> {
        let invalid = |expected: String| ConfigError::Invalid {
            setting: "claim_names",
            expected,
        };
        self.claim_names
            .check(&self.user_id_claim)
            .map_err(invalid)?;
        for (claim, name) in self.claim_names.renamed() {
            let written = claim == tessera_core::claims::UserClaim::Username
                || self
                    .extra_claims
                    .iter()
                    .any(|extra| tessera_core::claims::UserClaim::from(*extra) == claim);
            if !written {
                return Err(invalid(format!(
                    "`{own}` is renamed `{name}` but `extra_claims` does not put `{own}` in tokens",
                    own = claim.name()
                )));
            }
        }
        Ok(())
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
            subject: self.subject,
            claim_names: self.claim_names.clone(),
        }
    }

    /// Access token lifetime in whole seconds.
    pub fn access_seconds(&self) -> i64 {
        self.access_token_lifetime.as_secs() as i64
    }

    /// Refresh token lifetime in whole seconds.
    pub fn refresh_seconds(&self) -> i64 {
        self.refresh_token_lifetime.as_secs() as i64
    }

    /// Service clients' token lifetime in whole seconds.
    pub fn client_token_seconds(&self) -> i64 {
        self.client_token_lifetime.as_secs() as i64
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
